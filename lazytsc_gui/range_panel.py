"""Range statistics between measurement cursors A and B: counts per kind and exit, Δt.

The cursors are times on the timeline; the range is the events logged at or after
A and at or before B (`lazytsc.debugger.range_stats`), so "how many exits did this
burst cost" is read off without counting marks.
"""

from __future__ import annotations

import html

import numpy as np
from lazytsc.debugger import range_stats
from PySide6 import QtCore, QtWidgets

from .fmt import fmt_ns


class RangePanel(QtWidgets.QWidget):
    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["in A → B", "count"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMaximumWidth(560)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.label)
        layout.addWidget(self.table, 1)
        self.measure: tuple[float, float] | None = None
        self.stats: dict | None = None
        controller.documentChanged.connect(lambda _d: self.set_measure(self.measure))
        self.set_measure(None)

    def set_measure(self, m) -> None:
        """Cursor times (A, B) in seconds, or None when the cursors are off."""
        self.measure = tuple(m) if m is not None else None
        doc = self.controller.doc
        if doc is None or self.measure is None:
            self.stats = None
            self.label.setText("Turn on the measurement cursors (<b>Ctrl+M</b>) and place A and B: the events, exits per reason and Δt between them show here.")
            self.table.setRowCount(0)
            return
        a, b = sorted(self.measure)
        times = doc.log.column("time")
        lo = int(np.searchsorted(times, int(round(a * 1e9)), side="left"))
        hi = int(np.searchsorted(times, int(round(b * 1e9)), side="right"))
        st = range_stats(doc.log, lo, hi)
        self.stats = st
        span = fmt_ns(int(round((b - a) * 1e9)))
        if st["events"]:
            first = f"#{st['first']:,} … #{st['last']:,}"
            self.label.setText(
                f"<b>A → B = {html.escape(span)}</b> &nbsp;·&nbsp; <b>{st['events']:,}</b> events ({first}), "
                f"<b>{st['exits_total']:,}</b> exits, first to last event {html.escape(fmt_ns(st['dt_ns']))}"
            )
        else:
            self.label.setText(f"<b>A → B = {html.escape(span)}</b> &nbsp;·&nbsp; no events between the cursors")
        rows: list[tuple[str, int]] = [("exits (all)", st["exits_total"])]
        rows += [(f"exit: {k}", v) for k, v in sorted(st["exits"].items(), key=lambda kv: -kv[1])]
        rows += [(f"msr-write: {k}", v) for k, v in sorted(st["msr_write"].items(), key=lambda kv: -kv[1])]
        rows += [(f"event: {k}", v) for k, v in sorted(st["kinds"].items(), key=lambda kv: -kv[1])]
        self.table.setRowCount(len(rows))
        for r, (name, value) in enumerate(rows):
            self.table.setItem(r, 0, QtWidgets.QTableWidgetItem(name))
            item = QtWidgets.QTableWidgetItem(f"{value:,}")
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, 1, item)
