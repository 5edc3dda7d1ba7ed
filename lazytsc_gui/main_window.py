"""The main window: menus, toolbar, docks, status bar, files, and wiring of the panels.

Protocol knowledge lives in the engine; this module only moves between
documents, files and widgets. Every path that could drop unsaved edits (close,
open, new, drag-and-drop, examples) asks first.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
from lazytsc.accounting import summarize
from lazytsc.resources import DEFAULT_SCENARIO, builtin_scenarios, icon_path
from lazytsc.scenario import (
    Scenario,
    TomlEditError,
    atomic_write_text,
    with_bookmarks,
    with_breakpoints,
)
from lazytsc.taxonomy import HAZARD_KINDS
from PySide6 import QtCore, QtGui, QtWidgets

from . import export, themes
from .breakpoints_panel import BreakpointsPanel
from .compare import CompareView, Side, what_if_headline
from .controller import DebugController
from .demos import demos, explanation
from .document import RunDocument, TraceDocument, build_log, looks_like_scenario, what_if_data
from .editor import NEW_SCENARIO, ScenarioEditor
from .events_panel import EventsPanel, HazardsPanel
from .exits_panel import ExitsPanel
from .explain_panel import ExplainPanel
from .fmt import fmt_ns, fmt_s, position_text
from .range_panel import RangePanel
from .scenario_io import check_text, read_scenario_file
from .settings import Settings
from .state_panel import StatePanel
from .timeline import TimelineWidget
from .worker import TaskRunner

Qt = QtCore.Qt
MB = QtWidgets.QMessageBox
SCENARIO_FILTER = "Scenarios (*.toml);;All files (*)"
TRACE_FILTER = "KVM traces (*.dat *.txt *.trace *.log *.gz *.xz *.zst *.report);;All files (*)"
# speed slider (0..100) -> events per second in play mode, logarithmic 1 .. 100k
SPEED_MIN, SPEED_MAX = 1.0, 100_000.0


def parse_goto(text: str, total: int) -> tuple[str, int] | str:
    """("event", index) or ("time", ns) from what a user types, or an error message."""
    from lazytsc.units import parse_duration

    t = text.strip().replace(",", "").replace("_", "")
    if not t:
        return "Go to: type an event number (#27) or a time (150us)"
    body = t[1:].strip() if t.startswith("#") else t
    if body.isdigit():
        index = int(body)
        if not 0 <= index < total:
            return f"Go to: there is no event #{index:,} (this run has #0 … #{total - 1:,})"
        return ("event", index)
    try:
        return ("time", int(parse_duration(t.lstrip("@"))))
    except (ValueError, TypeError):
        return f"Go to: {text!r} is neither an event number (#27) nor a time with a unit (150us, 1.5ms)"


def speed_for(value: int) -> float:
    return float(SPEED_MIN * (SPEED_MAX / SPEED_MIN) ** (value / 100.0))


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: Settings | None = None, mode: str | None = None, restore_layout: bool = True) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.persist = True  # save layout and preferences on close
        self._restore_layout = restore_layout
        self.setObjectName("lazytscMainWindow")
        self.setWindowTitle("lazytsc")
        self.setAcceptDrops(True)
        self.setDockOptions(self.dockOptions() | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks | QtWidgets.QMainWindow.DockOption.AnimatedDocks)
        icon = icon_path()
        if icon.exists():
            self.setWindowIcon(QtGui.QIcon(str(icon)))
        self.runner = TaskRunner(self)
        self.controller = DebugController(self.runner, self)
        self.mode = mode or self.settings.mode
        self.scenario: Scenario | None = None
        self.builtin_name: str | None = None  # set while the editor shows a built-in scenario
        self.editor_is_run = False  # the editor text is the scenario that is running
        self._compare_cache: dict[tuple, tuple] = {}
        self._context_time = 0.0
        self.last_error = ""
        self.loaded = False
        self.sweep_view = None  # the parameter-sweep window, made on first use
        self.explore_view = None  # Tools > Explore, made on first use

        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()
        self._wire()
        themes.manager().changed.connect(self._theme_changed)
        self._restore_settings()
        self._update_actions()

    # ================================================================== construction
    def _build_central(self) -> None:
        self.timeline = TimelineWidget(describe=self._describe)
        self.compare = CompareView(describe_a=self._describe_compare(0), describe_b=self._describe_compare(1))
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.timeline, "Timeline")
        self.tabs.addTab(self.compare, "Compare")
        self.setCentralWidget(self.tabs)

    def _dock(self, title: str, name: str, widget: QtWidgets.QWidget, area: Qt.DockWidgetArea) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        c = self.controller
        self.state_panel = StatePanel(c)
        self.exits_panel = ExitsPanel(c)
        self.events_panel = EventsPanel(c)
        self.hazards_panel = HazardsPanel(c)
        self.breakpoints_panel = BreakpointsPanel(c)
        self.range_panel = RangePanel(c)
        self.editor = ScenarioEditor()
        self.explain = ExplainPanel()
        R, B, L = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea
        self.state_dock = self._dock("Shared page && host state", "stateDock", self.state_panel, R)
        self.exits_dock = self._dock("Exit accounting", "exitsDock", self.exits_panel, R)
        self.events_dock = self._dock("Events", "eventsDock", self.events_panel, B)
        self.hazards_dock = self._dock("Hazards", "hazardsDock", self.hazards_panel, B)
        self.breakpoints_dock = self._dock("Breakpoints && watchpoints", "breakpointsDock", self.breakpoints_panel, B)
        self.range_dock = self._dock("Range A→B", "rangeDock", self.range_panel, B)
        self.editor_dock = self._dock("Scenario editor", "editorDock", self.editor, B)
        self.explain_dock = self._dock("Explanation", "explainDock", self.explain, L)
        self.tabifyDockWidget(self.events_dock, self.hazards_dock)
        self.tabifyDockWidget(self.hazards_dock, self.breakpoints_dock)
        self.tabifyDockWidget(self.breakpoints_dock, self.range_dock)
        self.tabifyDockWidget(self.range_dock, self.editor_dock)
        self.events_dock.raise_()
        self.splitDockWidget(self.state_dock, self.exits_dock, Qt.Orientation.Vertical)
        self.docks = [self.state_dock, self.exits_dock, self.events_dock, self.hazards_dock, self.breakpoints_dock, self.range_dock, self.editor_dock, self.explain_dock]

    def _act(self, text: str, slot, shortcut=None, tip: str = "", icon: QtWidgets.QStyle.StandardPixmap | None = None, checkable: bool = False) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut:
            seqs = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QtGui.QKeySequence(s) for s in seqs])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        keys = action.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f" ({keys})" if keys else ""))
        action.setStatusTip(tip or text.replace("&", ""))
        action.setCheckable(checkable)
        if checkable:
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        SP = QtWidgets.QStyle.StandardPixmap
        Key = QtGui.QKeySequence.StandardKey
        self.a_new = self._act("&New scenario", self.new_scenario, Key.New, icon=SP.SP_FileIcon)
        self.a_open = self._act("&Open scenario…", self.open_dialog, Key.Open, icon=SP.SP_DialogOpenButton)
        self.a_open_trace = self._act("Open &trace…", self.open_trace_dialog, "Ctrl+Shift+O", "Import a recorded KVM trace (ftrace, trace-cmd, perf script, perf kvm stat)")
        self.a_save = self._act("&Save", self.save, Key.Save, icon=SP.SP_DialogSaveButton)
        self.a_save_as = self._act("Save &as…", self.save_as, Key.SaveAs)
        self.a_quit = self._act("&Quit", self.close, Key.Quit)
        self.a_exp_csv = self._act("Events as &CSV…", lambda: self.export_dialog("events_csv"))
        self.a_exp_json = self._act("Events as &JSON…", lambda: self.export_dialog("events_json"))
        self.a_exp_perfetto = self._act("Events as &Perfetto trace…", lambda: self.export_dialog("perfetto"))
        self.a_exp_exits_csv = self._act("Exit table as C&SV…", lambda: self.export_dialog("exits_csv"))
        self.a_exp_exits_md = self._act("Exit table as &Markdown…", lambda: self.export_dialog("exits_md"))
        self.a_exp_png = self._act("Timeline as &PNG…", lambda: self.export_dialog("png"))
        self.a_exp_svg = self._act("Timeline as S&VG…", lambda: self.export_dialog("svg"))

        c = self.controller
        self.a_continue = self._act("&Continue", c.continue_, "F5", "Run until a breakpoint or the end", SP.SP_MediaPlay)
        self.a_pause = self._act("&Pause", c.pause, ["F6", "Ctrl+."], "Pause play mode or a running job", SP.SP_MediaPause)
        self.a_step = self._act("&Step one event", c.step, "F10", "Exactly one event forward (the next row of the event list)", SP.SP_ArrowRight)
        self.a_step_action = self._act("Step one &action", c.step_action, "F11", "To the end of the engine action holding the next event (all the events one cause logs at one instant)", SP.SP_MediaSkipForward)
        self.a_step_back = self._act("Step &back one event", c.step_back, "Shift+F10", "Exactly one event back (checkpoint + replay)", SP.SP_ArrowLeft)
        self.a_step_back_action = self._act("Step back one a&ction", c.step_back_action, "Shift+F11", "Back to the start of the engine action holding the current event")
        self.a_lane_next = self._act("&Next event in this lane", lambda: c.lane_event(+1), "Alt+Right", "Next event of the selected vCPU (click a lane to select one)")
        self.a_lane_prev = self._act("Previous event in this &lane", lambda: c.lane_event(-1), "Alt+Left", "Previous event of the selected vCPU")
        self.a_step_vcpu = self.a_lane_next
        self.a_goto = self._act("&Go to event or time…", self.goto_dialog, "Ctrl+G", "Jump to event #N or to a time (150us, 1.5ms)")
        self.a_reverse = self._act("&Reverse continue", c.reverse_continue, "Shift+F5", "Back to the previous breakpoint hit", SP.SP_MediaSeekBackward)
        self.a_restart = self._act("Res&tart", c.restart, "Ctrl+Shift+F5", "Back to the start of the run", SP.SP_MediaSkipBackward)
        self.a_run_cursor = self._act("Run to c&ursor", self.run_to_cursor, "Ctrl+F10", "Run (with breakpoints) to the selected event or measurement cursor A")
        self.a_play = self._act("&Play (animate stepping)", self._toggle_play, "F8", "Animate stepping at the speed of the slider", SP.SP_MediaSeekForward, checkable=True)
        self.a_next_haz = self._act("Next &hazard", lambda: self.goto_hazard(+1), "Ctrl+]", "Jump to the next hazard event")
        self.a_prev_haz = self._act("Previous ha&zard", lambda: self.goto_hazard(-1), "Ctrl+[", "Jump to the previous hazard event")
        self.a_add_bp = self._act("Add &breakpoint on selected event", self.breakpoints_panel.add_from_selection, "Ctrl+F9")
        self.a_compare = self._act("&Compare classic vs lazy", self.show_compare, "Ctrl+Shift+C", "Run both modes side by side with the exit tables diffed")
        self.a_sweep = self._act("Parameter s&weep…", self.show_sweep, None, "Run the scenario over combinations of settings and plot any figure")
        self.a_explore = self._act("&Explore the protocol…", self.show_explore, None, "Exhaustive search for lost timers and hangs, with counterexamples")

        self.a_fit = self._act("Zoom to &fit", self.timeline.zoom_to_fit, ["Ctrl+0", "Home"], "Show the whole run", SP.SP_TitleBarMaxButton)
        self.a_zoom_in = self._act("Zoom &in", lambda: self.timeline.zoom(2.0), ["Ctrl+=", "Ctrl++"], "Zoom in (around the cursor)")
        self.a_zoom_out = self._act("Zoom &out", lambda: self.timeline.zoom(0.5), "Ctrl+-", "Zoom out")
        self.a_rubber = self._act("&Rubber-band zoom", self.timeline.set_rubber_band, None, "Drag to zoom to a time range (Shift+drag always does)", checkable=True)
        self.a_measure = self._act("&Measurement cursors", self._toggle_measure, "Ctrl+M", "Two cursors A/B with the time between them", checkable=True)
        self.a_follow = self._act("&Follow the cursor", self._set_follow, None, "Scroll the timeline to keep the current event visible", checkable=True)
        self.a_follow.setChecked(True)
        self.a_bookmark = self._act("Add &bookmark at cursor…", self.add_bookmark_dialog, "Ctrl+B", "Name the current event; bookmarks are saved with the scenario")
        self.theme_group = QtGui.QActionGroup(self)
        self.a_dark = self._act("&Dark", lambda on: on and self.set_theme("dark"), None, checkable=True)
        self.a_light = self._act("&Light", lambda on: on and self.set_theme("light"), None, checkable=True)
        for a in (self.a_dark, self.a_light):
            self.theme_group.addAction(a)
        self.a_reset_layout = self._act("Reset &layout", self.reset_layout)
        self.a_about = self._act("&About lazytsc", self.about)
        # short labels for the toolbar
        for action, text in (
            (self.a_restart, "Restart"),
            (self.a_reverse, "Reverse"),
            (self.a_step_back, "Back"),
            (self.a_step, "Event"),
            (self.a_step_action, "Action"),
            (self.a_continue, "Continue"),
            (self.a_pause, "Pause"),
            (self.a_play, "Play"),
            (self.a_fit, "Fit"),
            (self.a_rubber, "Zoom range"),
            (self.a_measure, "Measure"),
            (self.a_compare, "Compare"),
        ):
            action.setIconText(text)
        self.a_keys = self._act("&Keyboard shortcuts", self.show_shortcuts, "F1")

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addActions([self.a_new, self.a_open])
        self.recent_menu = f.addMenu("Open &recent")
        f.addAction(self.a_open_trace)
        f.addSeparator()
        f.addActions([self.a_save, self.a_save_as])
        exp = f.addMenu("&Export")
        exp.addActions([self.a_exp_csv, self.a_exp_json, self.a_exp_perfetto])
        exp.addSeparator()
        exp.addActions([self.a_exp_exits_csv, self.a_exp_exits_md])
        exp.addSeparator()
        exp.addActions([self.a_exp_png, self.a_exp_svg])
        f.addSeparator()
        f.addAction(self.a_quit)
        r = mb.addMenu("&Run")
        r.addActions([self.a_continue, self.a_pause, self.a_step, self.a_step_action, self.a_step_back, self.a_step_back_action, self.a_reverse, self.a_restart, self.a_run_cursor])
        r.addSeparator()
        r.addActions([self.a_lane_next, self.a_lane_prev, self.a_goto])
        r.addSeparator()
        r.addActions([self.a_play, self.a_next_haz, self.a_prev_haz, self.a_add_bp])
        r.addSeparator()
        mode_menu = r.addMenu("&Mode")
        self.mode_group = QtGui.QActionGroup(self)
        self.a_modes = {}
        for m in ("classic", "lazy"):
            a = QtGui.QAction(m, self, checkable=True)
            a.triggered.connect(lambda _c=False, m=m: self.set_mode(m))
            self.mode_group.addAction(a)
            mode_menu.addAction(a)
            self.a_modes[m] = a
        r.addAction(self.a_compare)
        r.addAction(self.a_sweep)
        self.bookmarks_menu = mb.addMenu("&Bookmarks")
        mb.addMenu("&Tools").addAction(self.a_explore)
        v = mb.addMenu("&View")
        t = v.addMenu("&Theme")
        t.addActions([self.a_dark, self.a_light])
        panels = v.addMenu("&Panels")
        for d in self.docks:
            panels.addAction(d.toggleViewAction())
        v.addAction(self.a_reset_layout)
        v.addSeparator()
        v.addActions([self.a_fit, self.a_zoom_in, self.a_zoom_out, self.a_rubber, self.a_measure, self.a_follow])
        h = mb.addMenu("&Help")
        self.examples_menu = h.addMenu("&Examples")
        for demo in demos():
            a = self.examples_menu.addAction(f"{demo.title}  ({demo.name})")
            a.triggered.connect(lambda _c=False, n=demo.name: self.open_example(n))
        h.addAction(self.a_keys)
        h.addAction(self.a_about)
        self._rebuild_recent()
        self._rebuild_bookmarks_menu()

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Debugger")
        tb.setObjectName("debugToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setIconSize(QtCore.QSize(16, 16))
        tb.addActions([self.a_open, self.a_save])
        tb.addSeparator()
        self.mode_box = QtWidgets.QComboBox()
        self.mode_box.addItems(["classic", "lazy"])
        self.mode_box.setToolTip("Guest driver: classic (every deadline is a WRMSR) or lazy (the seed)")
        tb.addWidget(self.mode_box)
        tb.addSeparator()
        for a in (self.a_restart, self.a_reverse, self.a_step_back, self.a_step, self.a_step_action, self.a_continue, self.a_pause):
            tb.addAction(a)
        self.vcpu_box = QtWidgets.QComboBox()
        self.vcpu_box.setToolTip("Selected vCPU: next/previous event in this lane (Alt+Right / Alt+Left); click a lane to pick one")
        tb.addWidget(self.vcpu_box)
        tb.addSeparator()
        tb.addAction(self.a_play)
        self.speed = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(0, 100)
        self.speed.setFixedWidth(80)
        self.speed.setToolTip("Play speed (events per second)")
        self.speed_label = QtWidgets.QLabel()
        self.speed_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("100,000 ev/s") + 4)
        tb.addWidget(self.speed)
        tb.addWidget(self.speed_label)
        tb.addSeparator()
        for a in (self.a_fit, self.a_rubber, self.a_measure, self.a_compare):
            tb.addAction(a)
        # Icons alone where the icon says it (names in the tooltips), so that the whole
        # toolbar, Measure and Compare included, fits a 1280 px wide window.
        icon_only = (self.a_open, self.a_save, self.a_restart, self.a_reverse, self.a_step_back, self.a_pause, self.a_play)
        for a in (self.a_fit, self.a_rubber, self.a_measure, *icon_only):
            w = tb.widgetForAction(a)
            if isinstance(w, QtWidgets.QToolButton):
                w.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly if a in icon_only else Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.toolbar = tb

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.st_time = QtWidgets.QLabel()
        self.st_event = QtWidgets.QLabel()
        self.st_mode = QtWidgets.QLabel()
        self.st_vcpu = QtWidgets.QLabel()
        self.st_delta = QtWidgets.QLabel()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1000)
        self.cancel_btn = QtWidgets.QToolButton()
        self.cancel_btn.setText("Cancel")
        self.cancel_btn.clicked.connect(self.controller.pause)
        for w in (self.progress, self.cancel_btn):
            w.setVisible(False)
            sb.addPermanentWidget(w)
        fm = self.fontMetrics()
        widest = {self.st_time: "t = 1,000.000000 ms", self.st_event: "at #10,000,000 (10,000,000 of 10,000,000 events done)"}
        for w in (self.st_delta, self.st_time, self.st_event, self.st_mode, self.st_vcpu):
            w.setContentsMargins(6, 0, 6, 0)
            if w in widest:  # fixed widths: a new position must not relayout the status bar
                w.setFixedWidth(fm.horizontalAdvance(widest[w]) + 16)
                w.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            sb.addPermanentWidget(w)
        # A constant height: showing the progress bar must not relayout (and repaint)
        # the whole window while a job runs.
        h = max(self.progress.sizeHint().height(), self.cancel_btn.sizeHint().height(), self.st_time.sizeHint().height())
        self.progress.setFixedHeight(h)
        self.cancel_btn.setFixedHeight(h)
        sb.setFixedHeight(h + 6)

    def _wire(self) -> None:
        c = self.controller
        c.documentChanged.connect(self._doc_changed)
        c.documentGrew.connect(lambda _doc: self.timeline.data_grew())
        c.positionChanged.connect(self._position_changed)
        c.selectionChanged.connect(self._selection_changed)
        c.vcpuChanged.connect(self._vcpu_changed)
        c.busyChanged.connect(self._busy_changed)
        c.status.connect(lambda text: self.statusBar().showMessage(text, 6000))
        c.stopped.connect(self._stopped)
        c.loadFailed.connect(self._load_failed)
        c.bookmarksChanged.connect(self._bookmarks_changed)
        c.playingChanged.connect(self._playing_changed)
        self.runner.progress.connect(self._progress)
        self.timeline.eventClicked.connect(self._timeline_clicked)
        self.timeline.vcpuClicked.connect(c.set_vcpu)
        self.timeline.contextRequested.connect(self._timeline_menu)
        self.timeline.measureChanged.connect(self._measure_changed)
        self.timeline.markerAdded.connect(lambda name, t: c.add_bookmark(name, int(round(t * 1e9))))
        self.timeline.markerRemoved.connect(c.remove_bookmark)
        self.timeline.markerRenamed.connect(lambda i, name: self._edit_bookmark(i, name=name))
        self.timeline.markerMoved.connect(lambda i, t: self._edit_bookmark(i, at=int(round(t * 1e9)), event=None))
        self.runner.progress.connect(self.compare.set_progress)
        self.timeline.measureChanged.connect(self.range_panel.set_measure)
        self.state_panel.watchRequested.connect(self._watch_requested)
        c.refused.connect(self._run_refused)
        self.events_panel.breakRequested.connect(self._add_breakpoint_spec)
        self.breakpoints_panel.specsChanged.connect(self._breakpoints_edited)
        self.events_panel.bookmarkRequested.connect(lambda i: self.add_bookmark_dialog(i))
        self.editor.applyRequested.connect(self.apply_editor)
        self.editor.pathologicalInput.connect(self._pathological_input)
        self.editor.modificationChanged.connect(lambda _m: self._update_title())
        self.mode_box.currentTextChanged.connect(self.set_mode)
        self.vcpu_box.currentIndexChanged.connect(lambda i: i >= 0 and c.set_vcpu(i))
        self.speed.valueChanged.connect(self._speed_changed)
        self.compare.refreshRequested.connect(lambda: self.run_compare(force=True))
        self.tabs.currentChanged.connect(self._tab_changed)

    # ================================================================== settings, theme
    def _restore_settings(self) -> None:
        geometry = self.settings.window_geometry() if self._restore_layout else None
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1600, 1000)
        self._default_sizes()
        state = self.settings.window_state() if self._restore_layout else None
        self._sized = state is not None
        if state is not None:
            self.restoreState(state)
        theme = self.settings.theme
        (self.a_dark if theme == "dark" else self.a_light).setChecked(True)
        self.set_theme(theme)
        self.speed.setValue(self.settings.play_speed)
        self._speed_changed(self.speed.value())
        self.mode_box.blockSignals(True)
        self.mode_box.setCurrentText(self.mode)
        self.mode_box.blockSignals(False)
        self.a_modes[self.mode].setChecked(True)

    def save_settings(self) -> None:
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.mode = self.mode
        self.settings.play_speed = self.speed.value()
        self.settings.sync()

    def set_theme(self, name: str) -> None:
        themes.manager().set_theme(name)
        self.settings.theme = name

    def _theme_changed(self, theme) -> None:
        (self.a_dark if theme.name == "dark" else self.a_light).setChecked(True)

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if not getattr(self, "_sized", True):
            self._sized = True
            self._default_sizes()  # dock sizes only stick once the window has its size
            QtCore.QTimer.singleShot(0, self._default_sizes)

    def _default_sizes(self) -> None:
        """Side panels in proportion to the window: the timeline keeps about half its width."""
        w, h = max(800, self.width()), max(600, self.height())
        state = int(min(470, max(330, 0.27 * w)))
        explain = int(min(320, max(200, 0.17 * w)))
        self.resizeDocks([self.state_dock, self.explain_dock], [state, explain], Qt.Orientation.Horizontal)
        self.resizeDocks([self.state_dock, self.exits_dock], [int(h * 0.42), int(h * 0.33)], Qt.Orientation.Vertical)
        self.resizeDocks([self.events_dock], [int(min(300, max(170, 0.22 * h)))], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        for d in self.docks:
            d.setFloating(False)
            d.show()
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.state_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.exits_dock)
        self.splitDockWidget(self.state_dock, self.exits_dock, Qt.Orientation.Vertical)
        for d in (self.events_dock, self.hazards_dock, self.breakpoints_dock, self.range_dock, self.editor_dock):
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, d)
        self.tabifyDockWidget(self.events_dock, self.hazards_dock)
        self.tabifyDockWidget(self.hazards_dock, self.breakpoints_dock)
        self.tabifyDockWidget(self.breakpoints_dock, self.range_dock)
        self.tabifyDockWidget(self.range_dock, self.editor_dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.explain_dock)
        self.events_dock.raise_()
        self._default_sizes()

    # ================================================================== files
    def _ask_save(self) -> bool:
        """Unsaved editor changes: Save / Discard / Cancel. True when it is fine to go on."""
        if getattr(self, "_unsaved_marks", False) and not self.editor.is_modified():
            answer = MB.question(
                self,
                "Unsaved breakpoints or bookmarks",
                "Breakpoints or bookmarks were changed but could not be written into the scenario text"
                " (it does not parse). Discard those changes?",
                MB.StandardButton.Discard | MB.StandardButton.Cancel,
                MB.StandardButton.Cancel,
            )
            if answer != MB.StandardButton.Discard:
                return False
            self._unsaved_marks = False
            return True
        if not self.editor.is_modified():
            return True
        name = Path(self.editor.path).name if self.editor.path else "the new scenario"
        answer = MB.question(
            self,
            "Unsaved changes",
            f"The scenario editor has unsaved changes to {name}.\nSave them first?",
            MB.StandardButton.Save | MB.StandardButton.Discard | MB.StandardButton.Cancel,
            MB.StandardButton.Save,
        )
        if answer == MB.StandardButton.Save:
            return self.save()
        return answer == MB.StandardButton.Discard

    def _error(self, title: str, text: str) -> None:
        self.last_error = text
        self.statusBar().showMessage(text.splitlines()[0] if text else title, 10_000)
        MB.warning(self, title, text)

    def new_scenario(self) -> None:
        if not self._ask_save():
            return
        self.builtin_name = None
        self.editor.set_document(NEW_SCENARIO, "")
        self.editor_dock.show()
        self.editor_dock.raise_()
        self.apply_editor()

    def open_dialog(self) -> None:
        if not self._ask_save():
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open scenario", self.settings.last_dir, SCENARIO_FILTER)
        if path:
            self.open_path(path, ask=False)

    def open_trace_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open KVM trace", self.settings.last_dir, TRACE_FILTER)
        if path:
            self.open_trace(path)

    def open_path(self, path: str, ask: bool = True) -> bool:
        """Open a scenario (.toml) or anything else as a trace."""
        if looks_like_scenario(path):
            if ask and not self._ask_save():
                return False
            return self.open_scenario_file(path)
        return self.open_trace(path)

    def open_scenario_file(self, path: str, builtin: str | None = None) -> bool:
        """Load a scenario file (read in the worker); a malformed one shows its errors and keeps the current run.

        True when the read started; the outcome follows when it is done.
        """
        if self.runner.busy:
            self._error("Busy", f"Still working on: {self.runner.label}. Pause it (F6) or wait, then try again.")
            return False
        self.controller.pause_play()

        def job(_j):
            try:
                return True, read_scenario_file(path)
            except OSError as exc:
                return False, exc.strerror if (exc.strerror and not str(exc).startswith(str(path))) else str(exc)

        def done(result) -> None:
            ok, value = result
            if not ok:
                self._error("Cannot open scenario", value if str(path) in value else f"{path}: {value}")
                return
            self._scenario_read(path, value, builtin)

        return self.runner.start(f"open {Path(path).name}", job, done, lambda msg, tb: self._error("Cannot open scenario", f"{path}: {msg}"))

    def _scenario_read(self, path: str, raw: bytes, builtin: str | None) -> bool:
        p = Path(path)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self._error("Cannot open scenario", f"{path}:{line}: expected UTF-8 text (this looks like a binary file)")
            return False
        self.settings.last_dir = str(p.parent)
        self.builtin_name = builtin
        self.editor.blockSignals(True)
        self.editor.set_document(text, str(p))
        self.editor.blockSignals(False)
        if builtin is None:
            self._remember(str(p))
        scenario, errors, _deep = check_text(text, str(p))
        self.editor.show_errors(errors)
        if errors:
            self._not_running(errors, dialog=True)
            return False
        self.editor.set_banner("")
        self._run(scenario, explain_name=builtin or p.stem)
        return True

    def _not_running(self, errors, dialog: bool) -> None:
        """The editor's text has errors: say so at the lines, keep showing the previous run."""
        self.editor_is_run = False
        self.controller.pause()
        running = html.escape(self.scenario.name) if self.scenario is not None else "nothing"
        self.editor.set_banner(f"<b>Not running:</b> {len(errors)} error(s) in this text. The timeline still shows <i>{running}</i>. Fix and Apply (Ctrl+Return).")
        self.editor_dock.show()
        self.editor_dock.raise_()
        if errors[0].line:
            self.editor.editor.goto_line(errors[0].line)
        more = f"\n(and {len(errors) - 1} more, listed under the editor)" if len(errors) > 1 else ""
        self.last_error = f"{errors[0]}{more}"
        self.statusBar().showMessage(f"Not running: {errors[0]}", 10_000)
        if dialog:
            MB.warning(self, "Scenario has errors", self.last_error)
        self._update_title()

    def open_example(self, name: str) -> None:
        if not self._ask_save():
            return
        path = builtin_scenarios().get(name)
        if path is None:
            self._error("Example missing", f"No built-in scenario named {name!r}")
            return
        self.open_scenario_file(str(path), builtin=name)

    def open_default(self) -> None:
        found = builtin_scenarios()
        name = DEFAULT_SCENARIO if DEFAULT_SCENARIO in found else next(iter(found), None)
        if name is None:
            self.new_scenario()
            return
        self.open_scenario_file(str(found[name]), builtin=name)

    def open_trace(self, path: str) -> bool:
        if self.runner.busy:
            self._error("Busy", f"Still working on: {self.runner.label}. Pause it (F6) or wait, then try again.")
            return False
        self.settings.last_dir = str(Path(path).parent)
        self._remember(path)

        def loaded(doc: TraceDocument) -> None:
            self.scenario = None
            self.editor_is_run = False
            self.explain.show_trace(doc.trace_summary, doc.path)
            self.explain_dock.show()
            self.statusBar().showMessage(f"Imported {doc.title}: {len(doc.log):,} events", 8000)

        return self.controller.load_trace(path, on_loaded=loaded)

    def apply_editor(self) -> bool:
        """Run the editor's text (Ctrl+Return) without saving it; errors stay inline."""
        text = self.editor.text()
        name = self.editor.path or "untitled.toml"
        scenario, errors, deep = check_text(text, name)
        self.editor.show_errors(errors)
        if errors:
            self._not_running(errors, dialog=deep)
            return False
        self.editor.set_banner("")
        self._run(scenario, explain_name=self.builtin_name or Path(name).stem)
        return True

    def _pathological_input(self, message: str) -> None:
        """Deeply nested input typed or pasted into the editor: a dialog, the line marked."""
        self.controller.pause()
        MB.warning(self, "Scenario cannot be checked", message)

    def _run(self, scenario: Scenario, explain_name: str = "") -> None:
        previous_explanation = self.explain.markdown

        def shown(_doc: RunDocument) -> None:
            """The first screen of the run is up (it streams in): explain what it shows now."""
            text = explanation(explain_name, scenario.explain) if explain_name else scenario.explain
            if not text and scenario.description:
                text = scenario.description
            self.explain.show_markdown(text, scenario.name)
            if text.strip():
                self.explain_dock.show()

        def back_to_previous() -> None:
            """Cancelled or failed: the previous run is shown again, and so is its explanation."""
            self.explain.markdown = previous_explanation
            self.explain.setMarkdown(previous_explanation)

        def failed(msg: str) -> None:
            back_to_previous()
            self._error("Run failed", msg)

        def loaded(doc: RunDocument) -> None:
            self.scenario = scenario
            self.editor_is_run = True
            self._compare_cache.clear()
            self.loaded = True
            if self.tabs.currentWidget() is self.compare:
                self.run_compare()
            else:
                self.compare.clear("Compare: open this tab to run the scenario in classic and lazy mode side by side.")
            if any(b.enabled and b.name.startswith("explore:") for b in scenario.breakpoints):
                # A counterexample of `lazytsc explore` opens stopped at its violating event.
                QtCore.QTimer.singleShot(0, self.controller.continue_)

        if self.runner.busy:
            self._error("Busy", f"Still working on: {self.runner.label}. Pause it (F6) or wait, then try again.")
            return
        mode = self.mode
        if scenario.mode in ("classic", "lazy") and scenario.mode != self.mode:
            mode = scenario.mode
            self._set_mode_widgets(mode)
        self.controller.load_scenario(scenario, mode, on_loaded=loaded, on_failed=failed, on_shown=shown, on_cancelled=back_to_previous)

    def save(self) -> bool:
        if not self.editor.path or self.builtin_name is not None or not os.access(Path(self.editor.path).parent, os.W_OK):
            return self.save_as()
        return self._write(self.editor.path)

    def save_as(self) -> bool:
        suggested = self.editor.path if (self.editor.path and self.builtin_name is None) else str(Path(self.settings.last_dir) / ((self.builtin_name or "scenario") + ".toml"))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save scenario", suggested, SCENARIO_FILTER)
        if not path:
            return False
        if not path.endswith(".toml"):
            path += ".toml"
        ok = self._write(path)
        if ok:
            self.builtin_name = None
        return ok

    def _write(self, path: str) -> bool:
        text = self.editor.text()
        errors = self.editor.validate()
        if errors:
            answer = MB.question(
                self,
                "Save with errors?",
                f"The scenario has {len(errors)} error(s), first: {errors[0]}\nSave it anyway?",
                MB.StandardButton.Save | MB.StandardButton.Cancel,
                MB.StandardButton.Cancel,
            )
            if answer != MB.StandardButton.Save:
                return False
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            self._error("Cannot save", f"{path}: {exc.strerror or exc}")
            return False
        self.editor.mark_saved(path)
        self._remember(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        self._update_title()
        return True

    def _remember(self, path: str) -> None:
        self.settings.add_recent(path)
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for f in files:
            a = self.recent_menu.addAction(f)
            a.triggered.connect(lambda _c=False, f=f: self.open_path(f))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self._rebuild_recent()

    # drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            QtCore.QTimer.singleShot(0, lambda: self.open_path(files[0]))

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self._ask_save():
            event.ignore()
            return
        self.controller.pause()
        self.runner.wait(10_000)
        if self.sweep_view is not None:
            self.sweep_view.close()
        if self.explore_view is not None:
            self.explore_view.close()
        if self.persist:
            if self.tabs.currentWidget() is self.compare:
                self.tabs.setCurrentWidget(self.timeline)  # save the debugger layout
            self.save_settings()
        event.accept()

    # ================================================================== modes, compare
    def _set_mode_widgets(self, mode: str) -> None:
        self.mode = mode
        self.mode_box.blockSignals(True)
        self.mode_box.setCurrentText(mode)
        self.mode_box.blockSignals(False)
        self.a_modes[mode].setChecked(True)

    def set_mode(self, mode: str) -> None:
        if mode not in ("classic", "lazy"):
            return
        changed = mode != self.mode
        self._set_mode_widgets(mode)
        if changed and isinstance(self.controller.doc, RunDocument) and self.scenario is not None:
            self.controller.load_scenario(self.scenario, mode, keep_time=True)

    def show_sweep(self) -> None:
        from .sweep_view import SweepView

        if self.sweep_view is None:
            self.sweep_view = SweepView(lambda: self.scenario, self)
        self.sweep_view.set_scenario(self.scenario)
        self.sweep_view.show()
        self.sweep_view.raise_()
        self.sweep_view.activateWindow()

    def show_explore(self) -> None:
        from .explore_view import ExploreView

        if self.explore_view is None:
            self.explore_view = ExploreView(lambda path: self.open_path(path), self)
        self.explore_view.show()
        self.explore_view.raise_()
        self.explore_view.activateWindow()

    def show_compare(self) -> None:
        self.tabs.setCurrentWidget(self.compare)
        self.run_compare()

    def _tab_changed(self, index: int) -> None:
        # The compare view gets the whole window: the panels belong to the debugger
        # view (they show the debugged run) and come back when leaving it.
        comparing = self.tabs.widget(index) is self.compare
        side = tuple(self.docks)
        if comparing:
            # saveState/restoreState, not hide/show: shown again, docks would get
            # default sizes (the exit table shrank to three rows)
            self._side_state = self.saveState()
            for d in side:
                d.hide()
            if self.compare.a is None:
                self.run_compare()
        elif getattr(self, "_side_state", None) is not None:
            self.restoreState(self._side_state)
            self._side_state = None

    def run_compare(self, force: bool = False) -> None:
        doc = self.controller.doc
        if doc is None:
            self.compare.clear("Open a scenario or a trace first.")
            return
        if self.runner.busy:
            self.statusBar().showMessage("Busy: the comparison starts when the current job ends", 5000)
            return
        if isinstance(doc, TraceDocument):
            self._run_whatif(doc)
            return
        scenario = self.scenario or doc.scenario
        key = (id(scenario),)
        if not force and key in self._compare_cache:
            self._show_compare(scenario, *self._compare_cache[key])
            return
        own = doc.mode
        self.compare.set_busy(f"Running {scenario.name} in both modes…")

        def job(j):
            runs = {}
            for m in ("classic", "lazy"):
                if m == own:
                    runs[m] = ("own", None)
                else:
                    runs[m] = ("run", build_log(scenario, m, j))
            return runs

        def done(runs) -> None:
            sides = []
            for m in ("classic", "lazy"):
                kind, run = runs[m]
                if kind == "own":
                    sides.append(Side(m, doc.summary, doc.data, doc.log))
                else:
                    sides.append(Side(m, run.summary, run.data, run.log))
            self._compare_cache[key] = tuple(sides)
            self._show_compare(scenario, *sides)

        self.runner.start("compare", job, done, lambda msg, tb: self._error("Compare failed", msg), lambda: self.compare.clear("Comparison cancelled."))

    def _show_compare(self, scenario: Scenario, a: Side, b: Side) -> None:
        self.compare.set_sides(f"<b>{html.escape(scenario.name)}</b>: classic (top) and lazy (bottom), time axes linked. Δ = lazy − classic.", a, b)

    def _run_whatif(self, doc: TraceDocument) -> None:
        try:
            from lazytsc.traces import whatif
        except ImportError as exc:
            self.compare.clear(f"What-if replay is not available in this build ({exc}).")
            return
        self.compare.set_busy(f"What-if: replaying the deadlines of {doc.title} through the lazy driver…")

        def job(j):
            j.report(-1.0, "what-if replay")
            w = whatif.what_if(doc.result)
            return w, what_if_data(w)

        def done(result) -> None:
            w, datas = result
            self._whatif_logs = w.logs
            recorded = dict(w.recorded)
            resulting = dict(w.resulting)
            def replay_title(mode: str) -> str:
                run = w.classic if mode == "classic" else w.lazy
                ex = run.get("exits_replay_only", run["exits"])
                return f"<b>{mode} replay</b> of the recorded deadlines · {ex['msr_write']['tsc-deadline']:,} tsc-deadline writes · {run['timer']['spurious']:,} early interrupts"

            a = Side(getattr(w, "baseline_label", "recorded"), recorded, datas.get("classic"), w.logs.get("classic"), replay_title("classic"))
            b = Side("lazy (what-if)", resulting, datas.get("lazy"), w.logs.get("lazy"), replay_title("lazy"))
            self.compare.set_sides(
                f"<b>{html.escape(doc.title)}</b>: the recording vs the lazy what-if. Timelines: classic replay (top) and lazy replay (bottom) of the recorded deadlines.",
                a,
                b,
                what_if_headline(w),
            )

        self.runner.start("what-if", job, done, lambda msg, tb: self._error("What-if failed", msg), lambda: self.compare.clear("What-if cancelled."))

    # ================================================================== controller -> UI
    def _doc_changed(self, doc) -> None:
        if doc is None:
            self.timeline.clear()
            return
        label = f"<b>{html.escape(doc.title)}</b> — {doc.mode}" + (f" ({doc.variant})" if getattr(doc, "variant", "") else "")
        self.timeline.set_data(doc.data, label, empty_text=doc.empty_text() if isinstance(doc, TraceDocument) else "")
        self.timeline.set_bookmarks([(b.name, self.controller.bookmark_time_ns(b) * 1e-9) for b in doc.bookmarks])
        self.vcpu_box.blockSignals(True)
        self.vcpu_box.clear()
        self.vcpu_box.addItems([f"vCPU {v}" for v in range(doc.n_vcpus)])
        self.vcpu_box.blockSignals(False)
        is_run = isinstance(doc, RunDocument)
        self.mode_box.setEnabled(is_run)
        if is_run:
            self._set_mode_widgets(doc.mode)
        self._rebuild_bookmarks_menu()
        self._update_title()
        self._update_actions()

    def _position_changed(self, pos: int) -> None:
        c = self.controller
        t = c.cursor_time_ns()
        self.timeline.set_cursor(t * 1e-9 if c.doc is not None else None)
        self.st_time.setText(f"t = {fmt_ns(c.current_time_ns())}")
        self.st_event.setText(position_text(pos, c.total))
        doc = c.doc
        self.st_mode.setText(f"{doc.mode}" + (f" ({doc.variant})" if getattr(doc, "variant", "") else "") if doc else "")
        self._update_actions()

    def _selection_changed(self, index: int) -> None:
        doc = self.controller.doc
        if doc is not None and 0 <= index < len(doc.log):
            self.timeline.set_selection(float(doc.log.column("time")[index]) * 1e-9)
        else:
            self.timeline.set_selection(None)

    def _vcpu_changed(self, v: int) -> None:
        self.st_vcpu.setText(f"vCPU {v}")
        if self.vcpu_box.currentIndex() != v:
            self.vcpu_box.blockSignals(True)
            self.vcpu_box.setCurrentIndex(v)
            self.vcpu_box.blockSignals(False)

    def _busy_changed(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_btn.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
            self.progress.setFormat(self.runner.label)
            self.statusBar().showMessage(f"{self.runner.label}…")
        else:
            self.progress.setRange(0, 1000)
            self.statusBar().clearMessage()
        self._update_actions()

    def _progress(self, fraction: float, text: str) -> None:
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(text or self.runner.label)
        self.progress.setToolTip(text)

    def _stopped(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    def _load_failed(self, title: str, message: str) -> None:
        self._error(title, message)

    def _playing_changed(self, on: bool) -> None:
        self.a_play.blockSignals(True)
        self.a_play.setChecked(on)
        self.a_play.blockSignals(False)
        self._update_actions()

    def _update_actions(self) -> None:
        c = self.controller
        has = c.doc is not None
        busy = c.busy
        is_run = isinstance(c.doc, RunDocument)
        idle = has and not busy
        for a in (self.a_step, self.a_step_action, self.a_lane_next, self.a_continue, self.a_run_cursor, self.a_next_haz):
            a.setEnabled(idle and not c.done)
        for a in (self.a_step_back, self.a_step_back_action, self.a_lane_prev, self.a_reverse, self.a_restart, self.a_prev_haz):
            a.setEnabled(idle and c.position > 0)
        self.a_goto.setEnabled(idle)
        self.a_pause.setEnabled(busy or c.playing)
        self.a_play.setEnabled(idle and (not c.done or c.playing))
        for a in (self.a_exp_csv, self.a_exp_json, self.a_exp_perfetto, self.a_exp_exits_csv, self.a_exp_exits_md, self.a_exp_png, self.a_exp_svg, self.a_bookmark, self.a_fit):
            a.setEnabled(has)
        self.a_compare.setEnabled(has and not busy)
        self.mode_box.setEnabled(is_run and not busy)
        self.a_add_bp.setEnabled(has)

    def _update_title(self) -> None:
        """What the timeline shows (and from which file), then the file the editor holds if another."""
        doc = self.controller.doc
        name = doc.title if doc is not None else "no run"
        shown = doc.path if doc is not None else ""
        title = name + (f" — {shown}" if shown else "")
        editing = self.editor.path
        if isinstance(doc, RunDocument) and editing and os.path.abspath(editing) != os.path.abspath(shown or ""):
            title += f" (editor: {Path(editing).name}{'' if self.editor_is_run else ', not running'})"
        elif doc is None and editing:
            title = f"{Path(editing).name} (not running)"
        modified = self.editor.is_modified() or getattr(self, "_unsaved_marks", False)
        self.setWindowTitle(f"{title} [*] — lazytsc")
        self.setWindowModified(modified)

    # ================================================================== timeline interaction
    def _describe(self, index: int) -> str:
        doc = self.controller.doc
        if doc is None or not (0 <= index < len(doc.log)):
            return ""
        ev = doc.log.event(index)
        return f"#{index} {fmt_ns(ev.time)} vCPU {ev.vcpu}: {ev.describe()}"

    def _describe_compare(self, which: int):
        def describe(index: int) -> str:
            side = self.compare.a if which == 0 else self.compare.b
            log = side.log if side is not None else None
            if log is None or not (0 <= index < len(log)):
                return ""
            ev = log.event(index)
            return f"#{index} {fmt_ns(ev.time)} vCPU {ev.vcpu}: {ev.describe()}"

        return describe

    def _timeline_clicked(self, index: int) -> None:
        self.controller.select_event(index)
        self.controller.goto_event(index)

    def _timeline_menu(self, t: float, vcpu: int, pos: QtCore.QPoint) -> None:
        c = self.controller
        if c.doc is None:
            return
        self._context_time = t
        idx = c.doc.data.nearest_event(t)
        menu = QtWidgets.QMenu(self)
        menu.addAction(f"Jump to nearest event (#{idx})", lambda: c.goto_event(idx))
        menu.addAction(f"Run to here ({fmt_s(t)}, stops at breakpoints)", lambda: c.run_to_time(int(t * 1e9)))
        menu.addSeparator()
        menu.addAction("Measurement cursor A here", lambda: self._measure_here(0, t))
        menu.addAction("Measurement cursor B here", lambda: self._measure_here(1, t))
        menu.addAction("Add bookmark here…", lambda: self.add_bookmark_dialog(idx, at_ns=int(t * 1e9)))
        menu.addSeparator()
        menu.addAction(self.a_fit)
        menu.addAction(self.a_zoom_in)
        menu.addAction(self.a_zoom_out)
        menu.exec(pos)

    def _measure_here(self, which: int, t: float) -> None:
        self.timeline.set_measure_position(which, t)
        self.a_measure.blockSignals(True)
        self.a_measure.setChecked(True)
        self.a_measure.blockSignals(False)

    def _toggle_measure(self, on: bool) -> None:
        self.timeline.set_measure(on)

    def _measure_changed(self, m) -> None:
        self.st_delta.setText("" if m is None else f"Δt(A→B) = {fmt_s(m[1] - m[0], signed=True)}")

    def _set_follow(self, on: bool) -> None:
        self.timeline.follow = on
        self.events_panel.follow.setChecked(on)

    def _toggle_play(self, on: bool) -> None:
        self.controller.play(on)
        if on and not self.controller.playing:
            self._playing_changed(False)

    def _speed_changed(self, value: int) -> None:
        rate = speed_for(value)
        self.controller.set_play_rate(rate)
        self.speed_label.setText(f"{rate:,.0f} ev/s" if rate >= 10 else f"{rate:.1f} ev/s")

    def run_to_cursor(self) -> None:
        c = self.controller
        sel = self.events_panel.selected_event()
        if sel < 0:
            sel = c.selected_event
        if sel >= 0 and sel != c.current_event:
            c.run_to_event(sel)
            return
        m = self.timeline.measure()
        if m is not None:
            c.run_to_time(int(m[0] * 1e9))
            return
        self.statusBar().showMessage("Run to cursor: select an event in the list (or place measurement cursor A) first", 6000)

    def goto_dialog(self) -> None:
        c = self.controller
        if c.doc is None:
            return
        text, ok = QtWidgets.QInputDialog.getText(
            self, "Go to", f"Event number (0 … {c.total - 1:,}, '#' optional) or a time with its unit (150us, 1.5ms, 2s):",
            text=f"#{max(0, c.current_event)}",
        )
        if ok:
            self.goto_text(text)

    def goto_text(self, text: str) -> bool:
        """Go to `#N` / `N` (an event) or a duration (`150us`: the last event at or before it)."""
        c = self.controller
        target = parse_goto(text, c.total)
        if isinstance(target, str):
            self.statusBar().showMessage(target, 8000)
            return False
        kind, value = target
        if kind == "event":
            c.goto_event(value)
            c.select_event(value)
        else:
            c.goto_time(value)
            if c.current_event >= 0:
                c.select_event(c.current_event)
        return True

    def goto_hazard(self, direction: int) -> None:
        c = self.controller
        doc = c.doc
        if doc is None:
            return
        kinds = doc.log.column("kind")
        hz = np.nonzero(np.isin(kinds, np.array(sorted(HAZARD_KINDS), dtype=np.int16)))[0]
        cur = c.current_event
        if direction > 0:
            nxt = hz[hz > cur]
        else:
            nxt = hz[hz < cur]
        if not len(nxt):
            self.statusBar().showMessage("No more hazards in that direction", 4000)
            return
        idx = int(nxt[0] if direction > 0 else nxt[-1])
        c.goto_event(idx)
        c.select_event(idx)

    def _watch_requested(self, name: str, vcpu: int) -> None:
        self.breakpoints_panel.add_watch(name, None if vcpu < 0 else vcpu)
        self.breakpoints_dock.show()
        self.breakpoints_dock.raise_()

    def _run_refused(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)
        self.breakpoints_dock.show()
        self.breakpoints_dock.raise_()
        self.breakpoints_panel.flash_errors()

    def _add_breakpoint_spec(self, spec: dict) -> None:
        self.breakpoints_panel.add_spec(spec)
        self.breakpoints_dock.show()
        self.breakpoints_dock.raise_()

    # ================================================================== bookmarks
    def add_bookmark_dialog(self, index: int | None = None, at_ns: int | None = None) -> None:
        c = self.controller
        if c.doc is None:
            return
        idx = c.current_event if index is None else index
        t = at_ns if at_ns is not None else (int(c.doc.log.column("time")[idx]) if idx >= 0 else 0)
        name, ok = QtWidgets.QInputDialog.getText(self, "Add bookmark", f"Name for the bookmark at {fmt_ns(t)}:", text=f"event {idx}" if idx >= 0 else "start")
        if ok and name.strip():
            c.add_bookmark(name.strip(), t, idx if (idx >= 0 and at_ns is None) else None)

    def _breakpoints_edited(self) -> None:
        """Breakpoints edited in the panel go into the scenario text (and its modified flag)."""
        c = self.controller
        if not isinstance(c.doc, RunDocument) or not self.editor_is_run:
            return
        try:
            text = with_breakpoints(self.editor.text(), self.breakpoints_panel.specs())
        except TomlEditError as exc:  # the editor text no longer parses: keep it, say why
            self._unsaved_marks = True
            self.statusBar().showMessage(f"Breakpoints not written into the scenario text: {exc}", 8000)
            self._update_title()
            return
        if text != self.editor.text():
            self.editor.replace_text(text)
            self.statusBar().showMessage("Breakpoints written into the scenario text: save (Ctrl+S) to keep them", 6000)

    def _bookmarks_changed(self) -> None:
        c = self.controller
        if c.doc is None:
            return
        self.timeline.set_bookmarks([(b.name, c.bookmark_time_ns(b) * 1e-9) for b in c.doc.bookmarks])
        self._rebuild_bookmarks_menu()
        if isinstance(c.doc, RunDocument) and self.editor_is_run:
            try:
                text = with_bookmarks(self.editor.text(), c.doc.bookmarks)
            except TomlEditError as exc:  # the editor text no longer parses: keep it, say why
                self._unsaved_marks = True
                self.statusBar().showMessage(f"Bookmarks not written into the scenario text: {exc}", 8000)
                self._update_title()
                return
            self.editor.replace_text(text)
            self.statusBar().showMessage("Bookmarks written into the scenario text: save (Ctrl+S) to keep them", 6000)

    def _rebuild_bookmarks_menu(self) -> None:
        m = self.bookmarks_menu
        m.clear()
        m.addAction(self.a_bookmark)
        c = self.controller
        marks = c.bookmarks()
        if marks:
            m.addSeparator()
            for b in marks:
                t = c.bookmark_time_ns(b)
                a = m.addAction(f"{b.name}  ({fmt_ns(t)})")
                a.triggered.connect(lambda _c=False, t=t: self._goto_time(t))
            rm = m.addMenu("Remove")
            for i, b in enumerate(marks):
                rm.addAction(b.name, lambda i=i: c.remove_bookmark(i))

    def _edit_bookmark(self, index: int, **changes) -> None:
        """Rename or move a bookmark (a timeline marker)."""
        c = self.controller
        if c.doc is not None and 0 <= index < len(c.doc.bookmarks):
            from dataclasses import replace

            c.doc.bookmarks[index] = replace(c.doc.bookmarks[index], **changes)
            c.doc.bookmarks.sort(key=lambda b: b.at)
            c.bookmarksChanged.emit()

    def _goto_time(self, t_ns: int) -> None:
        doc = self.controller.doc
        if doc is None:
            return
        idx = int(np.searchsorted(doc.log.column("time"), t_ns, side="right")) - 1
        self.controller.goto_event(max(0, idx))

    # ================================================================== export
    def export_dialog(self, what: str) -> None:
        doc = self.controller.doc
        if doc is None:
            return
        stem = Path(doc.path).stem if doc.path else "lazytsc"
        defaults = {
            "events_csv": (f"{stem}-{doc.mode}-events.csv", "CSV (*.csv)"),
            "events_json": (f"{stem}-{doc.mode}-events.json", "JSON (*.json)"),
            "perfetto": (f"{stem}-{doc.mode}.pftrace", "Perfetto trace (*.pftrace *.perfetto-trace)"),
            "exits_csv": (f"{stem}-{doc.mode}-exits.csv", "CSV (*.csv)"),
            "exits_md": (f"{stem}-{doc.mode}-exits.md", "Markdown (*.md)"),
            "png": (f"{stem}-{doc.mode}-timeline.png", "PNG image (*.png)"),
            "svg": (f"{stem}-{doc.mode}-timeline.svg", "SVG image (*.svg)"),
        }
        name, filt = defaults[what]
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export", str(Path(self.settings.last_dir) / name), filt)
        if path:
            self.export_to(what, path)

    def export_title(self) -> str:
        """What an exported picture shows: scenario or trace, mode and time window."""
        doc = self.controller.doc
        if doc is None:
            return "lazytsc"
        x0, x1 = self.timeline.x_range() if self.timeline.plots else (0.0, 0.0)
        variant = f" ({doc.variant})" if getattr(doc, "variant", "") else ""
        return f"{doc.title} — {doc.mode}{variant} — window {fmt_s(x0)} … {fmt_s(x1)} ({fmt_s(x1 - x0)})"

    def export_to(self, what: str, path: str, wait: bool = False) -> None:
        """Write one export; data exports run in the worker (they can be big)."""
        c = self.controller
        doc = c.doc
        if doc is None:
            return
        if what in ("png", "svg"):
            from .image_export import export_image

            try:
                written, warnings = export_image(self.timeline, what, path, self.export_title(), scene_widget=self.timeline)
            except (OSError, ValueError) as exc:  # shown, never fatal, never reported as success
                self._error("Export failed", str(exc))
                return
            self.statusBar().showMessage(f"Exported {written}" + (f" ({len(warnings)} Qt warnings while drawing)" if warnings else ""), 6000)
            return
        if what in ("exits_csv", "exits_md"):
            cursor = summarize(doc.log, upto=c.position)
            try:
                if what == "exits_csv":
                    export.export_exits_csv(cursor, doc.summary, path)
                else:
                    export.export_exits_markdown(cursor, doc.summary, path, f"{doc.title} ({doc.mode})", c.position)
            except OSError as exc:
                self._error("Export failed", f"{path}: {exc.strerror or exc}")
                return
            self.statusBar().showMessage(f"Exported {path}", 5000)
            return
        log = doc.log
        meta = {"source": doc.path, "mode": doc.mode, "title": doc.title}

        def job(j):
            if what == "events_csv":
                return export.export_events_csv(log, path, job=j)
            if what == "perfetto":
                notes = getattr(getattr(doc, "result", None), "note_names", ())
                return export.export_events_perfetto(log, path, f"{doc.title} ({doc.mode})", notes, job=j)
            return export.export_events_json(log, path, meta=meta, job=j)

        self.runner.start(
            f"export {Path(path).name}",
            job,
            lambda n: self.statusBar().showMessage(f"Exported {n:,} events to {path}", 6000),
            lambda msg, tb: self._error("Export failed", f"{path}: {msg}"),
        )
        if wait:
            self.runner.wait()

    # ================================================================== help
    def show_shortcuts(self) -> None:
        rows = []
        for a in (self.a_continue, self.a_pause, self.a_step, self.a_step_action, self.a_step_back, self.a_step_back_action, self.a_lane_next, self.a_lane_prev, self.a_goto, self.a_reverse, self.a_restart, self.a_run_cursor, self.a_play, self.a_next_haz, self.a_prev_haz, self.a_bookmark, self.a_measure, self.a_fit, self.a_zoom_in, self.a_zoom_out, self.a_compare, self.a_open, self.a_open_trace, self.a_save):
            keys = a.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText)
            rows.append(f"<tr><td><b>{keys}</b></td><td>{a.text().replace('&', '')}</td></tr>")
        extra = (
            "<tr><td><b>wheel</b></td><td>zoom time</td></tr><tr><td><b>drag</b></td><td>pan</td></tr>"
            "<tr><td><b>Shift+drag</b></td><td>zoom to a range</td></tr><tr><td><b>click</b></td><td>jump to the nearest event</td></tr>"
            "<tr><td><b>right click</b></td><td>run to here, cursors, bookmark</td></tr>"
        )
        MB.information(self, "Keyboard shortcuts", f"<table cellspacing=6>{''.join(rows)}{extra}</table>")

    def about(self) -> None:
        try:
            from importlib.metadata import version

            ver = version("lazytsc")
        except Exception:
            ver = "dev"
        from lazytsc.engine_build import describe

        MB.about(
            self,
            "About lazytsc",
            f"<h3>lazytsc {ver}</h3><p><i>{describe()}</i></p><p>A timeline debugger for KVM's paravirtual lazy TSC-deadline timer "
            "protocol (the RFC &ldquo;KVM: X86: add lazy tscdeadline support to reduce vm-exit of msr-write&rdquo;).</p>"
            "<p>Step the guest driver and the host's update/kick/clear, watch the shared page, count the exits "
            "the seed's table counts, and compare classic with lazy.</p>",
        )
