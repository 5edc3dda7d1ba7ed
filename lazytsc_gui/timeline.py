"""The timeline: one lane group per vCPU (pyqtgraph), the seed's picture made live.

Per vCPU, a lanes plot (rows: guest "v" requests written/skipped, host "|" arms
with arm->fire spans, the lazy host functions, interrupts with spurious/late
flagged, exits by reason, HLT periods, hazards) and, for simulated runs, a
deadline plot with `pending` / `armed` (and the guest's requested deadline) as
step plots against `deadline == now`. All plots share the time axis.

Interaction: wheel zooms time, drag pans, Shift+drag (or the rubber-band tool)
zooms to a range, click jumps to the nearest event, right click opens a
context menu (owner-provided), two measurement cursors show Δt, bookmarks and
the current-event cursor are vertical lines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .fmt import fmt_s
from .timeline_data import SPAN_FIRED, TimelineData, choose_mode, visible_range
from .tracks import (
    DiagonalTrack,
    GridTrack,
    MarkTrack,
    RowBands,
    SpanTrack,
    StepTrack,
    Track,
    TrackItem,
)

ROWS = ("guest", "host", "lazy", "irq", "exits", "hlt", "haz")
MARKS_ROW = "marks"  # first lane plot only: bookmark and measurement labels
ROW_LABELS = {
    "marks": "bookmarks",
    "guest": "guest v",
    "host": "host |",
    "lazy": "lazy host",
    "irq": "interrupts",
    "exits": "exits",
    "hlt": "HLT",
    "haz": "hazards",
}
ROW_PX = 20  # lane row height in logical pixels (minimum)
DEADLINE_PX = 96
AXIS_W = 96
PICK_PX = 6

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


class _PlotInfo:
    def __init__(self, plot: pg.PlotItem, vcpu: int, kind: str, item: TrackItem, rows: dict[str, list[Track]]):
        self.plot = plot
        self.vcpu = vcpu
        self.kind = kind  # "lanes" | "deadline"
        self.item = item
        self.rows = rows  # lanes: row name -> tracks; deadline: {"steps": [...]}
        self.row_names: tuple[str, ...] = tuple(rows) if kind == "lanes" else ()
        self.cursor: pg.InfiniteLine | None = None
        self.selection: pg.InfiniteLine | None = None
        self.measure: list[pg.InfiniteLine] = []
        self.bookmarks: list[pg.InfiniteLine] = []


class TimelineWidget(QtWidgets.QWidget):
    eventClicked = QtCore.Signal(int)
    vcpuClicked = QtCore.Signal(int)
    contextRequested = QtCore.Signal(float, int, QtCore.QPoint)
    measureChanged = QtCore.Signal(object)  # (a_s, b_s) or None
    rangeChanged = QtCore.Signal(float, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None, describe: Callable[[int], str] | None = None, legend: bool = True) -> None:
        super().__init__(parent)
        self.describe = describe
        self.data: TimelineData | None = None
        self.plots: list[_PlotInfo] = []
        self.follow = True
        self._cursor_t: float | None = None
        self._selection_t: float | None = None
        self._bookmarks: list[tuple[str, float]] = []
        self._measure_on = False
        self._measure_pos = [0.0, 0.0]
        self._syncing = False
        self._rubber = False
        self._show_legend = legend

        self.title = QtWidgets.QLabel()
        self.title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(80)
        self.measure_label = QtWidgets.QLabel()
        self.measure_label.setObjectName("measureLabel")
        self.mode_label = QtWidgets.QLabel()
        self.mode_label.setToolTip("Level of detail: exact marks when zoomed in, per-pixel bins when zoomed out")
        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(6, 2, 6, 2)
        header.addWidget(self.title, 1)
        header.addWidget(self.measure_label)
        header.addSpacing(12)
        header.addWidget(self.mode_label)

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.layout.setSpacing(2)
        self.glw.ci.setContentsMargins(4, 4, 12, 4)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.glw)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.empty = QtWidgets.QLabel("No run loaded.\nOpen a scenario (Ctrl+O), a trace, or pick one of Help ▸ Examples.")
        self.empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.scroll)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)

        self.legend_item: pg.LabelItem | None = None
        self.glw.scene().sigMouseClicked.connect(self._on_click)
        self._hover_proxy = pg.SignalProxy(self.glw.scene().sigMouseMoved, rateLimit=30, slot=self._on_hover)
        themes.manager().changed.connect(self.apply_theme)
        self.apply_theme(themes.current())

    # ---- building ----------------------------------------------------------------------------
    def clear(self) -> None:
        self.glw.clear()
        self.plots = []
        self.legend_item = None
        self.data = None
        self.stack.setCurrentIndex(0)

    def _colors(self, role: str) -> QtGui.QColor:
        theme = themes.current()
        if role == "__lane_alt__":
            return QtGui.QColor(theme.lane_alt)
        if role == "__background__":
            return QtGui.QColor(theme.plot_bg)
        if role == "__grid__":
            return QtGui.QColor(theme.grid)
        if role == "__grid_minor__":
            return QtGui.QColor(theme.grid_minor)
        return theme.color(role)

    def set_data(self, data: TimelineData, title: str = "", keep_range: bool = False) -> None:
        old_range = self.x_range() if (keep_range and self.plots) else None
        self.glw.clear()
        self.plots = []
        self.data = data
        self.title.setText(title)
        self.stack.setCurrentIndex(1)
        row = 0
        if self._show_legend:
            self.legend_item = pg.LabelItem(justify="left")
            self.glw.addItem(self.legend_item, row=row, col=0)
            row += 1
        first: pg.PlotItem | None = None
        pad = max(data.t_end * 0.02, 1e-7)
        for lanes in data.vcpus:
            info = self._lanes_plot(lanes, first=not self.plots)
            self.glw.addItem(info.plot, row=row, col=0)
            self.glw.ci.layout.setRowStretchFactor(row, 3)
            row += 1
            self.plots.append(info)
            if data.has_deadlines:
                dinfo = self._deadline_plot(lanes)
                self.glw.addItem(dinfo.plot, row=row, col=0)
                self.glw.ci.layout.setRowStretchFactor(row, 2)
                row += 1
                self.plots.append(dinfo)
        for info in self.plots:
            plot = info.plot
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            plot.getViewBox().setLimits(xMin=-pad, xMax=data.t_end + pad, minXRange=1e-9)
            plot.getAxis("bottom").setStyle(showValues=False)
            plot.getAxis("bottom").setHeight(4)
            for line_kind in ("cursor", "selection"):
                line = pg.InfiniteLine(angle=90, movable=False)
                line.setZValue(50)
                line.setVisible(False)
                plot.addItem(line, ignoreBounds=True)
                setattr(info, line_kind, line)
        if self.plots:
            last = self.plots[-1].plot.getAxis("bottom")
            last.setStyle(showValues=True)
            last.setHeight(None)
            self.plots[-1].plot.setLabel("bottom", "time", units="s")
            first.getViewBox().sigXRangeChanged.connect(self._on_range)
        height = sum((len(p.row_names) * ROW_PX + 16) if p.kind == "lanes" else DEADLINE_PX for p in self.plots) + 70
        self.glw.setMinimumHeight(height)
        self._rebuild_measure()
        self._rebuild_bookmarks()
        self.set_rubber_band(self._rubber)
        self._update_legend()
        self.apply_theme(themes.current())
        if old_range is not None:
            self.set_x_range(*old_range)
        else:
            self.zoom_to_fit()
        self.set_cursor(self._cursor_t)
        self.set_selection(self._selection_t)

    def _lanes_plot(self, lanes, first: bool = False) -> _PlotInfo:
        vb = LaneViewBox()
        plot = pg.PlotItem(viewBox=vb)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        vb.setMouseEnabled(x=True, y=False)
        vb.invertY(True)
        names = ((MARKS_ROW,) if first else ()) + ROWS
        n = len(names)
        vb.setYRange(0, n, padding=0)
        vb.setLimits(yMin=0, yMax=n)
        vb.enableAutoRange(x=False, y=False)
        axis = plot.getAxis("left")
        axis.setWidth(AXIS_W)
        axis.setTicks([[(i + 0.5, ROW_LABELS[r]) for i, r in enumerate(names)], []])
        axis.setStyle(tickLength=0)
        plot.setLabel("left", f"vCPU {lanes.vcpu}")
        plot.setMinimumHeight(n * ROW_PX + 16)
        y = {r: i + 0.5 for i, r in enumerate(names)}
        rows: dict[str, list[Track]] = {r: [] for r in names}
        rows["guest"] = [  # skipped first: the rarer written marks paint on top
            MarkTrack("skipped", lanes.skipped.t, lanes.skipped.idx, y["guest"], 0.62, "v_open", "skipped", "deadline skipped (lazy: no exit)"),
            MarkTrack("written", lanes.written.t, lanes.written.idx, y["guest"], 0.62, "v", "written", "deadline written (WRMSR 0x6e0, an exit)"),
        ]
        ts = lanes.timer_spans
        rows["host"] = [
            SpanTrack("timer", ts.t0, ts.t1, ts.idx, ts.flag, y["host"], 0.34, "span_fired", "span_cancelled", "host timer armed"),
            MarkTrack("arm", lanes.arms.t, lanes.arms.idx, y["host"], 0.8, "bar", "arm", "host arms the timer"),
            MarkTrack("fire", lanes.fires.t, lanes.fires.idx, y["host"] + 0.18, 0.4, "up", "fire", "armed timer fires"),
        ]
        rows["lazy"] = [
            MarkTrack("update", lanes.updates.t, lanes.updates.idx, y["lazy"], 0.5, "dot", "update", "update: armed = tsc"),
            MarkTrack("kick", lanes.kicks_rearm.t, lanes.kicks_rearm.idx, y["lazy"], 0.62, "diamond", "kick", "kick: re-armed pending"),
            MarkTrack("kick0", lanes.kicks_disarm.t, lanes.kicks_disarm.idx, y["lazy"], 0.62, "diamond_open", "kick", "kick: nothing later, armed = 0"),
            MarkTrack("kick_request", lanes.kick_requests.t, lanes.kick_requests.idx, y["lazy"], 0.5, "up_open", "kick_request", "sw path: kick requested"),
            MarkTrack("clear", lanes.clears.t, lanes.clears.idx, y["lazy"], 0.5, "x", "clear", "clear: armed = 0"),
        ]
        rows["irq"] = [
            MarkTrack("ipi", lanes.ipis.t, lanes.ipis.idx, y["irq"], 0.5, "up_open", "ipi", "IPI received"),
            MarkTrack("irq", lanes.irqs.t, lanes.irqs.idx, y["irq"], 0.5, "dot", "irq", "timer interrupt"),
            MarkTrack("late", lanes.irqs_late.t, lanes.irqs_late.idx, y["irq"], 0.62, "dot", "haz:late", "late timer interrupt"),
            MarkTrack("spurious", lanes.irqs_spurious.t, lanes.irqs_spurious.idx, y["irq"], 0.7, "dot", "haz:spurious", "early (spurious) timer interrupt"),
            MarkTrack("dropped", lanes.irqs_dropped.t, lanes.irqs_dropped.idx, y["irq"], 0.6, "x", "dropped", "timer interrupt dropped (LVTT masked)"),
        ]
        reasons = [r for r in (self.data.exit_reasons if self.data else []) if r in lanes.exits]
        k = max(1, len(reasons))
        base = names.index("exits")
        for j, reason in enumerate(reasons):
            m = lanes.exits[reason]
            rows["exits"].append(MarkTrack(f"exit:{reason}", m.t, m.idx, base + (j + 0.5) / k, 0.9 / k, "bar", f"exit:{reason}", f"{reason} exit"))
        rows["hlt"] = [SpanTrack("hlt", lanes.hlt.t0, lanes.hlt.t1, lanes.hlt.idx, lanes.hlt.flag, y["hlt"], 0.5, "hlt", label="halted (HLT -> wake)")]
        hazards = [h for h in (self.data.hazard_names if self.data else []) if h in lanes.hazards]
        kh = max(1, len(hazards))
        base = names.index("haz")
        for j, name in enumerate(hazards):
            m = lanes.hazards[name]
            rows["haz"].append(MarkTrack(f"haz:{name}", m.t, m.idx, base + (j + 0.5) / kh, 0.9 / kh, "diamond", f"haz:{name}", f"hazard: {name}"))
        for r in names:
            for t in rows[r]:
                if isinstance(t, MarkTrack):
                    t.row = r
        tracks: list[Track] = [RowBands(n), GridTrack(plot.getAxis("bottom"))] + [t for r in names for t in rows[r]]
        item = TrackItem(tracks, (0.0, float(n)), self._colors)
        plot.addItem(item)
        return _PlotInfo(plot, lanes.vcpu, "lanes", item, rows)

    def _deadline_plot(self, lanes) -> _PlotInfo:
        vb = LaneViewBox()
        plot = pg.PlotItem(viewBox=vb)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        vb.setMouseEnabled(x=True, y=False)
        vb.enableAutoRange(x=False, y=False)
        axis = plot.getAxis("left")
        axis.setWidth(AXIS_W)
        plot.setLabel("left", f"vCPU {lanes.vcpu} deadline", units="s")
        plot.setMinimumHeight(DEADLINE_PX)
        steps = [
            StepTrack("requested", lanes.requested.t, lanes.requested.y, lanes.requested.idx, "requested", 1.0, True, "deadline requested by the guest"),
        ]
        if lanes.has_page:
            steps += [  # armed last: on top of pending
                StepTrack("pending", lanes.pending.t, lanes.pending.y, lanes.pending.idx, "pending", 1.6, True, "pending (shared page, guest-written)"),
                StepTrack("armed", lanes.armed.t, lanes.armed.y, lanes.armed.idx, "armed", 2.0, False, "armed (shared page, host-written)"),
            ]
        ys = np.concatenate([s.y for s in steps]) if steps else np.zeros(0)
        finite = ys[np.isfinite(ys)]
        y_range = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1e-6)
        item = TrackItem([GridTrack(plot.getAxis("bottom"), plot.getAxis("left")), DiagonalTrack(), *steps], y_range, self._colors)
        plot.addItem(item)
        return _PlotInfo(plot, lanes.vcpu, "deadline", item, {"steps": steps})

    # ---- legend & theme ---------------------------------------------------------------------
    def _update_legend(self) -> None:
        if self.legend_item is None or self.data is None:
            return
        th = themes.current()
        m = th.marks

        def sw(role: str, glyph: str, text: str) -> str:
            text = text.replace(" ", "&nbsp;").replace("-", "\u2011")
            return f"<span style='color:{m.get(role, th.plot_fg)}'>{glyph}</span>&nbsp;{text}"

        sep = "&nbsp;&nbsp;&nbsp;"
        line1 = sep.join(
            [
                "<b>guest</b>",
                sw("written", "▼", "written (exit)"),
                sw("skipped", "▽", "skipped (lazy)"),
                "&nbsp;<b>host</b>",
                sw("arm", "┃", "armed"),
                sw("span_fired", "▬", "arm→fire"),
                sw("span_cancelled", "┄", "cancelled"),
                sw("fire", "▲", "fired"),
                "&nbsp;<b>lazy</b>",
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
                "&nbsp;<b>exits</b>",
            ]
            + [sw(f"exit:{r}", "┃", r) for r in self.data.exit_reasons]
        )
        parts3 = []
        if self.data.has_deadlines:
            parts3 += ["<b>deadlines</b>", sw("armed", "━", "armed"), sw("pending", "╍", "pending"), sw("requested", "╌", "requested"), sw("now", "┈", "now"), "&nbsp;"]
        if self.data.hazard_names:
            parts3 += ["<b>hazards</b>"] + [sw(f"haz:{h}", "◆", h) for h in self.data.hazard_names]
        html = line1 + "<br>" + line2 + ("<br>" + sep.join(parts3) if parts3 else "")
        self.legend_item.setText(html, size="8pt", color=th.plot_fg)
        self._wrap_legend()

    def _wrap_legend(self) -> None:
        """Wrap the legend to the visible width (a long legend must not widen the plots)."""
        if self.legend_item is None:
            return
        width = max(240, self.scroll.viewport().width() - 24)
        self.legend_item.item.setTextWidth(width)
        self.legend_item.updateMin()
        self.legend_item.setMaximumWidth(width)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._wrap_legend()

    def apply_theme(self, theme=None) -> None:
        th = theme or themes.current()
        self.glw.setBackground(th.plot_bg)
        fg = pg.mkPen(th.plot_fg)
        for info in self.plots:
            for name in ("left", "bottom"):
                ax = info.plot.getAxis(name)
                ax.setPen(pg.mkPen(th.grid))
                ax.setTextPen(fg)
                ax.label.setDefaultTextColor(QtGui.QColor(th.plot_fg))
            if info.cursor is not None:
                info.cursor.setPen(pg.mkPen(th.color("cursor"), width=2))
            if info.selection is not None:
                info.selection.setPen(pg.mkPen(th.color("selection"), width=1, style=QtCore.Qt.PenStyle.DotLine))
            for j, line in enumerate(info.measure):
                role = "measure_a" if j == 0 else "measure_b"
                line.setPen(pg.mkPen(th.color(role), width=1.5, style=QtCore.Qt.PenStyle.DashLine))
                line.setHoverPen(pg.mkPen(th.color(role), width=3))
            for line in info.bookmarks:
                line.setPen(pg.mkPen(th.color("bookmark"), width=1, style=QtCore.Qt.PenStyle.DashDotLine))
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
        (x0, x1), _ = self.master.getViewBox().viewRange()
        return float(x0), float(x1)

    def set_x_range(self, x0: float, x1: float) -> None:
        if self.master is not None and x1 > x0:
            self.master.getViewBox().setXRange(x0, x1, padding=0)

    def zoom_to_fit(self) -> None:
        if self.data is None or self.master is None:
            return
        t1 = self.data.t_end if self.data.t_end > 0 else 1e-6
        self.master.getViewBox().setXRange(0.0, t1, padding=0.01)

    def zoom(self, factor: float, center: float | None = None) -> None:
        x0, x1 = self.x_range()
        if x1 <= x0:
            return
        c = center if center is not None else (self._cursor_t if self._cursor_t is not None and x0 <= self._cursor_t <= x1 else (x0 + x1) / 2)
        self.set_x_range(c - (c - x0) / factor, c + (x1 - c) / factor)

    def pan(self, fraction: float) -> None:
        x0, x1 = self.x_range()
        d = (x1 - x0) * fraction
        self.set_x_range(x0 + d, x1 + d)

    def link_x(self, other: TimelineWidget) -> None:
        """Share the time axis with another timeline (compare view)."""
        if self.master is not None and other.master is not None:
            self.master.setXLink(other.master)

    def set_rubber_band(self, on: bool) -> None:
        self._rubber = on
        for info in self.plots:
            info.plot.getViewBox().rubber_band = on

    def _on_range(self, _vb=None, rng=None) -> None:
        x0, x1 = self.x_range()
        for info in self.plots:
            if info.kind != "deadline":
                continue
            ext = [e for e in (s.y_extent(x0, x1) for s in info.rows["steps"]) if e is not None]
            w = x1 - x0
            if ext:
                # Deadlines far from the window (a 4 s watchdog while looking at 50 us)
                # would flatten everything else: keep the range near "now".
                lo = max(min(e[0] for e in ext), x0 - w)
                hi = min(max(e[1] for e in ext), x1 + 2 * w)
                if hi <= lo:
                    lo, hi = x0, x1
            else:
                lo, hi = x0, x1
            span = hi - lo
            pad = span * 0.08 if span > 0 else max(abs(hi) * 0.02, (x1 - x0) * 0.1, 1e-7)
            info.plot.getViewBox().setYRange(lo - pad, hi + pad, padding=0)
        self._update_mode_label()
        self.rangeChanged.emit(x0, x1)

    def planned_modes(self) -> set[str]:
        """Level of detail the lane marks get at the current view (before painting)."""
        out: set[str] = set()
        x0, x1 = self.x_range()
        for info in self.plots:
            npix = max(1, int(info.plot.getViewBox().width()))
            rows: dict[str, int] = {}
            for track in info.item.tracks:
                if isinstance(track, MarkTrack) and len(track.t):
                    i0, i1 = visible_range(track.t, x0, x1)
                    if i1 > i0:
                        rows[track.row] = rows.get(track.row, 0) + (i1 - i0)
            for count in rows.values():
                out.add(choose_mode(count, npix))
        return out

    def _update_mode_label(self) -> None:
        modes = self.planned_modes()
        if not modes:
            self.mode_label.setText("")
            return
        label = "binned per pixel" if "binned" in modes else "exact marks"
        x0, x1 = self.x_range()
        self.mode_label.setText(f"{label} · window {fmt_s(x1 - x0)}")

    def detail_modes(self) -> set[str]:
        """Level of detail of the lane marks as of the last paint (`exact` / `binned`)."""
        out = set()
        for info in self.plots:
            for track in info.item.tracks:
                if isinstance(track, MarkTrack) and track.last_mode and len(track.t):
                    out.add(track.last_mode)
        return out

    # ---- cursor, selection, bookmarks, measurement --------------------------------------------
    def set_cursor(self, t: float | None) -> None:
        self._cursor_t = t
        for info in self.plots:
            if info.cursor is not None:
                info.cursor.setVisible(t is not None)
                if t is not None:
                    info.cursor.setValue(t)
        if t is not None and self.follow and self.plots:
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

    def _label_opts(self, color: str, left: bool, level: int = 0) -> dict:
        """Labels sit in the first plot's top row (`bookmarks`), beside their line.

        `level` 0/1 staggers neighbouring labels (upper/lower half of that row).
        """
        n = len(self.plots[0].row_names) if self.plots else 8
        anchor = (1.0, 0.5) if left else (0.0, 0.5)
        fill = QtGui.QColor(themes.current().plot_bg)
        fill.setAlpha(210)
        return {"position": (0.3 + 0.42 * level) / n, "anchors": [anchor, anchor], "color": color, "fill": pg.mkBrush(fill)}

    def set_bookmarks(self, marks: list[tuple[str, float]]) -> None:
        self._bookmarks = list(marks)
        self._rebuild_bookmarks()

    def _rebuild_bookmarks(self) -> None:
        th = themes.current()
        for n, info in enumerate(self.plots):
            for line in info.bookmarks:
                info.plot.removeItem(line)
            info.bookmarks = []
            for j, (name, t) in enumerate(sorted(self._bookmarks, key=lambda m: m[1])):
                opts = {}
                if n == 0:
                    opts = dict(label=name, labelOpts=self._label_opts(th.marks["bookmark"], left=False, level=j % 2))
                line = pg.InfiniteLine(pos=t, angle=90, movable=False, pen=pg.mkPen(th.color("bookmark"), width=1, style=QtCore.Qt.PenStyle.DashDotLine), **opts)
                line.setZValue(40)
                line.setToolTip(f"bookmark: {name} at {fmt_s(t)}")
                info.plot.addItem(line, ignoreBounds=True)
                info.bookmarks.append(line)

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
        for info in self.plots:
            if len(info.measure) == 2:
                info.measure[which].setValue(t)
        self._emit_measure()

    def measure(self) -> tuple[float, float] | None:
        return tuple(self._measure_pos) if self._measure_on else None  # type: ignore[return-value]

    def _rebuild_measure(self) -> None:
        th = themes.current()
        for n, info in enumerate(self.plots):
            for line in info.measure:
                info.plot.removeItem(line)
            info.measure = []
            if not self._measure_on:
                continue
            for j, label in enumerate(("A", "B")):
                role = "measure_a" if j == 0 else "measure_b"
                opts = {}
                if n == 0:
                    opts = dict(label=label, labelOpts=self._label_opts(th.marks[role], left=j == 0))
                line = pg.InfiniteLine(pos=self._measure_pos[j], angle=90, movable=True, pen=pg.mkPen(th.color(role), width=1.5, style=QtCore.Qt.PenStyle.DashLine), **opts)
                line.setHoverPen(pg.mkPen(th.color(role), width=3))
                line.setZValue(60)
                line.sigPositionChanged.connect(lambda ln, which=j: self._measure_moved(which, ln))
                info.plot.addItem(line, ignoreBounds=True)
                info.measure.append(line)

    def _measure_moved(self, which: int, line: pg.InfiniteLine) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self._measure_pos[which] = float(line.value())
            for info in self.plots:
                if len(info.measure) == 2 and info.measure[which] is not line:
                    info.measure[which].setValue(self._measure_pos[which])
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

    def pick(self, info: _PlotInfo, x: float, y: float) -> tuple[int, Track | None]:
        """Event index of the mark nearest (x, y) within a few pixels, else (-1, None)."""
        vb = info.plot.getViewBox()
        tol = PICK_PX * vb.viewPixelSize()[0]
        if info.kind == "lanes":
            names = info.row_names
            row = names[min(len(names) - 1, max(0, int(y)))]
            candidates = [t for t in info.rows[row] if abs(getattr(t, "y", 0) - y) <= max(0.5, getattr(t, "height", 1) / 2)]
        else:
            candidates = info.rows["steps"]
        best: tuple[float, int, Track] | None = None
        for track in candidates:
            hit = track.pick(x, tol)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = (hit[0], hit[1], track)
        if best is None:
            return -1, None
        return best[1], best[2]

    def _on_click(self, ev) -> None:
        if self.data is None:
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

    def _on_hover(self, args) -> None:
        if self.data is None or self.describe is None:
            return
        pos = args[0]
        loc = self._locate(pos)
        if loc is None:
            QtWidgets.QToolTip.hideText()
            return
        info, x, y = loc
        idx, track = self.pick(info, x, y)
        lines = [f"t = {fmt_s(x)}"]
        if info.kind == "deadline":
            for s in info.rows["steps"]:
                v = s.value_at(x)
                if np.isfinite(v):
                    lines.append(f"{s.name}: {fmt_s(v)}")
        if isinstance(track, SpanTrack):
            i = track.span_at(x)
            if i >= 0:
                status = "fired" if track.flag[i] == SPAN_FIRED else ("cancelled" if track.flag[i] == 1 else "open")
                lines.append(f"{track.label}: {fmt_s(track.t0[i])} → {fmt_s(track.t1[i])} ({fmt_s(track.t1[i] - track.t0[i])}, {status})")
        if idx >= 0:
            lines.append(self.describe(idx))
        widget_pos = self.glw.mapFromScene(pos)
        QtWidgets.QToolTip.showText(self.glw.mapToGlobal(widget_pos), "\n".join(lines), self.glw)

    # ---- export -----------------------------------------------------------------------------
    def export_png(self, path: str, width: int | None = None) -> None:
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.glw.ci)
        w = width or max(800, int(self.glw.ci.boundingRect().width()))
        exporter.parameters()["width"] = w
        exporter.parameters()["background"] = QtGui.QColor(themes.current().plot_bg)
        exporter.export(path)

    def export_svg(self, path: str) -> None:
        """Vector export of the whole timeline (legend, lanes, axes).

        Rendered with Qt's QSvgGenerator: pyqtgraph 0.14's SVGExporter post-processes
        Qt's path data and cannot parse the closing `Z` commands Qt 6.12 writes. The
        tracks draw vector glyphs (not stamped pixmaps) on an SVG paint engine.
        """
        from PySide6 import QtSvg

        rect = self.glw.ci.sceneBoundingRect()
        w, h = max(1, int(rect.width())), max(1, int(rect.height()))
        gen = QtSvg.QSvgGenerator()
        gen.setFileName(path)
        gen.setSize(QtCore.QSize(w, h))
        gen.setViewBox(QtCore.QRect(0, 0, w, h))
        gen.setResolution(int(round(self.glw.logicalDpiX())))
        gen.setTitle(self.title.text() or "lazytsc timeline")
        gen.setDescription("lazytsc timeline export")
        painter = QtGui.QPainter(gen)
        try:
            painter.fillRect(QtCore.QRectF(0, 0, w, h), QtGui.QColor(themes.current().plot_bg))
            self.glw.scene().render(painter, QtCore.QRectF(0, 0, w, h), rect)
        finally:
            painter.end()
