"""The compare view and imported traces as the timeline draws them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from gui_helpers import open_builtin, wait_idle
from PySide6 import QtCore
from view_helpers import no_paint_errors, open_file, scenario_file, settle

from lazytsc_gui.compare import CompareView, Side

DATA = Path(__file__).resolve().parent / "data"
TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"
_no_paint_errors = pytest.fixture(autouse=True)(no_paint_errors)


def _ruler_on_screen(tl, pane) -> bool:
    """The pane's time ruler is inside the visible part of the pane (no scrolling needed)."""
    top_left = tl.ruler.mapTo(pane, QtCore.QPoint(0, 0))
    return tl.ruler.isVisible() and top_left.y() >= 0 and top_left.y() + tl.ruler.height() <= pane.height()


def test_compare_panes_have_a_time_axis_in_view_and_the_same_colours(win, qtbot):
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=30_000)
    wait_idle(qtbot, win)
    settle(qtbot)
    cmp = win.compare
    for tl in (cmp.timeline_a, cmp.timeline_b):
        assert _ruler_on_screen(tl, tl)
        # the ruler and the lanes show the same time range
        assert tl.ruler_box.viewRange()[0] == pytest.approx(tl.plots[0].plot.getViewBox().viewRange()[0], rel=1e-6)
        labels = tl.ruler_plot.getAxis("bottom").tickStrings([1e-4, 2e-4], 1.0, 1e-4)
        assert labels == ["100 µs", "200 µs"]
    # the same role is drawn with the same colour in classic (no page) and lazy (page) runs
    roles = []
    for tl in (cmp.timeline_a, cmp.timeline_b):
        info = next(p for p in tl.plots if p.kind == "deadline")
        roles.append([t.role for t in info.rows["steps"]])
    assert roles[0] == roles[1] == ["pending", "armed"]
    names = [[t.name for t in next(p for p in tl.plots if p.kind == "deadline").rows["steps"]] for tl in (cmp.timeline_a, cmp.timeline_b)]
    assert names == [["requested", "armed"], ["pending", "armed"]]


def test_compare_while_computing_shows_progress_not_the_previous_comparison(win, qtbot, tmp_path):
    """Re-running shows no stale headers or table, and the panes say what is running (not "No run loaded")."""
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=30_000)
    wait_idle(qtbot, win)
    cmp = win.compare
    assert cmp.table.rowCount() > 0 and cmp.headline.text()
    open_file(qtbot, win, scenario_file(tmp_path, "tcp_rr", "300ms"))
    # the new document clears the comparison; running it shows progress right away
    cmp.refresh_btn.click()
    assert win.runner.busy
    assert cmp.table.rowCount() == 0 and cmp.headline.text() == ""
    assert "Seed" not in cmp.title.text()
    assert cmp.progress.isVisible()
    for tl in (cmp.timeline_a, cmp.timeline_b):
        assert tl.stack.currentIndex() == 0
        text = tl.empty.text()
        assert "No run loaded" not in text and "both modes" in text
    qtbot.waitUntil(lambda: "events" in cmp.timeline_a.empty.text() or cmp.a is not None, timeout=60_000)
    wait_idle(qtbot, win, 120_000)
    assert cmp.a is not None and not cmp.progress.isVisible()


def _scaled(summary: dict, factor: int) -> dict:
    """A summary with every count multiplied (a run this many times bigger)."""
    out = copy.deepcopy(summary)

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            elif isinstance(v, int) and not isinstance(v, bool):
                d[k] = v * factor

    walk(out)
    return out


def test_delta_percent_column_is_not_cut_off_on_big_runs(qtbot):
    from lazytsc.engine import Engine
    from lazytsc.resources import builtin_scenarios
    from lazytsc.scenario import load_scenario

    sc = load_scenario(builtin_scenarios()["tcp_rr"])
    sc.run.duration_ns = 5_000_000
    summaries = {}
    for m in ("classic", "lazy"):
        e = Engine(sc, m)
        e.run()
        summaries[m] = _scaled(e.summary(), 100_000)  # ~10^9 exits: 13-digit cells
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitExposed(view)
    view.set_sides("big", Side("classic", summaries["classic"]), Side("lazy", summaries["lazy"]))
    settle(qtbot)
    assert view.delta_column_visible()
    assert view.table.horizontalScrollBar().maximum() == 0  # nothing to scroll to


def test_perf_kvm_stat_table_shows_a_message_not_an_empty_timeline(make_window, qtbot):
    """A table of counts has no per-event rows: no plots, no stale window label, the counts in the exit table."""
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    assert "window" in win.timeline.mode_label.text()
    open_file(qtbot, win, TRACES / "perf_kvm_stat.txt")
    tl = win.timeline
    assert tl.stack.currentIndex() == 0 and not tl.plots
    assert "perf kvm stat" in tl.empty.text() and "12,617,503" in tl.empty.text()
    assert tl.mode_label.text() == ""
    assert "perf_kvm_stat.txt" in tl.title.text()
    table = win.exits_panel.table
    total = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "total")
    assert table.item(total, 3).text() == "12,617,503"


def test_trace_with_one_vcpu_draws_only_it_with_its_id_and_fits_the_data(make_window, qtbot):
    """A real trace with data only on vCPU 3 (lore.kernel.org excerpt): one lane group, "vCPU 3", on screen."""
    win = make_window("lazy")
    open_file(qtbot, win, TRACES / "real" / "lore_vmx_nested_io_instruction.txt")
    tl = win.timeline
    lanes = [p for p in tl.plots if p.kind == "lanes"]
    assert [p.vcpu for p in lanes] == [3]
    assert "vCPU 3" in lanes[0].plot.getAxis("left").labelText
    # the view is the data: from the first event to the last
    x0, x1 = tl.x_range()
    t = tl.data.time_ns * 1e-9
    assert x0 <= t.min() and x1 >= t.max()
    assert (x1 - x0) <= 1.1 * (t.max() - t.min())
    # the combined host/guest group: host exits and what the guest did, one group
    labels = [lbl for _v, lbl in lanes[0].plot.getAxis("left")._tickLevels[0]]
    assert any(lbl.startswith("host:") for lbl in labels)
    assert "guest v" not in labels and "lazy host" not in labels


def test_trace_combined_host_guest_rows(make_window, qtbot):
    win = make_window("lazy")
    open_file(qtbot, win, DATA / "ftrace_vcpu5.txt")
    tl = win.timeline
    lanes = [p for p in tl.plots if p.kind == "lanes"]
    assert [p.vcpu for p in lanes] == [5]
    labels = [lbl for _v, lbl in lanes[0].plot.getAxis("left")._tickLevels[0]]
    assert {"host: exits", "host: timer", "guest: 6e0 v", "guest: irq"} <= set(labels)
    assert "host + guest" in lanes[0].plot.getAxis("left").labelText


def test_what_if_compare_keeps_the_trace_vcpu_ids(make_window, qtbot):
    win = make_window("lazy")
    open_file(qtbot, win, DATA / "ftrace_vcpu5.txt")
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=60_000)
    wait_idle(qtbot, win)
    for tl in (win.compare.timeline_a, win.compare.timeline_b):
        lanes = [p for p in tl.plots if p.kind == "lanes"]
        assert len(lanes) == 1
        assert "vCPU 5" in lanes[0].plot.getAxis("left").labelText
