"""The lazytsc desktop app (PySide6 + pyqtgraph)."""

from .compat import protect_none

protect_none()
