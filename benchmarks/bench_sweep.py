"""Sweep throughput: the same tcp_rr sweep in this process (jobs=1) and over every core.

The baseline (jobs=1) is measured in the same run, so the speed-up is a ratio on the
same machine at the same moment; the load average is printed beside it because the
machine is shared and a busy neighbour takes the cores the pool wants.
"""

from __future__ import annotations

import os
import statistics
import time

from lazytsc.resources import builtin_scenario
from lazytsc.scenario import load_scenario
from lazytsc.sweep import build_points, parse_setting
from lazytsc.sweep_run import default_jobs, make_tasks, run_tasks

Row = tuple[str, float, str, str]


def _wall(tasks, jobs: int) -> float:
    start = time.perf_counter()
    run_tasks(tasks, jobs=jobs)
    return time.perf_counter() - start


def run(smoke: bool = False) -> list[Row]:
    scenario = load_scenario(builtin_scenario("tcp_rr"))
    seeds, duration, repeats = (2, "2ms", 1) if smoke else (8, "50ms", 3)
    settings = [parse_setting(f"seed=1..{seeds}"), parse_setting(f"duration={duration}")]
    tasks = make_tasks(build_points(scenario.text, scenario.path, settings), ("classic", "lazy"))
    jobs = max(2, default_jobs())
    one, many = [], []
    for _ in range(repeats):  # interleaved, so both see the same neighbours
        one.append(_wall(tasks, 1))
        many.append(_wall(tasks, jobs))
    t1, tn = statistics.median(one), statistics.median(many)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    n = len(tasks)
    return [
        (f"sweep {n} runs, jobs=1 (baseline), median", t1, "s", "-"),
        (f"sweep {n} runs, jobs={jobs}, median", tn, "s", "< baseline"),
        (f"sweep speed-up jobs={jobs} vs jobs=1", t1 / tn if tn else 0.0, "x", f">= {0.75 * jobs:.2g} on idle cores"),
        ("load average (1 min) after the sweep", load, "", f"< {default_jobs()} for the speed-up to mean much"),
    ]
