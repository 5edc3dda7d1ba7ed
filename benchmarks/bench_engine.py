"""Engine speed, log memory and step-back latency on the built-in tcp_rr workload."""

from __future__ import annotations

import random
import statistics
import time

from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import Scenario, load_scenario

Row = tuple[str, float, str, str]


class _CountingRows:
    """Stands in for the log buffer in the bare loop: same protocol rules, nothing stored."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def extend(self, _row: tuple) -> None:
        self.n += 5

    def __len__(self) -> int:
        return self.n

    def __setitem__(self, _index: int, _value: int) -> None:
        pass


def tcp_rr(duration_ns: int) -> Scenario:
    scenario = load_scenario(builtin_scenario("tcp_rr"))
    scenario.run.duration_ns = duration_ns
    return scenario


def _rate(scenario: Scenario, mode: str, bare: bool) -> tuple[float, int]:
    engine = Engine(scenario, mode)
    if bare:
        engine.sched.rows = _CountingRows()  # type: ignore[assignment]
    start = time.perf_counter()
    engine.run()
    if not bare:
        engine.summary()  # accounting is part of "full logging and accounting"
    elapsed = time.perf_counter() - start
    events = len(engine.sched.rows) // 5
    return events / elapsed, events


def run(smoke: bool = False) -> list[Row]:
    duration = 2_000_000 if smoke else 400_000_000
    repeats = 1 if smoke else 3
    scenario = tcp_rr(duration)
    rows: list[Row] = []
    for mode in ("lazy", "classic"):
        full = [_rate(scenario, mode, bare=False) for _ in range(repeats)]
        bare = [_rate(scenario, mode, bare=True) for _ in range(repeats)]
        full_rate = statistics.median(r for r, _ in full)
        bare_rate = statistics.median(r for r, _ in bare)
        rows.append((f"engine tcp_rr {mode}, full logging + accounting", full_rate, "events/s", ">= 1,000,000"))
        rows.append((f"engine tcp_rr {mode}, bare loop (no log)", bare_rate, "events/s", "(reference)"))
        rows.append((f"engine tcp_rr {mode}, full / bare slowdown", bare_rate / full_rate, "x", "<= 3"))

    engine = Engine(scenario, "lazy")
    engine.run()
    rows.append(("event log memory", engine.log.nbytes() / max(1, len(engine.log)), "bytes/event", "<= 64"))

    target_events = 20_000 if smoke else 1_000_000
    session = Session(tcp_rr(10**12 if not smoke else 50_000_000), "lazy")
    start = time.perf_counter()
    session.run(max_events=target_events, breakpoints=[])
    run_s = time.perf_counter() - start
    rows.append((f"session run to {target_events:,} events (with checkpoints)", run_s, "s", "(reference)"))
    rng = random.Random(1)
    samples = []
    total = session.position
    for _ in range(5 if smoke else 30):
        pos = rng.randrange(2, total)
        session.goto(pos)
        start = time.perf_counter()
        session.step_back()
        samples.append((time.perf_counter() - start) * 1000)
    rows.append((f"step back anywhere in {target_events:,} events (median)", statistics.median(samples), "ms", "<= 10"))
    rows.append((f"step back anywhere in {target_events:,} events (max)", max(samples), "ms", "<= 10"))
    return rows
