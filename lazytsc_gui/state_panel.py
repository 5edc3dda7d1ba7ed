"""Shared page and host state at the cursor, one column per vCPU.

Reads `Session.snapshot()` (via the controller) and highlights the fields the
last step changed (`VcpuSnapshot.changed_fields`). TSC values are also shown as
times (the vCPU's tsc_khz) relative to the cursor, which is what a reader of
`pending` / `armed` actually wants to know. Double-click a value to jump to the
event that wrote it; right-click to watch it. A refresh only touches cells whose
text changed (stepping must stay fast at 10^6 events).
"""

from __future__ import annotations

import numpy as np
from lazytsc.taxonomy import Kind
from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .fmt import fmt_hex, fmt_ns, fmt_short, position_text

SECTIONS: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "Shared page (guest memory)",
        [
            ("pending", "tsc", "Deadline the guest wants (written by the lazy driver)"),
            ("armed", "tsc", "Deadline the host has armed (written by update/kick/clear)"),
        ],
    ),
    (
        "Host lazy state",
        [
            ("cached_armed", "tsc", "Host copy of armed (zeroed by exit)"),
            ("pv_msr", "hex", "MSR_KVM_LAZY_TSCDEADLINE value: page GPA | enable bit"),
            ("pv_mapped", "bool", "Host has the shared page mapped (init)"),
            ("pv_registered", "bool", "Guest driver registered the page"),
            ("kick_requested", "bool", "KVM_REQ_LAZY_TSCDEADLINE pending (sw path)"),
        ],
    ),
    (
        "LAPIC timer",
        [
            ("timer_mode", "str", "LVTT bits 17-18"),
            ("lvtt", "hex", "LVT timer register"),
            ("lvtt_masked", "bool", "LVTT mask bit"),
            ("tmict", "int", "Initial count"),
            ("tmcct", "int", "Current count"),
            ("tdcr", "hex", "Divide configuration"),
            ("divisor", "int", "Divisor from TDCR"),
            ("spiv", "hex", "Spurious-interrupt vector register"),
            ("tsc_deadline_msr", "tsc", "IA32_TSC_DEADLINE as the guest reads it"),
            ("timer_armed", "bool", "Host timer running"),
            ("timer_target_ns", "ns", "When the host timer expires"),
            ("timer_backend", "str", "hv (preemption timer) or sw (hrtimer)"),
            ("irq_latched", "bool", "An expiry is latched, not yet delivered"),
        ],
    ),
    (
        "vCPU and guest kernel",
        [
            ("tsc", "tsc", "Guest TSC now"),
            ("halted", "bool", "Blocked in HLT"),
            ("guest_idle", "bool", "Guest in its idle loop"),
            ("guest_wanted", "tsc", "Deadline the guest's clockevent last asked for"),
            ("guest_next_event_ns", "ns", "Guest hrtimer expires_next"),
            ("tick_stopped", "bool", "NOHZ tick stopped"),
        ],
    ),
]


# State panel field -> lazytsc.observe name (what "who wrote it" and watchpoints read).
OBSERVE_NAMES: dict[str, str] = {
    "pending": "pending",
    "armed": "armed",
    "cached_armed": "cached_armed",
    "pv_msr": "pv_msr",
    "pv_mapped": "mapped",
    "pv_registered": "registered",
    "kick_requested": "requested",
    "timer_mode": "mode",
    "lvtt": "lvtt",
    "lvtt_masked": "masked",
    "tmict": "tmict",
    "tdcr": "tdcr",
    "tsc_deadline_msr": "tsc_deadline",
    "timer_armed": "timer_armed",
    "irq_latched": "latched",
    "halted": "halted",
    "guest_idle": "idle",
    "guest_wanted": "wanted",
}


class StatePanel(QtWidgets.QWidget):
    watchRequested = QtCore.Signal(str, int)  # observe name, vCPU

    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.header = QtWidgets.QLabel("No run loaded")
        self.header.setWordWrap(True)
        self.header.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.header.setFixedHeight(self.fontMetrics().height() * 3 + 8)  # no relayout per step
        self.table = QtWidgets.QTableWidget()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setAlternatingRowColors(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.table, 1)
        self.highlighted: dict[int, frozenset[str]] = {}
        self._rows: dict[str, int] = {}
        self._field_of_row: dict[int, str] = {}
        self._widest: dict[int, int] = {}
        self.table.cellDoubleClicked.connect(self._cell_double_clicked)
        self.table.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        controller.positionChanged.connect(self.refresh)
        controller.documentChanged.connect(self._rebuild)
        themes.manager().changed.connect(self._on_theme)
        self._rebuild(None)

    def _on_theme(self, _theme) -> None:
        self.refresh()

    def _rebuild(self, _doc=None) -> None:
        n = max(1, self.controller.n_vcpus)
        lines = 4 if self.controller.doc is not None and self.controller.session is None else 3
        self.header.setFixedHeight(self.fontMetrics().height() * lines + 8)
        self.table.clear()
        self._rows = {}
        rows = sum(1 + len(fields) for _, fields in SECTIONS)
        self.table.setRowCount(rows)
        self.table.setColumnCount(1 + n)
        self.table.setHorizontalHeaderLabels(["field"] + [f"vCPU {v}" for v in range(n)])
        r = 0
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        for title, fields in SECTIONS:
            item = QtWidgets.QTableWidgetItem(title)
            item.setFont(bold)
            self.table.setItem(r, 0, item)
            self.table.setSpan(r, 0, 1, 1 + n)
            r += 1
            for name, _kind, tip in fields:
                item = QtWidgets.QTableWidgetItem("  " + name)
                item.setToolTip(tip)
                self.table.setItem(r, 0, item)
                for v in range(n):
                    self.table.setItem(r, 1 + v, QtWidgets.QTableWidgetItem(""))
                self._rows[name] = r
                self._field_of_row[r] = name
                if name in OBSERVE_NAMES:
                    item.setToolTip(tip + "\nDouble-click a value: jump to the event that wrote it; right-click: watch it")
                r += 1
        self.table.resizeColumnToContents(0)
        self._widest = {}
        self.refresh()

    def field_at(self, row: int) -> str:
        return self._field_of_row.get(row, "")

    def _cell_double_clicked(self, row: int, col: int) -> None:
        name = OBSERVE_NAMES.get(self.field_at(row), "")
        if name and col >= 1 and self.controller.session is not None:
            self.controller.who_wrote(col - 1, name)

    def _context_menu(self, pos: QtCore.QPoint) -> None:
        index = self.table.indexAt(pos)
        field = self.field_at(index.row()) if index.isValid() else ""
        name = OBSERVE_NAMES.get(field, "")
        if not name or index.column() < 1 or self.controller.session is None:
            return
        v = index.column() - 1
        menu = QtWidgets.QMenu(self)
        menu.addAction(f"Jump to the event that wrote {field} (vCPU {v})", lambda: self.controller.who_wrote(v, name))
        menu.addAction(f"Watch {name} on vCPU {v} (stop when it changes)", lambda: self.watchRequested.emit(name, v))
        menu.addAction(f"Watch {name} on any vCPU", lambda: self.watchRequested.emit(name, -1))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def _value(self, kind: str, value, khz: int, now_ns: int) -> str:
        if kind == "bool":
            return "yes" if value else "no"
        if kind == "str":
            return str(value) if value != "" else "—"
        if kind == "hex":
            return f"{value:#x}"
        if kind == "int":
            return f"{value:,}"
        if kind == "ns":
            if not value:
                return "0"
            return f"{fmt_ns(value)} ({fmt_short(value - now_ns, signed=True)})"
        if kind == "tsc":
            if not value:
                return "0"
            ns = value * 1_000_000 / khz if khz else 0
            return f"{value:#x} ({fmt_short(ns - now_ns, signed=True)})" if khz else fmt_hex(value)
        return str(value)

    def _detail(self, kind: str, value, khz: int, now_ns: int) -> str:
        """Tooltip: the value as a time and relative to the cursor."""
        if kind == "tsc" and value and khz:
            ns = value * 1_000_000 / khz
            return f"{value:#x} = {value:,} TSC cycles = {fmt_ns(ns)} ({fmt_ns(ns - now_ns, signed=True)} from now)"
        if kind == "ns" and value:
            return f"{fmt_ns(value)} ({fmt_ns(value - now_ns, signed=True)} from now)"
        return ""

    def refresh(self, _pos: int | None = None) -> None:
        c = self.controller
        doc = c.doc
        th = themes.current()
        if doc is None:
            self.header.setText("No run loaded")
            return
        snap = c.snapshot
        if snap is None:
            self._refresh_trace()
            return
        self.header.setText(
            f"<b>t = {fmt_ns(snap.time_ns)}</b> &nbsp;·&nbsp; {position_text(c.position, c.total)} &nbsp;·&nbsp; "
            f"<b>{snap.mode}</b> ({snap.variant}){' &nbsp;·&nbsp; <i>end of run</i>' if snap.done else ''}"
            "<br><span style='color:%s'>highlighted: changed by the last step</span>" % th.dim_text
        )
        khz = doc.tsc_khz()
        prev = c.prev_snapshot
        self.highlighted = {}
        changed_bg = QtGui.QColor(th.changed_bg)
        changed_fg = QtGui.QColor(th.changed_fg)
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        plain = QtGui.QFont(self.font())
        grow = False
        for v, vs in enumerate(snap.vcpus):
            changed = c.changed[v] if v < len(c.changed) else frozenset()
            was = self.highlighted.get(v, frozenset())
            self.highlighted[v] = changed
            for _title, fields in SECTIONS:
                for name, kind, _tip in fields:
                    item = self.table.item(self._rows[name], 1 + v)
                    if item is None:
                        continue
                    value = getattr(vs, name)
                    text = self._value(kind, value, khz[v], snap.time_ns)
                    if item.text() != text:
                        item.setText(text)
                        if len(text) > self._widest.get(v, 0):
                            self._widest[v] = len(text)
                            grow = True
                    if name in changed:
                        item.setBackground(changed_bg)
                        item.setForeground(changed_fg)
                        item.setFont(bold)
                        old = getattr(prev.vcpus[v], name) if prev is not None and v < len(prev.vcpus) else None
                        change = f"changed by the last step: {self._value(kind, old, khz[v], snap.time_ns)} → {self._value(kind, value, khz[v], snap.time_ns)}" if old is not None else ""
                        item.setToolTip("\n".join(x for x in (self._detail(kind, value, khz[v], snap.time_ns), change) if x))
                    else:
                        if name in was:
                            item.setBackground(QtGui.QBrush())
                            item.setForeground(QtGui.QBrush())
                            item.setFont(plain)
                        if kind in ("tsc", "ns"):
                            item.setToolTip(self._detail(kind, value, khz[v], snap.time_ns))
        if grow:
            self.table.resizeColumnsToContents()

    def _refresh_trace(self) -> None:
        c = self.controller
        doc = c.doc
        pos = c.position
        log = doc.log
        self.header.setText(
            f"<b>recorded trace</b> {doc.title} &nbsp;·&nbsp; {position_text(pos, c.total)}<br>"
            "A recording has no model state: shown are the last values the trace itself wrote."
        )
        kind = log.column("kind")[:pos]
        vcpu = log.column("vcpu")[:pos]
        a = log.column("a")[:pos]
        for v in range(max(1, c.n_vcpus)):
            writes = np.nonzero((kind == Kind.WRMSR_TSC_DEADLINE) & (vcpu == v))[0]
            last = int(a[writes[-1]]) if len(writes) else 0
            for _title, fields in SECTIONS:
                for name, _kind, _tip in fields:
                    item = self.table.item(self._rows[name], 1 + v)
                    if item is None:
                        continue
                    item.setBackground(QtGui.QBrush())
                    item.setText(f"{last:#x} (last 0x6e0 write)" if name == "tsc_deadline_msr" else "—")
