"""Breakpoints: kind, exit reason, vCPU, condition expression, hit count, enable/disable.

Conditions are parsed with `lazytsc.expr.Condition(text, CONDITION_NAMES)` as
you type: a parse error shows at once (red field, message below) and that row
is left out of the session's breakpoints until fixed. The rows are the
controller's `Breakpoint` objects, so hit counts are the engine's own.
"""

from __future__ import annotations

from lazytsc.debugger import CONDITION_NAMES, Breakpoint
from lazytsc.expr import Condition, ExprError
from lazytsc.taxonomy import EXIT_ORDER, KIND_NAMES
from PySide6 import QtCore, QtWidgets

from . import themes

COLS = ("on", "name", "kind", "exit", "vCPU", "condition", "hits")


def condition_error(text: str) -> str:
    """'' if `text` is a valid breakpoint condition, else the parser's message."""
    if not text.strip():
        return ""
    try:
        Condition(text, CONDITION_NAMES)
    except ExprError as exc:
        return str(exc)
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

    def rebuild(self) -> None:
        self.error = condition_error(self.condition)
        if not (self.kind or self.exit or self.condition or self.vcpu is not None):
            self.error = self.error or "set at least one of kind, exit, vCPU, condition"
        if self.error:
            return
        hits = self.bp.hits if self.bp is not None else 0
        self.bp = Breakpoint(self.kind, self.exit, self.vcpu, self.condition, self.enabled, self.name)
        self.bp.hits = hits


class BreakpointsPanel(QtWidgets.QWidget):
    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.rows: list[_Row] = []
        self.table = QtWidgets.QTableWidget(0, len(COLS))
        self.table.setHorizontalHeaderLabels(list(COLS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(5, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.add_btn = QtWidgets.QPushButton("Add")
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
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.help_label)
        self.add_btn.clicked.connect(lambda: self.add_breakpoint(kind="kick"))
        self.add_sel_btn.clicked.connect(self.add_from_selection)
        self.remove_btn.clicked.connect(self.remove_selected)
        self.reset_btn.clicked.connect(self.reset_hits)
        controller.documentChanged.connect(self._load)
        controller.breakpointsChanged.connect(self.refresh_hits)
        controller.positionChanged.connect(lambda _p: self.refresh_hits())
        self._load(None)

    # ---- model <-> controller --------------------------------------------------------------
    def _load(self, _doc=None) -> None:
        self.rows = [_Row(bp) for bp in self.controller.breakpoints()] if self.controller.doc is not None else []
        self._rebuild_table()

    def _push(self) -> None:
        self.controller.breakpoints()[:] = [r.bp for r in self.rows if r.bp is not None and not r.error]
        errors = [f"breakpoint {i + 1}: {r.error}" for i, r in enumerate(self.rows) if r.error]
        th = themes.current()
        self.error_label.setText(f"<span style='color:{th.error_fg}'>" + "<br>".join(errors) + "</span>" if errors else "")

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
                item.setText(str(row.bp.hits if row.bp else 0))

    def set_condition(self, row_index: int, text: str) -> str:
        """Programmatic edit (tests, menu actions); returns the row's error or ''."""
        row = self.rows[row_index]
        widget = self.table.cellWidget(row_index, 5)
        if isinstance(widget, QtWidgets.QLineEdit):
            widget.setText(text)
        self._edit(row, condition=text)
        return row.error
