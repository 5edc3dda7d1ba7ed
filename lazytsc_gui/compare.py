"""Compare view: two runs side by side with linked time axes and their exit tables diffed.

For a scenario: the classic and the lazy run. For an imported trace: the
recording against the lazy what-if replay (`lazytsc.traces.whatif`), with the
two replays (classic and lazy) drawn on linked timelines. Each pane has its own
time ruler (it never scrolls away); while a comparison runs, the panes and the
table say so and show its progress instead of the previous comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .exits_panel import TIMER_TIPS, find_path, share, table_rows
from .fmt import fmt_ns
from .timeline import TimelineWidget
from .timeline_data import TimelineData


@dataclass
class Side:
    label: str
    summary: dict
    data: TimelineData | None = None
    log: object = None
    timeline_title: str = ""


def diff_rows(a: dict, b: dict) -> list[tuple[str, int | None, str, int | None, str, int | None, str]]:
    """(label, a, a%, b, b%, Δ, Δ%) for every row of the seed's table.

    A figure one side lacks (host timer counts of a recording) is None there and
    has no Δ: the view prints n/a, never a made-up zero.
    """
    out = []
    for label, path in table_rows(a, b):
        va = find_path(a, path)
        vb = find_path(b, path)
        if va is None or vb is None:
            out.append((label, va, "", vb, "", None, ""))
            continue
        delta = vb - va
        rel = f"{100.0 * delta / va:+.1f}%" if va else ("" if not vb else "new")
        out.append((label, va, share(a, path), vb, share(b, path), delta, rel))
    return out


class CompareView(QtWidgets.QWidget):
    refreshRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None, describe_a=None, describe_b=None) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel("Compare: run the open scenario in classic and lazy mode side by side.")
        self.title.setWordWrap(True)
        self.title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.refresh_btn = QtWidgets.QPushButton("Run comparison")
        self.refresh_btn.clicked.connect(self.refreshRequested)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 4)
        top.addWidget(self.title, 1)
        top.addWidget(self.progress)
        top.addWidget(self.refresh_btn)
        self.busy = False
        self.timeline_a = TimelineWidget(describe=describe_a)
        self.timeline_b = TimelineWidget(describe=describe_b, legend=False)
        for tl in (self.timeline_a, self.timeline_b):
            tl.follow = False
            tl.markers_btn.setVisible(False)  # markers belong to the debugged run
        lanes = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        lanes.addWidget(self.timeline_a)
        lanes.addWidget(self.timeline_b)
        self.table = QtWidgets.QTableWidget(0, 7)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.headline = QtWidgets.QLabel("")
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(QtCore.Qt.TextFormat.RichText)
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(4, 0, 4, 4)
        rl.addWidget(self.headline)
        rl.addWidget(self.table, 1)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(lanes)
        split.addWidget(right)
        self.right = right
        self.split = split
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([1000, 430])
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.a: Side | None = None
        self.b: Side | None = None
        themes.manager().changed.connect(self._on_theme)

    def _on_theme(self, _theme) -> None:
        self._fill_table()

    def set_busy(self, text: str) -> None:
        """A comparison is running: nothing of the previous one stays on screen."""
        self.busy = True
        self.a = self.b = None
        self.title.setText(text)
        self.headline.setText("")
        self.table.setRowCount(0)
        self.refresh_btn.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting…")
        self.progress.setVisible(True)
        for tl in (self.timeline_a, self.timeline_b):
            tl.show_message(f"{text}\n(the timelines appear when both runs are done)")

    def set_progress(self, fraction: float, text: str) -> None:
        if not self.busy:
            return
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(text or "working…")
        self.progress.setToolTip(text)
        for tl in (self.timeline_a, self.timeline_b):
            if tl.data is None:
                tl.empty.setText(f"{self.title.text()}\n{text}")

    def _done(self) -> None:
        self.busy = False
        self.progress.setVisible(False)

    def clear(self, text: str) -> None:
        self._done()
        self.a = self.b = None
        self.title.setText(text)
        self.headline.setText("")
        self.table.setRowCount(0)
        for tl in (self.timeline_a, self.timeline_b):
            tl.show_message(text)
        self.refresh_btn.setEnabled(True)

    def set_sides(self, title: str, a: Side, b: Side, headline: str = "") -> None:
        self._done()
        self.a, self.b = a, b
        self.title.setText(title)
        self.refresh_btn.setEnabled(True)
        self.refresh_btn.setText("Re-run comparison")
        for widget, side in ((self.timeline_a, a), (self.timeline_b, b)):
            if side.data is not None:
                title = side.timeline_title or f"<b>{side.label}</b> · {side.summary['exits']['total']:,} exits · {side.summary['events']:,} events"
                widget.set_data(side.data, title)
            else:
                widget.show_message(f"{side.label}: no timeline (summary only)")
        if self.timeline_a.master is not None and self.timeline_b.master is not None:
            self.timeline_b.link_x(self.timeline_a)
            self.timeline_a.zoom_to_fit()
        ea, eb = a.summary["exits"], b.summary["exits"]
        saved = ea["total"] - eb["total"]
        auto = (
            f"<b>{b.label}</b> vs <b>{a.label}</b>: total exits {ea['total']:,} → {eb['total']:,} "
            f"({'-' if saved >= 0 else '+'}{abs(saved):,}, {(-100.0 * saved / ea['total'] if ea['total'] else 0):+.1f}%); "
            f"tsc-deadline writes {ea['msr_write']['tsc-deadline']:,} → {eb['msr_write']['tsc-deadline']:,}; "
            f"spurious interrupts {a.summary['timer']['spurious']:,} → {b.summary['timer']['spurious']:,}"
        )
        self.headline.setText(headline or auto)
        self._fill_table()

    def _fill_table(self) -> None:
        if self.a is None or self.b is None:
            return
        rows = diff_rows(self.a.summary, self.b.summary)
        self.table.setColumnCount(7)
        self.table.setHorizontalHeaderLabels(["VM exits", self.a.label, "%", self.b.label, "%", "Δ", "Δ%"])
        self.table.setRowCount(len(rows))
        th = themes.current()
        better = QtGui.QColor(th.marks["span_fired"])
        worse = QtGui.QColor(th.marks["haz:spurious"])
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        for r, (label, va, pa, vb, pb, delta, rel) in enumerate(rows):
            cells = [
                label,
                "n/a" if va is None else f"{va:,}",
                pa,
                "n/a" if vb is None else f"{vb:,}",
                pb,
                "" if delta is None else (f"{delta:+,}" if delta else "0"),
                rel,
            ]
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                if label == "total":
                    item.setFont(bold)
                if not col and label.startswith("timer: "):
                    item.setToolTip(TIMER_TIPS.get(label.removeprefix("timer: "), ""))
                if col >= 5 and delta:
                    # fewer exits (or fewer hazards) is better; more skipped writes is better too
                    good = (delta < 0) != (label == "timer: msr_writes_skipped")
                    if label in ("timer: deadline_requests", "timer: interrupts", "timer: interrupts_useful"):
                        good = None
                    if good is not None:
                        item.setForeground(better if good else worse)
                self.table.setItem(r, col, item)
        self._fit_table()

    def _fit_table(self) -> None:
        """Numbers at their full width, the row labels elided if need be, and the pane wide enough.

        Every column but the labels sizes to its contents; the pane is widened to
        hold all of them, so Δ% is never cut off however big the counts are.
        """
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        fm = self.table.fontMetrics()
        label_w = min(max((fm.horizontalAdvance(self.table.item(r, 0).text()) for r in range(self.table.rowCount())), default=80) + 16, 230)
        numbers = sum(self.table.sizeHintForColumn(c) for c in range(1, self.table.columnCount()))
        numbers = max(numbers, sum(hh.sectionSizeFromContents(c).width() for c in range(1, self.table.columnCount())))
        scroll = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        need = label_w + numbers + scroll + 2 * self.table.frameWidth() + 16
        # the splitter's sizes, not a minimum width: a minimum would leak into the
        # window's layout through the tab widget and squeeze the docks
        self.table_width = int(need)
        sizes = self.split.sizes()
        if len(sizes) == 2 and sizes[1] < need:
            total = sum(sizes)
            self.split.setSizes([max(200, total - int(need)), int(need)])

    def delta_column_visible(self) -> bool:
        """Whether the Δ% column is wholly inside the table's viewport (tests)."""
        col = self.table.columnCount() - 1
        x = self.table.columnViewportPosition(col)
        return x >= 0 and x + self.table.columnWidth(col) <= self.table.viewport().width() + 1

    def table_text(self) -> list[list[str]]:
        """The diff table as text (tests, export)."""
        out = []
        for r in range(self.table.rowCount()):
            out.append([self.table.item(r, c).text() if self.table.item(r, c) else "" for c in range(self.table.columnCount())])
        return out


def what_if_headline(w) -> str:
    cal = w.calibration
    warn = "".join(f"<br>⚠ {x}" for x in w.warnings)
    return (
        f"<b>What-if lazy</b> ({w.variant}, {w.timer_backend} timer): {w.requests:,} recorded deadline writes replayed. "
        f"<b>{w.saved_tsc_deadline_exits:,}</b> tsc-deadline exits saved, "
        f"<b>{w.added_spurious_interrupts:,}</b> early (spurious) interrupts added, "
        f"{w.added_timer_exits:+,} timer exits. Guest TSC {cal.tsc_khz:,} kHz ({cal.method}, {cal.pairs} pairs, "
        f"residual {fmt_ns(cal.residual_ns)}). Timelines: the classic and lazy replays.{warn}"
    )
