"""timeline_data: presentation data derived from the log (no Qt), checked against the engine."""

from __future__ import annotations

import numpy as np
import pytest
from lazytsc.debugger import Session
from lazytsc.resources import builtin_scenarios
from lazytsc.scenario import load_scenario, parse_scenario
from lazytsc.taxonomy import Kind

from lazytsc_gui.timeline_data import (
    EXACT_MIN,
    SPAN_CANCELLED,
    SPAN_FIRED,
    SPAN_OPEN,
    bin_columns,
    build_timeline_data,
    choose_mode,
    merge_pixel_spans,
    step_polyline,
    visible_range,
    visible_spans,
)

COLS = ("time", "vcpu", "kind", "exit", "a", "b", "parent")


def _run(scenario, mode):
    s = Session(scenario, mode)
    s.run(breakpoints=[])
    cols = {n: s.log.column(n).copy() for n in COLS}
    data = build_timeline_data(cols, len(scenario.run.vcpus), [v.tsc_khz for v in scenario.run.vcpus])
    return s, cols, data


def _value_after(steps, index: int) -> int:
    """The step value after every change logged at or before event `index`."""
    j = int(np.searchsorted(steps.idx, index, side="right")) - 1
    return int(steps.raw[j])


@pytest.mark.parametrize(
    "name,duration",
    [("seed_overwrite", None), ("lvtt_mask_stale_pending", None), ("migration_no_vmm", None), ("reset_stale_armed", None), ("tcp_rr", 3_000_000)],
)
@pytest.mark.parametrize("mode", ["classic", "lazy"])
def test_pending_and_armed_match_engine_snapshots(name, duration, mode):
    """The step plots read off the log equal the shared page in every snapshot."""
    path = builtin_scenarios().get(name)
    if path is None:
        pytest.skip(f"no built-in {name}")
    scenario = load_scenario(path)
    if duration:
        scenario.run.duration_ns = duration
    s, cols, data = _run(scenario, mode)
    s.goto(0)
    checked = 0
    while not s.done:
        s.step_action()  # action boundaries: the timeline shows each action's result
        snap = s.snapshot()
        last = s.position - 1
        for vs in snap.vcpus:
            lanes = data.vcpus[vs.vcpu]
            assert _value_after(lanes.pending, last) == vs.pending, (name, mode, last, "pending")
            assert _value_after(lanes.armed, last) == vs.armed, (name, mode, last, "armed")
            checked += 1
    assert checked > 0


def test_seed_picture_lanes():
    scenario = load_scenario(builtin_scenarios()["seed_overwrite"])
    _s, cols, data = _run(scenario, "lazy")
    lanes = data.vcpus[0]
    assert len(lanes.written) == 1 and len(lanes.skipped) == 5  # four skips + the equal one
    assert len(lanes.irqs_spurious) == 1 and len(lanes.irqs) == 1
    # deadlines as times: the first written deadline is 110 us
    assert lanes.written.target[0] == pytest.approx(110e-6)
    # the armed timer spans: armed at 10us, fired at 109us (early: advance), re-armed by kick
    spans = lanes.timer_spans
    assert spans.t0[0] == pytest.approx(10e-6) and spans.t1[0] == pytest.approx(109e-6)
    assert spans.flag[0] == SPAN_FIRED
    assert lanes.armed.value_at(100e-6) == int(cols["a"][lanes.written.idx[0]])  # armed = the written deadline
    classic = _run(scenario, "classic")[2].vcpus[0]
    assert len(classic.written) == 5 and len(classic.skipped) == 0
    assert list(classic.timer_spans.flag[:4]) == [SPAN_CANCELLED] * 4
    assert not classic.has_page


def test_hlt_spans_end_at_wake_and_traces_end_at_next_event():
    scenario = load_scenario(builtin_scenarios()["tcp_rr"])
    scenario.run.duration_ns = 2_000_000
    _s, cols, data = _run(scenario, "lazy")
    lanes = data.vcpus[0]
    assert len(lanes.hlt) > 10
    assert np.all(lanes.hlt.t1 >= lanes.hlt.t0)
    assert np.all(lanes.hlt.t0[1:] >= lanes.hlt.t1[:-1])  # one vCPU halts once at a time
    # a trace-like log without WAKE rows: each halt ends at the vCPU's next event
    n = 6
    trace_cols = {
        "time": np.array([0, 10, 20, 30, 40, 50], dtype=np.int64),
        "vcpu": np.array([0, 0, 1, 0, 0, -1], dtype=np.int16),
        "kind": np.array([Kind.HLT, Kind.HOST_IRQ, Kind.HLT, Kind.HLT, Kind.CPUID, Kind.END], dtype=np.int16),
        "exit": np.full(n, -1, dtype=np.int8),
        "a": np.zeros(n, dtype=np.int64),
        "b": np.zeros(n, dtype=np.int64),
        "parent": np.full(n, -1, dtype=np.int32),
    }
    td = build_timeline_data(trace_cols, 2, None)
    assert not td.has_deadlines
    h0 = td.vcpus[0].hlt
    assert list(h0.t0 * 1e9) == pytest.approx([0, 30]) and list(h0.t1 * 1e9) == pytest.approx([10, 40])
    h1 = td.vcpus[1].hlt
    assert h1.flag[0] == SPAN_OPEN and h1.t1[0] == pytest.approx(50e-9)


def test_visible_range_and_binning():
    t = np.linspace(0, 1, 1001)
    i0, i1 = visible_range(t, 0.25, 0.5)
    assert t[i0] == pytest.approx(0.25) and t[i1 - 1] == pytest.approx(0.5)
    cols, counts = bin_columns(t[i0:i1], 0.25, 100 / 0.25, 100)
    assert counts.sum() == i1 - i0
    assert np.all(np.diff(cols) > 0) and cols.max() <= 99
    assert choose_mode(10, 1000) == "exact"
    assert choose_mode(EXACT_MIN, 10) == "exact"
    assert choose_mode(100_000, 1000) == "binned"


def test_merge_pixel_spans_and_visible_spans():
    p0 = np.array([0, 2, 3, 10, 11, 30])
    p1 = np.array([1, 4, 3, 10, 20, 31])
    a, b = merge_pixel_spans(p0, p1)
    assert list(a) == [0, 10, 30] and list(b) == [4, 20, 31]
    t0 = np.array([0.0, 2.0, 5.0])
    t1 = np.array([1.0, 4.0, 6.0])
    assert visible_spans(t0, t1, 1.5, 4.5) == (1, 2)
    assert visible_spans(t0, t1, 0.5, 5.5) == (0, 3)


def test_step_polyline_exact_and_binned():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([np.nan, 5.0, 7.0, 6.0])
    xs, ys, mode = step_polyline(t, y, 1.5, 2.5, 100.0, 100)
    assert mode == "exact"
    # value carried in from before the view (5 from t=1), then 7 from t=2
    assert list(ys[:2]) == [5.0, 5.0] and xs[0] == 1.5 and xs[-1] == 2.5
    assert 7.0 in ys
    t = np.linspace(0, 1, 100_001)
    y = np.sin(t * 50)
    xs, ys, mode = step_polyline(t, y, 0.0, 1.0, 500.0, 2000)
    assert mode == "binned"
    assert len(xs) <= 2 * 501
    assert np.nanmax(ys) == pytest.approx(y.max()) and np.nanmin(ys) == pytest.approx(y.min())


def test_migration_restores_page_as_of_the_save():
    text = """
format = 1
name = "mig"
vcpus = 1
duration = "400us"
[[script]]
at = "10us"
op = "set_next_event"
delta = "100us"
[[script]]
at = "20us"
op = "save"
[[script]]
at = "30us"
op = "set_next_event"
delta = "50us"
[[script]]
at = "40us"
op = "restore"
vmm_support = false
"""
    try:
        scenario = parse_scenario(text, "mig.toml")
    except Exception as exc:  # the op's fields are the engine's business
        pytest.skip(f"scenario ops changed: {exc}")
    s, _cols, data = _run(scenario, "lazy")
    s.goto(0)
    while not s.done:
        s.step_action()  # action boundaries: the timeline shows each action's result
        snap = s.snapshot().vcpus[0]
        last = s.position - 1
        assert _value_after(data.vcpus[0].pending, last) == snap.pending
        assert _value_after(data.vcpus[0].armed, last) == snap.armed


def test_spurious_flag_on_the_interrupt_of_the_sw_path():
    """A spurious hazard logged inside a wake-up action still flags that interrupt."""
    path = builtin_scenarios().get("spurious_interrupt")
    if path is None:
        pytest.skip("no built-in spurious_interrupt")
    _s, cols, data = _run(load_scenario(path), "lazy")
    lanes = data.vcpus[0]
    haz = np.nonzero(cols["kind"] == Kind.HAZ_SPURIOUS)[0]
    assert len(haz) == len(lanes.irqs_spurious) >= 1
    assert lanes.irqs_spurious.t[0] == pytest.approx(cols["time"][haz[0]] * 1e-9)
    assert len(lanes.irqs_late) == int((cols["kind"] == Kind.HAZ_LATE).sum())
