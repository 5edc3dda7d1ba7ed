"""PyInstaller entry point of the frozen `lazytsc-gui` executable (the desktop app)."""

import sys

from lazytsc_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
