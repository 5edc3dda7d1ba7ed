"""The overview strip (minimap): the whole run at a glance, with the visible window on it.

Every event of the run is counted per pixel column of the strip (one
`searchsorted` of the column edges into the log's times), hazards are marked
on top in red, and the part of the run not simulated yet is hatched while it
streams in. The visible window is a region: drag it to pan, drag its edges to
zoom, click anywhere else to centre the window there.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from . import themes
from .timeline_data import TimelineData, column_counts
from .tracks import LEVELS, Raster, argb, levels_for, report_paint_error

HEIGHT = 34


class _OverviewItem(pg.GraphicsObject):
    def __init__(self) -> None:
        super().__init__()
        self.data: TimelineData | None = None
        self._cache: tuple | None = None

    def set_data(self, data: TimelineData | None) -> None:
        self.prepareGeometryChange()
        self.data = data
        self._cache = None
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        end = self.data.span_end_ns * 1e-9 if self.data is not None else 1e-6
        return QtCore.QRectF(0.0, 0.0, max(end, 1e-9), 1.0)

    def paint(self, p: QtGui.QPainter, opt, widget=None) -> None:
        try:
            self._paint(p)
        except Exception:  # pragma: no cover - reported, never fatal
            report_paint_error(self)

    def _paint(self, p: QtGui.QPainter) -> None:
        data = self.data
        vb = self.getViewBox()
        if data is None or vb is None or data.n_events == 0:
            return
        tr = p.transform()
        sx, sy = tr.m11(), tr.m22()
        (x0, x1), (y0, y1) = vb.viewRange()
        npix = max(1, int(round((x1 - x0) * abs(sx))))
        left = tr.dx() + x0 * sx
        top = min(tr.dy() + y0 * sy, tr.dy() + y1 * sy)
        height = abs((y1 - y0) * sy)
        th = themes.current()
        key = (x0, x1, npix, int(height), data.version, th.name)
        if self._cache is None or self._cache[0] != key:
            edges = np.linspace(x0 * 1e9, x1 * 1e9, npix + 1)
            before = data.events_before(edges)
            counts = np.diff(before)
            raster = Raster(npix, int(round(height)))
            cols = np.flatnonzero(counts)
            if len(cols):
                color = QtGui.QColor(th.marks.get("written", th.plot_fg))
                palette = np.array([argb(color, a * 0.8) for a in LEVELS], dtype=np.uint32)
                raster.columns(raster.h * 0.35, raster.h, cols, palette[levels_for(counts[cols])])
            haz = np.zeros(npix, dtype=np.int64)
            for lane in data.vcpus:  # what a timer user looks for: early, late and lost timers
                for name in ("lost", "late"):
                    if name in lane.hazards:
                        haz += column_counts(lane.hazards[name].idx, before)
                haz += column_counts(lane.irqs_spurious.idx, before)
            hcols = np.flatnonzero(haz)
            if len(hcols):
                red = QtGui.QColor(th.marks.get("haz:spurious", "#ff5252"))
                raster.columns(0, raster.h * 0.35, hcols, np.full(len(hcols), argb(red, 1.0), dtype=np.uint32))
            self._cache = (key, raster)
        p.save()
        p.resetTransform()
        self._cache[1].draw(p, left, top)
        if not data.complete and data.span_end_ns > data.t_end_ns:
            a = tr.dx() + data.t_end * sx
            b = tr.dx() + data.span_end_ns * 1e-9 * sx
            p.fillRect(QtCore.QRectF(a, top, b - a, height), QtGui.QBrush(QtGui.QColor(th.grid), QtCore.Qt.BrushStyle.BDiagPattern))
        p.restore()


class _OverviewBox(pg.ViewBox):
    clicked = QtCore.Signal(float)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(float(self.mapSceneToView(ev.scenePos()).x()))
        else:
            super().mouseClickEvent(ev)

    def wheelEvent(self, ev, axis=None) -> None:
        ev.ignore()


class OverviewStrip(pg.GraphicsLayoutWidget):
    """Minimap of the whole run; `windowRequested(x0, x1)` when the user moves the window."""

    windowRequested = QtCore.Signal(float, float)

    def __init__(self, axis_width: int, parent=None) -> None:
        super().__init__(parent)
        self.setFixedHeight(HEIGHT)
        self.ci.setContentsMargins(4, 2, 12, 2)
        self.ci.layout.setSpacing(0)
        self.box = _OverviewBox()
        self.plot = pg.PlotItem(viewBox=self.box)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.hideAxis("bottom")
        axis = self.plot.getAxis("left")
        axis.setWidth(axis_width)
        axis.setTicks([[(0.5, "overview")], []])
        axis.setStyle(tickLength=0)
        self.addItem(self.plot, row=0, col=0)
        self.item = _OverviewItem()
        self.plot.addItem(self.item)
        self.box.setYRange(0, 1, padding=0)
        self.region = pg.LinearRegionItem(values=(0, 1), movable=True, swapMode="block")
        self.region.setZValue(10)
        self.plot.addItem(self.region, ignoreBounds=True)
        self.region.sigRegionChanged.connect(self._region_moved)
        self.box.clicked.connect(self._clicked)
        self._syncing = False
        self.data: TimelineData | None = None
        themes.manager().changed.connect(self.apply_theme)
        self.apply_theme(themes.current())

    def apply_theme(self, theme=None) -> None:
        th = theme or themes.current()
        self.setBackground(th.plot_bg)
        ax = self.plot.getAxis("left")
        ax.setPen(pg.mkPen(th.grid))
        ax.setTextPen(pg.mkPen(th.plot_fg))
        fill = QtGui.QColor(th.plot_fg)
        fill.setAlpha(28)
        self.region.setBrush(fill)
        edge = QtGui.QColor(th.marks.get("cursor", "#ffee58"))
        for line in self.region.lines:
            line.setPen(pg.mkPen(edge, width=2))
            line.setHoverPen(pg.mkPen(edge, width=4))
        self.item._cache = None
        self.item.update()

    def set_data(self, data: TimelineData | None) -> None:
        self.data = data
        self.item.set_data(data)
        self.refresh_extent()

    def refresh_extent(self) -> None:
        data = self.data
        end = data.span_end_ns * 1e-9 if data is not None else 1e-6
        end = max(end, 1e-9)
        self.box.setXRange(0.0, end, padding=0.0)
        self.item.prepareGeometryChange()
        self.item.update()

    def set_window(self, x0: float, x1: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.region.setRegion((x0, x1))
        finally:
            self._syncing = False

    def window(self) -> tuple[float, float]:
        a, b = self.region.getRegion()
        return float(a), float(b)

    def _region_moved(self) -> None:
        if self._syncing:
            return
        a, b = self.window()
        if b > a:
            self._syncing = True
            try:
                self.windowRequested.emit(a, b)
            finally:
                self._syncing = False

    def _clicked(self, x: float) -> None:
        a, b = self.window()
        w = b - a
        self.windowRequested.emit(x - w / 2, x + w / 2)
