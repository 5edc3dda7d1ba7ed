"""PyInstaller entry point of the frozen `lazytsc` executable (the headless CLI, no Qt)."""

import multiprocessing
import sys

from lazytsc.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # sweep worker processes re-enter this executable
    sys.exit(main())
