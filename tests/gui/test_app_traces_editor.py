"""The entry point, imported traces in the GUI, and the scenario editor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gui_helpers import wait_idle
from lazytsc.taxonomy import Kind
from PySide6 import QtCore, QtGui
from PySide6.QtTest import QTest

from lazytsc_gui.app import ensure_platform, parse_args
from lazytsc_gui.editor import NEW_SCENARIO

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "tests" / "data" / "traces"
Qt = QtCore.Qt


def test_cli_arguments():
    args = parse_args(["tcp_rr", "--mode", "classic", "--screenshot", "x.png", "--quit-after", "100"])
    assert (args.path, args.mode, args.screenshot, args.quit_after) == ("tcp_rr", "classic", "x.png", 100)
    with pytest.raises(SystemExit):
        parse_args(["--mode", "sideways"])


def test_headless_fallback_sets_offscreen(capsys):
    env: dict[str, str] = {}
    assert ensure_platform(env, out=sys.stdout)
    assert env["QT_QPA_PLATFORM"] == "offscreen"
    assert "offscreen" in capsys.readouterr().out
    assert not ensure_platform({"DISPLAY": ":0"})
    assert not ensure_platform({"QT_QPA_PLATFORM": "xcb"})


def test_app_screenshot_and_quit(tmp_path):
    """`lazytsc-gui --screenshot PNG --quit-after MS` in a fresh process (packaging smoke path)."""
    png = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["LAZYTSC_SETTINGS"] = str(tmp_path / "settings.ini")
    proc = subprocess.run(
        [sys.executable, "-m", "lazytsc_gui.app", "--screenshot", str(png), "--quit-after", "200", "--mode", "classic"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "offscreen" in proc.stderr  # no display: said so, did not crash
    image = QtGui.QImage(str(png))
    assert image.width() >= 800 and image.height() >= 600
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
    assert len(colours) > 20, "the screenshot looks empty"


def test_imported_trace_opens_in_the_timeline(make_window, qtbot):
    pytest.importorskip("lazytsc.traces")
    win = make_window()
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        win.open_path(str(TRACES / "ftrace_intel.txt"))
    wait_idle(qtbot, win)
    c = win.controller
    doc = c.doc
    assert doc.kind == "trace" and doc.n_vcpus >= 2
    assert win.timeline.data.n_events == len(doc.log)
    writes = doc.log.column("kind") == Kind.WRMSR_TSC_DEADLINE
    drawn = sum(len(v.written) for v in win.timeline.data.vcpus)
    assert drawn == int(writes.sum()) > 0  # MSR 0x6e0 writes are the "v" marks
    assert win.exits_panel.table.item(0, 3).text() == f"{doc.summary['exits']['total']:,}"
    # stepping moves through the recorded events; F5 honours kind breakpoints
    QTest.keyClick(win, Qt.Key.Key_F10)
    assert c.position == 1
    win.breakpoints_panel.add_breakpoint(kind="wrmsr_tsc_deadline")
    QTest.keyClick(win, Qt.Key.Key_F5)
    assert doc.log.event(c.hit_event).kind == Kind.WRMSR_TSC_DEADLINE
    assert "ftrace_intel.txt" in win.explain.toPlainText()


def test_trace_what_if_in_compare_view(make_window, qtbot):
    pytest.importorskip("lazytsc.traces.whatif")
    win = make_window()
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        win.open_path(str(TRACES / "ftrace_intel.txt"))
    wait_idle(qtbot, win)
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=30_000)
    wait_idle(qtbot, win)
    rows = {r[0]: r for r in win.compare.table_text()}
    assert win.compare.a.label == "recorded" and win.compare.b.label == "lazy (what-if)"
    assert "total" in rows and "msr-write: tsc-deadline" in rows
    assert "What-if lazy" in win.compare.headline.text()
    assert win.compare.timeline_b.data is not None


def test_broken_trace_shows_error(make_window, qtbot, tmp_path, dialogs):
    pytest.importorskip("lazytsc.traces")
    win = make_window()
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x00\x01\x02 not a trace at all\n" * 3)
    win.open_path(str(junk))
    wait_idle(qtbot, win)
    assert dialogs.of("warning"), "an unreadable trace is reported"
    assert win.controller.doc is None  # nothing was replaced


def test_editor_marks_every_error_at_its_line(make_window, qtbot):
    win = make_window()
    ed = win.editor
    text = NEW_SCENARIO.replace('duration = "300us"', 'duration = "300 parsecs"').replace('op = "set_next_event"\ndelta = "100us"', 'op = "set_next_evnt"\ndelta = "100us"', 1)
    ed.set_document(text, "mine.toml")
    errors = ed.validate()
    assert len(errors) >= 2
    lines = set(ed.editor.errors)
    assert {e.line for e in errors} <= lines
    dur_line = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("duration"))
    assert dur_line in lines
    assert ed.error_list.count() == len(errors)
    ed.error_list.setCurrentRow(0)
    ed._jump_to_error(ed.error_list.item(0))
    assert ed.editor.textCursor().blockNumber() + 1 == errors[0].line
    # a valid text clears the markers
    ed.editor.setPlainText(NEW_SCENARIO)
    assert ed.validate() == [] and not ed.editor.errors


def test_new_scenario_runs_template(make_window, qtbot):
    win = make_window()
    with qtbot.waitSignal(win.controller.documentChanged, timeout=20_000):
        win.new_scenario()
    wait_idle(qtbot, win)
    assert win.controller.doc.scenario.name == "untitled"
    assert win.controller.total > 0
