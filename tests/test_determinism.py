"""Determinism (DESIGN.md section 7): same scenario + seed => byte-identical event log,
also after the debugger went back (checkpoint restore + replay) and forward again."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lazytsc.debugger import Breakpoint, Session
from lazytsc.engine import Engine
from lazytsc.eventlog import COLUMNS
from lazytsc.scenario import load_scenario
from lazytsc_testkit import PROFILE, SCENARIOS, scenario

BUILTIN = sorted(SCENARIOS.glob("*.toml"))


def full_run(sc, mode):
    e = Engine(sc, mode)
    e.run()
    return e


@pytest.mark.parametrize("path", BUILTIN, ids=[p.stem for p in BUILTIN])
def test_builtin_scenarios_are_byte_identical_across_runs(path):
    sc = load_scenario(path)
    for mode in sc.modes:
        a, b = full_run(sc, mode), full_run(load_scenario(path), mode)
        assert len(a.log) > 0
        assert a.log.digest() == b.log.digest()
        assert a.summary() == b.summary()
        for name in COLUMNS:
            assert np.array_equal(a.log.column(name), b.log.column(name))


def test_step_and_run_give_the_same_log():
    sc = load_scenario(SCENARIOS / "tcp_rr.toml")
    stepped = Engine(sc, "lazy")
    while not stepped.done:
        stepped.step()
    assert stepped.log.digest() == full_run(sc, "lazy").log.digest()


def test_digest_depends_on_the_seed():
    text = (SCENARIOS / "tcp_rr.toml").read_text().replace('duration = "50ms"', 'duration = "5ms"')
    a = full_run(scenario(text), "lazy").log.digest()
    b = full_run(scenario(text.replace("seed = 42", "seed = 43")), "lazy").log.digest()
    assert a != b
    assert a == full_run(scenario(text), "lazy").log.digest()


def test_a_vcpu_added_does_not_change_another_vcpus_random_stream():
    """Per-vCPU RNGs derive from the seed and the vCPU index (guest_kernel.KernelState)."""
    text = 'seed = 5\nduration = "2ms"\n[workload]\nkind = "random_reprogram"\nrate_hz = 50000\n'
    one = Engine(scenario("vcpus = 1\n" + text), "classic")
    two = Engine(scenario("vcpus = 2\n" + text), "classic")
    assert [one.kernel.s[0].rng.random() for _ in range(5)] == [two.kernel.s[0].rng.random() for _ in range(5)]


@pytest.fixture(scope="module")
def workload_scenarios():
    tcp = (SCENARIOS / "tcp_rr.toml").read_text().replace('duration = "50ms"', 'duration = "4ms"')
    rnd = 'vcpus = 2\nseed = 11\nduration = "2ms"\n[workload]\nkind = "random_reprogram"\nrate_hz = 50000\n'
    return {"tcp_rr": scenario(tcp), "random": scenario(rnd)}


def test_replay_after_going_back_is_identical(workload_scenarios):
    for sc in workload_scenarios.values():
        ref = full_run(sc, "lazy")
        s = Session(sc, "lazy", checkpoint_every=50)
        s.run(breakpoints=[])
        assert s.log.digest() == ref.log.digest()
        s.goto(len(ref.log) // 3)
        for _ in range(7):
            s.step_back()
        s.reverse_continue(breakpoints=[Breakpoint(kind="deadline_request")])
        s.run(breakpoints=[])
        assert s.log.digest() == ref.log.digest()
        assert s.snapshot() == ref.snapshot()
        s.restart()
        s.run(breakpoints=[])
        assert s.log.digest() == ref.log.digest()


class Reference:
    """A straight run: the state as of every event (a probe right after it is logged,
    the engine's own state at the end of each action), and the full columns."""

    def __init__(self, sc, mode):
        e = Engine(sc, mode)
        self.snaps = {0: e.snapshot()}

        def capture(engine):
            i = len(engine.log) - 1
            self.snaps[i + 1] = engine.snapshot()
            engine.probe_event(i + 1, capture)

        e.probe_event(0, capture)
        while not e.done:
            e.step()
            self.snaps[len(e.log)] = e.snapshot()
        self.cols = {name: np.array(e.log.column(name)) for name in COLUMNS}
        self.digest = e.log.digest()
        self.n = len(e.log)

    def check(self, s: Session):
        pos = s.position
        assert s.snapshot() == self.snaps[pos], pos
        # the session's log is everything it computed: a prefix of the run, reaching the cursor
        n = len(s.log)
        assert n >= pos
        for name in COLUMNS:
            assert np.array_equal(s.log.column(name), self.cols[name][:n]), name


_REFS: dict = {}

navigation = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.integers(1, 40)),
        st.tuples(st.just("back"), st.integers(1, 40)),
        st.tuples(st.just("goto"), st.integers(0, 5000)),
        st.tuples(st.just("run"), st.integers(1, 600)),
        st.tuples(st.just("reverse"), st.sampled_from(["kick", "deadline_skip", "hlt", "spurious"])),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


@settings(PROFILE, max_examples=120)
@given(which=st.sampled_from(["tcp_rr", "random"]), mode=st.sampled_from(["classic", "lazy"]), moves=navigation, every=st.sampled_from([16, 64, 256]))
def test_any_navigation_replays_byte_identically(workload_scenarios, which, mode, moves, every):
    """Random step / step_back / goto / run / reverse_continue / restart:
    after every move the session's state and log equal the straight run's at that
    position; running on to the end gives the reference digest."""
    sc = workload_scenarios[which]
    key = (which, mode)
    if key not in _REFS:
        _REFS[key] = Reference(sc, mode)
    ref = _REFS[key]
    s = Session(sc, mode, checkpoint_every=every)
    for move, arg in moves:
        if move == "step":
            for _ in range(arg):
                s.step()
        elif move == "back":
            for _ in range(arg):
                s.step_back()
        elif move == "goto":
            s.goto(arg)  # back or forward, possibly past the end
        elif move == "run":
            s.run(max_events=arg, breakpoints=[])
        elif move == "reverse":
            s.reverse_continue(breakpoints=[Breakpoint(kind=arg)])
        else:
            s.restart()
        ref.check(s)
    s.run(breakpoints=[])
    assert s.log.digest() == ref.digest
