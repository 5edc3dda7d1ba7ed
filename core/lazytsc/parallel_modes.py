"""`lazytsc run --mode both` at scale: each mode in its own process, with progress.

A run at the seed's scale (tcp_rr_full: ~12.6 M classic exits, tens of millions of events)
takes minutes per mode; classic and lazy are independent runs of the same scenario, so
they run side by side, one process each, and only their summaries come back (each log is
recorded in full in its process, 40 bytes per event). Each run is the CLI's own run
(runner.run_to_end: chunks of events, the --max-events limit, progress), so the results
and the log digests are the ones a sequential run gives -- tests/test_parallel_modes.py
checks it.

`format_vs_published` prints the seed's table layout with the published counts beside the
model's, row by row, absolute counts and shares -- shown by `lazytsc run` when a tcp_rr run
is at the published scale (its classic exit total within 2x of the seed's).
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .runner import DEFAULT_MAX_EVENTS, RunLimitExceeded, RunProgress, run_to_end
from .scenario import Scenario
from .statusline import StatusLine

PARALLEL_MIN_NS = 1_000_000_000  # auto: parallel from 1 s of simulated time (spawning costs ~0.3 s)


@dataclass
class ModeResult:
    mode: str
    summary: dict[str, Any]
    report: dict[str, Any] | None  # the workload's figures (transactions); None: no workload
    events: int
    digest: str  # EventLog.digest() of the whole log
    cpu_s: float  # CPU time of the run in its process
    wall_s: float


Progress = Callable[[str, int, int, int], None]  # (mode, simulated ns, of ns, events)


class ModeRunError(RuntimeError):
    """A mode's run stopped (its event limit, or an error): the message says which and why."""


def run_mode(scenario: Scenario, mode: str, progress: Progress | None = None, max_events: int | None = DEFAULT_MAX_EVENTS) -> ModeResult:
    """One mode, to the end (RunLimitExceeded past `max_events`), with progress."""
    from .engine import Engine

    wall, cpu = time.monotonic(), time.process_time()
    engine = Engine(scenario, mode)
    end = scenario.run.duration_ns

    def report(state: RunProgress) -> None:
        if progress is not None:
            progress(mode, min(state.now_ns, end), end, state.events)

    run_to_end(engine, end, max_events, report, mode)
    summary = engine.summary()
    report = engine.workload.report() if engine.workload is not None else None
    return ModeResult(mode, summary, report, len(engine.log), engine.log.digest(), time.process_time() - cpu, time.monotonic() - wall)


def _worker(scenario: Scenario, mode: str, max_events: int | None, out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    last = [0.0]

    def progress(m: str, now: int, end: int, events: int) -> None:
        t = time.monotonic()
        if t - last[0] >= 0.25 or now >= end:
            last[0] = t
            out.put(("progress", m, now, end, events))

    try:
        out.put(("done", mode, run_mode(scenario, mode, progress, max_events)))
    except RunLimitExceeded as exc:
        out.put(("error", mode, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        out.put(("error", mode, f"the {mode} run failed: {type(exc).__name__}: {exc}"))


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (never forks a process with threads), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["lazytsc.engine", "lazytsc.workloads", "lazytsc.parallel_modes"])
        return context
    return multiprocessing.get_context("spawn")


def run_parallel(
    scenario: Scenario, modes: Sequence[str], max_events: int | None = DEFAULT_MAX_EVENTS, progress: Progress | None = None
) -> dict[str, ModeResult]:
    """Every mode in its own process at once; results keyed by mode, in `modes` order.

    Raises ModeRunError when a run stops (its event limit, an error, a dead process): the
    error of the first such mode in `modes` order, once every mode before it has finished --
    what a run one mode after the other reports, whichever process stops first."""
    ctx = _context()
    out = ctx.Queue()
    procs = {mode: ctx.Process(target=_worker, args=(scenario, mode, max_events, out), name=f"lazytsc-{mode}") for mode in modes}
    results: dict[str, ModeResult] = {}
    errors: dict[str, str] = {}
    try:
        for p in procs.values():
            p.start()
        while True:
            for mode in modes:  # the sequential order decides which error is reported
                if mode in errors:
                    raise ModeRunError(errors[mode])
                if mode not in results:
                    break
            else:
                break  # every mode done
            try:
                msg = out.get(timeout=0.5)
            except queue_mod.Empty:
                for m, p in procs.items():
                    if m not in results and m not in errors and not p.is_alive() and p.exitcode not in (None, 0):
                        errors[m] = f"the {m} run's process died (exit code {p.exitcode})"
                continue
            if msg[0] == "progress" and progress is not None:
                progress(*msg[1:])
            elif msg[0] == "done":
                results[msg[1]] = msg[2]
            elif msg[0] == "error":
                errors[msg[1]] = msg[2]
        for p in procs.values():
            p.join()
    finally:
        finish = getattr(progress, "finish", None)
        if finish is not None:
            finish()
        for p in procs.values():
            if p.is_alive():
                p.terminate()
                p.join()
    return {mode: results[mode] for mode in modes}


def run_sequential(
    scenario: Scenario, modes: Sequence[str], max_events: int | None = DEFAULT_MAX_EVENTS, progress: Progress | None = None
) -> dict[str, ModeResult]:
    return {mode: run_mode(scenario, mode, progress, max_events) for mode in modes}


def use_parallel(scenario: Scenario, modes: Sequence[str], jobs: int | None = None) -> bool:
    """`jobs` > 1 asks for it; by default parallel pays for its start-up (~0.3 s) when there
    are several modes, several cores and a long run (>= 1 s simulated)."""
    if len(modes) < 2:
        return False
    if jobs is not None:
        return jobs > 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > 1 and scenario.run.duration_ns >= PARALLEL_MIN_NS


class ModesProgress:
    """`classic 42% (16.9 of 40.3 s simulated, 27.5 M events)  lazy 47% ...` on stderr.

    On a terminal one line rewritten in place; elsewhere a line at every quarter."""

    def __init__(self, modes: Sequence[str], stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.status = StatusLine(self.stream)
        self.tty = self.status.enabled
        self.state = {m: (0, 1, 0) for m in modes}
        self.start = time.monotonic()
        self.quarter = {m: 0 for m in modes}

    def __call__(self, mode: str, now: int, end: int, events: int) -> None:
        self.state[mode] = (now, end, events)
        if self.tty:
            self.status.show(self.line())
            return
        q = 4 * now // max(end, 1)
        if q > self.quarter[mode]:
            self.quarter[mode] = q
            print(f"{mode}: {25 * q}% ({now / 1e9:.1f} of {end / 1e9:.1f} s simulated, {events:,} events, {time.monotonic() - self.start:.0f} s)", file=self.stream, flush=True)

    def line(self) -> str:
        parts = [f"{m} {100 * now // max(end, 1)}% ({now / 1e9:.1f} of {end / 1e9:.1f} s, {events / 1e6:.1f} M events)" for m, (now, end, events) in self.state.items()]
        return "  ".join(parts) + f"  elapsed {time.monotonic() - self.start:.0f} s"

    def finish(self) -> None:
        self.status.clear()


# ---- the seed's own numbers beside the model's ---------------------------------------------------
SEED_ROWS = (
    ("total", "exits.total"),
    ("intr", "exits.by_reason.intr"),
    ("halt", "exits.by_reason.halt"),
    ("msr-write", "exits.by_reason.msr-write"),
    ("preemption-timer", "exits.by_reason.preemption-timer"),
    ("msr-write: apic-icr", "exits.msr_write.apic-icr"),
    ("msr-write: tsc-deadline", "exits.msr_write.tsc-deadline"),
)
# what each row's share is of (the seed's table: reasons of all exits, subs of msr-write)
SHARE_OF = {"exits.total": None, "exits.msr_write.apic-icr": "exits.by_reason.msr-write", "exits.msr_write.tsc-deadline": "exits.by_reason.msr-write"}


def _figure(summary: dict[str, Any], path: str) -> int | None:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return int(node)


def published_for(variant: str) -> dict[str, dict[str, int]]:
    from .sensitivity import PUBLISHED

    return PUBLISHED.get(variant, PUBLISHED["v2"])


def at_published_scale(summaries: dict[str, dict[str, Any]], workload_kind: str | None, variant: str) -> bool:
    """A tcp_rr run whose classic exit total is within 2x of the published one."""
    if workload_kind != "tcp_rr" or "classic" not in summaries:
        return False
    ours = _figure(summaries["classic"], "exits.total") or 0
    theirs = published_for(variant)["classic"]["exits.total"]
    return theirs / 2 <= ours <= theirs * 2


def format_vs_published(summaries: dict[str, dict[str, Any]], variant: str = "v2") -> str:
    """The seed's rows; per mode the model's count (share) and the published count (share)."""
    published = published_for(variant)
    source = "seed" if variant == "v2" else variant.upper()
    modes = [m for m in ("classic", "lazy") if m in summaries]
    header = ["VM exits"]
    for m in modes:
        header += [m, f"{source} {m}"]
    rows = [header]
    for label, path in SEED_ROWS:
        of = SHARE_OF.get(path, "exits.total")
        cells = [label]
        for m in modes:
            for values in (summaries[m], None):
                if values is None:
                    count = published[m].get(path)
                    whole = published[m].get(of) if of else None
                else:
                    count = _figure(values, path)
                    whole = _figure(values, of) if of else None
                if count is None:
                    cells.append("n/a")
                elif of is None:
                    cells.append(f"{count:,}")
                else:  # shares truncated, as the seed's table prints them (79%, not 80%)
                    cells.append(f"{count:,} ({100 * count // whole}%)" if whole else f"{count:,}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join([rows[0][0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(rows[0][1:], widths[1:], strict=True)])]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows[1:]:
        lines.append("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]))
    return "\n".join(lines)
