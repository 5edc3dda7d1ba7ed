"""The debugger's defects and expected features, each driven through real widgets.

Every test here is the one that would have caught the defect it names (issue 13's
list; issue 12's GUI items): keys pressed on the window, panels edited, files
written and read back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from gui_helpers import open_builtin, wait_idle
from lazytsc.taxonomy import Kind
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

Qt = QtCore.Qt


# ---- stepping: F10 one event, F11 one action, lanes, go to ------------------------------------
def test_f10_is_one_event_f11_one_action(win):
    c = win.controller
    QTest.keyClick(win, Qt.Key.Key_F10)
    assert c.position == 1  # the CPUID of the boot action, alone
    QTest.keyClick(win, Qt.Key.Key_F11)
    assert c.position == 3  # the rest of that action: PV-MSR write and init
    QTest.keyClick(win, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    assert c.position == 2
    QTest.keyClick(win, Qt.Key.Key_F11, Qt.KeyboardModifier.ShiftModifier)
    assert c.position == 0
    # menus and tooltips say the same
    assert "one event" in win.a_step.text().lower() and "F10" in win.a_step.toolTip()
    assert "action" in win.a_step_action.text().lower() and "F11" in win.a_step_action.toolTip()


def test_next_and_previous_event_in_this_lane(make_window, qtbot):
    win = make_window()
    open_builtin(qtbot, win, "tcp_rr")
    c = win.controller
    c.set_vcpu(1)
    QTest.keyClick(win, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    first = c.current_event
    assert c.doc.log.event(first).vcpu == 1
    assert all(c.doc.log.event(i).vcpu != 1 for i in range(first))
    QTest.keyClick(win, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    second = c.current_event
    assert second > first and c.doc.log.event(second).vcpu == 1
    QTest.keyClick(win, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert c.current_event == first


def test_go_to_event_number_and_time(win):
    c = win.controller
    assert win.goto_text("#12") and c.current_event == 12 and c.selected_event == 12
    assert win.goto_text("60us")
    times = c.doc.log.column("time")
    assert times[c.current_event] <= 60_000 < times[c.current_event + 1]
    assert not win.goto_text("#99999") and "no event #99,999" in win.statusBar().currentMessage()
    assert not win.goto_text("soon")


# ---- defect 5: breakpoints ---------------------------------------------------------------------------
def test_invalid_condition_refuses_to_run_and_says_why(win):
    c = win.controller
    panel = win.breakpoints_panel
    row = panel.add_breakpoint(kind="kick")
    error = panel.set_condition(len(panel.rows) - 1, "armd == 0")
    assert "did you mean `armed`" in error
    QTest.keyClick(win, Qt.Key.Key_F5)
    assert c.position == 0, "the run must not start"
    message = win.statusBar().currentMessage()
    assert message.startswith("Not running: breakpoint") and "armd" in message
    # disabled, the invalid row no longer blocks: F5 stops at the scenario's own kick
    row.enabled = False
    panel._edit(row, enabled=False)
    QTest.keyClick(win, Qt.Key.Key_F5)
    assert c.doc.log.event(c.hit_event).kind == Kind.LAZY_KICK


def test_add_creates_an_empty_row_not_a_kick(win):
    panel = win.breakpoints_panel
    before = list(win.controller.breakpoints())
    panel.add_btn.click()
    row = panel.rows[-1]
    assert (row.kind, row.exit, row.vcpu, row.condition) == ("", "", None, "")
    assert win.controller.breakpoints() == before  # ignored until it has a filter ...
    assert "ignored" in panel.error_label.text()  # ... and says so
    assert not win.controller.invalid_breakpoints


# ---- issue 12 item 2: breakpoints reach the scenario text ------------------------------------------
def test_breakpoints_edited_in_the_panel_reach_the_scenario_text(win, dialogs, monkeypatch):
    from lazytsc_gui import main_window

    panel = win.breakpoints_panel
    if main_window.with_breakpoints is not None:
        panel.add_breakpoint(exit="preemption-timer")
        assert 'exit = "preemption-timer"' in win.editor.text()
        assert win.editor.is_modified() and win.isWindowModified()
    else:  # an engine package without structural TOML editing: the close still asks
        panel.add_breakpoint(exit="preemption-timer")
        assert win.isWindowModified()
    dialogs.answer = QtWidgets.QMessageBox.StandardButton.Cancel
    win.close()
    assert dialogs.of("question"), "closing asks before dropping the breakpoints"
    assert win.isVisible()


# ---- watchpoints, who wrote it, range statistics ---------------------------------------------------
def test_watchpoint_from_the_state_panel_stops_where_armed_changes(win, qtbot):
    c = win.controller
    win.state_panel.watchRequested.emit("armed", 0)
    assert [w.describe() for w in c.watchpoints] == ["watch armed (vCPU 0)"]
    for b in c.breakpoints():
        b.enabled = False
    QTest.keyClick(win, Qt.Key.Key_F5)
    wait_idle(qtbot, win)
    ev = c.doc.log.event(c.hit_event)
    # the host's kvm_lazy_tscdeadline_update publishes the first armed deadline (10us)
    assert (ev.kind, ev.time) == (Kind.LAZY_UPDATE, 10_000)
    assert c.snapshot.vcpus[0].armed == ev.a
    assert "Watchpoint 'watch armed (vCPU 0)' hit" in win.statusBar().currentMessage()
    assert c.watchpoints[0].hits == 1


def test_double_click_a_value_jumps_to_the_event_that_wrote_it(win, qtbot):
    c = win.controller
    c.goto_position(14)  # after the 50us request wrote pending = tsc(150us)
    panel = win.state_panel
    row = panel._rows["pending"]
    panel.table.cellDoubleClicked.emit(row, 1)
    wait_idle(qtbot, win)
    ev = c.doc.log.event(c.current_event)
    assert (ev.kind, ev.time) == (Kind.DEADLINE_REQUEST, 50_000)
    assert c.selected_event == c.current_event
    assert "pending of vCPU 0 was last written by" in win.statusBar().currentMessage()


def test_range_statistics_between_cursors(win):
    win.timeline.set_measure(True)
    win.timeline.set_measure_position(0, 5e-6)
    win.timeline.set_measure_position(1, 55e-6)
    st = win.range_panel.stats
    assert st["kinds"]["deadline_request"] == 5 and st["kinds"]["deadline_skip"] == 4
    assert st["exits"] == {"msr-write": 1} and st["dt_ns"] == 40_000
    assert "50.000 µs" in win.range_panel.label.text()
    assert win.range_panel.table.rowCount() > 3


# ---- defect 6: exports -------------------------------------------------------------------------
def test_image_export_to_a_bad_path_is_an_error(win, tmp_path, dialogs):
    win.export_to("png", str(tmp_path / "missing" / "t.png"))
    assert dialogs.of("warning") and "does not exist" in dialogs.of("warning")[-1][2]
    assert "Exported" not in win.statusBar().currentMessage()


def test_image_export_adds_the_suffix_and_a_title(win, tmp_path, qtlog):
    win.export_to("png", str(tmp_path / "shot"))
    png = tmp_path / "shot.png"
    assert png.exists() and f"Exported {png}" in win.statusBar().currentMessage()
    image = QtGui.QImage(str(png))
    assert image.height() > win.timeline.height()  # the title band on top
    win.export_to("svg", str(tmp_path / "shot"))
    svg = (tmp_path / "shot.svg").read_text()
    title = win.export_title()
    assert win.controller.doc.title in title and "lazy" in title and "window" in title
    assert f"<title>{title}</title>" in svg.replace("&#8212;", "—").replace("&#8230;", "…")
    painter_noise = [r for r in qtlog.records if "QPainter" in r.message]
    assert not painter_noise


def test_data_exports_follow_the_umask(win, tmp_path, qtbot):
    old = os.umask(0o022)
    try:
        for what, name in (("events_csv", "e.csv"), ("events_json", "e.json"), ("exits_csv", "x.csv"), ("exits_md", "x.md")):
            win.export_to(what, str(tmp_path / name), wait=True)
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    finally:
        os.umask(old)


# ---- defect 7: nothing stale across documents -----------------------------------------------------
def test_new_document_clears_selection_and_scroll(make_window, qtbot):
    win = make_window()
    open_builtin(qtbot, win, "tcp_rr")
    c = win.controller
    c.select_event(900)
    win.events_panel.table.scrollTo(win.events_panel.model.index(2000, 0))
    assert win.timeline._selection_t is not None
    open_builtin(qtbot, win, "seed_overwrite")
    assert c.selected_event == -1 and win.timeline._selection_t is None
    assert win.events_panel.table.verticalScrollBar().value() == 0
    assert "Seed" in win.windowTitle()


def test_title_after_a_trace_import_and_a_cancelled_load(make_window, qtbot):
    pytest.importorskip("lazytsc.traces")
    trace = Path(__file__).resolve().parents[1] / "data" / "traces" / "ftrace_intel.txt"
    if not trace.exists():
        pytest.skip("trace test data not present")
    win = make_window()
    open_builtin(qtbot, win, "seed_overwrite")
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        win.open_path(str(trace))
    wait_idle(qtbot, win)
    assert win.windowTitle().startswith("ftrace_intel.txt") and "seed_overwrite" not in win.windowTitle()
    # a load cancelled before it ends keeps the trace, and the title says so
    from lazytsc.resources import builtin_scenarios

    win.open_scenario_file(str(builtin_scenarios()["tcp_rr"]), builtin="tcp_rr")
    qtbot.waitUntil(lambda: win.runner.busy and win.runner.label.startswith("run"), timeout=20_000)
    win.controller.pause()
    wait_idle(qtbot, win)
    assert win.controller.doc.kind == "trace"
    assert win.windowTitle().startswith("ftrace_intel.txt")


# ---- defect 8: layout at 1280x800 -------------------------------------------------------------------
def test_layout_at_1280_by_800(make_window, qtbot):
    win = make_window()
    win.resize(1280, 800)
    win._default_sizes()
    open_builtin(qtbot, win, "seed_overwrite")
    qtbot.wait(50)
    tb = win.toolbar
    for action in (win.a_measure, win.a_compare, win.a_continue, win.a_step):
        widget = tb.widgetForAction(action)
        assert widget is not None and widget.isVisible(), action.text()
        assert widget.geometry().right() <= tb.width(), action.text()
    assert win.timeline.width() >= 600
    # the protocol's headline number is above the table, never below the fold
    head = win.exits_panel.headline
    assert head.isVisible() and "tsc-deadline exits" in head.text()
    assert head.geometry().bottom() < win.exits_panel.height() // 3


# ---- defect 9: editor ----------------------------------------------------------------------------
def test_apply_with_errors_is_inline_and_lists_every_error_as_written(win, dialogs):
    text = win.editor.text().replace('at = "20us"', 'at = "5us"\nvcpu = 3', 1).replace('delta = "100us"', 'delta = "soon"', 2)
    win.editor.editor.setPlainText(text)
    assert not win.apply_editor()
    assert not dialogs.of("warning"), "no modal dialog on top of the inline errors"
    assert "Not running" in win.editor.banner.text()
    messages = [str(e) for e in win.editor.errors]
    entry = [m for m in messages if "script[1]" in m]
    assert len(entry) >= 2, messages  # the entry's time order and its vCPU, not just the first
    assert any("'10us'" in m for m in entry), "the earlier time is quoted as written, not in ns"


def test_deeply_nested_input_is_a_dialog_with_the_line_marked(win, dialogs):
    c = win.controller
    c.play(True)
    deep = win.editor.text() + "\nx = " + "[" * 600 + "]" * 600 + "\n"
    win.editor.editor.setPlainText(deep)
    win.editor.validate()
    assert dialogs.of("warning") and "nesting" in dialogs.of("warning")[-1][2]
    line = deep.count("\n")
    assert line in win.editor.editor.errors
    assert not c.playing  # the old run stops
    assert not win.apply_editor()
    # the breakpoints panel's condition too
    from lazytsc_gui.breakpoints_panel import condition_error

    assert condition_error("(" * 5000 + "1" + ")" * 5000)


def test_special_files_never_freeze_the_window(win, qtbot, tmp_path, dialogs):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    before = win.controller.doc
    win.open_path(str(fifo))
    wait_idle(qtbot, win, timeout=5_000)
    assert "FIFO" in dialogs.of("warning")[-1][2] or "regular file" in dialogs.of("warning")[-1][2]
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    win.open_path(str(link))
    wait_idle(qtbot, win, timeout=5_000)
    assert "regular file" in dialogs.of("warning")[-1][2] or "device" in dialogs.of("warning")[-1][2]
    assert win.controller.doc is before


# ---- defect 10: naming ---------------------------------------------------------------------------
def test_event_columns_tsc_times_and_note_text(win):
    model = win.events_panel.model
    assert model.headerData(5, Qt.Orientation.Horizontal) == "value 1"
    win.events_panel.set_kind_filter("deadline_request")
    assert (model.headerData(5, Qt.Orientation.Horizontal), model.headerData(6, Qt.Orientation.Horizontal)) == ("tsc", "armed")
    win.events_panel.set_kind_filter("All kinds")
    tip = model.data(model.index(3, 5), Qt.ItemDataRole.ToolTipRole)  # the 10us request: tsc(110us)
    assert "tsc = 0x35b60" in tip and "110.000 µs" in tip and "+100.000 µs" in tip


def test_script_note_shows_its_text(make_window, qtbot):
    from lazytsc_gui.editor import NEW_SCENARIO

    win = make_window()
    text = NEW_SCENARIO.replace('delta = "100us"', 'delta = "100us"\nnote = "the first request"', 1)
    win.editor.set_document(text, "")
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        assert win.apply_editor()
    wait_idle(qtbot, win)
    model = win.events_panel.model
    notes = [i for i in range(model.rowCount()) if model.cell_text(i, 3) == "note"]
    assert notes and model.cell_text(notes[0], 5) == "the first request"



# ---- defect 11: every demo has a guide, and its keys exist ----------------------------------------
def test_every_demo_has_a_try_it_guide_with_real_keys(win):
    import re

    from lazytsc_gui.demos import demos, explanation

    keys = {a.shortcut().toString() for a in win.actions()} | {s.toString() for a in win.actions() for s in a.shortcuts()}
    found = demos()
    assert len(found) >= 10
    for demo in found:
        text = explanation(demo.name, "")
        assert "### Try it" in text, demo.name
        for key in re.findall(r"\*\*((?:Ctrl|Shift|Alt)\+[^*]+|F\d+)\*\*", text):
            if " / " in key or "/" in key and not key.endswith("/"):
                continue
            assert key in keys, f"{demo.name}: {key} is not a shortcut of the window"


# ---- defect 3 (last part): the raw trace line of the selected event --------------------------------
def test_imported_trace_shows_the_raw_line_of_the_selected_event(make_window, qtbot):
    pytest.importorskip("lazytsc.traces")
    trace = Path(__file__).resolve().parents[1] / "data" / "traces" / "ftrace_intel.txt"
    win = make_window()
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        win.open_path(str(trace))
    wait_idle(qtbot, win)
    c = win.controller
    lines = trace.read_text().splitlines()
    exit_row = next(i for i in range(c.total) if c.doc.log.event(i).kind == Kind.HLT)
    c.select_event(exit_row)
    shown = win.exits_panel.raw_line
    assert shown and shown in lines and "reason HLT" in shown
    assert f"trace line {lines.index(shown) + 1}" in win.events_panel.model.data(win.events_panel.model.index(exit_row, 3), Qt.ItemDataRole.ToolTipRole)


def test_the_explanation_shows_with_the_first_screen_and_goes_back_on_cancel(make_window, qtbot, tmp_path):
    """A run streams in: its first screen is up long before the run ends, and the Explanation
    panel must describe that run then, not the previous scenario. A cancelled load brings the
    previous run back, and its explanation with it."""
    from lazytsc.resources import builtin_scenarios, demo_text

    win = make_window()
    open_builtin(qtbot, win, "seed_overwrite")
    seed_text = win.explain.markdown
    assert "Seed" in seed_text
    long_rr = tmp_path / "tcp_rr.toml"
    long_rr.write_text(builtin_scenarios()["tcp_rr"].read_text().replace('duration = "50ms"', 'duration = "400ms"'))
    with qtbot.waitSignal(win.controller.documentChanged, timeout=60_000):
        win.open_scenario_file(str(long_rr), builtin="tcp_rr")
    assert win.controller.busy, "the run is still streaming in"
    first_line = next(line for line in demo_text("tcp_rr").splitlines() if line.strip()).lstrip("# ").strip()
    assert first_line in win.explain.markdown and win.explain.markdown != seed_text
    win.controller.pause()  # cancels the streaming load
    wait_idle(qtbot, win)
    assert win.controller.doc.scenario.name == win.scenario.name
    assert win.explain.markdown == seed_text
