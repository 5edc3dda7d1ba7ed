"""The event list is a view over the log: it keeps no copy of the log's columns.

A 10^6-event run's log is 40 B/event; a model holding all eight unpacked columns
doubled that. Cells come from `log.event(i)`, filters from the narrow columns the
log shares with its other readers, a search by value from a one-off read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lazytsc.engine import Engine
from lazytsc.scenario import load_scenario
from lazytsc.taxonomy import EXIT_NAMES, KIND_NAMES, Kind

from lazytsc_gui.events_model import EventsModel

REPO = Path(__file__).resolve().parents[2]
WIDE = {"a", "b", "parent"}


def _run(events: int = 6000) -> Engine:
    engine = Engine(load_scenario(REPO / "resources" / "scenarios" / "tcp_rr.toml"), "lazy")
    engine.run(max_events=events)
    return engine


def test_column_without_cache_is_the_same_column_and_is_not_kept():
    log = _run().log
    once = log.column("a", cache=False)
    assert "a" not in log._cache
    assert np.array_equal(once, log.column("a")) and "a" in log._cache


def test_the_model_keeps_no_wide_column_and_its_cells_are_the_events(qtbot):
    log = _run().log
    model = EventsModel()
    model.set_log(log)
    model.set_position(len(log))
    for i in range(0, len(log), 97):
        ev = log.event(i)
        assert model.cell_text(i, 1) and model.cell_text(i, 3) == KIND_NAMES[ev.kind]
        assert model.cell_text(i, 4).startswith(EXIT_NAMES[ev.exit]) if ev.exit >= 0 else model.cell_text(i, 4) == ""
        assert model.cell_text(i, 7) == (str(ev.parent) if ev.parent >= 0 else "")
        model.data(model.index(i, 4))
    model.set_filters(kinds={int(Kind.TIMER_FIRE)}, vcpu=0)
    assert model.rowCount() == int(np.count_nonzero((log.kind == Kind.TIMER_FIRE) & (log.vcpu == 0)))
    value = log.event(model.event_at(0)).a
    assert model.count_matches(hex(value)) >= 1 and model.count_matches("spurious") >= 0
    assert not WIDE & set(log._cache), sorted(log._cache)


def test_a_wide_event_table_gives_its_spare_width_to_the_exit_and_value_columns(qtbot):
    """No cell is elided beside empty space: at 1400 px the columns fill the viewport and
    the longest sub-reason fits; a column the user drags keeps its width."""
    from lazytsc_gui.events_panel import EventTable

    model = EventsModel()
    model.set_log(_run(500).log)
    table = EventTable(model)
    qtbot.addWidget(table)
    table.resize(1400, 300)
    table.show()
    qtbot.waitExposed(table)
    widths = [table.columnWidth(c) for c in range(model.columnCount())]
    assert abs(sum(widths) - table.viewport().width()) <= 5
    exit_col = 4
    assert widths[exit_col] >= table.fontMetrics().horizontalAdvance("msr-write / pv-lazy-tscdeadline")
    table.setColumnWidth(exit_col, 90)
    table.resize(1500, 300)
    qtbot.waitUntil(lambda: table.viewport().width() > 1400)
    assert table.columnWidth(exit_col) == 90


def test_streaming_pauses_every_few_thousand_events_so_the_ui_can_paint(monkeypatch):
    """The compiled engine does not give up the GIL while it runs, so a worker that ran a
    100,000-event chunk in one call kept the window from painting its first screen until
    the run was nearly done. The stream runs GIL_STEP events at a time and sleeps between."""
    from lazytsc.debugger import Session

    from lazytsc_gui import document

    sc = load_scenario(REPO / "resources" / "scenarios" / "tcp_rr.toml")
    sc.run.duration_ns = 15_000_000
    session = Session(sc, "lazy")
    steps: list[int] = []
    real_run = session.run
    monkeypatch.setattr(session, "run", lambda **kw: steps.append(kw["max_events"]) or real_run(**kw))
    pauses: list[float] = []
    monkeypatch.setattr(document.time, "sleep", pauses.append)
    chunks: list[int] = []
    total = document.stream_session(session, emit=lambda cols: chunks.append(len(cols["time"])))
    assert total == len(session.log) and sum(chunks) == total
    assert len(steps) > 2 and max(steps) <= document.GIL_STEP
    assert len(pauses) >= len(steps)
    assert len(chunks) < len(steps)  # chunks are still handed over whole, not per step
