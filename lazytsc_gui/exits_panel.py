"""Exit accounting in the seed's layout: at the cursor and for the whole run.

Counts are those of `lazytsc.accounting.summarize(log, upto=position)`, kept
incrementally (`log_index.PrefixCounts`: a step counts one event, not the prefix);
the rows follow the seed's table (reasons, then msr-write sub-reasons as a share
of msr-write, then timer counters). The protocol's headline number, msr-write
tsc-deadline exits, also stands above the table so it is never below the fold.
Below it, the exits caused by the selected event (`log_index.CausalIndex`), so a
user can see what one guest write cost.
"""

from __future__ import annotations

import html

from lazytsc.accounting import ALWAYS_REASONS, ALWAYS_SUBS, TIMER_ROWS
from lazytsc.taxonomy import EXIT_ORDER, MSR_SUB_ORDER
from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .fmt import fmt_ns, percent
from .log_index import CausalIndex, PrefixCounts

TIMER_KEYS = (*TIMER_ROWS, "expiries_dropped")  # the panel also shows the dropped expiries
# What each timer row counts (the row's tooltip).
TIMER_TIPS = {
    "deadline_requests": "set_next_event calls: deadlines the guest asked for",
    "msr_writes": "MSR_IA32_TSC_DEADLINE writes that exited",
    "msr_writes_skipped": "deadlines the lazy driver did not write (tsc >= armed)",
    "interrupts": "guest timer interrupts (vector 0xec) taken",
    "interrupts_useful": "timer interrupts at or after the deadline the guest wanted",
    "spurious": "timer interrupts before the deadline the guest wanted (the armed one fired early)",
    "late": "timer interrupts later than late_tolerance_ns after the wanted deadline",
    "lost": "deadlines nothing would ever deliver",
    "host_expiries": "every apic_timer_expired on the host, latched, injected or coalesced: the host-side cost",
    "host_timer_fires": "host timers that fired: hrtimer callbacks and preemption-timer exits",
    "expiries_dropped": "latched expiries zeroed before injection (a re-arm, cancel or reset)",
}


def table_rows(whole: dict, *others: dict) -> list[tuple[str, tuple]]:
    """Row labels and their key paths, in the seed's order (zero rows hidden unless the seed shows them)."""
    rows: list[tuple[str, tuple]] = [("total", ("exits", "total"))]
    summaries = (whole, *others)
    for reason in EXIT_ORDER:
        if reason in ALWAYS_REASONS or any(s["exits"]["by_reason"][reason] for s in summaries):
            rows.append((reason, ("exits", "by_reason", reason)))
    for sub in MSR_SUB_ORDER:
        if sub in ALWAYS_SUBS or any(s["exits"]["msr_write"][sub] for s in summaries):
            rows.append((f"msr-write: {sub}", ("exits", "msr_write", sub)))
    for key in TIMER_KEYS:
        # a figure no summary has (an imported recording alone) shows no row; where only
        # one side of a comparison lacks it, the row stays and that side reads n/a
        if any(key in s.get("timer", {}) for s in summaries):
            rows.append((f"timer: {key}", ("timer", key)))
    return rows


def get_path(summary: dict, path: tuple) -> int:
    value = summary
    for key in path:
        value = value[key]
    return int(value)


def find_path(summary: dict, path: tuple) -> int | None:
    """The count at `path`, or None where the summary has no such figure (a recording)."""
    value = summary
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return int(value)


def share(summary: dict, path: tuple) -> str:
    """The seed's percentages: reasons of all exits, msr-write subs of msr-write."""
    if path[0] != "exits" or path[1] == "total":
        return ""
    whole = summary["exits"]["by_reason"]["msr-write"] if path[1] == "msr_write" else summary["exits"]["total"]
    return percent(get_path(summary, path), whole)


class ExitsPanel(QtWidgets.QWidget):
    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.headline = QtWidgets.QLabel("")
        self.headline.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.headline.setWordWrap(True)
        # a fixed height: new numbers must not relayout (and repaint) the window
        self.headline.setFixedHeight(self.fontMetrics().height() * 2 + 6)
        self.headline.setToolTip("MSR_IA32_TSC_DEADLINE writes that exit to the host: what lazy mode saves")
        self.table = QtWidgets.QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["VM exits", "at cursor", "%", "whole run", "%"])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.caused_label = QtWidgets.QLabel("Select an event to see the exits it caused.")
        self.caused_label.setWordWrap(True)
        self.caused = QtWidgets.QTableWidget(0, 4)
        self.caused.setHorizontalHeaderLabels(["#", "time", "event", "exit"])
        self.caused.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.caused.verticalHeader().setVisible(False)
        self.caused.horizontalHeader().setStretchLastSection(True)
        self.caused.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.caused.cellDoubleClicked.connect(self._caused_jump)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.table)
        bottom = QtWidgets.QWidget()
        bl = QtWidgets.QVBoxLayout(bottom)
        bl.setContentsMargins(0, 4, 0, 0)
        bl.addWidget(self.caused_label)
        bl.addWidget(self.caused, 1)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(split)
        self._counts: PrefixCounts | None = None
        self._marked: dict[int, bool] = {}
        self._causal: CausalIndex | None = None
        self._causal_log = None
        self.raw_line = ""
        self._rows: list[tuple[str, tuple]] = []
        self._last_cursor: dict | None = None
        self.cursor_summary: dict | None = None
        controller.documentChanged.connect(self._rebuild)
        controller.positionChanged.connect(self.refresh)
        controller.selectionChanged.connect(self.refresh_caused)
        themes.manager().changed.connect(self._on_theme)

    def _on_theme(self, _theme) -> None:
        self._last_cursor = None
        self._marked = {}
        self.refresh()

    def _rebuild(self, doc) -> None:
        self._last_cursor = None
        self._marked = {}
        self._causal = None
        self._counts = PrefixCounts(doc.log) if doc is not None else None
        if doc is None:
            self.table.setRowCount(0)
            self.headline.setText("")
            return
        self._rows = table_rows(doc.summary)
        self.table.setRowCount(len(self._rows))
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        for r, (label, path) in enumerate(self._rows):
            item = QtWidgets.QTableWidgetItem(label if not label.startswith("msr-write: ") else "  " + label)
            if path[0] == "timer":
                item.setToolTip(TIMER_TIPS.get(path[1], ""))
            if label == "total":
                item.setFont(bold)
            self.table.setItem(r, 0, item)
            for col in range(1, 5):
                cell = QtWidgets.QTableWidgetItem("")
                cell.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, col, cell)
            whole = doc.summary
            self.table.item(r, 3).setText(f"{get_path(whole, path):,}")
            self.table.item(r, 4).setText(share(whole, path))
        self.refresh()
        self.refresh_caused(self.controller.selected_event)

    def refresh(self, _pos: int | None = None) -> None:
        c = self.controller
        if c.doc is None or not self._rows:
            return
        if self._counts is None or self._counts.log is not c.doc.log or len(self._counts.kind) != len(c.doc.log):
            self._counts = PrefixCounts(c.doc.log)
        self._counts.move_to(c.position)
        cur = self._counts.summary()
        self.cursor_summary = cur
        self._update_headline(cur, c.doc.summary)
        th = themes.current()
        last = self._last_cursor
        for r, (_label, path) in enumerate(self._rows):
            value = get_path(cur, path)
            old = get_path(last, path) if last is not None else None
            if old == value and not self._marked.get(r):
                continue  # nothing to repaint in this row
            item = self.table.item(r, 1)
            item.setText(f"{value:,}")
            self.table.item(r, 2).setText(share(cur, path))
            changed = old is not None and old != value
            self._marked[r] = changed
            item.setBackground(QtGui.QColor(th.changed_bg) if changed else QtGui.QBrush())
            item.setForeground(QtGui.QColor(th.changed_fg) if changed else QtGui.QBrush())
        self._last_cursor = cur
        if c.selected_event < 0:
            self.refresh_caused(-1)

    def _update_headline(self, cur: dict, whole: dict) -> None:
        def cell(s: dict) -> str:
            n = s["exits"]["msr_write"]["tsc-deadline"]
            return f"<b>{n:,}</b> ({percent(n, s['exits']['by_reason']['msr-write'])})"

        self.headline.setText(f"<b>tsc-deadline exits</b> &nbsp;{cell(cur)} at the cursor &nbsp;·&nbsp; {cell(whole)} whole run")

    def refresh_caused(self, index: int) -> None:
        c = self.controller
        if c.doc is None:
            return
        idx = index if index >= 0 else c.current_event
        if idx < 0 or idx >= c.total:
            self.caused_label.setText("Select an event to see the exits it caused.")
            self.caused.setRowCount(0)
            return
        log = c.doc.log
        if self._causal is None or self._causal_log is not log:
            self._causal = CausalIndex(log)
            self._causal_log = log
        found = self._causal.caused_by(idx)
        ev = log.event(idx)
        exits = [int(i) for i in found if log.exit[int(i)] >= 0]
        by: dict[str, int] = {}
        for i in exits:
            e = log.event(i)
            key = e.exit_name + (f"/{e.sub_name}" if e.sub >= 0 else "")
            by[key] = by.get(key, 0) + 1
        what = "selected" if index >= 0 else "current"
        summary = ", ".join(f"{k} × {v}" for k, v in by.items()) or "none"
        raw = getattr(c.doc, "raw", None)
        line = raw.text(idx) if raw is not None else ""
        source = f"<br>line {raw.line_of(idx):,} of the trace: <code>{html.escape(line.strip())}</code>" if line else ""
        self.raw_line = line
        self.caused_label.setToolTip(f"trace line {raw.line_of(idx):,}:\n{line}" if line else "")
        self.caused_label.setText(
            f"<b>{len(exits)} exit(s)</b> caused by the {what} event #{idx} <code>{ev.describe()}</code> "
            f"and the {len(found) - 1} event(s) it caused: {summary}{source}"
        )
        rows = [int(i) for i in found][:500]
        self.caused.setRowCount(len(rows))
        th = themes.current()
        for r, i in enumerate(rows):
            e = log.event(i)
            cells = [str(i), fmt_ns(e.time), e.describe(), (e.exit_name + (f"/{e.sub_name}" if e.sub >= 0 else "")) if e.exit >= 0 else ""]
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if e.exit >= 0:
                    item.setForeground(QtGui.QColor(th.marks.get(f"exit:{e.exit_name}", th.text)))
                self.caused.setItem(r, col, item)
        self.caused.resizeColumnsToContents()

    def _caused_jump(self, row: int, _col: int) -> None:
        item = self.caused.item(row, 0)
        if item is not None:
            self.controller.select_event(int(item.text()))
