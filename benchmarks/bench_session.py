"""The debugger session at scale: goto anywhere, step back, memory (tcp_rr, lazy mode).

Each figure is printed beside its goal; the baseline in the same run is what a
session without checkpoints ahead of the cursor costs: replaying from the start.
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc

from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import Scenario, load_scenario

Row = tuple[str, float, str, str]


def tcp_rr(duration_ns: int = 10**12) -> Scenario:
    scenario = load_scenario(builtin_scenario("tcp_rr"))
    scenario.run.duration_ns = duration_ns
    return scenario


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _session(events: int) -> Session:
    session = Session(tcp_rr(), "lazy")
    session.run(max_events=events, breakpoints=[])
    return session


def _far_and_back(session: Session, samples: int, seed: int = 1) -> tuple[list[float], list[float], list[float]]:
    """goto a far position (the other half of the run), step back cold, step back warm."""
    rng = random.Random(seed)
    n = session.total
    far, cold, warm = [], [], []
    for i in range(samples):
        p = rng.randrange(n // 2, n) if i % 2 == 0 else rng.randrange(2, n // 2)
        session.goto(rng.randrange(2, n // 2) if i % 2 == 0 else rng.randrange(n // 2, n))
        far.append(_ms(lambda p=p: session.goto(p)))
        session._states.clear()  # noqa: SLF001 - measure the replay, not the cached window
        cold.append(_ms(session.step_back))
        warm.append(_ms(session.step_back))
    return far, cold, warm


def _memory(events: int) -> float:
    """Bytes per event the session holds (log + checkpoints + caches), by tracemalloc."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    session = _session(events)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / max(1, session.total)


def run(smoke: bool = False) -> list[Row]:
    sizes = (20_000,) if smoke else (1_000_000, 5_000_000)
    samples = 4 if smoke else 25
    rows: list[Row] = []
    for events in sizes:
        session = _session(events)
        label = f"{events:,} events"
        far, cold, warm = _far_and_back(session, samples)
        back = statistics.median(cold)
        goal_far = "<= 20 ms, <= 3x step back" if events <= 1_000_000 else "<= 30 ms"
        rows.append((f"session goto a far event, {label} (median)", statistics.median(far), "ms", goal_far))
        rows.append((f"session goto a far event, {label} (max)", max(far), "ms", goal_far))
        rows.append((f"session step back, replayed, {label} (median)", back, "ms", "<= 5 ms"))
        rows.append((f"session step back, replayed, {label} (max)", max(cold), "ms", "<= 5 ms (median)"))
        rows.append((f"session step back, again (cached window), {label} (median)", statistics.median(warm), "ms", "<= 5 ms"))
        rows.append((f"session goto far / step back, {label}", statistics.median(far) / max(1e-9, back), "x", "<= 3"))
        rows.append((f"session checkpoints, {label}", session.checkpoint_bytes() / session.total, "bytes/event", "<= 8 (stated bound, pickled)"))
        if events == sizes[0]:
            # Baseline: a session that cannot use checkpoints ahead replays from the start.
            target = events // 2
            base = _ms(lambda target=target: Engine(tcp_rr(), "lazy").run(max_events=target))
            rows.append((f"baseline: replay from the start to event {target:,}", base, "ms", "(what goto far cost before)"))
        del session
    mem_events = 20_000 if smoke else 1_000_000
    rows.append((f"session memory at {mem_events:,} events (log is 40)", _memory(mem_events), "bytes/event", "<= 50"))
    return rows
