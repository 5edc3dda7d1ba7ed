"""The timeline: one lane group per vCPU (pyqtgraph), the seed's picture made live.

Layout, top to bottom: a header (title, level of detail, Δt of the A/B cursors,
the Lanes and Markers buttons), the overview strip of the whole run, the time
ruler (named markers and the A/B cursors live there; it never scrolls away),
and the scrolled lane groups. Per vCPU, a lanes plot (rows: guest "v" requests
written/skipped, host "|" arms with arm->fire spans, the lazy host functions,
interrupts with spurious/late flagged, exits by reason, HLT periods, hazards)
and, for simulated runs, a deadline plot: time to deadline (`deadline - now`)
of `pending`/`armed` on a symmetric log axis. All plots share the time axis.

Interaction: wheel zooms time, drag pans, Shift+drag (or the rubber-band tool)
zooms to a range; W/S or +/- zoom and A/D or the arrow keys pan (Perfetto's
keys); click jumps to the nearest event, right click opens the owner's context
menu (on a row label: the lane menu), M adds a named marker, `,`/`.` jump
between markers; two measurement cursors show Δt; the current-event cursor and
the selection are vertical lines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .fmt import fmt_ns, fmt_s
from .lanes import ROW_LABELS, TRACE_ROW_LABELS, TRACE_ROWS, LaneConfig, LanesDialog
from .overview import OverviewStrip
from .timeline_data import SPAN_CANCELLED, SPAN_FIRED, TimelineData, symlog, symlog_inv, tsc_to_ns
from .tracks import DeadlineTrack, Frame, MarkTrack, SpanTrack, Track, TrackItem

ROW_PX = 20  # lane row height in logical pixels (minimum)
DEADLINE_PX = 110
AXIS_W = 124
PICK_PX = 6
RULER_PX = 44
ZOOM_STEP = 1.4  # per key press (W/S, +/-)
PAN_STEP = 0.2  # of the window per key press (A/D, arrows)
GROW_REDRAW_MS = 250  # while a run streams in, redraw at most this often

pg.setConfigOptions(antialias=False, useOpenGL=False)


class LaneViewBox(pg.ViewBox):
    """Time-only zoom: wheel and rubber band (Shift+drag or the tool) change x, never y."""

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.rubber_band = False

    def mouseDragEvent(self, ev, axis=None):
        left = ev.button() == QtCore.Qt.MouseButton.LeftButton
        shift = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if left and (self.rubber_band or shift) and axis is None:
            old = self.state["mouseMode"]
            self.state["mouseMode"] = pg.ViewBox.RectMode
            try:
                super().mouseDragEvent(ev, axis)
            finally:
                self.state["mouseMode"] = old
        else:
            super().mouseDragEvent(ev, axis)

    def showAxRect(self, ax, **kwargs):
        if ax.width() > 0:
            self.setXRange(ax.left(), ax.right(), padding=0)
            self.sigRangeChangedManually.emit(self.state["mouseEnabled"])

    def updateViewRange(self, forceX=False, forceY=False):
        """Apply a new range to the view's transform now, not at the next paint.

        pyqtgraph defers it to the paint, where changing the transform makes the
        scene schedule a second, full repaint: every zoom or pan frame was drawn twice.
        """
        super().updateViewRange(forceX, forceY)
        if self._matrixNeedsUpdate:
            self.updateMatrix()


class DeadlineAxis(pg.AxisItem):
    """Left axis of a deadline plot: decades of time to deadline, 0 = now, negative = overdue.

    Ticks sit exactly at symlog(10^k ns): 1 ns, 10 ns, ... (major: 1 ns, 1 µs, 1 ms, 1 s).
    """

    def tickValues(self, minVal, maxVal, size):
        lo, hi = sorted((minVal, maxVal))
        k_max = int(np.floor(max(abs(lo), abs(hi)))) + 1
        every = 1 if size / max(hi - lo, 1e-9) >= 16 else 3  # a label per decade when there is room
        major, minor = [0.0], []
        for k in range(1, k_max + 1):  # from 10 ns: 1 ns would sit on "now"
            for sign in (1, -1):
                y = float(symlog(sign * 10.0**k))
                if lo <= y <= hi:
                    (major if k % every == 0 else minor).append(y)
        return [(3.0, sorted(major)), (1.0, sorted(minor))]

    def tickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            if abs(v) < 1e-9:
                out.append("now")
                continue
            ns = 10.0 ** round(float(np.log10(max(1.0, float(symlog_inv(abs(v)))))))
            out.append(("−" if v < 0 else "") + _decade(ns))
        return out


class TimeAxis(pg.AxisItem):
    """The ruler's time axis: tick labels with their unit (`250 µs`, `20.05 ms`).

    The unit follows the size of the times shown, the decimals the tick spacing.
    """

    def tickStrings(self, values, scale, spacing):
        if not len(values):
            return []
        step = abs(spacing) * 1e9
        big = max(abs(v) for v in values) * 1e9
        for unit, factor in (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0)):
            if big >= factor * 0.999 or unit == "ns":
                break
        x = step / factor
        digits = 0
        while digits < 9 and abs(round(x, digits) - x) > 1e-6 * max(x, 1e-12):
            digits += 1
        return [f"{v * 1e9 / factor:.{digits}f} {unit}" for v in values]


class RulerTicks(pg.GraphicsObject):
    """Tick marks and time labels along the bottom of the ruler, drawn directly.

    (pyqtgraph's AxisItem re-lays out its labels on every frame; here one frame's
    ticks are the timeline's shared `_ticks` and ten `drawText` calls.)
    """

    def __init__(self, ticks, axis: TimeAxis, colors) -> None:
        super().__init__()
        self.ticks = ticks
        self.axis = axis
        self.colors = colors
        self.setZValue(5)

    def boundingRect(self) -> QtCore.QRectF:
        vb = self.getViewBox()
        if vb is None:
            return QtCore.QRectF()
        (x0, x1), (y0, y1) = vb.viewRange()
        return QtCore.QRectF(x0, y0, max(x1 - x0, 1e-12), max(y1 - y0, 1e-12))

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()

    def paint(self, p: QtGui.QPainter, opt, widget=None) -> None:
        try:
            self._paint(p)
        except Exception:  # pragma: no cover - reported, never fatal
            from .tracks import report_paint_error

            report_paint_error(self)

    def _paint(self, p: QtGui.QPainter) -> None:
        vb = self.getViewBox()
        if vb is None:
            return
        tr = p.transform()
        (x0, x1), (y0, y1) = vb.viewRange()
        sx = tr.m11()
        if sx == 0:
            return
        npix = max(1, int(round((x1 - x0) * abs(sx))))
        major, minor = self.ticks(x0, x1, npix)
        left = tr.dx() + x0 * sx
        right = tr.dx() + x1 * sx
        bottom = max(tr.dy() + y0 * tr.m22(), tr.dy() + y1 * tr.m22())
        p.save()
        p.resetTransform()
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        fg = self.colors("__text__")
        p.setPen(pg.mkPen(self.colors("__grid__"), width=1))
        p.drawLine(QtCore.QPointF(left, bottom - 0.5), QtCore.QPointF(right, bottom - 0.5))
        for values, length in ((minor, 3), (major, 6)):
            for v in values:
                x = tr.dx() + v * sx
                p.drawLine(QtCore.QPointF(x, bottom - length), QtCore.QPointF(x, bottom))
        if major:
            spacing = major[1] - major[0] if len(major) > 1 else (x1 - x0)
            labels = self.axis.tickStrings(major, 1.0, spacing)
            p.setPen(fg)
            fm = p.fontMetrics()
            last = -1e9
            for v, text in zip(major, labels, strict=True):
                x = tr.dx() + v * sx
                w = fm.horizontalAdvance(text)
                a = max(left + 2, x - w / 2)  # the first label starts inside the ruler
                if a < last + 6 or a + w > right:
                    continue
                p.drawText(QtCore.QPointF(a, bottom - 8), text)
                last = a + w
        p.restore()


def _drop_axis(plot: pg.PlotItem, name: str) -> None:
    """Remove an axis a plot does not show (a hidden axis still follows every range change)."""
    axis = plot.getAxis(name)
    axis.unlinkFromView()
    plot.layout.removeItem(axis)
    axis.hide()


def _decade(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale * 0.999:
            return f"{ns / scale:.0f} {unit}"
    return f"{ns:.0f} ns"


class LanesView(pg.GraphicsLayoutWidget):
    """The scrolled graphics view of the lane plots.

    The legend's text wraps to the view's width *before* the layout is given the
    new size: a legend still wrapped to an older, wider view would make the
    layout's minimum wider than the view, and the plots (and their time axis)
    would be clipped on the right until the next resize.
    """

    def __init__(self, before_resize: Callable[[int], None]) -> None:
        self._before_resize = None
        super().__init__()
        self._before_resize = before_resize

    def resizeEvent(self, ev):
        if ev is not None and self._before_resize is not None:
            self._before_resize(ev.size().width())
        super().resizeEvent(ev)


class LegendLabel(pg.LabelItem):
    """The legend: its text wraps to the view, so it never asks the layout for more width."""

    MIN_WIDTH = 200

    def updateMin(self):
        super().updateMin()
        w = min(self.minimumWidth(), self.MIN_WIDTH)
        self.setMinimumWidth(w)
        self._sizeHint[QtCore.Qt.SizeHint.MinimumSize] = (w, self._sizeHint[QtCore.Qt.SizeHint.MinimumSize][1])


class _PlotInfo:
    def __init__(self, plot: pg.PlotItem, vcpu: int, kind: str, item: TrackItem, rows: dict[str, list[Track]], row_names: tuple[str, ...] = ()):
        self.plot = plot
        self.vcpu = vcpu
        self.kind = kind  # "lanes" | "deadline"
        self.item = item
        self.rows = rows  # lanes: row name -> tracks; deadline: {"steps": [...]}
        self.row_names = row_names
        self.cursor: pg.InfiniteLine | None = None
        self.selection: pg.InfiniteLine | None = None
        self.measure: list[pg.InfiniteLine] = []
        self.bookmarks: list[pg.InfiniteLine] = []
        self.y_range = (0.0, 1.0)


class TimelineWidget(QtWidgets.QWidget):
    eventClicked = QtCore.Signal(int)
    vcpuClicked = QtCore.Signal(int)
    contextRequested = QtCore.Signal(float, int, QtCore.QPoint)
    measureChanged = QtCore.Signal(object)  # (a_s, b_s) or None
    rangeChanged = QtCore.Signal(float, float)
    markerAdded = QtCore.Signal(str, float)  # name, time (s)
    markerRenamed = QtCore.Signal(int, str)
    markerMoved = QtCore.Signal(int, float)
    markerRemoved = QtCore.Signal(int)
    lanesChanged = QtCore.Signal(object)  # LaneConfig

    def __init__(self, parent: QtWidgets.QWidget | None = None, describe: Callable[[int], str] | None = None, legend: bool = True) -> None:
        super().__init__(parent)
        self.describe = describe
        self.data: TimelineData | None = None
        self.frame: Frame | None = None
        self.plots: list[_PlotInfo] = []
        self.follow = True
        self.lanes = LaneConfig()
        self._cursor_t: float | None = None
        self._selection_t: float | None = None
        self._bookmarks: list[tuple[str, float]] = []
        self._marker_lines: list[pg.InfiniteLine] = []
        self._measure_on = False
        self._measure_pos = [0.0, 0.0]
        self._syncing = False
        self._rubber = False
        self._show_legend = legend
        self._structure: tuple | None = None
        self._fitted = True  # the view shows the whole run (kept while the run streams in)
        self._hover_x: float | None = None
        self._title_text = ""
        self._color_cache: dict = {}
        self._linking = False
        self._extremes: dict[int, tuple[int, float, float]] = {}  # deadline series -> (changes seen, max, min)
        self._grow_timer = QtCore.QTimer(self)
        self._grow_timer.setSingleShot(True)
        self._grow_timer.setInterval(GROW_REDRAW_MS)
        self._grow_timer.timeout.connect(self._apply_growth)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)

        self.title = QtWidgets.QLabel()
        self.title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(80)
        self.measure_label = QtWidgets.QLabel()
        self.measure_label.setObjectName("measureLabel")
        self.mode_label = QtWidgets.QLabel()
        self.mode_label.setToolTip("Level of detail: exact marks when zoomed in, shaded per pixel column when zoomed out")
        # a fixed width: a new text each frame must not re-lay out (and repaint) the whole timeline
        self.mode_label.setFixedWidth(self.fontMetrics().horizontalAdvance("shaded per pixel · window 999.999 ms") + 8)
        self.mode_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.lanes_btn = QtWidgets.QToolButton()
        self.lanes_btn.setText("Lanes…")
        self.lanes_btn.setToolTip("Show, hide and reorder rows and vCPUs")
        self.lanes_btn.clicked.connect(self.show_lanes_dialog)
        self.markers_btn = QtWidgets.QToolButton()
        self.markers_btn.setText("Markers")
        self.markers_btn.setToolTip("Named markers: add (M), jump (, and .), rename, delete")
        self.markers_btn.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.markers_menu = QtWidgets.QMenu(self)
        self.markers_menu.aboutToShow.connect(self._fill_markers_menu)
        self.markers_btn.setMenu(self.markers_menu)
        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(6, 2, 6, 2)
        header.addWidget(self.title, 1)
        header.addWidget(self.measure_label)
        header.addSpacing(12)
        header.addWidget(self.mode_label)
        header.addSpacing(8)
        header.addWidget(self.lanes_btn)
        header.addWidget(self.markers_btn)

        self.overview = OverviewStrip(AXIS_W)
        self.overview.windowRequested.connect(self._overview_window)
        self.ruler = pg.GraphicsLayoutWidget()
        self.ruler.setFixedHeight(RULER_PX)
        self.ruler.ci.setContentsMargins(4, 0, 12, 0)
        self.ruler_box = LaneViewBox()
        self.ruler_box.setMouseEnabled(x=True, y=False)
        self.ruler_plot = pg.PlotItem(viewBox=self.ruler_box, axisItems={"bottom": TimeAxis("bottom")})
        self.ruler_plot.hideButtons()
        self.ruler_plot.setMenuEnabled(False)
        self.ruler_plot.getAxis("left").setWidth(AXIS_W)
        self.ruler_plot.getAxis("left").setTicks([[(0.5, "markers")], []])
        self.ruler_plot.getAxis("left").setStyle(tickLength=0)
        _drop_axis(self.ruler_plot, "bottom")
        self.ruler_ticks = RulerTicks(self._ticks, self.ruler_plot.getAxis("bottom"), self._colors)
        self.ruler_plot.addItem(self.ruler_ticks, ignoreBounds=True)
        self.ruler_box.setYRange(0, 1, padding=0)
        self.ruler_box.setLimits(yMin=0, yMax=1)
        self.ruler.addItem(self.ruler_plot, row=0, col=0)
        self.ruler.scene().sigMouseClicked.connect(self._on_ruler_click)

        self.glw = LanesView(self._wrap_legend)
        self.glw.ci.layout.setSpacing(2)
        self.glw.ci.setContentsMargins(4, 4, 12, 4)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.glw)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # always on: the ruler and the overview above keep the same right margin
        self.scroll.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOn)

        sb = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        top = QtWidgets.QWidget()
        tl = QtWidgets.QVBoxLayout(top)
        tl.setContentsMargins(0, 0, sb, 0)
        tl.setSpacing(0)
        tl.addWidget(self.overview)
        tl.addWidget(self.ruler)
        self.view_page = QtWidgets.QWidget()
        vl = QtWidgets.QVBoxLayout(self.view_page)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(0)
        vl.addWidget(top)
        vl.addWidget(self.scroll, 1)

        self.empty = QtWidgets.QLabel("No run loaded.\nOpen a scenario (Ctrl+O), a trace, or pick one of Help ▸ Examples.")
        self.empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view_page)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)

        self.legend_item: pg.LabelItem | None = None
        self.glw.scene().sigMouseClicked.connect(self._on_click)
        self.glw.scene().sigMouseMoved.connect(self._track_hover)
        self._hover_proxy = pg.SignalProxy(self.glw.scene().sigMouseMoved, rateLimit=30, slot=self._on_hover)
        self.ruler_box.sigXRangeChanged.connect(self._on_range)
        self._install_keys()
        themes.manager().changed.connect(self.apply_theme)
        self.apply_theme(themes.current())

    # ---- keys --------------------------------------------------------------------------------
    def _install_keys(self) -> None:
        """Perfetto's keys (W/S zoom, A/D pan), +/- and the arrows, markers; while the timeline has focus."""
        keys = [
            (("W", "+", "="), lambda: self.zoom(ZOOM_STEP, self._key_center())),
            (("S", "-"), lambda: self.zoom(1 / ZOOM_STEP, self._key_center())),
            (("A", "Left"), lambda: self.pan(-PAN_STEP)),
            (("D", "Right"), lambda: self.pan(PAN_STEP)),
            (("M",), lambda: self.add_marker_dialog()),
            ((".",), lambda: self.goto_marker(+1)),
            ((",",), lambda: self.goto_marker(-1)),
        ]
        self._shortcuts = []
        for seqs, fn in keys:
            for seq in seqs:
                sc = QtGui.QShortcut(QtGui.QKeySequence(seq), self, activated=fn)
                sc.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.setAutoRepeat(True)
                self._shortcuts.append(sc)

    def _key_center(self) -> float | None:
        x0, x1 = self.x_range()
        if self._hover_x is not None and x0 <= self._hover_x <= x1 and self.glw.underMouse():
            return self._hover_x
        return None

    # ---- building ----------------------------------------------------------------------------
    def clear(self, text: str | None = None) -> None:
        self.glw.clear()
        self.plots = []
        self.legend_item = None
        self.data = None
        self.frame = None
        self._structure = None
        self.overview.set_data(None)
        self.mode_label.setText("")
        self.title.setText("")
        if text is not None:
            self.empty.setText(text)
        self.stack.setCurrentIndex(0)

    def show_message(self, text: str) -> None:
        """Replace the view by a message (a trace with no per-event data, a run in progress)."""
        self.clear(text)

    def _colors(self, role: str) -> QtGui.QColor:
        """The theme's colour of a role (cached: asked for by every track of every paint)."""
        theme = themes.current()
        cache = self._color_cache
        if cache.get("__theme__") is not theme:
            cache.clear()
            cache["__theme__"] = theme
        color = cache.get(role)
        if color is None:
            special = {"__lane_alt__": theme.lane_alt, "__background__": theme.plot_bg, "__grid__": theme.grid, "__grid_minor__": theme.grid_minor, "__text__": theme.plot_fg}
            color = QtGui.QColor(special[role]) if role in special else theme.color(role)
            cache[role] = color
        return color

    @property
    def row_labels(self) -> dict[str, str]:
        return TRACE_ROW_LABELS if (self.data is not None and self.data.kind == "trace") else ROW_LABELS

    def _structure_key(self, data: TimelineData) -> tuple:
        return (
            tuple(lane.vcpu for lane in data.vcpus),
            tuple(sorted(data.exit_codes)),
            tuple(sorted(data.hazard_codes)),
            tuple(lane.has_page for lane in data.vcpus),
            tuple(self.lanes.rows),
            tuple(sorted(self.lanes.hidden_rows)),
            tuple(self.lanes.vcpu_order([lane.vcpu for lane in data.vcpus])),
            tuple(sorted(self.lanes.hidden_vcpus)),
            data.has_deadlines,
        )

    def set_data(self, data: TimelineData, title: str = "", keep_range: bool = False, empty_text: str = "") -> None:
        """Show `data` (it may still be growing: call `data_grew()` after each chunk)."""
        same = data is self.data
        old_range = self.x_range() if ((keep_range or same) and self.plots) else None
        fitted = self._fitted if same else True
        if data.kind == "trace" and not same:
            self.lanes = self._trace_lanes(data)
        self._title_text = title
        self.title.setText(title)
        if same and self.plots and self.stack.currentIndex() == 1 and self._structure_key(data) == self._structure:
            self._grow_timer.stop()
            self._apply_growth()  # the same run, grown or complete: no rebuild
            return
        if not same:
            self._extremes.clear()
        self.data = data
        self.frame = Frame(data)
        if data.n_events == 0 and data.complete:
            self.glw.clear()
            self.plots = []
            self._structure = None
            self.overview.set_data(None)
            self.mode_label.setText("")
            self.empty.setText(empty_text or "This run has no events to draw.")
            self.stack.setCurrentIndex(0)
            return
        self.stack.setCurrentIndex(1)
        self._rebuild()
        self.overview.set_data(data)
        if old_range is not None and not fitted:
            self.set_x_range(*old_range)
        else:
            self.zoom_to_fit()
        self.set_cursor(self._cursor_t)
        self.set_selection(self._selection_t)

    def _trace_lanes(self, data: TimelineData) -> LaneConfig:
        """Imported traces: the combined host/guest rows, and only rows that hold data."""
        cfg = LaneConfig(list(TRACE_ROWS))
        has = dict.fromkeys(TRACE_ROWS, False)
        for lane in data.vcpus:
            has["guest"] |= bool(len(lane.written) or len(lane.skipped))
            has["host"] |= bool(len(lane.arms) or len(lane.fires) or len(lane.timer_spans))
            has["lazy"] |= bool(len(lane.updates) or len(lane.kicks_rearm) or len(lane.kicks_disarm) or len(lane.clears))
            has["irq"] |= bool(len(lane.irqs) or len(lane.ipis) or len(lane.irqs_dropped))
            has["exits"] |= bool(lane.exits)
            has["hlt"] |= bool(len(lane.hlt))
            has["haz"] |= bool(lane.hazards)
        has["deadline"] = data.has_deadlines
        cfg.hidden_rows = {r for r, present in has.items() if not present}
        return cfg

    def _rebuild(self) -> None:
        data = self.data
        self.glw.clear()
        self.plots = []
        self._structure = self._structure_key(data)
        row = 0
        if self._show_legend:
            self.legend_item = LegendLabel(justify="left")
            self.glw.addItem(self.legend_item, row=row, col=0)
            row += 1
        else:
            self.legend_item = None
        rows = self.lanes.visible_rows()
        lane_rows = tuple(r for r in rows if r != "deadline")
        deadline_first = "deadline" in rows and lane_rows and rows.index("deadline") < rows.index(lane_rows[0])
        present = [lane.vcpu for lane in data.vcpus]
        for v in self.lanes.visible_vcpus(present):
            lanes = data.lanes_of(v)
            group = []
            if lane_rows:
                group.append(self._lanes_plot(lanes, lane_rows))
            if data.has_deadlines and "deadline" in rows:
                d = self._deadline_plot(lanes, label=not lane_rows)
                group.insert(0 if deadline_first else len(group), d)
            for info in group:
                self.glw.addItem(info.plot, row=row, col=0)
                self.glw.ci.layout.setRowStretchFactor(row, 3 if info.kind == "lanes" else 2)
                row += 1
                self.plots.append(info)
        pad = max(data.span_end_ns * 1e-9 * 0.02, 1e-7)
        end = max(data.span_end_ns * 1e-9, 1e-6)
        for info in self.plots:
            plot = info.plot
            vb = plot.getViewBox()
            # linked by hand (below), not by pyqtgraph: its links map every range
            # through screen geometry, a good part of each frame with many plots
            vb.sigXRangeChanged.connect(self._plot_range_changed)
            vb.setLimits(xMin=-pad, xMax=end + pad, minXRange=1e-9)
            _drop_axis(plot, "bottom")
            for line_kind in ("cursor", "selection"):
                line = pg.InfiniteLine(angle=90, movable=False)
                line.setZValue(50)
                line.setVisible(False)
                plot.addItem(line, ignoreBounds=True)
                setattr(info, line_kind, line)
        self.ruler_box.setLimits(xMin=-pad, xMax=end + pad, minXRange=1e-9)
        height = sum(p.plot.minimumHeight() for p in self.plots) + (60 if self._show_legend else 10)
        self.glw.setMinimumHeight(height)
        self._rebuild_measure()
        self._rebuild_bookmarks()
        self.set_rubber_band(self._rubber)
        self._update_legend()
        self.apply_theme(themes.current())

    def _ticks(self, x0: float, x1: float, npix: int):
        """Grid lines of every plot: the ruler's tick times (one computation per frame)."""
        key = (x0, x1, npix)
        if getattr(self, "_tick_key", None) != key:
            try:
                levels = self.ruler_plot.getAxis("bottom").tickValues(x0, x1, npix)
            except Exception:  # axis not laid out yet
                levels = []
            major = levels[0][1] if levels else []
            minor = levels[1][1] if len(levels) > 1 else []
            self._tick_key, self._tick_val = key, (major, minor)
        return self._tick_val

    def _new_plot(self, label: str, axis: pg.AxisItem | None = None) -> tuple[pg.PlotItem, LaneViewBox]:
        vb = LaneViewBox()
        plot = pg.PlotItem(viewBox=vb, axisItems={"left": axis} if axis is not None else None)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        vb.setMouseEnabled(x=True, y=False)
        vb.enableAutoRange(x=False, y=False)
        plot.getAxis("left").setWidth(AXIS_W)
        plot.setLabel("left", label)
        return plot, vb

    def _lanes_plot(self, lanes, names: tuple[str, ...]) -> _PlotInfo:
        title = lanes.label + (" (host + guest)" if self.data.kind == "trace" else "")
        plot, vb = self._new_plot(title)
        vb.invertY(True)
        n = len(names)
        vb.setYRange(0, n, padding=0)
        vb.setLimits(yMin=0, yMax=n)
        labels = self.row_labels
        axis = plot.getAxis("left")
        axis.setTicks([[(i + 0.5, labels[r]) for i, r in enumerate(names)], []])
        axis.setStyle(tickLength=0)
        label_px = self.fontMetrics().horizontalAdvance(title) + 16  # the group's name, written upwards
        plot.setMinimumHeight(max(n * ROW_PX + 10, label_px))
        plot.setMaximumHeight(max(n * ROW_PX * 1.6 + 10, label_px))  # a few rows must not stretch over the whole view
        y = {r: i + 0.5 for i, r in enumerate(names)}
        base = {r: i for i, r in enumerate(names)}
        rows: dict[str, list[Track]] = {}

        def mark(row, name, marks, dy, h, glyph, role, label, band=None):
            return MarkTrack(name, marks, y[row] + dy, h, glyph, role, label, row, (y[row] + band[0], band[1]) if band else None)

        if "guest" in y:
            rows["guest"] = [  # skipped first: the rarer written marks paint on top
                mark("guest", "skipped", lanes.skipped, 0, 0.62, "v_open", "skipped", "deadline skipped (lazy: no exit)"),
                mark("guest", "written", lanes.written, 0, 0.62, "v", "written", "deadline written (WRMSR 0x6e0, an exit)"),
            ]
        if "host" in y:
            rows["host"] = [
                SpanTrack("timer", lanes.timer_spans, y["host"], 0.34, "span_fired", "span_cancelled", "host timer armed", "host"),
                mark("host", "arm", lanes.arms, 0, 0.8, "bar", "arm", "host arms the timer"),
                mark("host", "fire", lanes.fires, 0.18, 0.4, "up", "fire", "armed timer fires"),
            ]
        if "lazy" in y:
            rows["lazy"] = [
                mark("lazy", "update", lanes.updates, 0, 0.5, "dot", "update", "update: armed = tsc"),
                mark("lazy", "kick", lanes.kicks_rearm, 0, 0.62, "diamond", "kick", "kick: re-armed pending"),
                mark("lazy", "kick0", lanes.kicks_disarm, 0, 0.62, "diamond_open", "kick", "kick: nothing later, armed = 0"),
                mark("lazy", "kick_request", lanes.kick_requests, 0, 0.5, "up_open", "kick_request", "sw path: kick requested"),
                mark("lazy", "clear", lanes.clears, 0, 0.5, "x", "clear", "clear: armed = 0"),
            ]
        if "irq" in y:
            rows["irq"] = [  # flagged interrupts paint over the plain ones
                # shaded per column, each kind keeps a band: flags on top, timer interrupts, IPIs below
                mark("irq", "ipi", lanes.ipis, 0, 0.5, "up_open", "ipi", "IPI received", band=(0.28, 0.26)),
                *([mark("irq", "other", lanes.irqs_other, 0, 0.45, "x", "other", "other interrupt", band=(0.28, 0.26))] if hasattr(lanes, "irqs_other") else []),
                mark("irq", "irq", lanes.irqs, 0, 0.5, "dot", "irq", "timer interrupt", band=(-0.02, 0.28)),
                mark("irq", "late", lanes.irqs_late, 0, 0.62, "dot", "haz:late", "late timer interrupt", band=(-0.32, 0.26)),
                mark("irq", "spurious", lanes.irqs_spurious, 0, 0.7, "dot", "haz:spurious", "early (spurious) timer interrupt", band=(-0.32, 0.26)),
                mark("irq", "dropped", lanes.irqs_dropped, 0, 0.6, "x", "dropped", "timer interrupt dropped (LVTT masked)"),
            ]
        if "exits" in y:
            reasons = [r for r in self.data.exit_reasons if r in lanes.exits]
            k = max(1, len(reasons))
            rows["exits"] = [
                MarkTrack(f"exit:{reason}", lanes.exits[reason], base["exits"] + (j + 0.5) / k, 0.9 / k, "bar", f"exit:{reason}", f"{reason} exit", "exits")
                for j, reason in enumerate(reasons)
            ]
        if "hlt" in y:
            rows["hlt"] = [SpanTrack("hlt", lanes.hlt, y["hlt"], 0.5, "hlt", label="halted (HLT -> wake)", row="hlt")]
        if "haz" in y:
            hazards = [h for h in self.data.hazard_names if h in lanes.hazards]
            kh = max(1, len(hazards))
            rows["haz"] = [
                MarkTrack(f"haz:{name}", lanes.hazards[name], base["haz"] + (j + 0.5) / kh, 0.9 / kh, "diamond", f"haz:{name}", f"hazard: {name}", "haz")
                for j, name in enumerate(hazards)
            ]
        for r in names:
            rows.setdefault(r, [])
        tracks = [t for r in names for t in rows[r]]
        item = TrackItem(tracks, (0.0, float(n)), self._colors, self.frame, "lanes", n, self._ticks)
        plot.addItem(item)
        return _PlotInfo(plot, lanes.vcpu, "lanes", item, rows, names)

    def _deadline_plot(self, lanes, label: bool = False) -> _PlotInfo:
        axis = DeadlineAxis("left")
        plot, vb = self._new_plot((lanes.label + " " if label else "") + "deadline in", axis)
        plot.setMinimumHeight(DEADLINE_PX)
        plot.setMaximumHeight(DEADLINE_PX * 2)
        series = lanes.deadline_series()
        labels = {
            "pending": "pending (guest, shared page)",
            "requested": "requested by the guest",
            "armed": "armed (host, shared page)" if lanes.has_page else "armed (host timer)",
        }
        roles = {"pending": "pending", "requested": "pending", "armed": "armed"}
        steps = [
            DeadlineTrack(name, s, lanes.khz, roles[name], 2.0 if name == "armed" else 1.3, labels[name], 1.3 if name == "armed" else 1.0)
            for name, s in series
        ]
        info_range = self._deadline_range(lanes, series)
        item = TrackItem(steps, info_range, self._colors, self.frame, "deadline", grid=self._ticks)
        plot.addItem(item)
        vb.setYRange(*info_range, padding=0)
        vb.setLimits(yMin=info_range[0], yMax=info_range[1])
        info = _PlotInfo(plot, lanes.vcpu, "deadline", item, {"steps": steps})
        info.y_range = info_range
        info.lanes = lanes
        return info

    def _deadline_range(self, lanes, series) -> tuple[float, float]:
        """y range of a deadline plot: from the values the run takes (fixed, not by zoom).

        The top is the longest time to a deadline ever set; the overdue half is as
        deep as the most overdue value, but never deeper than half the top. The
        extremes are kept per series and extended with the changes a chunk adds.
        """
        time = self.data.time_ns
        hi, lo = 1e4, 0.0
        for _name, s in series:
            n = len(s)
            seen, s_hi, s_lo = self._extremes.get(id(s), (0, 1e4, 0.0))
            if n > seen:
                start = max(0, seen - 1)  # the last change seen gets its "before next" value now
                d = tsc_to_ns(s.raw[start:], lanes.khz)
                t = time[s.idx[start:]]
                after = (d - t)[seen - start :]
                if np.isfinite(after).any():
                    s_hi = max(s_hi, float(np.nanmax(after)))
                if len(d) > 1:
                    before_next = d[:-1] - t[1:]
                    if np.isfinite(before_next).any():
                        s_lo = min(s_lo, float(np.nanmin(before_next)))
                self._extremes[id(s)] = (n, s_hi, s_lo)
            hi, lo = max(hi, s_hi), min(lo, s_lo)
            if n:  # the last value holds to the end of the data
                last = float(tsc_to_ns(s.raw[-1:], lanes.khz)[0]) - self.data.t_end_ns
                if np.isfinite(last):
                    lo = min(lo, last)
        top = float(symlog(hi)) + 0.4
        bottom = -min(max(1.5, float(symlog(-lo)) if lo < 0 else 1.5), 0.5 * top) - 0.3
        return (bottom, top)

    # ---- streaming ---------------------------------------------------------------------------
    def data_grew(self) -> None:
        """The data got another chunk: redraw soon (chunks arriving faster are drawn together)."""
        if self.data is not None and self.data.complete:
            self._grow_timer.stop()
            self._apply_growth()
        elif not self._grow_timer.isActive():
            self._grow_timer.start()

    def _apply_growth(self) -> None:
        """Redraw the grown data (rebuilding the plots only if new lanes appeared)."""
        data = self.data
        if data is None:
            return
        if data.n_events == 0 and not data.complete:
            return
        if self.stack.currentIndex() == 0 or self._structure_key(data) != self._structure:
            self.set_data(data, self._title_text)
            return
        end = max(data.span_end_ns * 1e-9, 1e-6)
        pad = max(end * 0.02, 1e-7)
        for info in self.plots:
            info.plot.getViewBox().setLimits(xMin=-pad, xMax=end + pad)
            if info.kind == "deadline":
                info.y_range = self._deadline_range(info.lanes, info.lanes.deadline_series())
                info.item.y_range = info.y_range
                info.plot.getViewBox().setLimits(yMin=info.y_range[0], yMax=info.y_range[1])
                info.plot.getViewBox().setYRange(*info.y_range, padding=0)
            info.item.data_changed()
        self.ruler_box.setLimits(xMin=-pad, xMax=end + pad)
        self.overview.set_data(data)
        if self._fitted:
            self.zoom_to_fit()
        self._update_mode_label()

    # ---- legend & theme ---------------------------------------------------------------------
    def _update_legend(self) -> None:
        if self.legend_item is None or self.data is None:
            return
        th = themes.current()
        m = th.marks

        def sw(role: str, glyph: str, text: str) -> str:
            # one entry never breaks inside (non-breaking spaces and hyphens) ...
            text = text.replace(" ", "&nbsp;").replace("-", "\u2011")
            return f"<span style='color:{m.get(role, th.plot_fg)}'>{glyph}</span>&nbsp;{text}"

        sep = "&nbsp;&nbsp; "  # ... but the line may break between entries
        line1 = sep.join(
            [
                "<b>guest</b>",
                sw("written", "▼", "written (exit)"),
                sw("skipped", "▽", "skipped (lazy)"),
                "<b>host</b>",
                sw("arm", "┃", "armed"),
                sw("span_fired", "▬", "arm→fire"),
                sw("span_cancelled", "┄", "cancelled"),
                sw("fire", "▲", "fired"),
                "<b>lazy</b>",
                sw("update", "■", "update"),
                sw("kick", "◆", "kick re-arm"),
                sw("kick", "◇", "kick idle"),
                sw("clear", "✕", "clear"),
            ]
        )
        line2 = sep.join(
            [
                "<b>irq</b>",
                sw("irq", "■", "timer"),
                sw("haz:spurious", "■", "early"),
                sw("haz:late", "■", "late"),
                sw("dropped", "✕", "dropped"),
                sw("ipi", "△", "IPI"),
                sw("hlt", "▬", "HLT"),
                "<b>exits</b>",
            ]
            + [sw(f"exit:{r}", "┃", r) for r in self.data.exit_reasons]
        )
        parts3 = []
        if self.data.has_deadlines:
            parts3 += [
                "<b>deadline&nbsp;in</b>",
                sw("pending", "━", "pending / requested (guest)"),
                sw("armed", "━", "armed (host)"),
                sw("now", "┄", "now (below: overdue)"),
            ]
        if self.data.hazard_names:
            parts3 += ["<b>hazards</b>"] + [sw(f"haz:{h}", "◆", h) for h in self.data.hazard_names]
        html = line1 + "<br>" + line2 + ("<br>" + sep.join(parts3) if parts3 else "")
        self.legend_item.setText(html, size="8pt", color=th.plot_fg)
        self._wrap_legend()

    def _wrap_legend(self, width: int | None = None) -> None:
        """Wrap the legend to the view's width (a long legend must not widen the plots)."""
        if self.legend_item is None:
            return
        w = self.glw.width() if width is None else width
        width = max(200, w - 24)
        self.legend_item.item.setTextWidth(width)
        self.legend_item.updateMin()
        self.legend_item.setMaximumWidth(width)

    def apply_theme(self, theme=None) -> None:
        th = theme or themes.current()
        for view in (self.glw, self.ruler):
            view.setBackground(th.plot_bg)
        fg = pg.mkPen(th.plot_fg)
        for plot in [info.plot for info in self.plots] + [self.ruler_plot]:
            for name in ("left", "bottom"):
                ax = plot.getAxis(name)
                ax.setPen(pg.mkPen(th.grid))
                ax.setTextPen(fg)
                ax.label.setDefaultTextColor(QtGui.QColor(th.plot_fg))
        for info in self.plots:
            if info.cursor is not None:
                info.cursor.setPen(pg.mkPen(th.color("cursor"), width=2))
            if info.selection is not None:
                info.selection.setPen(pg.mkPen(th.color("selection"), width=1, style=QtCore.Qt.PenStyle.DotLine))
            info.item.update()
        self._rebuild_bookmarks()
        self._rebuild_measure()
        self._update_legend()
        self.title.setStyleSheet(f"color: {th.text};")

    # ---- view ---------------------------------------------------------------------------------
    @property
    def master(self) -> pg.PlotItem | None:
        return self.plots[0].plot if self.plots else None

    def x_range(self) -> tuple[float, float]:
        if not self.plots:
            return (0.0, 0.0)
        (x0, x1), _ = self.ruler_box.viewRange()
        return float(x0), float(x1)

    def set_x_range(self, x0: float, x1: float) -> None:
        if self.plots and x1 > x0:
            self._fitted = False
            self.ruler_box.setXRange(x0, x1, padding=0)

    def zoom_to_fit(self) -> None:
        """The whole run (a trace: from its first event to its last)."""
        if self.data is None or not self.plots:
            return
        end = self.data.span_end_ns * 1e-9
        start = self.data.t_start_ns * 1e-9 if self.data.kind == "trace" else 0.0
        t1 = end if end > start else start + 1e-6
        self.ruler_box.setXRange(start, t1, padding=0.01)
        self._fitted = True

    def zoom(self, factor: float, center: float | None = None) -> None:
        x0, x1 = self.x_range()
        if x1 <= x0:
            return
        if center is None:
            c = self._cursor_t if self._cursor_t is not None and x0 <= self._cursor_t <= x1 else (x0 + x1) / 2
        else:
            c = center
        self.set_x_range(c - (c - x0) / factor, c + (x1 - c) / factor)

    def pan(self, fraction: float) -> None:
        x0, x1 = self.x_range()
        d = (x1 - x0) * fraction
        self.set_x_range(x0 + d, x1 + d)

    def link_x(self, other: TimelineWidget) -> None:
        """Share the time axis with another timeline (compare view)."""
        self.ruler_plot.setXLink(other.ruler_plot)

    def set_rubber_band(self, on: bool) -> None:
        self._rubber = on
        for info in self.plots:
            info.plot.getViewBox().rubber_band = on

    def _overview_window(self, x0: float, x1: float) -> None:
        self.set_x_range(x0, x1)

    def _plot_range_changed(self, vb, rng) -> None:
        """A plot's range changed (wheel, drag, rubber band on it): the ruler, then the others, follow."""
        if self._linking:
            return
        a, b = (float(v) for v in rng)
        if (a, b) != self.x_range():
            self.ruler_box.setXRange(a, b, padding=0)

    def _on_range(self, _vb=None, rng=None) -> None:
        x0, x1 = self.x_range()
        self._linking = True
        try:
            for info in self.plots:
                vb = info.plot.getViewBox()
                if tuple(vb.viewRange()[0]) != (x0, x1):
                    vb.setXRange(x0, x1, padding=0)
        finally:
            self._linking = False
        if self.data is not None:
            end = max(self.data.span_end_ns * 1e-9, 1e-6)
            start = self.data.t_start_ns * 1e-9 if self.data.kind == "trace" else 0.0
            if x0 > start + 0.005 * (end - start) or x1 < end:
                self._fitted = False
        self.overview.set_window(x0, x1)
        self._update_mode_label()
        self.rangeChanged.emit(x0, x1)

    def planned_modes(self) -> set[str]:
        """Level of detail the lane marks get at the current view (before painting)."""
        out: set[str] = set()
        if self.frame is None:
            return out
        x0, x1 = self.x_range()
        for info in self.plots:
            if info.kind != "lanes":
                continue
            npix = max(1, int(round(info.plot.getViewBox().width())))
            self.frame.update(x0, x1, npix)
            for row, mode in info.item.modes(self.frame, npix).items():
                if any(len(getattr(t, "marks", ())) or len(getattr(t, "spans", ())) for t in info.rows.get(row, [])):
                    out.add(mode)
        return out

    def _update_mode_label(self) -> None:
        modes = self.planned_modes()
        if not modes:
            self.mode_label.setText("")
            return
        label = "shaded per pixel" if "binned" in modes else "exact marks"
        x0, x1 = self.x_range()
        self.mode_label.setText(f"{label} · window {fmt_s(x1 - x0)}")

    def detail_modes(self) -> set[str]:
        """Level of detail of the lane marks as of the last paint (`exact` / `binned`)."""
        out = set()
        for info in self.plots:
            if info.kind != "lanes":
                continue
            for track in info.item.tracks:
                if track.last_mode and (len(getattr(track, "marks", ())) or len(getattr(track, "spans", ()))):
                    out.add(track.last_mode)
        return out

    # ---- lanes ----------------------------------------------------------------------------------
    def set_lanes(self, config: LaneConfig) -> None:
        self.lanes = config.copy()
        if self.data is not None and self.plots is not None and self.stack.currentIndex() == 1:
            rng = self.x_range()
            fitted = self._fitted
            self._rebuild()
            if fitted:
                self.zoom_to_fit()
            else:
                self.set_x_range(*rng)
            self.set_cursor(self._cursor_t)
            self.set_selection(self._selection_t)
        self.lanesChanged.emit(self.lanes.copy())

    def show_lanes_dialog(self) -> LanesDialog:
        vcpus = [(lane.vcpu, lane.label) for lane in self.data.vcpus] if self.data is not None else []
        dlg = LanesDialog(self.lanes, self.row_labels, vcpus, self)
        dlg.changed.connect(self.set_lanes)
        dlg.setModal(False)
        dlg.show()
        self._lanes_dialog = dlg
        return dlg

    def _lane_menu(self, info: _PlotInfo, row: str | None, pos: QtCore.QPoint) -> None:
        menu = QtWidgets.QMenu(self)
        labels = self.row_labels
        present = [lane.vcpu for lane in self.data.vcpus]
        if row:
            cfg = self.lanes.copy()
            cfg.hidden_rows.add(row)
            menu.addAction(f"Hide row '{labels.get(row, row)}'", lambda c=cfg: self.set_lanes(c))
            for text, delta in (("Move row up", -1), ("Move row down", 1)):
                c2 = self.lanes.copy()
                c2.move_row(row, delta)
                menu.addAction(text, lambda c=c2: self.set_lanes(c))
            menu.addSeparator()
        cfg = self.lanes.copy()
        cfg.hidden_vcpus.add(info.vcpu)
        name = self.data.lanes_of(info.vcpu).label
        menu.addAction(f"Hide {name}", lambda c=cfg: self.set_lanes(c))
        for text, delta in ((f"Move {name} up", -1), (f"Move {name} down", 1)):
            c2 = self.lanes.copy()
            c2.move_vcpu(info.vcpu, delta, present)
            menu.addAction(text, lambda c=c2: self.set_lanes(c))
        menu.addSeparator()
        menu.addAction("Lanes…", self.show_lanes_dialog)
        menu.addAction("Show all lanes", lambda: self.set_lanes(LaneConfig(list(self.lanes.rows))))
        self._last_menu = menu
        menu.popup(pos)

    # ---- cursor, selection, markers, measurement --------------------------------------------
    def set_cursor(self, t: float | None) -> None:
        self._cursor_t = t
        for info in self.plots:
            if info.cursor is not None:
                info.cursor.setVisible(t is not None)
                if t is not None:
                    info.cursor.setValue(t)
        # "before the first event" (t = 0 of a trace that starts later) does not scroll
        before_data = self.data is not None and self.data.kind == "trace" and t is not None and t * 1e9 < self.data.t_start_ns
        if t is not None and self.follow and self.plots and not before_data:
            x0, x1 = self.x_range()
            w = x1 - x0
            if w > 0 and not (x0 <= t <= x1):
                self.set_x_range(t - 0.25 * w, t + 0.75 * w)

    def set_selection(self, t: float | None) -> None:
        self._selection_t = t
        for info in self.plots:
            if info.selection is not None:
                info.selection.setVisible(t is not None)
                if t is not None:
                    info.selection.setValue(t)

    def _label_opts(self, color: str, left: bool, position: float) -> dict:
        anchor = (1.0, 0.5) if left else (0.0, 0.5)
        fill = QtGui.QColor(themes.current().plot_bg)
        fill.setAlpha(220)
        return {"position": position, "anchors": [anchor, anchor], "color": color, "fill": pg.mkBrush(fill)}

    def set_bookmarks(self, marks: list[tuple[str, float]]) -> None:
        """Named markers (the document's bookmarks), in the owner's order."""
        self._bookmarks = list(marks)
        self._rebuild_bookmarks()

    def markers(self) -> list[tuple[str, float]]:
        return list(self._bookmarks)

    def _rebuild_bookmarks(self) -> None:
        th = themes.current()
        pen = pg.mkPen(th.color("bookmark"), width=1, style=QtCore.Qt.PenStyle.DashDotLine)
        for info in self.plots:
            for line in info.bookmarks:
                info.plot.removeItem(line)
            info.bookmarks = []
            for name, t in self._bookmarks:
                line = pg.InfiniteLine(pos=t, angle=90, movable=False, pen=pen)
                line.setZValue(40)
                line.setToolTip(f"marker: {name} at {fmt_s(t)}")
                info.plot.addItem(line, ignoreBounds=True)
                info.bookmarks.append(line)
        for line in self._marker_lines:
            self.ruler_plot.removeItem(line)
        self._marker_lines = []
        order = sorted(range(len(self._bookmarks)), key=lambda i: self._bookmarks[i][1])
        for rank, i in enumerate(order):
            name, t = self._bookmarks[i]
            line = pg.InfiniteLine(
                pos=t, angle=90, movable=True, pen=pg.mkPen(th.color("bookmark"), width=2),
                label=f"⚑ {name}", labelOpts=self._label_opts(th.marks["bookmark"], left=False, position=0.86 if rank % 2 == 0 else 0.62),
            )
            line.setHoverPen(pg.mkPen(th.color("bookmark"), width=4))
            line.setZValue(40)
            line.setToolTip(f"marker '{name}' at {fmt_s(t)}: drag to move, right click to rename or delete")
            line.sigPositionChangeFinished.connect(lambda ln, i=i: self.markerMoved.emit(i, float(ln.value())))
            line.sigPositionChanged.connect(lambda ln, i=i: self._marker_dragged(i, ln))
            self.ruler_plot.addItem(line, ignoreBounds=True)
            self._marker_lines.append(line)

    def _marker_dragged(self, i: int, line: pg.InfiniteLine) -> None:
        t = float(line.value())
        for info in self.plots:
            if i < len(info.bookmarks):
                info.bookmarks[i].setValue(t)

    def add_marker_dialog(self, t: float | None = None) -> None:
        """Ask for a name and add a marker at t (default: the mouse, else the cursor, else the middle)."""
        if self.data is None:
            return
        if t is None:
            t = self._key_center()
        if t is None:
            x0, x1 = self.x_range()
            t = self._cursor_t if (self._cursor_t is not None and x0 <= self._cursor_t <= x1) else (x0 + x1) / 2
        default = f"marker {len(self._bookmarks) + 1}"
        name, ok = QtWidgets.QInputDialog.getText(self, "Add marker", f"Name of the marker at {fmt_s(t)}:", text=default)
        if ok and name.strip():
            self.markerAdded.emit(name.strip(), float(t))

    def rename_marker_dialog(self, i: int) -> None:
        if not 0 <= i < len(self._bookmarks):
            return
        old, t = self._bookmarks[i]
        name, ok = QtWidgets.QInputDialog.getText(self, "Rename marker", f"Name of the marker at {fmt_s(t)}:", text=old)
        if ok and name.strip() and name.strip() != old:
            self.markerRenamed.emit(i, name.strip())

    def jump_to_marker(self, i: int) -> None:
        """Centre the view on marker i (same zoom)."""
        if not 0 <= i < len(self._bookmarks):
            return
        t = self._bookmarks[i][1]
        x0, x1 = self.x_range()
        w = x1 - x0
        self.set_x_range(t - w / 2, t + w / 2)

    def goto_marker(self, direction: int) -> None:
        """The next (+1) or previous (-1) marker after / before the middle of the view."""
        if not self._bookmarks:
            return
        x0, x1 = self.x_range()
        mid = (x0 + x1) / 2
        eps = (x1 - x0) * 1e-6
        order = sorted(range(len(self._bookmarks)), key=lambda i: self._bookmarks[i][1])
        if direction > 0:
            nxt = [i for i in order if self._bookmarks[i][1] > mid + eps]
            target = nxt[0] if nxt else None
        else:
            prv = [i for i in order if self._bookmarks[i][1] < mid - eps]
            target = prv[-1] if prv else None
        if target is not None:
            self.jump_to_marker(target)

    def _fill_markers_menu(self) -> None:
        menu = self.markers_menu
        menu.clear()
        menu.addAction("Add marker… (M)", lambda: self.add_marker_dialog())
        menu.addAction("Next marker (.)", lambda: self.goto_marker(+1))
        menu.addAction("Previous marker (,)", lambda: self.goto_marker(-1))
        if self._bookmarks:
            menu.addSeparator()
        prev = None
        for i in sorted(range(len(self._bookmarks)), key=lambda i: self._bookmarks[i][1]):
            name, t = self._bookmarks[i]
            delta = f"  (+{fmt_s(t - prev)})" if prev is not None else ""
            sub = menu.addMenu(f"⚑ {name}  at {fmt_s(t)}{delta}")
            sub.addAction("Jump to", lambda i=i: self.jump_to_marker(i))
            sub.addAction("Rename…", lambda i=i: self.rename_marker_dialog(i))
            sub.addAction("Delete", lambda i=i: self.markerRemoved.emit(i))
            prev = t

    def _on_ruler_click(self, ev) -> None:
        if self.data is None or ev.button() != QtCore.Qt.MouseButton.RightButton:
            return
        vb = self.ruler_box
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        ev.accept()
        x = float(vb.mapSceneToView(ev.scenePos()).x())
        tol = PICK_PX * 2 * vb.viewPixelSize()[0]
        menu = QtWidgets.QMenu(self)
        near = [i for i, (_n, t) in enumerate(self._bookmarks) if abs(t - x) <= tol]
        for i in near:
            name = self._bookmarks[i][0]
            menu.addAction(f"Rename marker '{name}'…", lambda i=i: self.rename_marker_dialog(i))
            menu.addAction(f"Delete marker '{name}'", lambda i=i: self.markerRemoved.emit(i))
        if near:
            menu.addSeparator()
        menu.addAction(f"Add marker at {fmt_s(x)}…", lambda: self.add_marker_dialog(x))
        self._last_menu = menu
        menu.popup(ev.screenPos().toPoint())

    def set_measure(self, on: bool) -> None:
        if on and not self._measure_on:
            x0, x1 = self.x_range()
            self._measure_pos = [x0 + (x1 - x0) / 3, x0 + 2 * (x1 - x0) / 3]
        self._measure_on = on
        self._rebuild_measure()
        self._emit_measure()

    def set_measure_position(self, which: int, t: float) -> None:
        if not self._measure_on:
            self.set_measure(True)
        self._measure_pos[which] = t
        for lines in [info.measure for info in self.plots] + [getattr(self, "_ruler_measure", [])]:
            if len(lines) == 2:
                lines[which].setValue(t)
        self._emit_measure()

    def measure(self) -> tuple[float, float] | None:
        return tuple(self._measure_pos) if self._measure_on else None  # type: ignore[return-value]

    def _rebuild_measure(self) -> None:
        th = themes.current()
        targets = [(info.plot, info) for info in self.plots]
        for line in getattr(self, "_ruler_measure", []):
            self.ruler_plot.removeItem(line)
        self._ruler_measure = []
        for plot, info in targets:
            for line in info.measure:
                plot.removeItem(line)
            info.measure = []
        if not self._measure_on:
            return
        for j, label in enumerate(("A", "B")):
            role = "measure_a" if j == 0 else "measure_b"
            pen = pg.mkPen(th.color(role), width=1.5, style=QtCore.Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(pos=self._measure_pos[j], angle=90, movable=True, pen=pen, label=label, labelOpts=self._label_opts(th.marks[role], left=j == 0, position=0.62))
            line.setHoverPen(pg.mkPen(th.color(role), width=3))
            line.setZValue(60)
            line.sigPositionChanged.connect(lambda ln, which=j: self._measure_moved(which, ln))
            self.ruler_plot.addItem(line, ignoreBounds=True)
            self._ruler_measure.append(line)
            for plot, info in targets:
                ln = pg.InfiniteLine(pos=self._measure_pos[j], angle=90, movable=True, pen=pen)
                ln.setHoverPen(pg.mkPen(th.color(role), width=3))
                ln.setZValue(60)
                ln.sigPositionChanged.connect(lambda ln, which=j: self._measure_moved(which, ln))
                plot.addItem(ln, ignoreBounds=True)
                info.measure.append(ln)

    def _measure_moved(self, which: int, line: pg.InfiniteLine) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self._measure_pos[which] = float(line.value())
            for lines in [info.measure for info in self.plots] + [self._ruler_measure]:
                if len(lines) == 2 and lines[which] is not line:
                    lines[which].setValue(self._measure_pos[which])
        finally:
            self._syncing = False
        self._emit_measure()

    def _emit_measure(self) -> None:
        m = self.measure()
        if m is None:
            self.measure_label.setText("")
        else:
            a, b = m
            th = themes.current()
            self.measure_label.setText(
                f"<span style='color:{th.marks['measure_a']}'>A</span> {fmt_s(a)} &nbsp; "
                f"<span style='color:{th.marks['measure_b']}'>B</span> {fmt_s(b)} &nbsp; <b>Δt = {fmt_s(b - a, signed=True)}</b>"
            )
        self.measureChanged.emit(m)

    # ---- picking --------------------------------------------------------------------------
    def _locate(self, scene_pos) -> tuple[_PlotInfo, float, float] | None:
        for info in self.plots:
            vb = info.plot.getViewBox()
            if vb.sceneBoundingRect().contains(scene_pos):
                p = vb.mapSceneToView(scene_pos)
                return info, float(p.x()), float(p.y())
        return None

    def _locate_label(self, scene_pos) -> tuple[_PlotInfo, str | None] | None:
        """The plot (and lane row) whose left axis holds scene_pos."""
        for info in self.plots:
            axis = info.plot.getAxis("left")
            if axis.sceneBoundingRect().contains(scene_pos):
                if info.kind != "lanes":
                    return info, "deadline"
                y = info.plot.getViewBox().mapSceneToView(scene_pos).y()
                names = info.row_names
                return info, names[min(len(names) - 1, max(0, int(y)))] if names else None
        return None

    def pick(self, info: _PlotInfo, x: float, y: float) -> tuple[int, Track | None]:
        """Event index of the mark nearest (x, y) within a few pixels, else (-1, None)."""
        vb = info.plot.getViewBox()
        tol = PICK_PX * vb.viewPixelSize()[0]
        if info.kind == "lanes":
            names = info.row_names
            if not names:
                return -1, None
            row = names[min(len(names) - 1, max(0, int(y)))]
            candidates = [t for t in info.rows[row] if abs(getattr(t, "y", 0) - y) <= max(0.5, getattr(t, "height", 1) / 2)]
        else:
            candidates = info.rows["steps"]
        best: tuple[float, int, Track] | None = None
        for track in reversed(candidates):  # the topmost track wins ties
            hit = track.pick(self.data, x, tol)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = (hit[0], hit[1], track)
        if best is None:
            return -1, None
        return best[1], best[2]

    def _on_click(self, ev) -> None:
        if self.data is None:
            return
        self.setFocus(QtCore.Qt.FocusReason.MouseFocusReason)
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            lab = self._locate_label(ev.scenePos())
            if lab is not None:
                ev.accept()
                self._lane_menu(lab[0], lab[1] if lab[1] != "deadline" else "deadline", ev.screenPos().toPoint())
                return
        loc = self._locate(ev.scenePos())
        if loc is None:
            return
        info, x, y = loc
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            self.vcpuClicked.emit(info.vcpu)
            self.contextRequested.emit(x, info.vcpu, ev.screenPos().toPoint())
            return
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        idx, _track = self.pick(info, x, y)
        if idx < 0:
            idx = self.data.nearest_event(x)
        self.vcpuClicked.emit(info.vcpu)
        if idx >= 0:
            self.eventClicked.emit(idx)

    def _track_hover(self, pos) -> None:
        loc = self._locate(pos)
        self._hover_x = loc[1] if loc is not None else None

    def describe_at(self, info: _PlotInfo, x: float, y: float) -> str:
        """The tooltip text at a point of a plot."""
        idx, track = self.pick(info, x, y)
        lines = [f"t = {fmt_s(x)}"]
        if info.kind == "deadline":
            xn = np.array([x * 1e9])
            for s in info.rows["steps"]:
                d = float(s.values_at(self.data, xn)[0])
                if np.isfinite(d):
                    when = f"in {fmt_ns(d)}" if d >= 0 else f"passed {fmt_ns(-d)} ago"
                    lines.append(f"{s.label}: {when} (at {fmt_ns(d + x * 1e9)})")
                else:
                    lines.append(f"{s.label}: none")
        if isinstance(track, SpanTrack):
            hit = track.span_at(self.data, x)
            if hit is not None:
                t0, t1, _i, flag = hit
                status = "fired" if flag == SPAN_FIRED else ("cancelled" if flag == SPAN_CANCELLED else "open")
                lines.append(f"{track.label}: {fmt_s(t0)} → {fmt_s(t1)} ({fmt_s(t1 - t0)}, {status})")
        if idx >= 0 and self.describe is not None:
            lines.append(self.describe(idx))
        return "\n".join(lines)

    def _on_hover(self, args) -> None:
        if self.data is None:
            return
        pos = args[0]
        loc = self._locate(pos)
        if loc is None:
            QtWidgets.QToolTip.hideText()
            return
        text = self.describe_at(*loc)
        widget_pos = self.glw.mapFromScene(pos)
        QtWidgets.QToolTip.showText(self.glw.mapToGlobal(widget_pos), text, self.glw)

    # ---- export -----------------------------------------------------------------------------
    def _export_parts(self):
        """(title text, ruler rect, lanes rect) in their scenes."""
        return self.title.text(), self.ruler.ci.sceneBoundingRect(), self.glw.ci.sceneBoundingRect()

    def _render(self, painter: QtGui.QPainter, width: float, title_h: float) -> None:
        title, r_rect, l_rect = self._export_parts()
        th = themes.current()
        total_h = title_h + r_rect.height() + l_rect.height()
        painter.fillRect(QtCore.QRectF(0, 0, width, total_h), QtGui.QColor(th.plot_bg))
        painter.setPen(QtGui.QColor(th.plot_fg))
        doc = QtGui.QTextDocument()
        doc.setHtml(f"<span style='color:{th.plot_fg}'>{title}</span>")
        painter.save()
        painter.translate(6, 4)
        doc.drawContents(painter)
        painter.restore()
        scale = width / max(1.0, l_rect.width())
        self.ruler.scene().render(painter, QtCore.QRectF(0, title_h, width, r_rect.height() * scale), r_rect)
        self.glw.scene().render(painter, QtCore.QRectF(0, title_h + r_rect.height() * scale, width, l_rect.height() * scale), l_rect)

    def export_size(self, width: int | None = None) -> tuple[int, int, float]:
        _t, r_rect, l_rect = self._export_parts()
        w = width or max(800, int(l_rect.width()))
        scale = w / max(1.0, l_rect.width())
        title_h = 26.0
        return w, int(title_h + (r_rect.height() + l_rect.height()) * scale), title_h

    def export_png(self, path: str, width: int | None = None) -> bool:
        """The title, time ruler and lanes as one PNG; False if it could not be written."""
        w, h, title_h = self.export_size(width)
        img = QtGui.QImage(w, h, QtGui.QImage.Format.Format_ARGB32)
        img.fill(QtGui.QColor(themes.current().plot_bg))
        painter = QtGui.QPainter(img)
        try:
            self._render(painter, w, title_h)
        finally:
            painter.end()
        return img.save(path, "PNG")

    def export_svg(self, path: str) -> None:
        """Vector export of the title, ruler and lanes (Qt's QSvgGenerator).

        pyqtgraph 0.14's SVGExporter post-processes Qt's path data and cannot parse
        the closing `Z` commands Qt 6.12 writes. The tracks draw vector glyphs (not
        stamped pixmaps) on an SVG paint engine.
        """
        from PySide6 import QtSvg

        w, h, title_h = self.export_size()
        gen = QtSvg.QSvgGenerator()
        gen.setFileName(path)
        gen.setSize(QtCore.QSize(w, h))
        gen.setViewBox(QtCore.QRect(0, 0, w, h))
        gen.setResolution(int(round(self.glw.logicalDpiX())))
        gen.setTitle(QtGui.QTextDocumentFragment.fromHtml(self.title.text()).toPlainText() or "lazytsc timeline")
        gen.setDescription("lazytsc timeline export")
        painter = QtGui.QPainter(gen)
        try:
            self._render(painter, w, title_h)
        finally:
            painter.end()
