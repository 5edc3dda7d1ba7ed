"""Timer rows of the exit-accounting panel and of the compare view's diffed table.

Both tables show what `lazytsc run` prints under `timer:`: guest timer interrupts (all,
useful, spurious) and the host-side cost -- every apic_timer_expired (`host_expiries`),
the host timers that fired, the latched expiries dropped. The panel's "at cursor" column
is `accounting.summarize(log, upto=position)`, its "whole run" column the run's summary;
the compare view diffs the classic and the lazy runs' summaries. A figure no side has (an
imported recording and its what-if) gets no row; a side alone without it reads n/a with
no delta, never a made-up zero, as `accounting.format_seed_table` prints it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import wait_idle
from lazytsc.accounting import summarize
from lazytsc.engine import Engine

from lazytsc_gui.exits_panel import TIMER_TIPS

REPO = Path(__file__).resolve().parents[2]
NEW_ROWS = ("interrupts_useful", "host_expiries", "host_timer_fires", "expiries_dropped")
ALL_ROWS = ("interrupts", "interrupts_useful", "spurious", *NEW_ROWS[1:])


@pytest.fixture
def short_tcp_rr(tmp_path) -> Path:
    """The built-in tcp_rr over 5 ms: hundreds of transactions, a few tick boundaries."""
    text = (REPO / "resources" / "scenarios" / "tcp_rr.toml").read_text(encoding="utf-8")
    path = tmp_path / "tcp_rr_short.toml"
    path.write_text(text.replace('duration = "50ms"', 'duration = "5ms"'), encoding="utf-8")
    return path


def open_file(qtbot, win, path: Path) -> None:
    with qtbot.waitSignal(win.controller.documentChanged, timeout=30_000):
        assert win.open_path(str(path))
    wait_idle(qtbot, win)


def panel_rows(panel) -> dict[str, list[str]]:
    t = panel.table
    return {t.item(r, 0).text(): [t.item(r, c).text() for c in range(1, t.columnCount())] for r in range(t.rowCount())}


def test_exits_panel_has_the_timer_rows_at_the_cursor_and_for_the_run(make_window, qtbot, short_tcp_rr):
    win = make_window("lazy")
    open_file(qtbot, win, short_tcp_rr)
    c = win.controller
    c.goto_event(c.total * 2 // 3)
    wait_idle(qtbot, win)
    rows = panel_rows(win.exits_panel)
    at_cursor = summarize(c.doc.log, upto=c.position)["timer"]
    whole = c.doc.summary["timer"]
    for key in ALL_ROWS:
        cursor, _pct, run, _pct2 = rows[f"timer: {key}"]
        assert cursor == f"{at_cursor[key]:,}" and run == f"{whole[key]:,}", key
    # lazy tcp_rr: the stale tick fires early, and the host handles more expiries than
    # the guest takes interrupts (the kick's re-arm expires again on the hv path)
    assert whole["spurious"] > 0 and whole["interrupts_useful"] == whole["interrupts"] - whole["spurious"]
    assert whole["host_expiries"] >= whole["interrupts"] and whole["host_timer_fires"] > 0
    labels = {win.exits_panel.table.item(r, 0).text(): win.exits_panel.table.item(r, 0)
              for r in range(win.exits_panel.table.rowCount())}
    assert labels["timer: host_expiries"].toolTip() == TIMER_TIPS["host_expiries"]
    assert "apic_timer_expired" in TIMER_TIPS["host_expiries"]


def test_compare_view_diffs_the_timer_rows(make_window, qtbot, short_tcp_rr):
    win = make_window("lazy")
    open_file(qtbot, win, short_tcp_rr)
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=60_000)
    wait_idle(qtbot, win)
    rows = {r[0]: r for r in win.compare.table_text()}
    sc = win.controller.doc.scenario
    expected = {}
    for mode in ("classic", "lazy"):
        engine = Engine(sc, mode)
        engine.run()
        expected[mode] = engine.summary()["timer"]
    for key in ALL_ROWS:
        label, classic, _pa, lazy, _pb, delta, _rel = rows[f"timer: {key}"]
        assert classic == f"{expected['classic'][key]:,}" and lazy == f"{expected['lazy'][key]:,}", key
        d = expected["lazy"][key] - expected["classic"][key]
        assert delta == (f"{d:+,}" if d else "0"), key
    assert expected["classic"]["spurious"] == 0 < expected["lazy"]["spurious"]


def test_a_recording_without_the_counts_gets_no_row(make_window, qtbot):
    """The what-if of an imported trace reports no useful/host-expiry counts: no rows."""
    pytest.importorskip("lazytsc.traces.whatif")
    win = make_window()
    open_file(qtbot, win, REPO / "tests" / "data" / "traces" / "ftrace_intel.txt")
    win.show_compare()
    qtbot.waitUntil(lambda: win.compare.a is not None, timeout=30_000)
    wait_idle(qtbot, win)
    rows = {r[0] for r in win.compare.table_text()}
    assert "timer: interrupts" in rows and "total" in rows
    for key in NEW_ROWS:
        assert f"timer: {key}" not in rows


def test_a_side_without_a_count_reads_n_a_and_has_no_delta(qtbot):
    """One side without the host-side counts: its cells are n/a, the other side's counts stay."""
    from lazytsc.scenario import load_scenario

    from lazytsc_gui.compare import CompareView, Side

    engine = Engine(load_scenario(REPO / "resources" / "scenarios" / "tcp_rr.toml"), "lazy")
    engine.run(max_events=4000)
    replay = engine.summary()
    recorded = {**replay, "timer": {k: v for k, v in replay["timer"].items() if k not in NEW_ROWS}}
    view = CompareView()
    qtbot.addWidget(view)
    view.set_sides("recording vs replay", Side("recorded", recorded), Side("replay", replay))
    rows = {r[0]: r for r in view.table_text()}
    for key in NEW_ROWS:
        _label, a, _pa, b, _pb, delta, rel = rows[f"timer: {key}"]
        assert a == "n/a" and b == f"{replay['timer'][key]:,}" and delta == "" and rel == "", key
    _label, a, _pa, b, _pb, delta, _rel = rows["timer: interrupts"]
    assert a == b == f"{replay['timer']['interrupts']:,}" and delta == "0"
