"""The debugger API (lazytsc.debugger.Session): stepping, breakpoints, watchpoints, going back.

Positions are event counts: position p shows the state as of event p-1. The oracle for
"state as of event i" is a fresh Engine with a chained `probe_event` (the state right
after the event is logged), replaced by the engine's own state at the end of each action.

Hand-derived facts about the built-in `seed_overwrite` in lazy mode (see test_cli.py):
events 0-2 are boot (CPUID, PV-MSR write, init) at t=0; at 10us the guest requests
tsc(110us), writing `pending` before the host arms it (event 3), then writes the MSR
(4) and the host updates `armed` and arms the timer (5, 6). The requests at 20-50us are
skipped; the first host expiry is at 109us (preemption-timer exit, then `kick` re-arms
pending = 150us), and the re-armed deadline fires at 149us, where kick finds pending ==
armed and disarms (event 25).
"""

from __future__ import annotations

import random

import pytest
from lazytsc.debugger import CONDITION_NAMES, Breakpoint, Session, Watchpoint, range_stats
from lazytsc.engine import Engine
from lazytsc.eventlog import EventLog, ReplayDiverged
from lazytsc.expr import ExprError
from lazytsc.scenario import load_scenario
from lazytsc.taxonomy import Exit, Kind
from lazytsc_testkit import SCENARIOS, scenario, script, tsc


@pytest.fixture(scope="module")
def seed():
    return load_scenario(SCENARIOS / "seed_overwrite.toml")


@pytest.fixture(scope="module")
def tcp_short():
    text = (SCENARIOS / "tcp_rr.toml").read_text().replace('duration = "50ms"', 'duration = "6ms"')
    return scenario(text, "tcp_rr_short.toml")


def full_digest(sc, mode):
    e = Engine(sc, mode)
    e.run()
    return e.log.digest(), len(e.log)


def states_as_of_each_event(sc, mode="lazy"):
    """{position: Snapshot}: the oracle described in the module docstring."""
    ref = Engine(sc, mode)
    states = {0: ref.snapshot()}

    def capture(e):
        i = len(e.log) - 1
        states[i + 1] = e.snapshot()
        e.probe_event(i + 1, capture)

    ref.probe_event(0, capture)
    while not ref.done:
        ref.step()
        states[len(ref.log)] = ref.snapshot()
    return states, ref.log.digest()


@pytest.fixture(scope="module")
def tcp_states(tcp_short):
    return states_as_of_each_event(tcp_short)


# ---- forward ------------------------------------------------------------------------------------
def test_step_is_one_event_and_step_action_one_action(seed):
    s = Session(seed, "lazy")
    assert s.position == 0
    assert s.step() == 1 and s.position == 1
    # t=0: CPUID, PV-MSR write, init -- one causally linked action
    assert s.step_action() == 2 and s.position == 3
    assert [s.log.event(i).kind for i in range(3)] == [Kind.CPUID, Kind.WRMSR_PV, Kind.LAZY_INIT]
    total = 3
    while not s.done:
        total += s.step()
    assert total == s.position == full_digest(seed, "lazy")[1]
    assert s.step() == 0 and s.step_action() == 0


def test_step_vcpu_stops_at_the_next_event_of_that_vcpu():
    body = """
vcpus = 2
duration = "200us"
mode = "classic"
""" + script(
        dict(at="10us", op="set_next_event", delta="100us"),
        dict(at="20us", op="set_next_event", delta="100us"),
        dict(at="30us", vcpu=1, op="set_next_event", delta="5us"),
    )
    s = Session(scenario(body), "classic")
    s.step_vcpu(1)
    first_v1 = s.log.event(s.position - 1)
    assert (first_v1.vcpu, first_v1.time, first_v1.kind) == (1, 30_000, Kind.DEADLINE_REQUEST)
    assert all(s.log.event(i).vcpu != 1 for i in range(first_v1.index))
    assert s.step_vcpu(0) > 0 and s.log.event(s.position - 1).vcpu == 0
    prev = s.next_in_lane(1, -1)
    assert prev >= first_v1.index and s.log.event(prev).vcpu == 1
    assert all(s.log.event(i).vcpu != 1 for i in range(prev + 1, s.position - 1))


def test_every_position_shows_the_state_as_of_its_event(tcp_short, tcp_states):
    """Forward and back, one event at a time and by random jumps, against the oracle."""
    states, digest = tcp_states
    s = Session(tcp_short, "lazy", checkpoint_every=64)
    for p in range(1, 400):
        assert s.step() == 1 and s.snapshot() == states[p], p
    for p in range(398, 0, -1):
        assert s.step_back() and s.snapshot() == states[p], p
    rng = random.Random(7)
    n = len(states) - 1
    for _ in range(150):
        p = rng.randrange(0, n + 1)
        assert s.goto(p) == p and s.snapshot() == states[p], p
    s.goto(n)
    assert s.log.digest() == digest


def test_the_log_keeps_its_future_while_the_cursor_moves(tcp_short, tcp_states):
    """Session.log is the whole computed run at every position (no truncation, no copy)."""
    _states, digest = tcp_states
    s = Session(tcp_short, "lazy", checkpoint_every=100)
    s.run(breakpoints=[])
    n = len(s.log)
    for p in (n - 5, 3, n // 2, 0, n):
        s.goto(p)
        assert len(s.log) == n and s.log.digest() == digest and s.position == p
    assert s.log.rows is s.engine.log.rows  # one buffer shared with the engine


@pytest.mark.pure_engine  # tracemalloc attributes a compiled module's allocations elsewhere
def test_checkpoints_hold_in_memory_what_the_bound_counts(tcp_short):
    """The bound is on pickled bytes, so the session keeps its checkpoints pickled: what
    it allocates for them (measured with tracemalloc) is their pickled size, not the ~3x an
    engine state takes as live objects (a generator state alone is 625 ints)."""
    import tracemalloc

    tracemalloc.start()
    try:
        s = Session(tcp_short, "lazy")
        before = tracemalloc.take_snapshot()
        s.run(breakpoints=[])
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # everything the run allocated but the log's rows (appended in sim.py)
    held = sum(
        st.size_diff
        for st in after.compare_to(before, "filename")
        if not st.traceback[0].filename.endswith(("sim.py", "tracemalloc.py")) and st.size_diff > 0
    )
    assert s.checkpoints >= 3
    assert held <= 1.3 * s.checkpoint_bytes() + 32_000


@pytest.mark.pure_engine
def test_checkpoints_cover_both_directions_and_are_bounded(tcp_short):
    s = Session(tcp_short, "lazy")
    s.run(breakpoints=[])
    assert s.checkpoints >= 2
    assert s.checkpoint_every >= 256
    # the stated bound: checkpoints cost at most 8 bytes per event (first one aside)
    first = s.checkpoint_bytes() / s.checkpoints
    assert (s.checkpoint_bytes() - first) / s.total <= 8
    # going back then far forward restores a checkpoint ahead of the engine: replay <= one interval
    replayed = []
    orig = s.engine.step

    s.goto(5)
    s.engine.step = lambda: replayed.append(1) or orig()
    s.goto(s.total - 3)
    s.engine.step = orig
    assert len(replayed) <= s.checkpoint_every


def test_replay_that_diverges_is_caught():
    log = EventLog()
    log.keep_future()
    for i in range(4):
        log.rows.extend((i, 1 << 16, 0, 0, -1))
    log.truncate(2)
    assert len(log) == 2 and log.recorded_len() == 4
    log.rows.extend((2, 1 << 16, 9, 9, -1))  # same time and tag: accepted (a/b may be patched later)
    with pytest.raises(ReplayDiverged):
        log.rows.extend((99, 1 << 16, 0, 0, -1))


def test_run_stops_on_kind_breakpoint_from_the_scenario(seed):
    s = Session(seed, "lazy")
    assert [bp.kind for bp in s.breakpoints] == ["kick"]
    r = s.run()
    assert r.reason == "breakpoint" and r.breakpoint is s.breakpoints[0]
    ev = s.log.event(r.event)
    assert (ev.kind, ev.time, ev.a, ev.b) == (Kind.LAZY_KICK, 109_000, tsc(150_000), 1)
    assert r.position == s.position == r.event + 1
    assert s.breakpoints[0].hits == 1


def test_exit_reason_breakpoint(seed):
    s = Session(seed, "lazy")
    r = s.run(breakpoints=[Breakpoint(exit="preemption-timer")])
    ev = s.log.event(r.event)
    assert (ev.kind, ev.exit, ev.time) == (Kind.TIMER_FIRE, Exit.PREEMPTION_TIMER, 109_000)
    r = s.run(breakpoints=[Breakpoint(exit="preemption-timer")])
    assert s.log.event(r.event).time == 149_000


def test_exit_and_vcpu_breakpoint_matches_the_log(tcp_short):
    full = Engine(tcp_short, "lazy")
    full.run()
    expected = [ev.index for ev in full.log if ev.exit == Exit.HALT and ev.vcpu == 1][:3]
    assert len(expected) == 3
    s = Session(tcp_short, "lazy")
    bp = Breakpoint(exit="halt", vcpu=1)
    got = []
    for _ in range(3):
        r = s.run(breakpoints=[bp])
        assert r.reason == "breakpoint"
        got.append(r.event)
    assert got == expected
    assert bp.hits == 3


def test_vcpu_only_breakpoint():
    body = 'vcpus = 2\nduration = "100us"\n' + script(
        dict(at="10us", op="set_next_event", delta="50us"),
        dict(at="20us", vcpu=1, op="set_next_event", delta="50us"),
    )
    s = Session(scenario(body), "classic")
    r = s.run(breakpoints=[Breakpoint(vcpu=1)])
    ev = s.log.event(r.event)
    assert (ev.vcpu, ev.time, ev.kind) == (1, 20_000, Kind.DEADLINE_REQUEST)


def test_condition_sees_the_state_as_of_each_event(seed):
    """The lazy guest driver writes `pending` first and then compares it with `armed`
    (the seed's clockevent set_next_event): at the 10us request nothing is armed yet, so
    `armed == 0 and pending > now` holds at the request and the MSR write (events 3, 4),
    not after the host's update. It holds again at the 149us kick, which disarms
    (kvm_lazy_tscdeadline_kick finds pending == armed), and at the entry's busy-wait to the
    150us deadline (kvm_wait_lapic_expire), until the interrupt arrives at 150us."""
    s = Session(seed, "lazy")
    bp = Breakpoint(condition="armed == 0 and pending > now")
    stops = []
    while (r := s.run(breakpoints=[bp])).reason == "breakpoint":
        assert r.position == r.event + 1 == s.position
        snap = s.snapshot().vcpus[0]
        assert snap.armed == 0 and snap.pending > snap.tsc
        stops.append((r.event, s.log.event(r.event).kind))
    assert stops == [(3, Kind.DEADLINE_REQUEST), (4, Kind.WRMSR_TSC_DEADLINE), (31, Kind.LAZY_KICK), (32, Kind.BUSY_WAIT)]
    assert r.reason == "end" and bp.hits == 4
    assert s.snapshot().vcpus[0].pending == tsc(150_000)


def test_condition_on_event_fields():
    sc = load_scenario(SCENARIOS / "seed_overwrite.toml")
    s = Session(sc, "lazy")
    r = s.run(breakpoints=[Breakpoint(condition="kind == 'kick' and b == 0")])
    ev = s.log.event(r.event)
    assert (ev.kind, ev.time, ev.b) == (Kind.LAZY_KICK, 149_000, 0)


def test_hit_counts_and_disabled_breakpoints(seed):
    s = Session(seed, "lazy")
    skip = Breakpoint(kind="deadline_skip")
    off = Breakpoint(kind="kick", enabled=False)
    times_hit = []
    while True:
        r = s.run(breakpoints=[skip, off])
        if r.reason != "breakpoint":
            break
        assert r.breakpoint is skip
        times_hit.append(s.log.event(r.event).time)
    assert r.reason == "end"
    assert times_hit == [20_000, 30_000, 40_000, 50_000, 110_000]
    assert skip.hits == 5
    assert off.hits == 0


def test_only_disabled_breakpoints_run_to_the_end(seed):
    s = Session(seed, "lazy")
    r = s.run(breakpoints=[Breakpoint(kind="kick", enabled=False)])
    assert r.reason == "end"
    assert s.log.digest() == full_digest(seed, "lazy")[0]


def test_run_until_limit_and_cancel(seed):
    s = Session(seed, "lazy")
    r = s.run(until_ns=30_000, breakpoints=[])
    assert r.reason == "until"
    assert max(s.log.event(i).time for i in range(s.position)) <= 30_000 < s.engine.next_time
    r = s.run(max_events=2, breakpoints=[])
    assert r.reason == "limit"
    r = s.run(cancel=lambda: True)
    assert r.reason == "cancelled"


def test_breakpoint_rejects_unknown_names_and_describes_itself():
    with pytest.raises(ExprError):
        Breakpoint(condition="armd == 0")
    assert {"armed", "pending", "now", "cached_armed", "kind", "vcpu"} <= CONDITION_NAMES.keys()
    assert Breakpoint(kind="kick", vcpu=1).describe() == "kind=kick vcpu=1"
    assert Breakpoint(kind="kick", name="host kick").describe() == "host kick"


# ---- backward ------------------------------------------------------------------------------------
def test_step_back_at_the_start_is_false(seed):
    s = Session(seed, "lazy")
    assert s.step_back() is False
    s.step()
    assert s.step_back() is True and s.position == 0


def test_step_back_action_returns_to_the_start_of_the_action(seed):
    s = Session(seed, "lazy")
    s.goto(17)  # inside the 109us expiry: timer_fire (15), kick (16), update (17), arm (18)
    assert s.action_start() == 15
    assert s.step_back_action() and s.position == 15
    assert s.step_back_action() and s.position == 13  # the 50us request + skip
    assert s.step_action() == 2 and s.position == 15


def test_reverse_continue_lands_on_each_previous_hit(tcp_short):
    s = Session(tcp_short, "lazy", checkpoint_every=64)
    bp = Breakpoint(kind="spurious")
    hits = []
    while True:
        r = s.run(breakpoints=[bp])
        if r.reason != "breakpoint":
            break
        hits.append((r.position, r.event, s.snapshot()))
    assert len(hits) >= 3
    for pos, index, snap in reversed(hits):
        r = s.reverse_continue(breakpoints=[bp])
        assert (r.reason, r.position, r.event) == ("breakpoint", pos, index)
        assert s.log.event(index).kind == Kind.HAZ_SPURIOUS
        assert s.snapshot() == snap
    r = s.reverse_continue(breakpoints=[bp])
    assert (r.reason, r.position) == ("start", 0)


def _brute_force(sc, pred):
    """Indices of events where pred(engine_at_that_event, index) holds, by the oracle."""
    ref = Engine(sc, "lazy")
    found = []
    pending = []

    def capture(e):
        i = len(e.log) - 1
        if pending:
            found.extend(pending)
            pending.clear()
        if pred(e, i):
            pending.append(i)
        e.probe_event(i + 1, capture)

    ref.probe_event(0, capture)
    while not ref.done:
        ref.step()
        # the last event of an action is judged with the state at the action's end
        if pending:
            pending.clear()
        i = len(ref.log) - 1
        if i >= 0 and pred(ref, i):
            found.append(i)
    return sorted(set(found))


def test_condition_hits_forward_and_backward_match_brute_force(tcp_short):
    text = "armed != 0 and pending == armed"
    bp = Breakpoint(condition=text)
    expected = _brute_force(tcp_short, lambda e, i: bp.matches(e, i))
    assert len(expected) >= 5
    s = Session(tcp_short, "lazy", checkpoint_every=128)
    forward = []
    while (r := s.run(breakpoints=[bp])).reason == "breakpoint":
        forward.append(r.event)
    assert forward == expected
    backward = []
    while (r := s.reverse_continue(breakpoints=[bp])).reason == "breakpoint":
        backward.append(r.event)
    assert backward == expected[::-1]


def test_watchpoint_stops_where_the_value_changes(tcp_short, tcp_states):
    states, _ = tcp_states
    changes = [p - 1 for p in range(1, len(states)) if states[p].vcpus[1].armed != states[p - 1].vcpus[1].armed]
    assert len(changes) >= 4
    s = Session(tcp_short, "lazy", checkpoint_every=128)
    w = Watchpoint("armed", vcpu=1)
    got = []
    for _ in range(4):
        r = s.run(breakpoints=[], watchpoints=[w])
        assert r.reason == "watchpoint" and r.watchpoint is w
        assert (r.old, r.new) == (states[r.event].vcpus[1].armed, states[r.event + 1].vcpus[1].armed)
        got.append(r.event)
    assert got == changes[:4] and w.hits == 4
    # the event that wrote the value shown at the cursor
    assert s.last_change(1, "armed") == changes[3]
    assert s.position == changes[3] + 1  # the search keeps the position
    r = s.reverse_continue(breakpoints=[], watchpoints=[w])
    assert (r.reason, r.event) == ("watchpoint", changes[2])


def test_watchpoint_names_are_checked():
    with pytest.raises(ValueError, match="did you mean 'armed'"):
        Watchpoint("armd")
    with pytest.raises(ValueError, match="every event"):
        Watchpoint("now")


def test_goto_far_back_and_forth(tcp_short, tcp_states):
    """From the end, jump to ever earlier positions and forward again: identical states."""
    states, digest = tcp_states
    s = Session(tcp_short, "lazy", checkpoint_every=100)
    s.run(breakpoints=[])
    assert s.log.digest() == digest
    n = len(states) - 1
    for w in (4000, 50, 2500, 0, 1000, n, 4000, 50):
        assert (s.goto(w), s.snapshot()) == (w, states[w]), w
    s.goto(10**9)
    assert s.done and s.position == n


def test_restart_resets_state_and_hit_counts(seed):
    s = Session(seed, "lazy")
    start = s.snapshot()
    s.run()
    assert s.breakpoints[0].hits == 1
    s.run(breakpoints=[])
    s.restart()
    assert s.position == 0 and not s.done
    assert s.snapshot() == start
    assert s.breakpoints[0].hits == 0
    s.run(breakpoints=[])
    assert s.log.digest() == full_digest(seed, "lazy")[0]


def test_run_to_time_goes_to_the_last_event_at_or_before(seed):
    s = Session(seed, "lazy")
    s.run(breakpoints=[])
    pos = s.run_to_time(60_000)
    assert s.log.event(pos - 1).time <= 60_000 < s.log.event(pos).time
    assert [s.log.event(i).kind for i in range(pos)].count(Kind.DEADLINE_SKIP) == 4
    fresh = Session(seed, "lazy")
    assert fresh.run_to_time(60_000) == pos  # not computed yet: runs there


def test_no_breakpoint_is_skipped_inside_one_action(seed):
    """Each expiry's action logs timer_fire then kick. With a breakpoint on each, running
    repeatedly must stop at all four events (109us fire, kick; 149us fire, kick)."""
    s = Session(seed, "lazy")
    on_kick, on_exit = Breakpoint(kind="kick"), Breakpoint(exit="preemption-timer")
    stops = []
    while True:
        r = s.run(breakpoints=[on_kick, on_exit])
        if r.reason != "breakpoint":
            break
        ev = s.log.event(r.event)
        stops.append((ev.time, ev.kind_name, "kick" if r.breakpoint is on_kick else "exit"))
    assert stops == [
        (109_000, "timer_fire", "exit"),
        (109_000, "kick", "kick"),
        (149_000, "timer_fire", "exit"),
        (149_000, "kick", "kick"),
    ]
    assert (on_kick.hits, on_exit.hits) == (2, 2)


def test_each_breakpoint_alone_stops_at_its_events(seed):
    for bp, kind in ((Breakpoint(kind="kick"), "kick"), (Breakpoint(exit="preemption-timer"), "timer_fire")):
        s = Session(seed, "lazy")
        stops = []
        while s.run(breakpoints=[bp]).reason == "breakpoint":
            stops.append(s.log.event(s.position - 1).time)
        assert stops == [109_000, 149_000], kind
        assert bp.hits == 2


def test_range_stats_between_two_cursors(seed):
    s = Session(seed, "lazy")
    s.run(breakpoints=[])
    st = range_stats(s.log, 3, 15)  # 10us request .. the 50us skip
    assert st["events"] == 12 and st["dt_ns"] == 40_000
    assert st["kinds"]["deadline_skip"] == 4 and st["kinds"]["deadline_request"] == 5
    assert st["exits"] == {"msr-write": 1} and st["msr_write"] == {"tsc-deadline": 1}
    assert range_stats(s.log, 15, 3) == st  # cursors in either order
