"""Helpers of the timeline-view tests: scenario variants, pixels of a rendered widget."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from gui_helpers import wait_idle
from lazytsc.resources import builtin_scenarios
from PySide6 import QtCore, QtGui, QtWidgets


def scenario_file(tmp_path: Path, name: str, duration: str) -> Path:
    """A copy of a built-in scenario with another duration."""
    text = builtin_scenarios()[name].read_text()
    text, n = re.subn(r'(?m)^duration = ".*"$', f'duration = "{duration}"', text)
    assert n == 1
    out = tmp_path / f"{name}_{duration}.toml"
    out.write_text(text)
    return out


def open_file(qtbot, win, path, idle: bool = True) -> None:
    with qtbot.waitSignal(win.controller.documentChanged, timeout=60_000):
        assert win.open_path(str(path), ask=False)
    if idle:
        wait_idle(qtbot, win, 120_000)


def settle(qtbot, ms: int = 30) -> None:
    QtWidgets.QApplication.processEvents()
    qtbot.wait(ms)
    QtWidgets.QApplication.processEvents()


def pixels(widget: QtWidgets.QWidget) -> np.ndarray:
    """The widget rendered now, as an (h, w) array of 0xRRGGBB."""
    img = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), dtype=np.uint32, count=img.bytesPerLine() * h // 4)
    return (arr.reshape(h, img.bytesPerLine() // 4)[:, :w] & 0xFFFFFF).copy()


def rgb(color: QtGui.QColor | str) -> int:
    c = QtGui.QColor(color)
    return (c.red() << 16) | (c.green() << 8) | c.blue()


def near(px: np.ndarray, color, tol: int = 40) -> np.ndarray:
    """Mask of the pixels within `tol` (per channel) of a colour."""
    c = rgb(color)
    out = np.ones(px.shape, dtype=bool)
    for shift in (0, 8, 16):
        out &= np.abs(((px >> shift) & 0xFF).astype(int) - ((c >> shift) & 0xFF)) <= tol
    return out


def plot_rect(tl, info) -> QtCore.QRect:
    """The viewbox of one timeline plot, in the coordinates of the timeline's lanes view."""
    vb = info.plot.getViewBox()
    r = vb.sceneBoundingRect()
    return tl.glw.mapFromScene(r).boundingRect()


def no_paint_errors():
    """Fixture body: fail the test if any timeline item raised while painting."""
    from lazytsc_gui import tracks

    tracks.PAINT_ERRORS.clear()
    yield
    assert not tracks.PAINT_ERRORS, tracks.PAINT_ERRORS[0]
