"""Fixtures for the GUI tests: real widgets on Qt's offscreen platform.

Dialogs never block: QMessageBox's static functions are replaced by recorders
(a test sets the answer `question` gives), and every window gets its own
QSettings file under tmp_path so nothing touches the user's settings.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

import lazytsc_gui  # noqa: E402, F401  (binding work-arounds before any widget)

REPO = Path(__file__).resolve().parents[2]


class Dialogs:
    """Records QMessageBox calls; `answer` is what `question` returns."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.answer = QtWidgets.QMessageBox.StandardButton.Discard

    def record(self, kind: str):
        def fn(parent, title, text, *args, **kwargs):
            self.calls.append((kind, title, text))
            if kind == "question":
                return self.answer
            return QtWidgets.QMessageBox.StandardButton.Ok

        return fn

    def of(self, kind: str) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] == kind]


@pytest.fixture(autouse=True)
def _collect_qt_garbage(qtbot):
    """Delete each test's widgets while the QApplication is alive and idle.

    Left to a later, random garbage collection (in a non-GUI test), wrappers of
    already-deleted Qt objects in reference cycles can take the process down.
    """
    yield
    import gc

    QtWidgets.QApplication.processEvents()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    gc.collect()
    QtWidgets.QApplication.processEvents()


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> Dialogs:
    d = Dialogs()
    for kind in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QtWidgets.QMessageBox, kind, staticmethod(d.record(kind)))
    monkeypatch.setattr(QtWidgets.QMessageBox, "about", staticmethod(lambda *a, **k: d.calls.append(("about", "", ""))))
    return d


@pytest.fixture
def settings(tmp_path):
    from lazytsc_gui.settings import Settings

    return Settings(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))


@pytest.fixture
def make_window(qtbot, settings):
    from lazytsc_gui.main_window import MainWindow

    def make(mode: str = "lazy"):
        win = MainWindow(settings=settings, mode=mode)
        win.persist = False
        qtbot.addWidget(win)
        win.resize(1400, 900)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        return win

    return make


@pytest.fixture
def win(make_window, qtbot):
    """A main window on the built-in seed scenario in lazy mode, at event 0."""
    from gui_helpers import open_builtin

    w = make_window("lazy")
    open_builtin(qtbot, w)
    return w
