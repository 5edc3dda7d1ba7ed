"""The debugger window driven like a user would: keys, menus, panels, files."""

from __future__ import annotations

import csv
import json

import pytest
from gui_helpers import open_builtin, wait_idle
from lazytsc.debugger import Session
from lazytsc.scenario import load_scenario
from lazytsc.taxonomy import KIND_BY_NAME, Kind
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

Qt = QtCore.Qt


def test_loads_builtin_scenario(win):
    c = win.controller
    assert c.doc is not None and c.doc.kind == "scenario"
    assert c.doc.mode == "lazy"
    assert c.position == 0
    assert c.total == len(c.doc.log) > 20
    # the whole run is drawn, the cursor sits at the start
    assert win.timeline.data is not None and win.timeline.data.n_events == c.total
    assert len(win.timeline.plots) == 2  # lanes + deadlines for one vCPU
    assert "Seed" in win.windowTitle()
    assert "set_next_event" in win.explain.toPlainText()
    # the same run as the engine's (determinism: byte-identical log)
    ref = Session(c.doc.scenario, "lazy")
    ref.run(breakpoints=[])
    assert ref.log.digest() == c.doc.log.digest()


def test_f10_advances_cursor_and_highlights_changed_fields(win, qtbot):
    c = win.controller
    QTest.keyClick(win, Qt.Key.Key_F10)
    assert c.position > 0
    first = c.position
    cursor = win.timeline.plots[0].cursor
    assert cursor.isVisible()
    assert cursor.value() == pytest.approx(c.doc.log.column("time")[first - 1] * 1e-9)
    # keep stepping until the shared page changes: the lazy driver registers at t=0
    # (pv_msr), then the first deadline request writes `pending`.
    seen = set()
    for _ in range(12):
        QTest.keyClick(win, Qt.Key.Key_F10)
        seen |= set(win.state_panel.highlighted.get(0, ()))
        if "pending" in seen:
            break
    assert c.position > first
    assert "pv_msr" in seen or "pending" in seen
    assert "pending" in seen
    # the highlighted cells are exactly the snapshot's changed fields
    assert win.state_panel.highlighted[0] == c.changed[0]
    row = win.state_panel._rows["pending"]
    item = win.state_panel.table.item(row, 1)
    assert item.font().bold() == ("pending" in c.changed[0])
    # the events list marks the current event
    assert win.events_panel.model.position == c.position
    # status bar follows
    # one wording for the position in the status bar, the event list and the state panel
    from lazytsc_gui.fmt import position_text

    said = position_text(c.position, c.total)
    assert said == f"at #{c.position - 1} ({c.position} of {c.total} events done)"
    assert said in win.st_event.text() and said in win.events_panel.count_label.text()
    assert said in win.state_panel.header.text()


def test_breakpoint_on_kick_stops_there(win, qtbot):
    c = win.controller
    bps = c.breakpoints()
    assert [b.kind for b in bps] == ["kick"]  # from the scenario file
    QTest.keyClick(win, Qt.Key.Key_F5)
    wait_idle(qtbot, win)
    idx = c.hit_event
    assert c.doc.log.event(idx).kind == Kind.LAZY_KICK
    # the cursor is at the end of the action holding the hit; the hit is selected
    assert c.current_event >= idx and c.selected_event == idx
    assert c.doc.log.event(c.current_event).time == c.doc.log.event(idx).time
    assert bps[0].hits == 1
    assert "Breakpoint" in c.last_stop
    assert win.breakpoints_panel.table.item(0, 6).text() == "1"
    # the next F5 finds the second kick
    QTest.keyClick(win, Qt.Key.Key_F5)
    wait_idle(qtbot, win)
    assert c.hit_event > idx
    assert c.doc.log.event(c.hit_event).kind == Kind.LAZY_KICK
    # reverse continue returns to the first one
    QTest.keyClick(win, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
    wait_idle(qtbot, win)
    assert c.hit_event == idx


def test_breakpoint_added_from_panel_and_condition_errors(win, qtbot):
    c = win.controller
    panel = win.breakpoints_panel
    panel.remove_selected() if panel.rows else None
    c.set_breakpoints([])
    panel._load()
    row = panel.add_breakpoint(kind="deadline_skip")
    assert panel.set_condition(len(panel.rows) - 1, "armd == 0") != ""  # typo: unknown name
    assert "unknown name" in panel.error_label.text()
    assert row.bp is None or row.bp not in c.breakpoints()
    assert panel.set_condition(len(panel.rows) - 1, "b != 0 and pending >= armed") == ""
    assert row.bp in c.breakpoints()
    QTest.keyClick(win, Qt.Key.Key_F5)
    wait_idle(qtbot, win)
    assert c.doc.log.event(c.hit_event).kind == Kind.DEADLINE_SKIP


def test_step_back_returns_identical_snapshot(win, qtbot):
    c = win.controller
    for _ in range(6):
        QTest.keyClick(win, Qt.Key.Key_F10)
    before = c.snapshot
    pos = c.position
    QTest.keyClick(win, Qt.Key.Key_F10)
    assert c.position > pos
    assert c.snapshot != before
    QTest.keyClick(win, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    assert c.position == pos
    assert c.snapshot == before
    # jumping far forward and back again also lands on identical state
    c.goto_event(c.total - 5)
    wait_idle(qtbot, win)
    c.goto_position(pos)
    assert c.snapshot == before
    # restart goes to event 0
    win.a_restart.trigger()
    assert c.position == 0


def test_forward_jump_keeps_log_consistent(win, qtbot):
    c = win.controller
    c.goto_event(20)
    c.goto_position(3)
    c.goto_event(25)
    session = c.doc.session
    n = session.position
    assert (session.log.column("kind")[:n] == c.doc.log.column("kind")[:n]).all()
    assert (session.log.column("time")[:n] == c.doc.log.column("time")[:n]).all()


def test_click_on_timeline_jumps_to_event(win, qtbot):
    c = win.controller
    tl = win.timeline
    info = tl.plots[0]
    track = next(t for t in info.rows["guest"] if t.name == "skipped")
    target_idx = int(track.idx[2])
    t = float(track.t[2])
    vb = info.plot.getViewBox()
    scene_pos = vb.mapViewToScene(QtCore.QPointF(t, track.y))
    view_pos = tl.glw.mapFromScene(scene_pos)
    QTest.mouseClick(tl.glw.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos)
    qtbot.waitUntil(lambda: c.position > 0, timeout=3000)
    assert c.current_event >= target_idx
    assert c.selected_event == target_idx


def test_zoom_to_fit(win, qtbot):
    tl = win.timeline
    t_end = tl.data.t_end
    tl.set_x_range(t_end * 0.4, t_end * 0.41)
    x0, x1 = tl.x_range()
    assert x1 - x0 < t_end * 0.05
    win.a_fit.trigger()
    x0, x1 = tl.x_range()
    assert x0 <= 0.0 + 1e-12
    assert x1 >= t_end
    assert x1 - x0 < t_end * 1.2
    # zoom in/out around the cursor keep the cursor visible
    QTest.keyClick(win, Qt.Key.Key_F10)
    win.a_zoom_in.trigger()
    a, b = tl.x_range()
    assert b - a == pytest.approx((x1 - x0) / 2, rel=1e-6)


def test_measurement_cursors_show_delta(win, qtbot):
    tl = win.timeline
    win.a_measure.trigger()
    assert tl.measure() is not None
    tl.set_measure_position(0, 110e-6)
    tl.set_measure_position(1, 150e-6)
    assert "40.000 µs" in tl.measure_label.text()
    assert "40.000 µs" in win.st_delta.text()
    win.a_measure.trigger()
    assert tl.measure() is None


def test_compare_view_shows_both_tables(win, qtbot):
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=30_000)
    wait_idle(qtbot, win)
    cmp = win.compare
    assert cmp.a.label == "classic" and cmp.b.label == "lazy"
    headers = [cmp.table.horizontalHeaderItem(i).text() for i in range(cmp.table.columnCount())]
    assert headers[:6] == ["VM exits", "classic", "%", "lazy", "%", "Δ"]
    rows = {r[0]: r for r in cmp.table_text()}
    sc = win.controller.doc.scenario
    expected = {}
    for m in ("classic", "lazy"):
        s = Session(sc, m)
        s.run(breakpoints=[])
        expected[m] = s.engine.summary()["exits"]
    assert rows["total"][1] == f"{expected['classic']['total']:,}"
    assert rows["total"][3] == f"{expected['lazy']['total']:,}"
    assert rows["msr-write: tsc-deadline"][1] == "5" and rows["msr-write: tsc-deadline"][3] == "1"
    assert rows["msr-write: tsc-deadline"][5] == "-4"
    # both timelines drawn with linked time axes
    assert cmp.timeline_a.data is not None and cmp.timeline_b.data is not None
    cmp.timeline_a.set_x_range(50e-6, 120e-6)
    a0, _a1 = cmp.timeline_b.x_range()
    assert a0 == pytest.approx(50e-6)  # linked: same time at the same screen x
    px_a = cmp.timeline_a.master.getViewBox().viewPixelSize()[0]
    px_b = cmp.timeline_b.master.getViewBox().viewPixelSize()[0]
    assert px_b == pytest.approx(px_a, rel=1e-6)


def test_broken_file_shows_error_and_keeps_previous_run(win, qtbot, tmp_path, dialogs):
    c = win.controller
    before = c.doc
    QTest.keyClick(win, Qt.Key.Key_F10)
    pos = c.position
    bad = tmp_path / "broken.toml"
    bad.write_text('format = 1\nname = "broken"\nvcpus = 1\n\n[[script]]\nat = "10us"\nop = "set_next_event"\ndelta = "soon"\n')
    assert win.open_path(str(bad))  # read in the worker
    wait_idle(qtbot, win)
    warnings = dialogs.of("warning")
    assert warnings and "broken.toml:8: script[0].delta" in warnings[-1][2]
    # the editor shows the file with the error at its line
    assert win.editor.path == str(bad)
    assert 8 in win.editor.editor.errors
    assert "Not running" in win.editor.banner.text()
    # the app is still up with the previous run where it was
    assert c.doc is before and c.position == pos
    QTest.keyClick(win, Qt.Key.Key_F10)
    assert c.position > pos
    # a binary file is an error too, not a crash
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x00\xff\xfe\x00garbage")
    win.open_path(str(binary))
    wait_idle(qtbot, win)
    assert "UTF-8" in dialogs.of("warning")[-1][2]
    assert c.doc is before
    # the title names what the timeline shows, and the file the editor holds
    assert before.title in win.windowTitle() and "editor: broken.toml, not running" in win.windowTitle()


def test_fixing_errors_in_editor_and_applying_runs_it(win, qtbot):
    ed = win.editor
    text = ed.text().replace('duration = "400us"', 'duration = "4OOus"')
    ed.editor.setPlainText(text)
    errors = ed.validate()
    assert errors and errors[0].field == "duration"
    assert errors[0].line in ed.editor.errors
    assert not win.apply_editor()
    ed.editor.setPlainText(text.replace('"4OOus"', '"300us"'))
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        assert win.apply_editor()
    wait_idle(qtbot, win)
    assert win.controller.doc.scenario.run.duration_ns == 300_000


def test_unsaved_changes_prompt_on_close(win, qtbot, dialogs):
    win.editor.editor.appendPlainText("# an edit")
    assert win.editor.is_modified()
    assert win.isWindowModified()
    dialogs.answer = QtWidgets.QMessageBox.StandardButton.Cancel
    win.close()
    assert dialogs.of("question"), "closing with edits must ask"
    assert win.isVisible(), "Cancel keeps the window open"
    # opening another file asks too, and Cancel keeps the edits
    n = len(dialogs.of("question"))
    win.open_example("tcp_rr")
    assert len(dialogs.of("question")) == n + 1
    assert win.editor.is_modified()
    dialogs.answer = QtWidgets.QMessageBox.StandardButton.Discard
    win.close()
    assert not win.isVisible()


def test_save_is_atomic_and_clears_modified(win, qtbot, tmp_path, monkeypatch):
    target = tmp_path / "mine.toml"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    win.editor.editor.appendPlainText("# saved edit")
    assert win.save()  # built-in scenario: Save goes to Save As
    assert target.read_text().endswith("# saved edit\n") or "# saved edit" in target.read_text()
    assert not win.editor.is_modified()
    assert load_scenario(target).name.startswith("Seed")
    assert str(target.resolve()) in win.settings.recent_files()
    assert not list(tmp_path.glob(".mine.toml.*.tmp"))


def test_bookmark_is_written_into_the_scenario(win, qtbot, monkeypatch):
    QTest.keyClick(win, Qt.Key.Key_F10)
    QTest.keyClick(win, Qt.Key.Key_F10)
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", staticmethod(lambda *a, **k: ("my mark", True)))
    n = len(win.controller.bookmarks())
    win.a_bookmark.trigger()
    assert len(win.controller.bookmarks()) == n + 1
    assert 'name = "my mark"' in win.editor.text()
    assert win.editor.is_modified()
    assert any(line.value() for line in win.timeline.plots[0].bookmarks)


def test_bookmark_on_text_that_no_longer_parses_keeps_the_text_and_says_why(win, qtbot, monkeypatch):
    """The editor's text is broken TOML (the user is mid-edit): adding a bookmark must not
    rewrite it or raise; the window says why and counts the bookmark as unsaved."""
    QTest.keyClick(win, Qt.Key.Key_F10)
    broken = win.editor.text() + "\n[[bookmark\nname = \"half typed\n"
    win.editor.replace_text(broken)
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", staticmethod(lambda *a, **k: ("my mark", True)))
    win.a_bookmark.trigger()
    assert win.editor.text() == broken
    assert "Bookmarks not written" in win.statusBar().currentMessage()
    assert win.isWindowModified()


def test_exports_are_written(win, qtbot, tmp_path):
    c = win.controller
    for _ in range(5):
        QTest.keyClick(win, Qt.Key.Key_F10)
    files = {what: tmp_path / f"out.{what}" for what in ("events_csv", "events_json", "exits_csv", "exits_md", "png", "svg")}
    for what, path in files.items():
        win.export_to(what, str(path), wait=True)
        wait_idle(qtbot, win)
        assert path.exists() and path.stat().st_size > 0, what
    with files["events_csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == c.total
    assert rows[0]["kind"] == "cpuid" and rows[0]["exit"] == "cpuid"
    data = json.loads(files["events_json"].read_text())
    assert data["count"] == c.total == len(data["events"])
    assert data["events"][1]["sub"] == "pv-lazy-tscdeadline"
    md = files["exits_md"].read_text()
    assert "| msr-write: tsc-deadline |" in md and f"event {c.position:,}" in md
    with files["exits_csv"].open() as fh:
        exits = {r["row"]: r for r in csv.DictReader(fh)}
    assert exits["total"]["whole_run"] == str(c.doc.summary["exits"]["total"])
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in files["svg"].read_bytes()[:2000]


def test_event_model_rows_and_filters(win, qtbot):
    c = win.controller
    panel = win.events_panel
    model = panel.model
    assert model.rowCount() == len(c.doc.log)
    kinds = c.doc.log.column("kind")
    panel.set_kind_filter("deadline_skip")
    assert model.rowCount() == int((kinds == KIND_BY_NAME["deadline_skip"]).sum()) > 0
    assert all(c.doc.log.event(model.event_at(r)).kind_name == "deadline_skip" for r in range(model.rowCount()))
    panel.set_kind_filter("Hazards")
    assert model.rowCount() == win.hazards_panel.hazard_count() > 0
    panel.set_kind_filter("All kinds")
    panel.exit_box.setCurrentIndex(panel.exit_box.findText("exit: msr-write"))
    exits = c.doc.log.column("exit")
    assert model.rowCount() == int((exits == 3).sum())
    panel.exit_box.setCurrentIndex(0)
    assert model.rowCount() == len(c.doc.log)
    # search: a kind name, then an index
    panel.search.setText("kick")
    idx = panel.find(True)
    assert c.doc.log.event(idx).kind_name in ("kick", "kick_request")
    panel.search.setText("#7")
    assert panel.find(True) == 7
    # double click jumps
    panel.table.doubleClicked.emit(model.index(model.row_of(10), 0))
    assert c.current_event >= 10


def test_hazard_navigation_and_panel(win, qtbot):
    c = win.controller
    win.a_next_haz.trigger()
    first = c.current_event
    assert c.doc.log.event(c.selected_event).kind_name in ("spurious", "equal_skip", "lost", "late", "stale_pending", "stale_armed", "sw_kick_delayed")
    assert first >= c.selected_event
    win.a_next_haz.trigger()
    assert c.selected_event > 0


def test_timeline_binning_switches_with_zoom(make_window, qtbot):
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    assert tl.data.n_events > 5_000
    tl.zoom_to_fit()
    tl.glw.grab()
    assert "binned" in tl.detail_modes()
    c = win.controller
    c.goto_event(tl.data.n_events // 2)
    wait_idle(qtbot, win)
    t = c.cursor_time_ns() * 1e-9
    tl.set_x_range(t, t + 20e-6)
    tl.glw.grab()
    assert tl.detail_modes() == {"exact"}
    assert "exact" in tl.mode_label.text()


def test_mode_switch_keeps_time_and_reruns(win, qtbot):
    c = win.controller
    c.goto_event(15)
    t = c.cursor_time_ns()
    with qtbot.waitSignal(c.documentChanged, timeout=20_000):
        win.mode_box.setCurrentText("classic")
    wait_idle(qtbot, win)
    assert c.doc.mode == "classic"
    # the cursor is on the last classic event at or before the lazy cursor's time
    times = c.doc.log.column("time")
    assert c.cursor_time_ns() <= t
    assert not ((times > c.cursor_time_ns()) & (times <= t)).any()
    assert "classic" in win.st_mode.text()


def test_play_mode_animates_stepping(win, qtbot):
    c = win.controller
    win.speed.setValue(100)
    win.a_play.trigger()
    assert c.playing
    qtbot.waitUntil(lambda: c.position > 0, timeout=5000)
    # the breakpoint on kick pauses play
    qtbot.waitUntil(lambda: not c.playing, timeout=10_000)
    assert c.doc.log.event(c.hit_event).kind == Kind.LAZY_KICK


def test_long_run_in_worker_can_be_cancelled(make_window, qtbot):
    win = make_window("classic")
    open_builtin(qtbot, win, "tcp_rr")
    c = win.controller
    c.set_breakpoints([])
    from lazytsc.debugger import Breakpoint

    c.set_breakpoints([Breakpoint(condition="a == 123456789")])  # never hits
    c.continue_()
    assert c.busy
    assert win.progress.isVisible()
    c.pause()
    wait_idle(qtbot, win)
    assert not win.progress.isVisible()
    assert c.last_stop.startswith("Paused") or c.done


def test_theme_switch_and_settings_persist(win, qtbot, settings):
    win.a_light.trigger()
    from lazytsc_gui import themes

    assert themes.current().name == "light"
    assert settings.theme == "light"
    win.a_dark.trigger()
    assert themes.current().name == "dark"
    win.save_settings()
    assert settings.window_geometry() is not None
    assert settings.window_state() is not None


def test_drop_of_a_scenario_file_opens_it(win, qtbot, tmp_path):
    path = tmp_path / "dropped.toml"
    path.write_text('format = 1\nname = "dropped"\nvcpus = 1\nduration = "100us"\n\n[[script]]\nat = "10us"\nop = "set_next_event"\ndelta = "20us"\n')
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    event = QtGui_drop(mime)
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        win.dropEvent(event)
    wait_idle(qtbot, win)
    assert win.controller.doc.scenario.name == "dropped"


def QtGui_drop(mime):
    from PySide6 import QtGui

    return QtGui.QDropEvent(QtCore.QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
