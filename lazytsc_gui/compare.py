"""Compare view: two runs side by side with linked time axes and their exit tables diffed.

For a scenario: the classic and the lazy run. For an imported trace: the
recording against the lazy what-if replay (`lazytsc.traces.whatif`), with the
two replays (classic and lazy) drawn on linked timelines.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .exits_panel import TIMER_TIPS, get_path, share, table_rows
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


def diff_rows(a: dict, b: dict) -> list[tuple[str, int, str, int, str, int, str]]:
    """(label, a, a%, b, b%, Δ, Δ%) for every row of the seed's table."""
    out = []
    for label, path in table_rows(a, b):
        va = get_path(a, path)
        vb = get_path(b, path)
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
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 4)
        top.addWidget(self.title, 1)
        top.addWidget(self.refresh_btn)
        self.timeline_a = TimelineWidget(describe=describe_a)
        self.timeline_b = TimelineWidget(describe=describe_b, legend=False)
        for tl in (self.timeline_a, self.timeline_b):
            tl.follow = False
            # same plot widths in both, so linked time axes line up on screen
            tl.scroll.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        lanes = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        lanes.addWidget(self.timeline_a)
        lanes.addWidget(self.timeline_b)
        self.table = QtWidgets.QTableWidget(0, 7)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
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
        self.title.setText(text)
        self.refresh_btn.setEnabled(False)

    def clear(self, text: str) -> None:
        self.a = self.b = None
        self.title.setText(text)
        self.headline.setText("")
        self.table.setRowCount(0)
        self.timeline_a.clear()
        self.timeline_b.clear()
        self.refresh_btn.setEnabled(True)

    def set_sides(self, title: str, a: Side, b: Side, headline: str = "") -> None:
        self.a, self.b = a, b
        self.title.setText(title)
        self.refresh_btn.setEnabled(True)
        self.refresh_btn.setText("Re-run comparison")
        for widget, side in ((self.timeline_a, a), (self.timeline_b, b)):
            if side.data is not None:
                title = side.timeline_title or f"<b>{side.label}</b> · {side.summary['exits']['total']:,} exits · {side.summary['events']:,} events"
                widget.set_data(side.data, title)
            else:
                widget.clear()
                widget.empty.setText(f"{side.label}: no timeline (summary only)")
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
            cells = [label, f"{va:,}", pa, f"{vb:,}", pb, f"{delta:+,}" if delta else "0", rel]
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
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)

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
