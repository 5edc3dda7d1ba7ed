"""timeline_data: presentation data derived from the log (no Qt), checked against the engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenarios
from lazytsc.scenario import load_scenario, parse_scenario
from lazytsc.taxonomy import Kind

from lazytsc_gui.runlog import ColumnLog
from lazytsc_gui.timeline_data import (
    EXACT_MIN,
    SPAN_CANCELLED,
    SPAN_FIRED,
    SPAN_OPEN,
    TimelineData,
    build_timeline_data,
    choose_mode,
    column_counts,
    coverage,
    merge_pixel_spans,
    step_values,
    symlog,
    symlog_inv,
)


def _run(scenario, mode):
    s = Session(scenario, mode)
    s.run(breakpoints=[])
    log = ColumnLog.from_eventlog(s.log)
    data = build_timeline_data(log, [v.tsc_khz for v in scenario.run.vcpus], vcpus=list(range(len(scenario.run.vcpus))))
    return s, log, data


def _chunked(log, sizes, khz):
    """The same log fed to a TimelineData in chunks of the given sizes (a streaming run)."""
    out = ColumnLog()
    data = TimelineData(out, khz)
    cols = log.columns()
    i, k = 0, 0
    n = len(log)
    while i < n:
        m = sizes[k % len(sizes)]
        k += 1
        chunk = {name: c[i : i + m] for name, c in cols.items()}
        out.append_chunk(chunk)
        data.extend(chunk)
        i += m
    out.finish()
    data.finish()
    return data


def _lane_arrays(data):
    out = {}
    for lane in data.vcpus:
        for name, m in lane.marks().items():
            out[(lane.vcpu, name)] = m.idx.tolist()
        for name, m in {**lane.exits, **{"haz:" + k: v for k, v in lane.hazards.items()}}.items():
            out[(lane.vcpu, name)] = m.idx.tolist()
        for name in ("timer_spans", "hlt"):
            s = getattr(lane, name)
            out[(lane.vcpu, name)] = (s.idx.tolist(), s.t0.tolist(), s.t1.tolist(), s.flag.tolist(), s.cum.tolist())
        for name in ("pending", "armed", "requested", "timer"):
            s = getattr(lane, name)
            out[(lane.vcpu, name)] = (s.idx.tolist(), s.raw.tolist())
    return out


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
    s, _log, data = _run(scenario, mode)
    s.goto(0)
    checked = 0
    while not s.done:
        s.step_action()  # action boundaries: the timeline shows each action's result
        snap = s.snapshot()
        last = s.position - 1
        for vs in snap.vcpus:
            lanes = data.lanes_of(vs.vcpu)
            assert lanes.pending.value_after(last) == vs.pending, (name, mode, last, "pending")
            assert lanes.armed.value_after(last) == vs.armed, (name, mode, last, "armed")
            checked += 1
    assert checked > 0


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=6), name=st.sampled_from(["tcp_rr", "migration_no_vmm", "seed_overwrite", "spurious_interrupt"]), mode=st.sampled_from(["classic", "lazy"]))
def test_streaming_in_chunks_gives_the_same_lanes(sizes, name, mode):
    """Where a stream cuts the log into chunks never changes what is drawn."""
    scenario = load_scenario(builtin_scenarios()[name])
    if name == "tcp_rr":
        scenario.run.duration_ns = 1_500_000
    e = Engine(scenario, mode)
    e.run()
    log = ColumnLog.from_eventlog(e.log)
    khz = [v.tsc_khz for v in scenario.run.vcpus]
    whole = build_timeline_data(log, khz)
    assert _lane_arrays(_chunked(log, sizes, khz)) == _lane_arrays(whole)


def test_seed_picture_lanes():
    scenario = load_scenario(builtin_scenarios()["seed_overwrite"])
    _s, log, data = _run(scenario, "lazy")
    lanes = data.vcpus[0]
    assert len(lanes.written) == 1 and len(lanes.skipped) == 5  # four skips + the equal one
    # every timer interrupt is in `irqs`; the spurious one is also flagged
    assert len(lanes.irqs_spurious) == 1 and len(lanes.irqs) == 2
    assert lanes.irqs_spurious.idx[0] in lanes.irqs.idx
    # the first written deadline is 110 us (tsc / khz)
    a = log.column("a")
    assert a[lanes.written.idx[0]] / (lanes.khz * 1000) == pytest.approx(110e-6)
    # the armed timer spans: armed at 10us, fired at 109us (early: advance), re-armed by kick
    spans = lanes.timer_spans
    assert spans.t0[0] == pytest.approx(10e-6) and spans.t1[0] == pytest.approx(109e-6)
    assert spans.flag[0] == SPAN_FIRED
    t_write = log.column("time")[lanes.written.idx[0]]
    later = int(np.searchsorted(log.column("time"), t_write + 1))
    assert lanes.armed.value_after(later) == int(a[lanes.written.idx[0]])  # armed = the written deadline
    classic = _run(scenario, "classic")[2].vcpus[0]
    assert len(classic.written) == 5 and len(classic.skipped) == 0
    assert list(classic.timer_spans.flag[:4]) == [SPAN_CANCELLED] * 4
    assert not classic.has_page
    # without a page the drawn roles are the guest's request and the host timer
    assert [n for n, _ in classic.deadline_series()] == ["requested", "armed"]
    assert [n for n, _ in lanes.deadline_series()] == ["pending", "armed"]


def test_hlt_spans_end_at_wake_and_traces_end_at_next_event():
    scenario = load_scenario(builtin_scenarios()["tcp_rr"])
    scenario.run.duration_ns = 2_000_000
    _s, _log, data = _run(scenario, "lazy")
    lanes = data.vcpus[0]
    assert len(lanes.hlt) > 10
    assert np.all(lanes.hlt.t1 >= lanes.hlt.t0)
    assert np.all(lanes.hlt.t0[1:] >= lanes.hlt.t1[:-1])  # one vCPU halts once at a time
    # a trace-like log without WAKE rows: each halt ends at the vCPU's next event
    n = 6
    cols = {
        "time": np.array([0, 10, 20, 30, 40, 50], dtype=np.int64),
        "vcpu": np.array([0, 0, 1, 0, 0, -1], dtype=np.int16),
        "kind": np.array([Kind.HLT, Kind.HOST_IRQ, Kind.HLT, Kind.HLT, Kind.CPUID, Kind.END], dtype=np.int16),
        "exit": np.full(n, -1, dtype=np.int8),
        "sub": np.full(n, -1, dtype=np.int8),
        "a": np.zeros(n, dtype=np.int64),
        "b": np.zeros(n, dtype=np.int64),
        "parent": np.full(n, -1, dtype=np.int32),
    }
    log = ColumnLog()
    log.append_chunk(cols)
    td = build_timeline_data(log, None, kind="trace")
    assert not td.has_deadlines
    h0 = td.lanes_of(0).hlt
    assert list(h0.t0 * 1e9) == pytest.approx([0, 30]) and list(h0.t1 * 1e9) == pytest.approx([10, 40])
    h1 = td.lanes_of(1).hlt
    assert h1.flag[0] == SPAN_OPEN and h1.t1[0] == pytest.approx(50e-9)
    # only the vCPUs of the data are lanes, with their own ids
    assert [lane.vcpu for lane in td.vcpus] == [0, 1]


def test_sparse_vcpu_ids_keep_their_labels():
    n = 3
    cols = {
        "time": np.array([0, 10, 20], dtype=np.int64),
        "vcpu": np.array([5, 5, -1], dtype=np.int16),
        "kind": np.array([Kind.WRMSR_TSC_DEADLINE, Kind.HLT, Kind.END], dtype=np.int16),
        "exit": np.array([3, 2, -1], dtype=np.int8),
        "sub": np.full(n, -1, dtype=np.int8),
        "a": np.zeros(n, dtype=np.int64),
        "b": np.zeros(n, dtype=np.int64),
        "parent": np.full(n, -1, dtype=np.int32),
    }
    log = ColumnLog()
    log.append_chunk(cols)
    td = build_timeline_data(log, None, kind="trace")
    assert [(lane.vcpu, lane.label) for lane in td.vcpus] == [(5, "vCPU 5")]
    replay = build_timeline_data(log, None, kind="trace", labels={5: "vCPU 5 (trace)"})
    assert replay.vcpus[0].label == "vCPU 5 (trace)"


def test_column_counts_and_coverage():
    t = np.arange(0, 1000, 10, dtype=np.int64)  # 100 events, one every 10 ns
    idx = np.arange(0, 100, 2, dtype=np.int32)  # a lane with every other event
    edges = np.arange(0, 1001, 100, dtype=np.int64)  # 10 columns of 100 ns
    e = np.searchsorted(t, edges, side="left")
    counts = column_counts(idx, e)
    assert counts.tolist() == [5] * 10 and counts.sum() == len(idx)
    assert choose_mode(10, 1000) == "exact"
    assert choose_mode(EXACT_MIN, 10) == "exact"
    assert choose_mode(100_000, 1000) == "binned"
    # spans [100, 150] and [300, 500): columns 1 half covered, 3 and 4 fully
    from lazytsc_gui.timeline_data import Spans

    log = ColumnLog()
    n = len(t)
    log.append_chunk({"time": t, "vcpu": np.zeros(n, np.int16), "kind": np.zeros(n, np.int16), "exit": np.full(n, -1, np.int8), "sub": np.full(n, -1, np.int8), "a": np.zeros(n, np.int64), "b": np.zeros(n, np.int64), "parent": np.full(n, -1, np.int32)})
    data = TimelineData(log)
    data.n_events = n
    spans = Spans(data)
    spans.add(np.array([10, 30]), np.array([15, 50]), np.array([0, 0], np.int8), np.array([100, 300]), np.array([150, 500]))
    cov = coverage(spans, t, 1000, edges, e)
    assert cov.tolist() == pytest.approx([0, 0.5, 0, 1, 1, 0, 0, 0, 0, 0])
    # an open span from 800 to the end of the data (1000)
    spans.open_start, spans.open_t = 80, 800
    cov = coverage(spans, t, 1000, edges, e)
    assert cov[8] == pytest.approx(1.0) and cov[9] == pytest.approx(1.0)


def test_step_values_and_symlog():
    from lazytsc_gui.timeline_data import Steps

    s = Steps()
    s.extend(np.array([3, 7]), np.array([100, 0]))
    # after the first E events: 0 before event 3 is logged, 100 from it, 0 from 7
    assert step_values(s, np.array([0, 3, 4, 7, 8])).tolist() == [0, 0, 100, 100, 0]
    d = np.array([-1e6, -1, 0, 1, 1e3, 1e9])
    assert symlog_inv(symlog(d)) == pytest.approx(d)
    assert symlog(1e3) == pytest.approx(3.0, abs=0.01) and symlog(1e9) == pytest.approx(9.0, abs=1e-6)


def test_merge_pixel_spans():
    p0 = np.array([0, 2, 3, 10, 11, 30])
    p1 = np.array([1, 4, 3, 10, 20, 31])
    a, b = merge_pixel_spans(p0, p1)
    assert list(a) == [0, 10, 30] and list(b) == [4, 20, 31]


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
    s, _log, data = _run(scenario, "lazy")
    s.goto(0)
    while not s.done:
        s.step_action()  # action boundaries: the timeline shows each action's result
        snap = s.snapshot().vcpus[0]
        last = s.position - 1
        assert data.vcpus[0].pending.value_after(last) == snap.pending
        assert data.vcpus[0].armed.value_after(last) == snap.armed


def test_spurious_flag_on_the_interrupt_of_the_sw_path():
    """A spurious hazard logged inside a wake-up action still flags that interrupt."""
    path = builtin_scenarios().get("spurious_interrupt")
    if path is None:
        pytest.skip("no built-in spurious_interrupt")
    _s, log, data = _run(load_scenario(path), "lazy")
    lanes = data.vcpus[0]
    kinds = log.column("kind")
    haz = np.nonzero(kinds == Kind.HAZ_SPURIOUS)[0]
    assert len(haz) == len(lanes.irqs_spurious) >= 1
    assert lanes.irqs_spurious.t[0] == pytest.approx(log.column("time")[haz[0]] * 1e-9)
    assert len(lanes.irqs_late) == int((kinds == Kind.HAZ_LATE).sum())
