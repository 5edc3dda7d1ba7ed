"""The lazytsc desktop app (PySide6 + pyqtgraph)."""
