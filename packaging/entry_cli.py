"""PyInstaller entry point of the frozen `lazytsc` executable (the headless CLI, no Qt)."""

import sys

from lazytsc.cli import main

if __name__ == "__main__":
    sys.exit(main())
