"""Running a sweep's points: in this process, over local cores, or on a Dask cluster.

Every point runs once per driver mode, each (point, mode) as its own task, through the
engine's public API only (`Engine(scenario, mode).run()`, `.summary()`, the workload's
report). Results are stored by task index, so the output never depends on which task
finished first or on how many workers there were.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TextIO

from .scenario import Scenario
from .statusline import StatusLine
from .sweep import Point

Figures = dict[str, int | float]
ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


class SweepCancelled(Exception):
    """The caller asked the sweep to stop; finished results are discarded."""


class SweepSetupError(Exception):
    """The place to run cannot be used (no dask, unreachable scheduler): a user error."""


@dataclass(frozen=True)
class Task:
    index: int
    point: int
    mode: str
    scenario: Scenario


def flatten(prefix: str, node: Any, out: Figures) -> None:
    """Numeric leaves of a summary section as dotted names (`exits.by_reason.halt`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    elif isinstance(node, bool):
        out[prefix] = int(node)
    elif isinstance(node, int | float):
        out[prefix] = node


def run_task(scenario: Scenario, mode: str) -> Figures:
    """One engine run; its figures: the summary's numbers and the workload's report."""
    from .engine import Engine

    engine = Engine(scenario, mode)
    engine.run()
    summary = engine.summary()
    figures: Figures = {}
    for section, value in summary.items():
        if section not in ("mode",):
            flatten(section, value, figures)
    if engine.workload is not None:
        flatten("workload", engine.workload.report(), figures)
    return figures


def make_tasks(points: Sequence[Point], modes: Sequence[str]) -> list[Task]:
    return [
        Task(i * len(modes) + j, p.index, mode, p.scenario)
        for i, p in enumerate(points)
        for j, mode in enumerate(modes)
    ]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_tasks(
    tasks: Sequence[Task],
    jobs: int | None = None,
    dask_address: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> list[Figures]:
    """Run every task; returns their figures in task order. Raises SweepCancelled."""
    _report(progress, 0, len(tasks))
    if dask_address:
        return _run_dask(tasks, dask_address, progress, cancel)
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or len(tasks) <= 1:
        return _run_here(tasks, progress, cancel)
    return _run_pool(tasks, min(jobs, len(tasks)), progress, cancel)


def _report(progress: ProgressFn | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _run_here(tasks: Sequence[Task], progress: ProgressFn | None, cancel: CancelFn | None) -> list[Figures]:
    out = []
    for task in tasks:
        if cancel is not None and cancel():
            raise SweepCancelled()
        out.append(run_task(task.scenario, task.mode))
        _report(progress, len(out), len(tasks))
    return out


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one: never forks a process that runs threads (the GUI)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Workers fork from a server that has the engine imported: no per-worker import cost.
    context.set_forkserver_preload(["lazytsc.sweep_run", "lazytsc.engine", "lazytsc.workloads"])
    return context


def _worker_init() -> None:
    """Ctrl-C reaches the whole process group: only the parent handles it (and stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_pool(tasks: Sequence[Task], jobs: int, progress: ProgressFn | None, cancel: CancelFn | None) -> list[Figures]:
    results: dict[int, Figures] = {}
    pool = futures.ProcessPoolExecutor(max_workers=jobs, mp_context=_pool_context(), initializer=_worker_init)
    try:
        pending = {pool.submit(run_task, t.scenario, t.mode): t.index for t in tasks}
        while pending:
            done, _ = futures.wait(pending, timeout=0.1, return_when=futures.FIRST_COMPLETED)
            for fut in done:
                results[pending.pop(fut)] = fut.result()
            if done:
                _report(progress, len(results), len(tasks))
            if cancel is not None and cancel():
                raise SweepCancelled()
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)
    return [results[t.index] for t in tasks]


def _run_dask(tasks: Sequence[Task], address: str, progress: ProgressFn | None, cancel: CancelFn | None) -> list[Figures]:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise SweepSetupError("--dask: dask.distributed is not installed (pip install 'lazytsc[dask]')") from None
    _check_address(address)
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepSetupError(f"--dask {address}: a reachable Dask scheduler ({exc})") from None
    results: dict[int, Figures] = {}
    try:
        pending = {client.submit(run_task, t.scenario, t.mode, pure=False): t.index for t in tasks}
        finished = as_completed(list(pending), loop=client.loop)
        while pending:
            if cancel is not None and cancel():
                client.cancel(list(pending))
                raise SweepCancelled()
            if not finished.has_ready():
                time.sleep(0.05)
                continue
            for fut in finished.next_batch(block=False):
                results[pending.pop(fut)] = fut.result()
            _report(progress, len(results), len(tasks))
    finally:
        client.close()
    return [results[t.index] for t in tasks]


def _check_address(address: str) -> None:
    """Refuse a malformed address at once (a Client on one waits, then fails in its finalizer)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}; one of {', '.join(sorted(backends))}")
        if scheme in ("tcp", "tls", "ws", "wss"):
            host, port = parse_host_port(location)
            if not host or not 0 < int(port) < 65536:
                raise ValueError("a host and a port from 1 to 65535")
    except ValueError as exc:
        raise SweepSetupError(f"--dask {address}: a scheduler address like tcp://HOST:PORT ({exc})") from None


class ProgressLine:
    """`sweep: 12/40 runs (30%)  elapsed 0:03  ETA 0:07` on a terminal; nothing elsewhere."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.line = StatusLine(stream, enabled)
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.line.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = _clock(elapsed / done * (total - done)) if done else "-"
        self.line.show(f"sweep: {done}/{total} runs ({100 * done // max(total, 1)}%)  elapsed {_clock(elapsed)}  ETA {eta}")

    def finish(self) -> None:
        self.line.clear()


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
