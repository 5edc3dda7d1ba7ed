"""Engine cost per event against the floor of any Python discrete-event loop, both builds.

The floor is measured in the same process, interleaved with the engine runs: a minimal
loop that per event does one heappush, one heappop and appends one 5-int row to an
array('q') -- what any Python DES that logs every event must do at least. The engine
runs tcp_rr in lazy mode (and classic) with the full log and the accounting summary.
Every figure is CPU time (`time.process_time`, the machine is shared), the median of
several runs; the ratio is the median of per-run ratios (each run beside its own floor).

The build running here (compiled with mypyc when `make` built it, else pure Python) is
measured in this process; the other build, when it exists, in a child process
(LAZYTSC_ENGINE=pure), with its own floor. Last: tcp_rr_full, the seed's scale, both
modes in parallel processes end to end (one run: it takes minutes).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from array import array
from heapq import heappop, heappush
from pathlib import Path

from lazytsc import engine_build
from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import Scenario, load_scenario

Row = tuple  # (figure, value, unit, target[, baseline text])
GOAL = 1.25  # issue 11: a compiled engine within 1.25x of the floor


class _CountingRows:
    """Stands in for the log buffer in the bare loop: same protocol rules, nothing stored."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def extend(self, _row: tuple) -> None:
        self.n += 5

    def frombytes(self, _data: bytes) -> None:
        self.n += 5

    def __len__(self) -> int:
        return self.n

    def __setitem__(self, _index: int, _value: int) -> None:
        pass


def floor_ns(events: int) -> float:
    """CPU ns per event of the minimal logging DES loop."""
    rows = array("q")
    queue: list[tuple[int, int, int, int, int]] = [(0, 0, 0, 0, 0)]
    seq = 0
    start = time.process_time()
    for _ in range(events):
        t, s, handler, vcpu, arg = heappop(queue)
        rows.extend((t, handler, vcpu, arg, s))
        seq += 1
        heappush(queue, (t + 7 + (seq & 3), seq, handler, vcpu, arg))
    return (time.process_time() - start) * 1e9 / events


def tcp_rr(duration_ns: int, name: str = "tcp_rr") -> Scenario:
    scenario = load_scenario(builtin_scenario(name))
    scenario.run.duration_ns = duration_ns
    return scenario


def engine_ns(scenario: Scenario, mode: str, bare: bool = False) -> tuple[float, int]:
    """CPU ns per event of one run (full log + accounting unless `bare`), and its events."""
    engine = Engine(scenario, mode)
    if bare:
        engine.sched.rows = _CountingRows()  # type: ignore[assignment]
    start = time.process_time()
    engine.run()
    if not bare:
        engine.summary()  # accounting is part of "full logging and accounting"
    elapsed = time.process_time() - start
    events = len(engine.sched.rows) // 5
    return elapsed * 1e9 / events, events


def measure(smoke: bool) -> dict[str, float]:
    """This process's build: floor, engine (lazy, classic, bare), ratios; medians."""
    duration = 2_000_000 if smoke else 100_000_000
    repeats = 1 if smoke else 5
    scenario = tcp_rr(duration)
    out: dict[str, list[float]] = {}
    for _ in range(repeats):
        for mode in ("lazy", "classic"):
            cost, events = engine_ns(scenario, mode)
            floor = floor_ns(min(events, 300_000))
            out.setdefault(f"{mode}", []).append(cost)
            out.setdefault(f"{mode}_ratio", []).append(cost / floor)
            out.setdefault("floor", []).append(floor)
        out.setdefault("bare", []).append(engine_ns(scenario, "lazy", bare=True)[0])
    return {key: statistics.median(values) for key, values in out.items()}


def measure_other_build(smoke: bool) -> tuple[str, dict[str, float]] | None:
    """The pure-Python build in a child process, when this process runs the compiled one."""
    if engine_build.engine_kind() != "compiled":
        return None
    code = f"import json; from benchmarks.bench_engine import measure; print(json.dumps(measure({smoke!r})))"
    env = {**os.environ, engine_build.ENV: "pure"}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return "pure", json.loads(proc.stdout.strip().splitlines()[-1])


def engine_rows(kind: str, m: dict[str, float]) -> list[Row]:
    floor = m["floor"]
    label = "compiled (mypyc)" if kind == "compiled" else "pure Python"
    rows: list[Row] = []
    for mode in ("lazy", "classic"):
        rows.append((f"engine tcp_rr {mode}, full logging + accounting, {label}", 1e9 / m[mode], "events/s", f">= {1e9 / (GOAL * floor):,.0f} (1.25x floor)", f"floor {1e9 / floor:,.0f} events/s"))
        rows.append((f"engine tcp_rr {mode} cost per event / floor, {label}", m[f"{mode}_ratio"], "x", f"<= {GOAL}", f"floor {floor:,.0f} ns/event"))
    rows.append((f"engine tcp_rr lazy, bare loop (no log), {label}", 1e9 / m["bare"], "events/s", "(reference)"))
    return rows


def seed_scale(smoke: bool) -> list[Row]:
    """tcp_rr_full end to end, both modes in parallel processes (what `lazytsc run` does)."""
    from lazytsc.parallel_modes import run_parallel

    scenario = load_scenario(builtin_scenario("tcp_rr_full"))
    full = scenario.run.duration_ns
    if smoke:
        scenario.run.duration_ns = full // 4000
    start_wall, start_cpu = time.monotonic(), time.process_time()
    results = run_parallel(scenario, ("classic", "lazy"), None)  # the full log: no event limit
    wall = time.monotonic() - start_wall
    parent_cpu = time.process_time() - start_cpu
    classic, lazy = results["classic"], results["lazy"]
    size = f"{scenario.run.duration_ns / 1e9:g} s simulated"
    return [
        (f"tcp_rr_full ({size}), both modes in parallel, end to end", wall, "s wall", "<= 120 s", f"1 run; {os.cpu_count()} cores shared"),
        ("tcp_rr_full classic: exits (seed 12,617,503)", classic.summary["exits"]["total"], "exits", "about the seed's", f"{classic.events:,} events"),
        ("tcp_rr_full classic run, CPU time", classic.cpu_s, "s", "(per mode)", f"{classic.cpu_s * 1e9 / classic.events:,.0f} ns/event"),
        ("tcp_rr_full lazy run, CPU time", lazy.cpu_s, "s", "(per mode)", f"{lazy.events:,} events; parent {parent_cpu:.1f} s"),
    ]


def run(smoke: bool = False) -> list[Row]:
    kind = engine_build.engine_kind()
    here = measure(smoke)
    rows: list[Row] = [("floor: heappush + heappop + one 5-int row, per event", here["floor"], "ns", "(the floor, measured beside each run)")]
    rows += engine_rows(kind, here)
    other = measure_other_build(smoke)
    if other is not None:
        rows += engine_rows(*other)
        rows.append(("compiled / pure-Python speed-up (tcp_rr lazy)", other[1]["lazy"] / here["lazy"], "x", "(mypyc)"))
    else:
        rows.append(("compiled engine", 0, "", f"not measured: {engine_build.describe()} (run `make`)"))

    engine = Engine(tcp_rr(2_000_000 if smoke else 100_000_000), "lazy")
    engine.run()
    rows.append(("event log memory", engine.log.nbytes() / max(1, len(engine.log)), "bytes/event", "<= 64"))

    target_events = 20_000 if smoke else 1_000_000
    session = Session(tcp_rr(10**12 if not smoke else 50_000_000), "lazy")
    start = time.process_time()
    session.run(max_events=target_events, breakpoints=[])
    rows.append((f"session run to {target_events:,} events (with checkpoints)", time.process_time() - start, "s CPU", "(reference)"))
    rng = random.Random(1)
    samples = []
    total = session.position
    for _ in range(5 if smoke else 30):
        session.goto(rng.randrange(2, total))
        start = time.process_time()
        session.step_back()
        samples.append((time.process_time() - start) * 1000)
    rows.append((f"step back anywhere in {target_events:,} events (median)", statistics.median(samples), "ms", "<= 5"))
    rows.append((f"step back anywhere in {target_events:,} events (max)", max(samples), "ms", "<= 10"))
    rows += seed_scale(smoke)
    return rows
