"""PyInstaller entry point of the frozen `lazytsc-gui` executable (the desktop app)."""

import multiprocessing
import sys

from lazytsc_gui.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # sweep worker processes re-enter this executable
    sys.exit(main())
