"""The event list: virtualized table, filters (kind, vCPU, exit), search, and the hazards list."""

from __future__ import annotations

import numpy as np
from lazytsc.taxonomy import EXIT_NAMES, EXIT_ORDER, HAZARD_KINDS, KIND_NAMES, Kind
from PySide6 import QtCore, QtGui, QtWidgets

from .events_model import COLUMNS, EventsModel
from .fmt import fmt_ns, position_text

KIND_GROUPS: list[tuple[str, set[int] | None, dict]] = [
    ("All kinds", None, {}),
    ("Hazards", None, {"hazards_only": True}),
    ("Events with an exit", None, {"exits_only": True}),
    ("Guest driver (request / write / skip)", {Kind.DEADLINE_REQUEST, Kind.WRMSR_TSC_DEADLINE, Kind.DEADLINE_SKIP}, {}),
    ("Host timer (arm / fire / cancel)", {Kind.TIMER_ARM, Kind.TIMER_FIRE, Kind.TIMER_CANCEL, Kind.TIMER_COALESCED}, {}),
    ("Lazy host (update / kick / clear / init / exit)", {Kind.LAZY_UPDATE, Kind.LAZY_KICK, Kind.LAZY_CLEAR, Kind.LAZY_INIT, Kind.LAZY_EXIT, Kind.KICK_REQUEST}, {}),
    ("Interrupts (timer / IPI / inject)", {Kind.GUEST_TIMER_IRQ, Kind.GUEST_IPI, Kind.IRQ_INJECT}, {}),
]


def doc_extras(doc) -> dict:
    """TSC rates and script notes of a simulated run (a trace has neither)."""
    if doc is None:
        return {}
    if not hasattr(doc, "scenario"):
        return {"raw": getattr(doc, "raw", None)}
    return {"tsc_khz": doc.tsc_khz(), "notes": {op.line: op.note for op in doc.scenario.script if op.note}}


class EventTable(QtWidgets.QTableView):
    """A table view tuned for millions of rows: fixed row height, no word wrap."""

    def __init__(self, model: EventsModel, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        vh = self.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 4)
        self.setWordWrap(False)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        hh = self.horizontalHeader()
        hh.setStretchLastSection(False)
        fm = self.fontMetrics()
        widths = {"parent": "0000000", "#": "0000000", "time": "000.000000 ms", "vCPU": "vCPU", "kind": "sw_kick_delayed__", "exit": "msr-write / tsc-deadline", "a": "deadline=0x000000000", "b": "deadline=0x00000000"}
        self._base = [fm.horizontalAdvance(widths.get(name, name)) + 16 for name in COLUMNS]
        self._user_sized = False
        self._fitting = False
        self._fit_columns()
        hh.sectionResized.connect(self._on_section_resized)

    # the text columns that take a wide table's spare width, and how much each wants
    _GROW = {COLUMNS.index("exit"): 1, COLUMNS.index("a"): 2, COLUMNS.index("b"): 2}

    def _fit_columns(self) -> None:
        """Columns at their base widths; a wider table gives the spare width to exit and the
        values (long MSR names and 64-bit values), so no cell is elided beside empty space.
        Once the user drags a column, the widths are theirs."""
        if self._user_sized:
            return
        spare = max(0, self.viewport().width() - sum(self._base))
        share = sum(self._GROW.values())
        self._fitting = True
        try:
            for col, base in enumerate(self._base):
                self.setColumnWidth(col, base + spare * self._GROW.get(col, 0) // share)
        finally:
            self._fitting = False

    def _on_section_resized(self, *_args) -> None:
        if not self._fitting:
            self._user_sized = True

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_columns()


class EventsPanel(QtWidgets.QWidget):
    breakRequested = QtCore.Signal(dict)
    bookmarkRequested = QtCore.Signal(int)

    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = EventsModel(self)
        self.table = EventTable(self.model)
        self.kind_box = QtWidgets.QComboBox()
        for label, _kinds, _extra in KIND_GROUPS:
            self.kind_box.addItem(label)
        self.kind_box.insertSeparator(self.kind_box.count())
        for code in sorted(KIND_NAMES):
            self.kind_box.addItem(KIND_NAMES[code], int(code))
        self.kind_box.setToolTip("Show only these event kinds")
        self.vcpu_box = QtWidgets.QComboBox()
        self.vcpu_box.setToolTip("Show only this vCPU's events")
        self.exit_box = QtWidgets.QComboBox()
        self.exit_box.addItem("any exit state", None)
        for name in EXIT_ORDER:
            code = next(c for c, n in EXIT_NAMES.items() if n == name)
            self.exit_box.addItem(f"exit: {name}", int(code))
        self.exit_box.setToolTip("Show only events that caused this exit")
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Search: kind or exit name, value (0x…), #index, @150us  (Enter / Shift+Enter)")
        self.search.setClearButtonEnabled(True)
        self.prev_btn = QtWidgets.QToolButton()
        self.prev_btn.setText("▲")
        self.prev_btn.setToolTip("Previous match (Shift+Enter)")
        self.next_btn = QtWidgets.QToolButton()
        self.next_btn.setText("▼")
        self.next_btn.setToolTip("Next match (Enter)")
        self.match_label = QtWidgets.QLabel("")
        self.follow = QtWidgets.QCheckBox("Follow cursor")
        self.follow.setChecked(True)
        self.count_label = QtWidgets.QLabel("")
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.kind_box)
        bar.addWidget(self.vcpu_box)
        bar.addWidget(self.exit_box)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.prev_btn)
        bar.addWidget(self.next_btn)
        bar.addWidget(self.match_label)
        bar.addWidget(self.follow)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)

        self.kind_box.currentIndexChanged.connect(self._filters_changed)
        self.vcpu_box.currentIndexChanged.connect(self._filters_changed)
        self.exit_box.currentIndexChanged.connect(self._filters_changed)
        self.search.returnPressed.connect(lambda: self.find(True))
        self.next_btn.clicked.connect(lambda: self.find(True))
        self.prev_btn.clicked.connect(lambda: self.find(False))
        QtGui.QShortcut(QtGui.QKeySequence("Shift+Return"), self.search, activated=lambda: self.find(False))
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.customContextMenuRequested.connect(self._context_menu)
        controller.documentChanged.connect(self._doc_changed)
        controller.positionChanged.connect(self._position_changed)
        controller.selectionChanged.connect(self._selection_changed)
        self._doc_changed(None)

    # ---- controller -> view ------------------------------------------------------------------
    def _doc_changed(self, doc) -> None:
        self.model.set_log(doc.log if doc is not None else None, **doc_extras(doc))
        self.table.scrollToTop()  # a new document starts at its top, not at the old scroll position
        self.table.clearSelection()
        self.vcpu_box.blockSignals(True)
        self.vcpu_box.clear()
        self.vcpu_box.addItem("all vCPUs", None)
        for v in range(self.controller.n_vcpus):
            self.vcpu_box.addItem(f"vCPU {v}", v)
        self.vcpu_box.blockSignals(False)
        self._filters_changed()

    def _position_changed(self, pos: int) -> None:
        self.model.set_position(pos)
        self._update_count()
        if self.follow.isChecked() and pos > 0:
            row = self.model.row_of(pos - 1, nearest=True)
            if row >= 0 and not self._row_visible(row):
                self.table.scrollTo(self.model.index(row, 0), QtWidgets.QAbstractItemView.ScrollHint.EnsureVisible)

    def _row_visible(self, row: int) -> bool:
        """Is the row wholly inside the viewport? (scrollTo costs a repaint even when it is)."""
        rect = self.table.visualRect(self.model.index(row, 0))
        view = self.table.viewport().rect()
        return rect.isValid() and rect.top() >= view.top() and rect.bottom() <= view.bottom()

    def _selection_changed(self, index: int) -> None:
        row = self.model.row_of(index)
        if row < 0:
            return
        current = self.table.currentIndex()
        if current.isValid() and current.row() == row:
            return
        self.table.selectionModel().blockSignals(True)
        self.table.selectRow(row)
        self.table.selectionModel().blockSignals(False)
        self.table.scrollTo(self.model.index(row, 0))

    def _filters_changed(self, *_args) -> None:
        i = self.kind_box.currentIndex()
        kinds: set[int] | None = None
        extra: dict = {}
        if i < len(KIND_GROUPS):
            _label, kinds, extra = KIND_GROUPS[max(0, i)]
        else:
            data = self.kind_box.currentData()
            kinds = {int(data)} if data is not None else None
        self.model.set_filters(kinds=set(kinds) if kinds else None, vcpu=self.vcpu_box.currentData(), exit_code=self.exit_box.currentData(), **extra)
        self.model.set_position(self.controller.position)
        self._update_count()
        self._position_changed(self.controller.position)

    def set_kind_filter(self, name: str) -> None:
        idx = self.kind_box.findText(name)
        if idx >= 0:
            self.kind_box.setCurrentIndex(idx)

    def _update_count(self) -> None:
        total = self.controller.total
        shown = self.model.rowCount()
        pos = self.controller.position
        text = f"{shown:,} of {total:,} events shown · cursor {position_text(pos, total)}"
        self.count_label.setText(text)

    # ---- view -> controller ------------------------------------------------------------------
    def _row_changed(self, current: QtCore.QModelIndex, _previous) -> None:
        if current.isValid():
            self.controller.select_event(self.model.event_at(current.row()))

    def _double_clicked(self, index: QtCore.QModelIndex) -> None:
        self.controller.goto_event(self.model.event_at(index.row()))

    def selected_event(self) -> int:
        idx = self.table.currentIndex()
        return self.model.event_at(idx.row()) if idx.isValid() else -1

    def find(self, forward: bool = True) -> int:
        query = self.search.text()
        if not query.strip():
            return -1
        cur = self.table.currentIndex()
        start = cur.row() if cur.isValid() else (-1 if forward else self.model.rowCount())
        row = self.model.find(query, start, forward)
        if row < 0:
            self.match_label.setText("no match")
            return -1
        self.match_label.setText(f"{self.model.count_matches(query):,} matches")
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0), QtWidgets.QAbstractItemView.ScrollHint.PositionAtCenter)
        return self.model.event_at(row)

    def _context_menu(self, pos: QtCore.QPoint) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid() or self.controller.doc is None:
            return
        i = self.model.event_at(index.row())
        ev = self.controller.doc.log.event(i)
        menu = QtWidgets.QMenu(self)
        menu.addAction(f"Jump to #{i}", lambda: self.controller.goto_event(i))
        menu.addAction("Run to here (stops at breakpoints)", lambda: self.controller.run_to_event(i))
        menu.addSeparator()
        menu.addAction(f"Break on kind '{ev.kind_name}'", lambda: self.breakRequested.emit({"kind": ev.kind_name}))
        menu.addAction(f"Break on kind '{ev.kind_name}' on vCPU {ev.vcpu}", lambda: self.breakRequested.emit({"kind": ev.kind_name, "vcpu": ev.vcpu}))
        if ev.exit >= 0:
            menu.addAction(f"Break on exit '{ev.exit_name}'", lambda: self.breakRequested.emit({"exit": ev.exit_name}))
        menu.addSeparator()
        menu.addAction("Add bookmark here…", lambda: self.bookmarkRequested.emit(i))
        menu.addAction("Copy row", lambda: QtWidgets.QApplication.clipboard().setText(f"#{i}\t{fmt_ns(ev.time)}\tvCPU {ev.vcpu}\t{ev.describe()}"))
        menu.exec(self.table.viewport().mapToGlobal(pos))


class HazardsPanel(QtWidgets.QWidget):
    """Every hazard of the run (whole run, not just up to the cursor); click to jump."""

    def __init__(self, controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = EventsModel(self)
        self.table = EventTable(self.model)
        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        self.table.clicked.connect(lambda idx: self.controller.goto_event(self.model.event_at(idx.row())))
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _p: cur.isValid() and self.controller.select_event(self.model.event_at(cur.row())))
        controller.documentChanged.connect(self._doc_changed)
        controller.positionChanged.connect(self.model.set_position)
        self._doc_changed(None)

    def _doc_changed(self, doc) -> None:
        self.model.set_log(doc.log if doc is not None else None, **doc_extras(doc))
        self.table.scrollToTop()
        self.model.set_filters(hazards_only=True)
        if doc is None:
            self.summary.setText("No run loaded")
            return
        kinds = doc.log.column("kind")
        parts = []
        for code in sorted(HAZARD_KINDS):
            n = int(np.count_nonzero(kinds == code))
            if n:
                parts.append(f"<b>{KIND_NAMES[code]}</b> {n:,}")
        text = " · ".join(parts) if parts else "No hazards in this run."
        self.summary.setText(f"{text}<br><span style='color:gray'>Click a row to jump there; each hazard kind is also a breakpoint kind.</span>")

    def hazard_count(self) -> int:
        return self.model.rowCount()
