"""The GUI suite runs on the platform it was asked for (offscreen, and xcb on Xvfb in CI)."""

import os

from PySide6 import QtGui


def test_runs_on_the_requested_qt_platform(qapp):
    assert QtGui.QGuiApplication.platformName() == os.environ.get("QT_QPA_PLATFORM", "offscreen")
