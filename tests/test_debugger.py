"""The debugger API (lazytsc.debugger.Session): stepping, breakpoints, going back.

Hand-derived facts about the built-in `seed_overwrite` in lazy mode (see test_cli.py):
the first host expiry is at 109us (preemption-timer exit, then `kick` re-arms pending =
150us), the skipped requests are at 20, 30, 40, 50us and the equal reprogram at 110us
(5 `deadline_skip` events), and the re-armed deadline fires at 149us, where kick finds
pending == armed and disarms: `armed == 0 and pending > now` (pending = tsc(150us) >
now = tsc(149us)) first holds there.
"""

from __future__ import annotations

import pytest
from lazytsc.debugger import CONDITION_NAMES, Breakpoint, Session
from lazytsc.engine import Engine
from lazytsc.expr import ExprError
from lazytsc.scenario import load_scenario
from lazytsc.taxonomy import Exit, Kind
from lazytsc_testkit import SCENARIOS, events, run, scenario, script, tsc


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


# ---- forward ------------------------------------------------------------------------------------
def test_step_runs_one_action_and_stops_at_the_end(seed):
    s = Session(seed, "lazy")
    assert s.position == 0
    n = s.step()
    # t=0: CPUID, PV-MSR write, init -- one causally linked action
    assert n == 3 and s.position == 3
    assert [ev.kind for ev in s.log] == [Kind.CPUID, Kind.WRMSR_PV, Kind.LAZY_INIT]
    total = 3
    while not s.done:
        total += s.step()
    assert total == s.position == full_digest(seed, "lazy")[1]
    assert s.step() == 0


def test_step_vcpu_stops_at_an_event_of_that_vcpu():
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
    n = s.step_vcpu(1)
    log = list(s.log)
    assert n == len(log)  # from the start
    first_v1 = next(ev for ev in log if ev.vcpu == 1)
    assert (first_v1.time, first_v1.kind) == (30_000, Kind.DEADLINE_REQUEST)
    # it stopped at the end of that action: nothing after it but its own consequences
    assert all(ev.time == 30_000 and ev.vcpu == 1 for ev in log[first_v1.index :])
    assert s.step_vcpu(0) > 0 and s.log.event(s.position - 1).vcpu == 0


def test_run_stops_on_kind_breakpoint_from_the_scenario(seed):
    s = Session(seed, "lazy")
    assert [bp.kind for bp in s.breakpoints] == ["kick"]
    r = s.run()
    assert r.reason == "breakpoint" and r.breakpoint is s.breakpoints[0]
    ev = s.log.event(r.event)
    assert (ev.kind, ev.time, ev.a, ev.b) == (Kind.LAZY_KICK, 109_000, tsc(150_000), 1)
    assert r.position == s.position and r.event < s.position
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


def test_condition_breakpoint_armed_zero_and_pending_in_the_future(seed):
    s = Session(seed, "lazy")
    bp = Breakpoint(condition="armed == 0 and pending > now")
    r = s.run(breakpoints=[bp])
    ev = s.log.event(r.event)
    assert (ev.kind, ev.time) == (Kind.TIMER_FIRE, 149_000)
    snap = s.snapshot().vcpus[0]
    assert snap.armed == 0 and snap.pending == tsc(150_000) > tsc(149_000)
    # the condition holds only in that action (the kick logged with the fire may stop too)
    while (r := s.run(breakpoints=[bp])).reason == "breakpoint":
        assert s.log.event(r.event).time == 149_000
    assert r.reason == "end"


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
    assert max(ev.time for ev in s.log) <= 30_000 < s.engine.next_time
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
def test_step_back_returns_the_identical_state(tcp_short):
    s = Session(tcp_short, "lazy", checkpoint_every=32)
    history = []
    for _ in range(300):
        history.append((s.position, s.snapshot(), s.log.digest()))
        s.step()
    for pos, snap, digest in reversed(history[-40:]):
        assert s.step_back()
        assert s.position == pos
        assert s.snapshot() == snap
        assert s.log.digest() == digest
    # and forward again through the same states
    for pos, snap, digest in history[-40:]:
        assert (s.position, s.snapshot(), s.log.digest()) == (pos, snap, digest)
        s.step()


def test_step_back_at_the_start_is_false(seed):
    s = Session(seed, "lazy")
    assert s.step_back() is False
    s.step()
    assert s.step_back() is True and s.position == 0


def test_reverse_continue_lands_on_each_previous_hit(tcp_short):
    s = Session(tcp_short, "lazy", checkpoint_every=64)
    bp = Breakpoint(kind="spurious")
    hits = []
    while True:
        r = s.run(breakpoints=[bp])
        if r.reason != "breakpoint":
            break
        hits.append((r.position, r.event, s.snapshot(), s.log.digest()))
    assert len(hits) >= 3
    for pos, index, snap, digest in reversed(hits):
        r = s.reverse_continue(breakpoints=[bp])
        assert (r.reason, r.position, r.event) == ("breakpoint", pos, index)
        assert s.log.event(index).kind == Kind.HAZ_SPURIOUS
        assert s.snapshot() == snap
        assert s.log.digest() == digest
    r = s.reverse_continue(breakpoints=[bp])
    assert (r.reason, r.position) == ("start", 0)


def _reference_marks(sc, wanted):
    ref = Engine(sc, "lazy")
    marks = {}
    while not ref.done:
        ref.step()
        for w in wanted:
            if w not in marks and len(ref.log) >= w:
                marks[w] = (len(ref.log), ref.snapshot(), ref.log.digest())
    marks[0] = (0, Engine(sc, "lazy").snapshot(), Engine(sc, "lazy").log.digest())
    return marks, ref.log.digest()


def test_goto_far_back(tcp_short):
    """From the end, jump back to ever earlier positions: identical state each time."""
    wanted = (0, 50, 1000, 2500, 4000)
    marks, end_digest = _reference_marks(tcp_short, wanted)
    s = Session(tcp_short, "lazy", checkpoint_every=100)
    s.run(breakpoints=[])
    assert s.log.digest() == end_digest
    for w in (4000, 2500, 1000, 50, 0):
        assert (s.goto(w), s.snapshot(), s.log.digest()) == marks[w]
    s.run(breakpoints=[])
    assert s.done and s.log.digest() == end_digest


def test_goto_far_back_and_forth(tcp_short):
    """Back to 50, then forward to 2500. (Regression: goto forward used to restore the
    checkpoint at 2406, whose log prefix had been truncated away when going back.)"""
    wanted = (0, 50, 1000, 2500, 4000)
    marks, end_digest = _reference_marks(tcp_short, wanted)
    s = Session(tcp_short, "lazy", checkpoint_every=100)
    s.run(breakpoints=[])
    for w in (4000, 50, 2500, 0, 1000, 4000, 50):
        assert (s.goto(w), s.snapshot(), s.log.digest()) == marks[w], w
    s.goto(10**9)
    assert s.done and s.log.digest() == end_digest


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


def test_run_to_time_goes_back_to_the_last_boundary_before(seed):
    s = Session(seed, "lazy")
    s.run(breakpoints=[])
    pos = s.run_to_time(60_000)
    assert max(ev.time for ev in s.log) <= 60_000
    assert pos == len([ev for ev in run(seed, "lazy").log if ev.time <= 60_000])
    assert len(events(s.engine, "deadline_skip")) == 4


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
