"""Breakpoints (kind, exit reason, vCPU, condition, hits) and watchpoints (a named state value).

Conditions are parsed with `lazytsc.expr.Condition(text, CONDITION_NAMES)` as
you type: a parse error shows at once (red field, message below, with a "did you
mean" for a misspelt name) and a run refuses to start until it is fixed or the
row disabled -- a breakpoint the user wrote is never skipped silently. A row with
no filter yet (just added) is ignored and says so. The rows are the controller's
`Breakpoint` objects, so hit counts are the engine's own. Every edit is reported
(`specsChanged`) so the window can write the breakpoints into the scenario text.
Watchpoints stop a run when a `lazytsc.observe` value of a vCPU changes.
"""

from __future__ import annotations

import difflib
import re

from lazytsc.debugger import CONDITION_NAMES, Breakpoint, Watchpoint, watchable_names
from lazytsc.expr import Condition, ExprError
from lazytsc.scenario import BreakpointSpec
from lazytsc.taxonomy import EXIT_ORDER, KIND_NAMES
from PySide6 import QtCore, QtWidgets

from . import themes

COLS = ("on", "name", "kind", "exit", "vCPU", "condition", "hits")


INCOMPLETE = "no kind, exit, vCPU or condition yet: ignored until you set one"


def condition_error(text: str) -> str:
    """'' if `text` is a valid breakpoint condition, else the parser's message."""
    if not text.strip():
        return ""
    try:
        Condition(text, CONDITION_NAMES)
    except ExprError as exc:
        message = str(exc)
        unknown = re.search(r"unknown name '([^']+)'", message)
        if unknown and "did you mean" not in message:
            close = difflib.get_close_matches(unknown.group(1), sorted(CONDITION_NAMES), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean `{close[0]}`?)"
        return message
    except (RecursionError, MemoryError):
        return "the condition is nested too deeply to check"
    return ""


class _Row:
    def __init__(self, bp: Breakpoint | None = None, **spec) -> None:
        self.bp = bp
        self.name = bp.name if bp else spec.get("name", "")
        self.kind = bp.kind if bp else spec.get("kind", "")
        self.exit = bp.exit if bp else spec.get("exit", "")
        self.vcpu = bp.vcpu if bp else spec.get("vcpu")
        self.condition = bp.condition if bp else spec.get("condition", "")
        self.enabled = bp.enabled if bp else spec.get("enabled", True)
        self.error = ""

    @property
    def incomplete(self) -> bool:
        return not (self.kind or self.exit or self.condition.strip() or self.vcpu is not None)

    def spec(self) -> BreakpointSpec:
        return BreakpointSpec(kind=self.kind, exit=self.exit, vcpu=self.vcpu, condition=self.condition, enabled=self.enabled, name=self.name)

    def rebuild(self) -> None:
        self.error = condition_error(self.condition)
        if self.error or self.incomplete:
            self.bp = None if self.incomplete else self.bp
            return
        hits = self.bp.hits if self.bp is not None else 0
        self.bp = Breakpoint(self.kind, self.exit, self.vcpu, self.condition, self.enabled, self.name)
        self.bp.hits = hits


class BreakpointsPanel(QtWidgets.QWidget):
    specsChanged = QtCore.Signal()  # the user edited the breakpoints (not the hit counts)

    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.rows: list[_Row] = []
        self._loading = False
        self.table = QtWidgets.QTableWidget(0, len(COLS))
        self.table.setHorizontalHeaderLabels(list(COLS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(5, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.add_btn = QtWidgets.QPushButton("Add")
        self.add_btn.setToolTip("A new breakpoint row: choose a kind, exit, vCPU or condition")
        self.add_sel_btn = QtWidgets.QPushButton("Add from selected event")
        self.add_sel_btn.setToolTip("A breakpoint on the selected event's kind and vCPU")
        self.remove_btn = QtWidgets.QPushButton("Remove")
        self.reset_btn = QtWidgets.QPushButton("Reset hits")
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setWordWrap(True)
        self.help_label = QtWidgets.QLabel(
            "Condition names: " + ", ".join(sorted(CONDITION_NAMES)) + ".  Example: <code>armed == 0 and pending > now</code>"
        )
        self.help_label.setWordWrap(True)
        self.help_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.add_btn, self.add_sel_btn, self.remove_btn, self.reset_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        left = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(left)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.help_label)
        self.help_label.setToolTip(self.help_label.text())
        self.help_label.setText("Conditions: event fields and state names, e.g. <code>armed == 0 and pending &gt; now</code> (hover for all names)")
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self._build_watch())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(split)
        self.add_btn.clicked.connect(self.add_empty)
        self.add_sel_btn.clicked.connect(self.add_from_selection)
        self.remove_btn.clicked.connect(self.remove_selected)
        self.reset_btn.clicked.connect(self.reset_hits)
        controller.documentChanged.connect(self._load)
        controller.breakpointsChanged.connect(self.refresh_hits)
        controller.positionChanged.connect(lambda _p: self.refresh_hits())
        self._load(None)

    # ---- model <-> controller --------------------------------------------------------------
    def _load(self, _doc=None) -> None:
        self._loading = True
        self.rows = [_Row(bp) for bp in self.controller.breakpoints()] if self.controller.doc is not None else []
        self._rebuild_table()
        self._loading = False
        self._refresh_watch()

    def specs(self) -> list[BreakpointSpec]:
        """The breakpoints as the scenario file spells them (rows with no filter left out)."""
        return [r.spec() for r in self.rows if not r.incomplete]

    def _push(self, edited: bool = True) -> None:
        self.controller.breakpoints()[:] = [r.bp for r in self.rows if r.bp is not None and not r.error]
        invalid = [f"breakpoint {i + 1}: {r.error}" for i, r in enumerate(self.rows) if r.error and r.enabled]
        self.controller.invalid_breakpoints = invalid
        notes = [f"breakpoint {i + 1}: {r.error}" for i, r in enumerate(self.rows) if r.error and not r.enabled]
        notes += [f"breakpoint {i + 1}: {INCOMPLETE}" for i, r in enumerate(self.rows) if r.incomplete]
        th = themes.current()
        parts = []
        if invalid:
            parts.append(f"<span style='color:{th.error_fg}'>" + "<br>".join(invalid) + "<br><b>Continue and reverse continue refuse to run until these are fixed or disabled.</b></span>")
        if notes:
            parts.append(f"<span style='color:{th.dim_text}'>" + "<br>".join(notes) + "</span>")
        self.error_label.setText("<br>".join(parts))
        if edited and not self._loading:
            self.specsChanged.emit()

    def flash_errors(self) -> None:
        """Bring the first invalid row into view (a run was refused because of it)."""
        for i, r in enumerate(self.rows):
            if r.error and r.enabled:
                self.table.selectRow(i)
                widget = self.table.cellWidget(i, 5)
                if widget is not None:
                    widget.setFocus()
                return

    def add_empty(self) -> _Row:
        """Add: a row with no filter yet; the kind box gets the focus."""
        row = self.add_breakpoint()
        widget = self.table.cellWidget(len(self.rows) - 1, 2)
        if widget is not None:
            widget.setFocus()
        return row

    def active(self) -> list[Breakpoint]:
        return [r.bp for r in self.rows if r.bp is not None and not r.error]

    def add_breakpoint(self, kind: str = "", exit: str = "", vcpu: int | None = None, condition: str = "", name: str = "") -> _Row:
        row = _Row(None, kind=kind, exit=exit, vcpu=vcpu, condition=condition, name=name)
        row.rebuild()
        self.rows.append(row)
        self._rebuild_table()
        self._push()
        self.table.selectRow(len(self.rows) - 1)
        return row

    def add_from_selection(self) -> None:
        c = self.controller
        idx = c.selected_event if c.selected_event >= 0 else c.current_event
        if c.doc is None or idx < 0:
            return
        ev = c.doc.log.event(idx)
        self.add_breakpoint(kind=ev.kind_name, vcpu=ev.vcpu if ev.vcpu >= 0 else None)

    def add_spec(self, spec: dict) -> None:
        self.add_breakpoint(**spec)

    def remove_selected(self) -> None:
        r = self.table.currentRow()
        if 0 <= r < len(self.rows):
            del self.rows[r]
            self._rebuild_table()
            self._push()

    def reset_hits(self) -> None:
        for r in self.rows:
            if r.bp is not None:
                r.bp.hits = 0
        self.refresh_hits()

    # ---- table -----------------------------------------------------------------------------
    def _rebuild_table(self) -> None:
        self.table.setRowCount(len(self.rows))
        n_vcpus = max(1, self.controller.n_vcpus)
        for i, row in enumerate(self.rows):
            on = QtWidgets.QCheckBox()
            on.setChecked(row.enabled)
            on.setToolTip("Enabled")
            on.toggled.connect(lambda v, r=row: self._edit(r, enabled=v))
            holder = QtWidgets.QWidget()
            hl = QtWidgets.QHBoxLayout(holder)
            hl.setContentsMargins(6, 0, 0, 0)
            hl.addWidget(on)
            self.table.setCellWidget(i, 0, holder)
            name = QtWidgets.QLineEdit(row.name)
            name.setFrame(False)
            name.setPlaceholderText("(name)")
            name.editingFinished.connect(lambda w=name, r=row: self._edit(r, name=w.text()))
            self.table.setCellWidget(i, 1, name)
            kind = QtWidgets.QComboBox()
            kind.addItem("", "")
            for code in sorted(KIND_NAMES, key=lambda c: KIND_NAMES[c]):
                kind.addItem(KIND_NAMES[code], KIND_NAMES[code])
            kind.setCurrentIndex(max(0, kind.findData(row.kind)))
            kind.currentIndexChanged.connect(lambda _i, w=kind, r=row: self._edit(r, kind=w.currentData()))
            self.table.setCellWidget(i, 2, kind)
            ex = QtWidgets.QComboBox()
            ex.addItem("", "")
            for name_ in EXIT_ORDER:
                ex.addItem(name_, name_)
            ex.setCurrentIndex(max(0, ex.findData(row.exit)))
            ex.currentIndexChanged.connect(lambda _i, w=ex, r=row: self._edit(r, exit=w.currentData()))
            self.table.setCellWidget(i, 3, ex)
            vc = QtWidgets.QComboBox()
            vc.addItem("any", None)
            for v in range(n_vcpus):
                vc.addItem(str(v), v)
            vc.setCurrentIndex(0 if row.vcpu is None else max(0, vc.findData(row.vcpu)))
            vc.currentIndexChanged.connect(lambda _i, w=vc, r=row: self._edit(r, vcpu=w.currentData()))
            self.table.setCellWidget(i, 4, vc)
            cond = QtWidgets.QLineEdit(row.condition)
            cond.setFrame(False)
            cond.setPlaceholderText("condition, e.g. armed == 0 and pending > now")
            cond.textChanged.connect(lambda text, w=cond, r=row: self._condition_typed(w, r, text))
            cond.editingFinished.connect(lambda w=cond, r=row: self._edit(r, condition=w.text()))
            self._style_condition(cond, row.error)
            self.table.setCellWidget(i, 5, cond)
            hits = QtWidgets.QTableWidgetItem(str(row.bp.hits if row.bp else 0))
            hits.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsSelectable)
            hits.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(i, 6, hits)
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(1, 130)
        self.table.setColumnWidth(2, 150)
        self.table.setColumnWidth(3, 140)
        self.table.setColumnWidth(4, 60)
        self._push()

    def _style_condition(self, widget: QtWidgets.QLineEdit, error: str) -> None:
        th = themes.current()
        if error:
            widget.setStyleSheet(f"QLineEdit {{ background: {th.error_bg}; color: {th.text}; }}")
            widget.setToolTip(error)
        else:
            widget.setStyleSheet("")
            widget.setToolTip("Parsed with lazytsc.expr (no eval); names are checked as you type")

    def _condition_typed(self, widget: QtWidgets.QLineEdit, row: _Row, text: str) -> None:
        self._style_condition(widget, condition_error(text))

    def _edit(self, row: _Row, **changes) -> None:
        for key, value in changes.items():
            setattr(row, key, value)
        row.rebuild()
        if row.bp is not None and not row.error:
            row.bp.enabled = row.enabled
        i = self.rows.index(row)
        cond = self.table.cellWidget(i, 5)
        if isinstance(cond, QtWidgets.QLineEdit):
            self._style_condition(cond, row.error if "condition" in changes or row.error else "")
        self._push()

    def refresh_hits(self) -> None:
        for i, row in enumerate(self.rows):
            item = self.table.item(i, 6)
            if item is not None:
                text = str(row.bp.hits if row.bp else 0)
                if item.text() != text:
                    item.setText(text)
        for i, w in enumerate(self.controller.watchpoints):
            item = self.watch_table.item(i, 3)
            if item is not None and item.text() != str(w.hits):
                item.setText(str(w.hits))

    # ---- watchpoints ---------------------------------------------------------------------
    def _build_watch(self) -> QtWidgets.QWidget:
        box = QtWidgets.QGroupBox("Watchpoints: stop when a value changes")
        self.watch_table = QtWidgets.QTableWidget(0, 4)
        self.watch_table.setHorizontalHeaderLabels(["on", "value", "vCPU", "hits"])
        self.watch_table.verticalHeader().setVisible(False)
        self.watch_table.horizontalHeader().setStretchLastSection(True)
        self.watch_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.watch_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.watch_name = QtWidgets.QComboBox()
        self.watch_name.addItems(list(watchable_names()))
        self.watch_name.setCurrentText("armed")
        self.watch_name.setToolTip("A state value of lazytsc.observe: the shared page (pending, armed), host state, LAPIC registers")
        self.watch_vcpu = QtWidgets.QComboBox()
        self.watch_add = QtWidgets.QPushButton("Watch")
        self.watch_remove = QtWidgets.QPushButton("Remove")
        bar = QtWidgets.QGridLayout()
        bar.addWidget(self.watch_name, 0, 0)
        bar.addWidget(self.watch_vcpu, 0, 1)
        bar.addWidget(self.watch_add, 1, 0)
        bar.addWidget(self.watch_remove, 1, 1)
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(bar)
        lay.addWidget(self.watch_table)
        self.watch_add.clicked.connect(lambda: self.add_watch(self.watch_name.currentText(), self.watch_vcpu.currentData()))
        self.watch_remove.clicked.connect(self.remove_watch)
        return box

    def add_watch(self, name: str, vcpu: int | None = None) -> Watchpoint:
        w = Watchpoint(name, vcpu)
        self.controller.watchpoints.append(w)
        self._refresh_watch()
        return w

    def remove_watch(self) -> None:
        r = self.watch_table.currentRow()
        if 0 <= r < len(self.controller.watchpoints):
            del self.controller.watchpoints[r]
            self._refresh_watch()

    def _refresh_watch(self) -> None:
        self.watch_vcpu.blockSignals(True)
        self.watch_vcpu.clear()
        self.watch_vcpu.addItem("any vCPU", None)
        for v in range(max(1, self.controller.n_vcpus)):
            self.watch_vcpu.addItem(f"vCPU {v}", v)
        self.watch_vcpu.blockSignals(False)
        wps = self.controller.watchpoints
        self.watch_table.setRowCount(len(wps))
        for i, w in enumerate(wps):
            on = QtWidgets.QCheckBox()
            on.setChecked(w.enabled)
            on.toggled.connect(lambda v, w=w: setattr(w, "enabled", v))
            self.watch_table.setCellWidget(i, 0, on)
            self.watch_table.setItem(i, 1, QtWidgets.QTableWidgetItem(w.name))
            self.watch_table.setItem(i, 2, QtWidgets.QTableWidgetItem("any" if w.vcpu is None else str(w.vcpu)))
            self.watch_table.setItem(i, 3, QtWidgets.QTableWidgetItem(str(w.hits)))

    def set_condition(self, row_index: int, text: str) -> str:
        """Programmatic edit (tests, menu actions); returns the row's error or ''."""
        row = self.rows[row_index]
        widget = self.table.cellWidget(row_index, 5)
        if isinstance(widget, QtWidgets.QLineEdit):
            widget.setText(text)
        self._edit(row, condition=text)
        return row.error
