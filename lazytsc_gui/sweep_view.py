"""Parameter sweep window: settings and values, a background run, a plot of any figure.

The sweep itself is `lazytsc.sweep_cli.run_sweep` (the same code as `lazytsc sweep`):
settings are parsed and validated like the scenario file, the points run in worker
processes, and the result's `series()` gives the plotted lines. This widget only
collects the settings, shows progress and draws; it holds no protocol logic.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

import pyqtgraph as pg
from lazytsc.atomic import atomic_write_text
from lazytsc.scenario import Scenario, ScenarioError
from lazytsc.sweep import count_points, current_value, known_keys, parse_setting
from lazytsc.sweep_run import SweepCancelled, default_jobs
from lazytsc.sweep_table import SweepResult
from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .worker import Cancelled, TaskRunner

Qt = QtCore.Qt
SHOW_TEXT = {
    "classic": "classic",
    "lazy": "lazy",
    "both": "classic and lazy",
    "ratio": "lazy / classic",
    "cut": "cut (1 - lazy / classic)",
}
DEFAULT_FIGURE = "exits.total"


class SettingRow(QtWidgets.QWidget):
    """One `--set`: an editable key box, its values, and a remove button."""

    removed = QtCore.Signal(object)

    def __init__(self, keys: list[str], key: str = "", values: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = QtWidgets.QComboBox()
        self.key.setEditable(True)
        self.key.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.key.addItems(keys)
        self.key.setMinimumContentsLength(28)
        self.key.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        completer = self.key.completer()
        if completer is not None:
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            completer.setCompletionMode(QtWidgets.QCompleter.CompletionMode.PopupCompletion)
        self.key.setCurrentText(key)
        self.values = QtWidgets.QLineEdit(values)
        self.values.setPlaceholderText("values: 300,600,1200 or 1..8")
        self.remove = QtWidgets.QToolButton()
        self.remove.setText("✕")
        self.remove.setToolTip("Remove this setting")
        self.remove.clicked.connect(lambda: self.removed.emit(self))
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.key, 2)
        layout.addWidget(QtWidgets.QLabel("="))
        layout.addWidget(self.values, 3)
        layout.addWidget(self.remove)

    def text(self) -> str:
        return f"{self.key.currentText().strip()}={self.values.text().strip()}"


class SweepView(QtWidgets.QWidget):
    """A window that sweeps the open scenario over settings and plots the figures."""

    finished = QtCore.Signal()

    def __init__(self, scenario_source: Callable[[], Scenario | None] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowTitle("Parameter sweep — lazytsc")
        self.setObjectName("lazytscSweepView")
        self.scenario_source = scenario_source
        self.scenario: Scenario | None = None
        self.result: SweepResult | None = None
        self.last_error = ""
        self.runner = TaskRunner(self)
        self._started = 0.0
        self._keys: list[str] = []
        self._build()
        themes.manager().changed.connect(self._on_theme)
        self._update_buttons()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.scenario_label = QtWidgets.QLabel("No scenario")
        self.scenario_label.setTextFormat(Qt.TextFormat.RichText)
        self.use_current = QtWidgets.QPushButton("Use the open scenario")
        self.use_current.setToolTip("Sweep the scenario the main window shows now (with its applied edits)")
        self.use_current.clicked.connect(self.refresh_scenario)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.scenario_label, 1)
        top.addWidget(self.use_current)

        self.rows_box = QtWidgets.QVBoxLayout()
        self.rows: list[SettingRow] = []
        self.add_button = QtWidgets.QPushButton("Add setting")
        self.add_button.clicked.connect(lambda: self.add_setting())
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(["both", "classic", "lazy"])
        self.mode.setToolTip("Driver(s) each point runs")
        self.jobs = QtWidgets.QSpinBox()
        self.jobs.setRange(1, 256)
        self.jobs.setValue(default_jobs())
        self.jobs.setToolTip("Worker processes on this machine")
        self.dask = QtWidgets.QLineEdit()
        self.dask.setPlaceholderText("Dask scheduler (optional): tcp://host:8786")
        self.count = QtWidgets.QLabel("")
        opts = QtWidgets.QHBoxLayout()
        opts.addWidget(self.add_button)
        opts.addWidget(QtWidgets.QLabel("Mode"))
        opts.addWidget(self.mode)
        opts.addWidget(QtWidgets.QLabel("Jobs"))
        opts.addWidget(self.jobs)
        opts.addWidget(self.dask, 1)
        opts.addWidget(self.count)

        self.run_button = QtWidgets.QPushButton("Run sweep")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        run = QtWidgets.QHBoxLayout()
        run.addWidget(self.run_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.progress, 1)
        run.addWidget(self.status, 2)

        settings_group = QtWidgets.QGroupBox("Settings (the cartesian product of their values)")
        sg = QtWidgets.QVBoxLayout(settings_group)
        sg.addLayout(self.rows_box)
        sg.addLayout(opts)
        sg.addLayout(run)

        self.figure = QtWidgets.QComboBox()
        self.figure.setMinimumContentsLength(28)
        self.show_what = QtWidgets.QComboBox()
        self.x_key = QtWidgets.QComboBox()
        self.pool_seeds = QtWidgets.QCheckBox("Sum over seeds")
        self.pool_seeds.setToolTip("Pool the counts of every seed before dividing (one line per other setting)")
        for box in (self.figure, self.show_what, self.x_key):
            box.currentIndexChanged.connect(lambda _i: self.replot())
        self.pool_seeds.toggled.connect(lambda _on: self.replot())
        self.export_png_button = QtWidgets.QPushButton("Export PNG…")
        self.export_png_button.clicked.connect(self.export_png_dialog)
        self.export_csv_button = QtWidgets.QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(self.export_csv_dialog)
        plot_opts = QtWidgets.QHBoxLayout()
        plot_opts.addWidget(QtWidgets.QLabel("Plot"))
        plot_opts.addWidget(self.figure, 2)
        plot_opts.addWidget(self.show_what, 1)
        plot_opts.addWidget(QtWidgets.QLabel("against"))
        plot_opts.addWidget(self.x_key, 1)
        plot_opts.addWidget(self.pool_seeds)
        plot_opts.addStretch(0)
        plot_opts.addWidget(self.export_png_button)
        plot_opts.addWidget(self.export_csv_button)

        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.getViewBox().setDefaultPadding(0.06)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.empty_text = "Run a sweep to plot its figures."
        self.plot.setTitle(self.empty_text)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(settings_group)
        layout.addLayout(plot_opts)
        layout.addWidget(self.plot, 1)
        self.resize(1100, 760)

    def _on_theme(self, _theme) -> None:
        self.replot()

    # ------------------------------------------------------------------ settings
    def set_scenario(self, scenario: Scenario | None) -> None:
        """Sweep this scenario from now on (its TOML text as applied in the editor)."""
        self.scenario = scenario
        if scenario is None:
            self.scenario_label.setText("<i>No scenario is open: open one in the main window.</i>")
            self._keys = []
        else:
            where = html.escape(scenario.path or "unsaved")
            self.scenario_label.setText(f"<b>{html.escape(scenario.name)}</b> · {where} · {scenario.run.variant}, "
                                        f"{len(scenario.run.vcpus)} vCPU, seed {scenario.run.seed}")
            self._keys = known_keys(scenario)
            self.mode.setCurrentText(scenario.mode)
        for row in self.rows:
            text = row.key.currentText()
            row.key.clear()
            row.key.addItems(self._keys)
            row.key.setCurrentText(text)
        if not self.rows:
            self.add_setting("seed", "1..4")
        self._update_buttons()

    def refresh_scenario(self) -> None:
        if self.scenario_source is not None:
            self.set_scenario(self.scenario_source())

    def add_setting(self, key: str = "", values: str = "") -> SettingRow:
        row = SettingRow(self._keys, key, values)
        row.removed.connect(self._remove_row)
        row.key.currentTextChanged.connect(lambda _t, r=row: self._key_changed(r))
        row.values.textChanged.connect(lambda _t: self._update_count())
        self.rows.append(row)
        self.rows_box.addWidget(row)
        self._key_changed(row)
        return row

    def _remove_row(self, row: SettingRow) -> None:
        self.rows.remove(row)
        self.rows_box.removeWidget(row)
        row.deleteLater()
        self._update_count()

    def _key_changed(self, row: SettingRow) -> None:
        now = current_value(self.scenario, row.key.currentText().strip()) if self.scenario else None
        hint = "values: 300,600,1200 or 1..8"
        row.values.setPlaceholderText(hint if now is None else f"{hint} (now {now})")
        self._update_count()

    def setting_texts(self) -> list[str]:
        return [row.text() for row in self.rows if row.key.currentText().strip() or row.values.text().strip()]

    def _update_count(self) -> None:
        try:
            settings = [parse_setting(t) for t in self.setting_texts()]
        except ScenarioError:
            self.count.setText("")
            return
        modes = 2 if self.mode.currentText() == "both" else 1
        points = count_points(settings)
        self.count.setText(f"{points:,} point{'s' if points != 1 else ''} · {points * modes:,} runs")

    def _update_buttons(self) -> None:
        busy = self.runner.busy
        self.run_button.setEnabled(not busy and self.scenario is not None)
        self.cancel_button.setEnabled(busy)
        self.use_current.setEnabled(not busy and self.scenario_source is not None)
        has = self.result is not None
        for w in (self.export_png_button, self.export_csv_button, self.figure, self.show_what, self.x_key):
            w.setEnabled(has and not busy)

    # ------------------------------------------------------------------ running
    def start(self) -> bool:
        """Validate the settings here, run the sweep in the background; False on bad input."""
        if self.scenario is None or self.runner.busy:
            return False
        if not self.scenario.text:
            return self._error("this run has no scenario text to sweep (open a scenario file)")
        try:
            settings = [parse_setting(t) for t in self.setting_texts()]
        except ScenarioError as exc:
            return self._error(str(exc))
        scenario = self.scenario
        mode = self.mode.currentText()
        modes = ("classic", "lazy") if mode == "both" else (mode,)
        jobs = self.jobs.value()
        dask = self.dask.text().strip() or None
        label = scenario.path or scenario.name

        def work(job):
            from lazytsc.sweep_cli import run_sweep

            start = time.monotonic()

            def progress(done: int, total: int) -> None:
                elapsed = time.monotonic() - start
                eta = f" · ETA {_clock(elapsed / done * (total - done))}" if done else ""
                job.report(done / total if total else 0.0, f"{done:,}/{total:,} runs · {_clock(elapsed)}{eta}")

            try:
                return run_sweep(scenario, settings, modes, label, jobs, dask, progress, cancel=job.cancelled)
            except SweepCancelled:
                raise Cancelled() from None

        self.last_error = ""
        self.status.setStyleSheet("")
        self.status.setText("Validating every point…")
        self.progress.setValue(0)
        self._started = time.monotonic()
        self.runner.progress.connect(self._on_progress)
        ok = self.runner.start("sweep", work, self._on_done, self._on_error, self._on_cancelled)
        self._update_buttons()
        return ok

    def cancel(self) -> None:
        self.runner.cancel()
        self.status.setText("Cancelling…")

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(1000 * max(0.0, fraction)))
        self.status.setText(text)

    def _disconnect_progress(self) -> None:
        try:
            self.runner.progress.disconnect(self._on_progress)
        except (RuntimeError, TypeError):
            pass

    def _on_done(self, result: SweepResult) -> None:
        self._disconnect_progress()
        self.result = result
        runs = len(result.points) * len(result.modes)
        self.progress.setValue(1000)
        self.status.setText(f"{len(result.points):,} points · {runs:,} runs in {_clock(time.monotonic() - self._started)}")
        self._fill_plot_choices()
        self._update_buttons()
        self.replot()
        self.finished.emit()

    def _on_error(self, message: str, _tb: str) -> None:
        self._disconnect_progress()
        self._error(message)
        self._update_buttons()
        self.finished.emit()

    def _on_cancelled(self) -> None:
        self._disconnect_progress()
        self.progress.setValue(0)
        self.status.setStyleSheet("")
        self.status.setText("Cancelled; the previous result (if any) is kept.")
        self._update_buttons()
        self.finished.emit()

    def _error(self, message: str) -> bool:
        self.last_error = message
        self.status.setStyleSheet(f"color: {themes.current().marks.get('haz:spurious', '#d32f2f')};")
        self.status.setText(html.escape(f"lazytsc: error: {self.last_error}"))
        return False

    # ------------------------------------------------------------------ plotting
    def _fill_plot_choices(self) -> None:
        result = self.result
        assert result is not None
        keep = (self.figure.currentText(), self.show_what.currentData(), self.x_key.currentText())
        for box in (self.figure, self.show_what, self.x_key):
            box.blockSignals(True)
            box.clear()
        self.figure.addItems(result.figure_names())
        for show in result.shows():
            self.show_what.addItem(SHOW_TEXT[show], show)
        self.x_key.addItems(result.keys or ["(point)"])
        self.figure.setCurrentText(keep[0] if keep[0] in result.figure_names() else DEFAULT_FIGURE)
        index = self.show_what.findData(keep[1] if keep[1] in result.shows() else ("both" if result.both else result.modes[0]))
        self.show_what.setCurrentIndex(max(0, index))
        if keep[2] in result.keys:
            self.x_key.setCurrentText(keep[2])
        else:  # the first numeric setting other than the seed, else the first
            numeric = [k for k in result.keys if result.x_axis(k)[2] is None]
            preferred = [k for k in numeric if k != "seed"] or numeric or result.keys
            if preferred:
                self.x_key.setCurrentText(preferred[0])
        self.pool_seeds.setEnabled("seed" in result.keys)
        for box in (self.figure, self.show_what, self.x_key):
            box.blockSignals(False)

    def plot_title(self) -> str:
        result = self.result
        if result is None:
            return self.empty_text
        show = SHOW_TEXT.get(self.show_what.currentData() or "", "")
        sweep = "; ".join(f"{k} = {', '.join(_fmt(v) for v in result.x_axis(k)[0])}" for k in result.keys) or "one point"
        return f"{result.scenario}: {self.figure.currentText()} ({show}) vs {self.x_key.currentText()}\nsweep: {sweep}"

    def current_series(self):
        result = self.result
        if result is None or not self.figure.currentText():
            return []
        if not result.keys:
            return []
        pool = self.pool_seeds.isChecked() and self.pool_seeds.isEnabled() and self.x_key.currentText() != "seed"
        return result.series(self.figure.currentText(), self.show_what.currentData(), self.x_key.currentText(), pool)

    def replot(self) -> None:
        theme = themes.current()
        self.plot.setBackground(theme.plot_bg)
        self.plot.clear()
        self.legend.clear()
        fg = theme.plot_fg
        for axis in ("left", "bottom"):
            ax = self.plot.getAxis(axis)
            ax.setPen(pg.mkPen(fg))
            ax.setTextPen(pg.mkPen(fg))
        head, _, sweep = self.plot_title().partition("\n")
        title = f"<b>{html.escape(head)}</b>" + (f"<br><span style='font-size:9pt'>{html.escape(sweep)}</span>" if sweep else "")
        self.plot.setTitle(f"<span style='color:{fg}'>{title}</span>", size="10pt")
        result = self.result
        if result is None or not result.keys:
            return
        x_key = self.x_key.currentText()
        _values, _xs, labels = result.x_axis(x_key)
        bottom = self.plot.getAxis("bottom")
        bottom.setTicks([list(zip(_xs, labels, strict=True))] if labels else None)
        self.plot.setLabel("bottom", x_key, color=fg)
        self.plot.setLabel("left", self.figure.currentText(), color=fg)
        self.legend.setLabelTextColor(fg)
        legend_bg = QtGui.QColor(theme.plot_bg)
        legend_bg.setAlpha(210)
        self.legend.setBrush(pg.mkBrush(legend_bg))
        self.legend.setPen(pg.mkPen(theme.grid))
        lines = self.current_series()
        groups = max((line.group for line in lines), default=0) + 1
        bright = 150 if theme.name == "light" else 240  # contrast with the plot background
        for line in lines:
            # One colour per combination of the other settings (per mode if there is only one);
            # classic solid, lazy dashed.
            index = line.group if groups > 1 else result.shows().index(line.show)
            color = pg.intColor(index, hues=max(groups if groups > 1 else 2, 6), values=1, sat=190, maxValue=bright)
            style = Qt.PenStyle.DashLine if line.show == "lazy" and groups > 1 else Qt.PenStyle.SolidLine
            ys = [float("nan") if y is None else float(y) for y in line.ys]
            self.plot.plot(line.xs, ys, pen=pg.mkPen(color, width=2, style=style), symbol="o", symbolSize=7,
                           symbolBrush=color, symbolPen=None, name=line.label, connect="finite")
        self.plot.enableAutoRange()

    # ------------------------------------------------------------------ export
    def export_png(self, path: str, width: int = 1400) -> None:
        """The plot with its title (scenario and sweep) as a PNG, written atomically."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.plot.getPlotItem())
        exporter.parameters()["width"] = width
        exporter.parameters()["background"] = QtGui.QColor(themes.current().plot_bg)
        image = exporter.export(toBytes=True)
        out = QtCore.QSaveFile(path)
        if not out.open(QtCore.QIODevice.OpenModeFlag.WriteOnly):
            raise OSError(out.errorString())
        buffer = QtCore.QBuffer()
        buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        out.write(buffer.data())
        if not out.commit():
            raise OSError(out.errorString())

    def export_csv(self, path: str) -> None:
        """Every figure of every point: the same bytes as `lazytsc sweep --csv`."""
        assert self.result is not None
        atomic_write_text(path, self.result.to_csv())

    def _export_dialog(self, suffix: str, filt: str, write: Callable[[str], None]) -> None:
        if self.result is None:
            return
        stem = (self.scenario.path.rsplit("/", 1)[-1].removesuffix(".toml") if self.scenario and self.scenario.path else "sweep")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export sweep", f"{stem}-sweep.{suffix}", filt)
        if not path:
            return
        try:
            write(path)
        except OSError as exc:
            QtWidgets.QMessageBox.warning(self, "Export failed", f"{path}: {exc}")
        else:
            self.status.setText(f"Wrote {path}")

    def export_png_dialog(self) -> None:
        self._export_dialog("png", "PNG image (*.png)", self.export_png)

    def export_csv_dialog(self) -> None:
        self._export_dialog("csv", "CSV (*.csv)", self.export_csv)

    # ------------------------------------------------------------------ window
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        """Never leave a sweep running behind a closed window."""
        if self.runner.busy:
            self.runner.cancel()
            self.runner.wait(30_000)
        event.accept()


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}:{secs:02}"
