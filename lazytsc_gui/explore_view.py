"""Tools ▸ Explore: the exhaustive protocol search, its progress and its findings.

The search is `lazytsc.explore.run.explore` (the same code as `lazytsc explore`): this
window collects the options, runs it on a worker thread (which starts the worker
processes), shows each search's depth and states as they come, and lists the findings.
Double-clicking a finding opens its counterexample scenario in the main window, stopped
at the violating event. No protocol logic lives here.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path

from lazytsc.explore.alphabet import load_alphabet
from lazytsc.explore.cli import DEFAULT_DEPTH
from lazytsc.explore.run import FindingReport, Options, Report, explore
from lazytsc.explore.setups import DEFAULT_SETUPS, SETUPS
from lazytsc.scenario import ScenarioError
from PySide6 import QtCore, QtGui, QtWidgets

from .worker import Cancelled, TaskRunner

Qt = QtCore.Qt
SEARCH_COLUMNS = ("variant", "setup", "depth", "states", "letters/s", "found")
FINDING_COLUMNS = ("variant", "setup", "finding", "ops", "verified", "program", "file")


class ExploreView(QtWidgets.QWidget):
    """A window that explores the protocol and lists minimal counterexamples."""

    status_changed = QtCore.Signal(object)  # a progress dict from the worker thread
    finished = QtCore.Signal()

    def __init__(self, open_file: Callable[[str], None] | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowTitle("Explore the protocol — lazytsc")
        self.setObjectName("lazytscExploreView")
        self.open_file = open_file
        self.runner = TaskRunner(self)
        self.report: Report | None = None
        self.last_error = ""
        self._order: list[tuple[str, str]] = []
        self._build()
        self.status_changed.connect(self._on_status)
        self._update_buttons()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.variant = QtWidgets.QComboBox()
        self.variant.addItems(["both", "v2", "v3"])
        self.depth = QtWidgets.QSpinBox()
        self.depth.setRange(1, 12)
        self.depth.setValue(DEFAULT_DEPTH)
        self.depth.setToolTip("Letters per guest program (every program up to this length is explored)")
        self.vcpus = QtWidgets.QComboBox()
        self.vcpus.addItems(["1", "2"])
        self.time_limit = QtWidgets.QSpinBox()
        self.time_limit.setRange(0, 7 * 86400)
        self.time_limit.setSuffix(" s")
        self.time_limit.setSpecialValueText("none")
        self.time_limit.setToolTip("Stop after this long (0: none); the depth reached is reported")
        self.jobs = QtWidgets.QSpinBox()
        self.jobs.setRange(1, 256)
        self.jobs.setValue(os.cpu_count() or 1)
        self.jobs.setToolTip("Worker processes on this machine")
        self.setup_boxes: dict[str, QtWidgets.QCheckBox] = {}
        setups = QtWidgets.QHBoxLayout()
        setups.addWidget(QtWidgets.QLabel("Host setups"))
        for name in SETUPS:
            box = QtWidgets.QCheckBox(name)
            box.setChecked(name in DEFAULT_SETUPS)
            box.setToolTip(SETUPS[name].description)
            box.toggled.connect(lambda _on: self._update_buttons())
            self.setup_boxes[name] = box
            setups.addWidget(box)
        setups.addStretch(1)
        self.alphabet = QtWidgets.QLineEdit()
        self.alphabet.setPlaceholderText("alphabet file (optional: the default letters)")
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse_alphabet)
        self.out_dir = QtWidgets.QLineEdit(str(Path.cwd() / "explore-out"))
        self.out_dir.setToolTip("Directory the counterexample scenarios are written to")
        out_browse = QtWidgets.QPushButton("Browse…")
        out_browse.clicked.connect(self._browse_out)

        form = QtWidgets.QGridLayout()
        row = 0
        for label, widget in (("Variant", self.variant), ("Depth", self.depth), ("vCPUs", self.vcpus), ("Time limit", self.time_limit), ("Jobs", self.jobs)):
            form.addWidget(QtWidgets.QLabel(label), 0, row)
            form.addWidget(widget, 1, row)
            row += 1
        files = QtWidgets.QGridLayout()
        files.addWidget(QtWidgets.QLabel("Alphabet"), 0, 0)
        files.addWidget(self.alphabet, 0, 1)
        files.addWidget(browse, 0, 2)
        files.addWidget(QtWidgets.QLabel("Output"), 1, 0)
        files.addWidget(self.out_dir, 1, 1)
        files.addWidget(out_browse, 1, 2)

        self.run_button = QtWidgets.QPushButton("Explore")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QtWidgets.QPushButton("Stop")
        self.cancel_button.setToolTip("Stop searching; the findings so far are shrunk and listed")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        run = QtWidgets.QHBoxLayout()
        run.addWidget(self.run_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.progress, 1)

        options = QtWidgets.QGroupBox("Search")
        og = QtWidgets.QVBoxLayout(options)
        og.addLayout(form)
        og.addLayout(setups)
        og.addLayout(files)
        og.addLayout(run)
        og.addWidget(self.status)

        self.searches = QtWidgets.QTableWidget(0, len(SEARCH_COLUMNS))
        self.searches.setHorizontalHeaderLabels(list(SEARCH_COLUMNS))
        self.searches.verticalHeader().setVisible(False)
        self.searches.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.searches.horizontalHeader().setStretchLastSection(True)
        self.searches.setWordWrap(False)  # a long list of findings is elided, not wrapped
        self.searches.setMinimumHeight(170)
        self.summary = QtWidgets.QPlainTextEdit("Run a search to list what it proves and finds.")
        self.summary.setReadOnly(True)
        self.summary.setMinimumHeight(120)
        self.findings = QtWidgets.QTableWidget(0, len(FINDING_COLUMNS))
        self.findings.setHorizontalHeaderLabels(list(FINDING_COLUMNS))
        self.findings.verticalHeader().setVisible(False)
        self.findings.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.findings.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.findings.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.findings.setSortingEnabled(True)
        self.findings.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.findings.setToolTip("Double-click a finding to open its counterexample, stopped at the violating event")
        self.findings.cellDoubleClicked.connect(lambda r, _c: self.open_finding(r))
        self.open_button = QtWidgets.QPushButton("Open counterexample")
        self.open_button.clicked.connect(lambda: self.open_finding(self.findings.currentRow()))

        split = QtWidgets.QSplitter(Qt.Orientation.Vertical)
        top = QtWidgets.QWidget()
        tl = QtWidgets.QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        lists = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        lists.addWidget(self.searches)
        lists.addWidget(self.summary)
        lists.setStretchFactor(0, 3)
        lists.setStretchFactor(1, 2)
        tl.addWidget(lists)
        bottom = QtWidgets.QWidget()
        bl = QtWidgets.QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.findings, 1)
        bl.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignRight)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(1, 2)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(options)
        layout.addWidget(split, 1)
        self.resize(1100, 780)

    def _browse_alphabet(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Alphabet file", "", "Alphabet (*.toml);;All files (*)")
        if path:
            self.alphabet.setText(path)

    def _browse_out(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Counterexample directory", self.out_dir.text())
        if path:
            self.out_dir.setText(path)

    # ------------------------------------------------------------------ options
    def options(self) -> Options:
        """The options as set; raises ScenarioError (a bad alphabet file) or ValueError."""
        variant = self.variant.currentText()
        setups = tuple(name for name, box in self.setup_boxes.items() if box.isChecked())
        if not setups:
            raise ValueError("Choose at least one host setup.")
        out = self.out_dir.text().strip()
        if not out:
            raise ValueError("Choose a directory for the counterexamples.")
        opts = Options(
            variants=("v2", "v3") if variant == "both" else (variant,),
            setups=setups,
            vcpus=int(self.vcpus.currentText()),
            depth=self.depth.value(),
            time_limit=float(self.time_limit.value()) or None,
            jobs=self.jobs.value(),
            out_dir=out,
        )
        alphabet = self.alphabet.text().strip()
        if alphabet:
            a = load_alphabet(alphabet)
            opts.letters, opts.params = a.names, a.params
        opts.command = self.command_line(opts, alphabet)
        return opts

    def command_line(self, opts: Options, alphabet: str = "") -> str:
        parts = ["lazytsc explore", f"--variant {'both' if len(opts.variants) == 2 else opts.variants[0]}", f"--depth {opts.depth}", f"--vcpus {opts.vcpus}"]
        if tuple(opts.setups) != DEFAULT_SETUPS:
            parts.append(f"--setup {','.join(opts.setups)}")
        if opts.time_limit:
            parts.append(f"--time-limit {opts.time_limit:g}")
        if alphabet:
            parts.append(f"--alphabet {alphabet}")
        return " ".join(parts)

    def _update_buttons(self) -> None:
        busy = self.runner.busy
        self.run_button.setEnabled(not busy and any(b.isChecked() for b in self.setup_boxes.values()))
        self.cancel_button.setEnabled(busy)
        self.open_button.setEnabled(self.findings.rowCount() > 0)

    # ------------------------------------------------------------------ running
    def start(self) -> bool:
        if self.runner.busy:
            return False
        try:
            opts = self.options()
        except (ScenarioError, ValueError) as exc:
            return self._error(str(exc))
        self._order = opts.tasks()
        self.searches.setRowCount(len(self._order))
        for row, (variant, setup) in enumerate(self._order):
            self._set_row(row, {"variant": variant, "setup": setup})
        self.progress.setRange(0, len(self._order))
        self.progress.setValue(0)
        self.progress.setFormat(f"0/{len(self._order)} searches")
        self.status.setText(f"Exploring: <code>{html.escape(opts.command)}</code>")
        emit = self.status_changed.emit

        def work(job):
            report = explore(opts, progress=emit, cancel=job.cancelled)
            if job.cancelled() and not report.tasks:
                raise Cancelled()
            return report

        ok = self.runner.start("explore", work, self._on_done, self._on_error, self._on_cancelled)
        self._update_buttons()
        return ok

    def cancel(self) -> None:
        self.runner.cancel()

    def _set_row(self, row: int, status: dict) -> None:
        values = (
            status.get("variant", ""),
            status.get("setup", ""),
            f"{status.get('depth', 0)}/{status.get('depth_target', '')}" if "depth" in status else "",
            f"{status.get('states', 0):,}" if "states" in status else "",
            f"{status.get('rate', 0):,.0f}" if "rate" in status else "",
            ", ".join(status.get("found", [])),
        )
        for col, text in enumerate(values):
            item = QtWidgets.QTableWidgetItem(text)
            if col in (2, 3, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.searches.setItem(row, col, item)

    def _on_status(self, status: dict) -> None:
        for index, st in status.get("tasks", {}).items():
            if index < self.searches.rowCount():
                self._set_row(index, st)
        done = status.get("done", 0)
        self.progress.setValue(done)
        self.progress.setFormat(f"{done}/{status.get('total', 0)} searches, {int(status.get('seconds', 0))} s")

    def _on_done(self, report: Report) -> None:
        self.report = report
        self.last_error = ""
        for row, t in enumerate(report.tasks):
            if row < self.searches.rowCount():
                self._set_row(row, {
                    "variant": t.variant, "setup": t.setup, "depth": t.depth_done, "depth_target": t.depth_target,
                    "states": t.states, "rate": t.rate, "found": sorted({f.finding for f in t.findings}),
                })
        self.searches.resizeColumnsToContents()
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"done in {report.seconds:.0f} s")
        self.summary.setPlainText("\n".join(report.summary_lines()))
        self.show_findings(report.findings)
        self.status.setText(f"{len(report.findings)} findings; double-click one to open its counterexample.")
        self._update_buttons()
        self.finished.emit()

    def _on_error(self, message: str, _tb: str) -> None:
        self._error(f"The search failed: {message}")
        self._update_buttons()
        self.finished.emit()

    def _on_cancelled(self) -> None:
        self.status.setText("Stopped before any search finished.")
        self._update_buttons()
        self.finished.emit()

    def _error(self, message: str) -> bool:
        self.last_error = message
        self.status.setText(f"<span style='color:#d9534f'>{html.escape(message)}</span>")
        return False

    # ------------------------------------------------------------------ findings
    def show_findings(self, findings: list[FindingReport]) -> None:
        self.findings.setSortingEnabled(False)
        self.findings.setRowCount(len(findings))
        for row, f in enumerate(findings):
            what = f.finding + (f" ({f.subclass})" if f.subclass else "")
            values = (f.variant.upper(), f.setup, what, str(f.ops), "yes" if f.verified else (f.problem or "no"), " ".join(f.program), Path(f.file).name if f.file else "")
            for col, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, f.file)
                item.setToolTip(f"{f.title}\n{f.detail}\n{f.file}")
                if col == 3:
                    item.setData(Qt.ItemDataRole.DisplayRole, f.ops)
                self.findings.setItem(row, col, item)
        # In the report's order (variant, setup, finding) until the user sorts by a column.
        self.findings.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.findings.setSortingEnabled(True)
        self.findings.resizeColumnsToContents()
        self._update_buttons()

    def finding_file(self, row: int) -> str:
        item = self.findings.item(row, 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ""

    def open_finding(self, row: int) -> bool:
        path = self.finding_file(row) if row >= 0 else ""
        if not path:
            return False
        if not Path(path).exists():
            return self._error(f"{path}: the counterexample file is gone (run the search again)")
        if self.open_file is not None:
            self.open_file(path)
        return True

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.runner.wait(60_000)
        super().closeEvent(event)
