"""Persistent preferences (QSettings): geometry, dock layout, recent files, theme, mode."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore

ORG = "lazytsc"
APP = "lazytsc-gui"
MAX_RECENT = 10


class Settings:
    def __init__(self, qsettings: QtCore.QSettings | None = None) -> None:
        self.q = qsettings or QtCore.QSettings(ORG, APP)

    def _get(self, key: str, default, typ=None):
        value = self.q.value(key, default)
        if typ is bool:
            return value in (True, "true", "1", 1)
        if typ is int:
            try:
                return int(value)
            except (TypeError, ValueError):
                return default
        return value

    # theme / mode / play speed
    @property
    def theme(self) -> str:
        value = self._get("ui/theme", "dark")
        return value if value in ("dark", "light") else "dark"

    @theme.setter
    def theme(self, value: str) -> None:
        self.q.setValue("ui/theme", value)

    @property
    def mode(self) -> str:
        value = self._get("run/mode", "lazy")
        return value if value in ("classic", "lazy") else "lazy"

    @mode.setter
    def mode(self, value: str) -> None:
        self.q.setValue("run/mode", value)

    @property
    def play_speed(self) -> int:
        return self._get("run/play_speed", 40, int)

    @play_speed.setter
    def play_speed(self, value: int) -> None:
        self.q.setValue("run/play_speed", int(value))

    @property
    def last_dir(self) -> str:
        return str(self._get("files/last_dir", str(Path.home())))

    @last_dir.setter
    def last_dir(self, value: str) -> None:
        self.q.setValue("files/last_dir", value)

    # window layout
    def save_window(self, geometry: QtCore.QByteArray, state: QtCore.QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def window_geometry(self) -> QtCore.QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QtCore.QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QtCore.QByteArray | None:
        value = self.q.value("window/state")
        return value if isinstance(value, QtCore.QByteArray) and not value.isEmpty() else None

    # recent files
    def recent_files(self) -> list[str]:
        value = self.q.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, path: str) -> list[str]:
        path = str(Path(path).resolve()) if path else path
        files = [p for p in self.recent_files() if p != path]
        files.insert(0, path)
        files = files[:MAX_RECENT]
        self.q.setValue("files/recent", files)
        return files

    def clear_recent(self) -> None:
        self.q.setValue("files/recent", [])

    def sync(self) -> None:
        self.q.sync()
