"""Which lanes the timeline shows, in which order: the rows of a vCPU group and the vCPUs.

A `LaneConfig` is plain data (the timeline rebuilds its plots from it); the
`LanesDialog` edits one live: tick to show, drag (or Up/Down) to reorder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6 import QtCore, QtWidgets

# row key -> label (simulated runs); "deadline" is the vCPU's deadline plot
ROWS: tuple[str, ...] = ("guest", "host", "lazy", "irq", "exits", "hlt", "haz", "deadline")
ROW_LABELS = {
    "guest": "guest v",
    "host": "host |",
    "lazy": "lazy host",
    "irq": "interrupts",
    "exits": "exits",
    "hlt": "HLT",
    "haz": "hazards",
    "deadline": "deadlines",
}
# Imported traces: one vCPU group combines what the host saw (exits, its timer)
# and what the guest did and got (deadline writes, interrupts taken, halts).
TRACE_ROW_LABELS = {
    "guest": "guest: 6e0 v",
    "host": "host: timer",
    "lazy": "host: lazy",
    "irq": "guest: irq",
    "exits": "host: exits",
    "hlt": "guest: HLT",
    "haz": "hazards",
    "deadline": "deadlines",
}
TRACE_ROWS: tuple[str, ...] = ("exits", "host", "lazy", "guest", "irq", "hlt", "haz", "deadline")


@dataclass
class LaneConfig:
    rows: list[str] = field(default_factory=lambda: list(ROWS))
    hidden_rows: set[str] = field(default_factory=set)
    vcpus: list[int] = field(default_factory=list)  # order; vCPUs not listed follow in id order
    hidden_vcpus: set[int] = field(default_factory=set)

    def visible_rows(self) -> list[str]:
        return [r for r in self.rows if r not in self.hidden_rows]

    def vcpu_order(self, present: list[int]) -> list[int]:
        known = [v for v in self.vcpus if v in present]
        return known + [v for v in present if v not in known]

    def visible_vcpus(self, present: list[int]) -> list[int]:
        return [v for v in self.vcpu_order(present) if v not in self.hidden_vcpus]

    def copy(self) -> LaneConfig:
        return LaneConfig(list(self.rows), set(self.hidden_rows), list(self.vcpus), set(self.hidden_vcpus))

    def move_row(self, row: str, delta: int) -> None:
        i = self.rows.index(row)
        j = max(0, min(len(self.rows) - 1, i + delta))
        self.rows.insert(j, self.rows.pop(i))

    def move_vcpu(self, vcpu: int, delta: int, present: list[int]) -> None:
        order = self.vcpu_order(present)
        i = order.index(vcpu)
        j = max(0, min(len(order) - 1, i + delta))
        order.insert(j, order.pop(i))
        self.vcpus = order


class _CheckList(QtWidgets.QListWidget):
    """A list of checkable items the user can drag to reorder."""

    reordered = QtCore.Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(QtCore.Qt.DropAction.MoveAction)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)

    def dropEvent(self, event) -> None:
        super().dropEvent(event)
        self.reordered.emit()

    def keys(self) -> list:
        return [self.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def unchecked(self) -> set:
        return {self.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.count()) if self.item(i).checkState() != QtCore.Qt.CheckState.Checked}

    def fill(self, entries: list[tuple[object, str]], hidden: set) -> None:
        self.blockSignals(True)
        self.clear()
        for key, text in entries:
            item = QtWidgets.QListWidgetItem(text)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, key)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable | QtCore.Qt.ItemFlag.ItemIsDragEnabled)
            item.setCheckState(QtCore.Qt.CheckState.Unchecked if key in hidden else QtCore.Qt.CheckState.Checked)
            self.addItem(item)
        self.blockSignals(False)

    def move_current(self, delta: int) -> None:
        row = self.currentRow()
        if row < 0:
            return
        target = max(0, min(self.count() - 1, row + delta))
        if target == row:
            return
        item = self.takeItem(row)
        self.insertItem(target, item)
        self.setCurrentRow(target)
        self.reordered.emit()


class LanesDialog(QtWidgets.QDialog):
    """Show, hide and reorder the rows of every vCPU group and the vCPU groups (live)."""

    changed = QtCore.Signal(object)  # LaneConfig

    def __init__(self, config: LaneConfig, row_labels: dict[str, str], vcpus: list[tuple[int, str]], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Lanes")
        self.config = config.copy()
        self._default_rows = list(config.rows)
        self._row_labels = row_labels
        self._vcpus = vcpus
        self.rows = _CheckList()
        self.vcpu_list = _CheckList()
        grid = QtWidgets.QGridLayout(self)
        grid.addWidget(QtWidgets.QLabel("<b>Rows</b> of each vCPU (tick to show, drag to reorder)"), 0, 0)
        grid.addWidget(QtWidgets.QLabel("<b>vCPUs</b>"), 0, 1)
        grid.addWidget(self.rows, 1, 0)
        grid.addWidget(self.vcpu_list, 1, 1)
        for col, lst in ((0, self.rows), (1, self.vcpu_list)):
            box = QtWidgets.QHBoxLayout()
            for text, delta in (("Up", -1), ("Down", 1)):
                b = QtWidgets.QPushButton(text)
                b.clicked.connect(lambda _c=False, lst=lst, d=delta: lst.move_current(d))
                box.addWidget(b)
            box.addStretch(1)
            grid.addLayout(box, 2, col)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close | QtWidgets.QDialogButtonBox.StandardButton.Reset)
        buttons.rejected.connect(self.close)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Reset).clicked.connect(self.reset)
        grid.addWidget(buttons, 3, 0, 1, 2)
        self._fill()
        for lst in (self.rows, self.vcpu_list):
            lst.itemChanged.connect(lambda _i: self._emit())
            lst.reordered.connect(self._emit)

    def _fill(self) -> None:
        self.rows.fill([(r, self._row_labels.get(r, r)) for r in self.config.rows], self.config.hidden_rows)
        present = [v for v, _ in self._vcpus]
        names = dict(self._vcpus)
        self.vcpu_list.fill([(v, names[v]) for v in self.config.vcpu_order(present)], self.config.hidden_vcpus)

    def reset(self) -> None:
        self.config = LaneConfig(list(self._default_rows) if set(self._default_rows) == set(ROWS) else list(ROWS))
        self._fill()
        self._emit()

    def _emit(self) -> None:
        self.config.rows = self.rows.keys()
        self.config.hidden_rows = self.rows.unchecked()
        self.config.vcpus = self.vcpu_list.keys()
        self.config.hidden_vcpus = self.vcpu_list.unchecked()
        self.changed.emit(self.config.copy())
