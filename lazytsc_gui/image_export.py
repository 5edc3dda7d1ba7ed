"""Timeline images with a title band (scenario, mode, time window), PNG and SVG.

Why not the plot library's exporters: they write whatever path they are given and
report nothing, and the SVG one cannot parse Qt 6's path data. Here the picture is
the widget as drawn (PNG: `grab()`; SVG: the scene rendered on Qt's SVG engine)
below a title, and the file is checked after writing.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtSvg, QtWidgets

from . import themes
from .export import check_writable, current_umask, image_path

TITLE_PX = 30


def _title_font(widget: QtWidgets.QWidget) -> QtGui.QFont:
    font = QtGui.QFont(widget.font())
    font.setPointSizeF(max(9.0, font.pointSizeF() * 1.1))
    font.setBold(True)
    return font


def _draw_title(painter: QtGui.QPainter, width: int, title: str, font: QtGui.QFont) -> None:
    th = themes.current()
    painter.fillRect(QtCore.QRectF(0, 0, width, TITLE_PX), QtGui.QColor(th.plot_bg))
    painter.setPen(QtGui.QColor(th.text))
    painter.setFont(font)
    painter.drawText(QtCore.QRectF(10, 0, width - 20, TITLE_PX), int(QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignLeft), title)


class _QtMessages:
    """Collects Qt warnings while painting (they would otherwise flood the console)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._old = None

    def __enter__(self) -> _QtMessages:
        def handler(_mode, _context, message: str) -> None:
            self.messages.append(message)

        self._old = QtCore.qInstallMessageHandler(handler)
        return self

    def __exit__(self, *_exc) -> None:
        QtCore.qInstallMessageHandler(self._old)


def export_image(widget: QtWidgets.QWidget, what: str, path: str, title: str, scene_widget=None) -> tuple[str, list[str]]:
    """Write `widget` as a PNG or SVG under `title`; returns (path written, Qt warnings).

    Raises OSError (with the reason) when the file cannot be written.
    """
    path = image_path(what, path)
    check_writable(path)
    font = _title_font(widget)
    existed = Path(path).exists()
    with _QtMessages() as qt:
        if what == "png":
            shot = widget.grab()
            ratio = shot.devicePixelRatio()
            w, h = int(shot.width() / ratio), int(shot.height() / ratio)
            image = QtGui.QImage(int(w * ratio), int((h + TITLE_PX) * ratio), QtGui.QImage.Format.Format_ARGB32)
            image.setDevicePixelRatio(ratio)
            image.fill(QtGui.QColor(themes.current().plot_bg))
            painter = QtGui.QPainter(image)
            try:
                _draw_title(painter, w, title, font)
                painter.drawPixmap(0, TITLE_PX, shot)
            finally:
                painter.end()
            ok = image.save(path, "PNG")
        else:
            target = scene_widget if scene_widget is not None else widget
            w, h = max(1, target.width()), max(1, target.height())
            gen = QtSvg.QSvgGenerator()
            gen.setFileName(path)
            gen.setSize(QtCore.QSize(w, h + TITLE_PX))
            gen.setViewBox(QtCore.QRect(0, 0, w, h + TITLE_PX))
            gen.setTitle(title)
            gen.setDescription("lazytsc timeline export")
            painter = QtGui.QPainter()
            ok = painter.begin(gen)
            if ok:
                try:
                    painter.fillRect(QtCore.QRectF(0, 0, w, h + TITLE_PX), QtGui.QColor(themes.current().plot_bg))
                    _draw_title(painter, w, title, font)
                    painter.translate(0, TITLE_PX)
                    target.render(painter, QtCore.QPoint(0, 0), QtGui.QRegion(), QtWidgets.QWidget.RenderFlag.DrawChildren)
                finally:
                    ok = painter.end() and ok
    if not ok or not Path(path).is_file() or Path(path).stat().st_size == 0:
        raise OSError(f"{path}: the {what.upper()} file could not be written")
    if not existed:
        os.chmod(path, 0o666 & ~current_umask())
    return path, qt.messages
