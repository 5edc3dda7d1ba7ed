"""The timeline driven like a user would: compare round trip, the deadline plot, keys, overview, lanes, markers."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import open_builtin, wait_idle
from lazytsc.scenario import load_scenario
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest
from view_helpers import near, no_paint_errors, open_file, pixels, plot_rect, scenario_file, settle

from lazytsc_gui import themes
from lazytsc_gui.document import build_log
from lazytsc_gui.timeline import TimelineWidget

Qt = QtCore.Qt
_no_paint_errors = pytest.fixture(autouse=True)(no_paint_errors)


def _visible_right_time(tl) -> float:
    """The time at the right edge of what the lanes view shows on screen."""
    vb = tl.master.getViewBox()
    right_px = tl.glw.viewport().width() - 1
    scene = tl.glw.mapToScene(QtCore.QPoint(right_px, 10))
    return float(vb.mapSceneToView(scene).x())


def test_compare_round_trip_keeps_the_timeline_and_the_docks(make_window, qtbot):
    """Timeline -> Compare (Ctrl+Shift+C) -> Timeline: the axis still ends where the window says,
    nothing is clipped on the right, and the docks (the exit table) keep their sizes."""
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    settle(qtbot)
    exits_h, state_w = win.exits_dock.height(), win.state_dock.width()
    QTest.keyClick(win, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=60_000)
    wait_idle(qtbot, win)
    settle(qtbot)
    win.tabs.setCurrentWidget(tl)
    settle(qtbot, 60)
    # the lanes layout fits the view: no plot reaches past the viewport's right edge
    assert tl.glw.ci.geometry().width() <= tl.glw.width() + 0.5
    vb_right = plot_rect(tl, tl.plots[0]).right()
    assert vb_right <= tl.glw.viewport().width()
    # "window X" is what is on screen: the right edge of the screen shows the view's end
    x0, x1 = tl.x_range()
    assert _visible_right_time(tl) >= x1 - 0.02 * (x1 - x0)
    tl.zoom_to_fit()
    settle(qtbot)
    assert _visible_right_time(tl) >= tl.data.t_end
    assert win.exits_dock.height() == pytest.approx(exits_h, abs=2)
    assert win.state_dock.width() == pytest.approx(state_w, abs=2)


def _deadline_infos(tl):
    return [p for p in tl.plots if p.kind == "deadline"]


def test_deadline_axis_is_time_to_deadline_and_does_not_grow_with_the_run(qtbot):
    """The deadline plot's y axis is `deadline - now`: a 10x longer run has the same axis."""
    sc = load_scenario(builtin_scenario_path("tcp_rr"))
    ranges = []
    for duration in (20_000_000, 200_000_000):
        sc.run.duration_ns = duration
        run = build_log(sc, "lazy")
        tl = TimelineWidget()
        qtbot.addWidget(tl)
        tl.resize(1200, 900)
        tl.show()
        tl.set_data(run.data, "t")
        ranges.append(_deadline_infos(tl)[0].y_range)
        # the tooltip reads the time to the deadline at the pointer
        info = _deadline_infos(tl)[0]
        lane = run.data.lanes_of(0)
        times = run.log.column("time")[lane.pending.idx]
        j = len(lane.pending) // 2
        while times[j + 1] == times[j]:  # the last change at its instant is what the pointer sees
            j += 1
        i = int(lane.pending.idx[j])
        t = int(run.log.column("time")[i])
        tsc = int(lane.pending.raw[j])
        text = tl.describe_at(info, (t + 0.4) * 1e-9, 0.0)
        want = tsc * 1e6 / lane.khz - t
        from lazytsc_gui.fmt import fmt_ns

        assert f"in {fmt_ns(want)}" in text or f"passed {fmt_ns(-want)} ago" in text
    (lo_a, hi_a), (lo_b, hi_b) = ranges
    assert hi_b == pytest.approx(hi_a, abs=1.0)  # within a decade, not 10x
    assert lo_b == pytest.approx(lo_a, abs=1.0)


def builtin_scenario_path(name):
    from lazytsc.resources import builtin_scenarios

    return builtin_scenarios()[name]


def test_zoomed_out_deadline_plot_is_no_solid_block_and_armed_is_on_top(make_window, qtbot):
    """At fit on tcp_rr no colour fills the deadline plot; `armed` is drawn, over pending."""
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    tl.zoom_to_fit()
    settle(qtbot)
    px = pixels(tl.glw)
    th = themes.current()
    for info in _deadline_infos(tl):
        r = plot_rect(tl, info)
        area = px[r.top() + 2 : r.bottom() - 2, r.left() + 2 : r.right() - 2]
        pending = near(area, th.marks["pending"], 60).mean()
        armed = near(area, th.marks["armed"], 50).sum()
        assert pending < 0.25, f"pending covers {pending:.0%} of the plot"
        assert armed > 200
        # where armed and pending meet, armed is painted last
        values = [t.name for t in info.rows["steps"]]
        assert values[-1] == "armed"


def test_rare_marks_stay_visible_when_zoomed_out(make_window, qtbot):
    """Binned at fit, every row with marks shows them, and one rare spurious interrupt still shows."""
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    tl.zoom_to_fit()
    settle(qtbot)
    assert "binned" in tl.detail_modes()
    px = pixels(tl.glw)
    th = themes.current()
    info = tl.plots[0]
    r = plot_rect(tl, info)
    vb = info.plot.getViewBox()
    row = info.row_names.index("irq")
    y0 = int(tl.glw.mapFromScene(vb.mapViewToScene(QtCore.QPointF(0, row))).y())
    y1 = int(tl.glw.mapFromScene(vb.mapViewToScene(QtCore.QPointF(0, row + 1))).y())
    band = px[y0:y1, r.left() : r.right()]
    assert near(band, th.marks["haz:spurious"], 50).any(axis=0).sum() >= 1
    guest = info.row_names.index("guest")
    y = int(tl.glw.mapFromScene(vb.mapViewToScene(QtCore.QPointF(0, guest + 0.5))).y())
    band = px[y - 2 : y + 3, r.left() : r.right()]
    bg = near(band, th.plot_bg, 6) | near(band, th.lane_alt, 6)
    assert (~bg).any(axis=0).mean() > 0.8  # marks in (almost) every pixel column


def test_keyboard_zoom_and_pan(win, qtbot):
    """W/S and +/- zoom, A/D and the arrows pan, while the timeline has the focus."""
    tl = win.timeline
    tl.setFocus()
    settle(qtbot)
    x0, x1 = tl.x_range()
    w = x1 - x0
    for key in (Qt.Key.Key_W, Qt.Key.Key_Plus):
        QTest.keyClick(tl, key)
        a, b = tl.x_range()
        assert b - a == pytest.approx(w / 1.4, rel=1e-6)
        w = b - a
    for key in (Qt.Key.Key_S, Qt.Key.Key_Minus):
        QTest.keyClick(tl, key)
        a, b = tl.x_range()
        assert b - a == pytest.approx(w * 1.4, rel=1e-6)
        w = b - a
    tl.set_x_range(50e-6, 100e-6)
    for key, sign in ((Qt.Key.Key_D, 1), (Qt.Key.Key_Right, 1), (Qt.Key.Key_A, -1), (Qt.Key.Key_Left, -1)):
        a0, _ = tl.x_range()
        QTest.keyClick(tl, key)
        a1, b1 = tl.x_range()
        assert a1 - a0 == pytest.approx(sign * 0.2 * 50e-6, rel=1e-6)
        assert b1 - a1 == pytest.approx(50e-6, rel=1e-6)
    # keys go to the events list when it has the focus, not to the timeline
    win.events_panel.table.setFocus()
    a0, b0 = tl.x_range()
    QTest.keyClick(win.events_panel.table, Qt.Key.Key_D)
    assert tl.x_range() == (a0, b0)


def test_overview_strip_shows_and_moves_the_window(make_window, qtbot):
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    end = tl.data.t_end
    tl.set_x_range(0.1 * end, 0.2 * end)
    settle(qtbot)
    a, b = tl.overview.window()
    assert a == pytest.approx(0.1 * end, rel=1e-3) and b == pytest.approx(0.2 * end, rel=1e-3)
    # dragging the window (its region) pans the timeline
    tl.overview.region.setRegion((0.5 * end, 0.6 * end))
    x0, x1 = tl.x_range()
    assert x0 == pytest.approx(0.5 * end, rel=1e-3) and x1 == pytest.approx(0.6 * end, rel=1e-3)
    # a click elsewhere centres the window there, same width
    box = tl.overview.box
    scene = box.mapViewToScene(QtCore.QPointF(0.85 * end, 0.5))
    pos = tl.overview.mapFromScene(scene)
    QTest.mouseClick(tl.overview.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    x0, x1 = tl.x_range()
    assert (x0 + x1) / 2 == pytest.approx(0.85 * end, rel=0.01)
    assert x1 - x0 == pytest.approx(0.1 * end, rel=1e-3)
    # the strip shows the run's events (and nothing beyond its end)
    px = pixels(tl.overview)
    assert not near(px, themes.current().plot_bg, 8).all()


def test_hide_and_reorder_lanes(make_window, qtbot):
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    assert [p.vcpu for p in tl.plots if p.kind == "lanes"] == [0, 1]
    cfg = tl.lanes.copy()
    cfg.hidden_rows |= {"lazy", "haz"}
    cfg.move_vcpu(1, -1, [0, 1])
    tl.set_lanes(cfg)
    lanes = [p for p in tl.plots if p.kind == "lanes"]
    assert [p.vcpu for p in lanes] == [1, 0]
    assert "lazy" not in lanes[0].row_names and "haz" not in lanes[0].row_names
    # the dialog edits the same configuration live
    dlg = tl.show_lanes_dialog()
    qtbot.addWidget(dlg)
    item = next(dlg.rows.item(i) for i in range(dlg.rows.count()) if dlg.rows.item(i).data(Qt.ItemDataRole.UserRole) == "deadline")
    item.setCheckState(Qt.CheckState.Unchecked)
    assert not any(p.kind == "deadline" for p in tl.plots)
    dlg.rows.setCurrentRow(0)
    dlg.rows.move_current(+1)
    assert tl.lanes.rows[1] == "guest"
    dlg.reset()
    assert [p.vcpu for p in tl.plots if p.kind == "lanes"] == [0, 1] and any(p.kind == "deadline" for p in tl.plots)
    dlg.close()
    # right click on a row label: hide that row
    info = tl.plots[0]
    axis = info.plot.getAxis("left")
    vb = info.plot.getViewBox()
    row = info.row_names.index("exits")
    scene = QtCore.QPointF(axis.sceneBoundingRect().center().x(), vb.mapViewToScene(QtCore.QPointF(0, row + 0.5)).y())
    QTest.mouseClick(tl.glw.viewport(), Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, tl.glw.mapFromScene(scene))
    menu = tl._last_menu
    hide = next(a for a in menu.actions() if a.text().startswith("Hide row"))
    assert "exits" in hide.text()
    hide.trigger()
    menu.close()
    assert "exits" not in tl.plots[0].row_names


def test_named_markers_add_rename_jump_delete(win, qtbot, monkeypatch):
    """More than two named markers: M adds one at the pointer/cursor, `.`/`,` jump, the menu renames and deletes."""
    tl = win.timeline
    c = win.controller
    names = iter(["first", "second", "third", "renamed"])
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", staticmethod(lambda *a, **k: (next(names), True)))
    while c.bookmarks():  # the scenario's own bookmarks
        c.remove_bookmark(0)
    tl.set_x_range(0, 200e-6)
    tl.setFocus()
    for t in (40e-6, 90e-6, 150e-6):
        c.goto_event(c.doc.data.nearest_event(t))
        tl.set_x_range(0, 200e-6)
        QTest.keyClick(tl, Qt.Key.Key_M)
    assert [b.name for b in c.bookmarks()] == ["first", "second", "third"]
    assert len(tl.markers()) == 3 and len(tl._marker_lines) == 3
    times = [t for _n, t in tl.markers()]
    # jump: the view centres on the next / previous marker, same width
    tl.set_x_range(0, 20e-6)
    QTest.keyClick(tl, Qt.Key.Key_Period)
    a, b = tl.x_range()
    assert (a + b) / 2 == pytest.approx(times[0], abs=1e-9) and b - a == pytest.approx(20e-6)
    QTest.keyClick(tl, Qt.Key.Key_Period)
    assert sum(tl.x_range()) / 2 == pytest.approx(times[1], abs=1e-9)
    QTest.keyClick(tl, Qt.Key.Key_Comma)
    assert sum(tl.x_range()) / 2 == pytest.approx(times[0], abs=1e-9)
    # the Markers menu lists them with rename / delete
    tl._fill_markers_menu()
    subs = [a.menu() for a in tl.markers_menu.actions() if a.menu() is not None]
    assert len(subs) == 3 and "second" in subs[1].title()
    next(a for a in subs[1].actions() if a.text().startswith("Rename")).trigger()
    assert [b.name for b in c.bookmarks()] == ["first", "renamed", "third"]
    tl._fill_markers_menu()
    subs = [a.menu() for a in tl.markers_menu.actions() if a.menu() is not None]
    next(a for a in subs[0].actions() if a.text() == "Delete").trigger()
    assert [b.name for b in c.bookmarks()] == ["renamed", "third"]
    assert len(tl._marker_lines) == 2
    # dragging a marker in the ruler moves it
    line = tl._marker_lines[0]
    line.setValue(120e-6)
    line.sigPositionChangeFinished.emit(line)
    assert any(abs(c.bookmark_time_ns(b) - 120_000) <= 1 for b in c.bookmarks())


def test_legend_never_breaks_inside_an_entry(make_window, qtbot):
    """At any width the legend wraps between entries ("cancelled" is never cut into "cancelle/d")."""
    win = make_window("lazy")
    open_builtin(qtbot, win, "tcp_rr")
    tl = win.timeline
    for width in (1400, 900, 640, 480):
        win.resize(width, 800)
        settle(qtbot)
        doc = tl.legend_item.item.document()
        block = doc.begin()
        while block.isValid():
            text = block.text()
            layout = block.layout()
            for i in range(1, layout.lineCount()):
                start = layout.lineAt(i).textStart()
                assert text[start - 1] in " \u2028", f"line breaks inside an entry at {text[max(0, start - 12):start + 6]!r} (width {width})"
            block = block.next()


def test_long_run_streams_in_then_matches_the_engine(make_window, qtbot, tmp_path):
    """A long run shows its first screen while it still runs, then fills in; the result is the engine's log."""
    from lazytsc.engine import Engine

    path = scenario_file(tmp_path, "tcp_rr", "400ms")
    win = make_window("lazy")
    open_file(qtbot, win, path, idle=False)
    c = win.controller
    doc = c.doc
    first = len(doc.log)
    assert c.busy and not doc.complete  # the first screen is up while the run streams in
    assert win.timeline.plots and win.timeline.data is doc.data
    assert doc.data.span_end_ns == 400_000_000  # the axis spans the whole run already
    wait_idle(qtbot, win, 180_000)
    assert doc.complete and len(doc.log) > first
    assert win.timeline.data.n_events == len(doc.log) == c.total
    e = Engine(doc.scenario, "lazy")
    e.run()
    assert doc.log.digest() == e.log.digest()
    assert win.events_panel.model.rowCount() == len(doc.log)  # the panels see the whole run


def test_cancelled_stream_brings_back_the_previous_run(win, qtbot, tmp_path):
    c = win.controller
    before = c.doc
    path = scenario_file(tmp_path, "tcp_rr", "2s")
    with qtbot.waitSignal(c.documentChanged, timeout=60_000):
        win.open_path(str(path), ask=False)
    assert c.doc is not before and c.busy
    c.pause()
    wait_idle(qtbot, win, 60_000)
    assert c.doc is before
    assert win.timeline.data is before.data


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_every_demo_renders_in_both_zooms(make_window, qtbot, theme):
    """Each built-in scenario draws (fit and a zoom into its busiest part) without an error."""
    from lazytsc.resources import builtin_scenarios

    win = make_window("lazy")
    win.set_theme(theme)
    for name in builtin_scenarios():
        open_builtin(qtbot, win, name)
        tl = win.timeline
        tl.zoom_to_fit()
        assert tl.glw.grab().width() > 0
        t = tl.data.time_ns
        mid = float(np.median(t)) * 1e-9
        tl.set_x_range(mid, mid + 20e-6)
        assert tl.glw.grab().width() > 0
        assert tl.detail_modes() <= {"exact", "binned"}
