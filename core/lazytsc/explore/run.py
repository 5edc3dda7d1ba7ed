"""One exploration: every (variant, host setup) search on the local cores, then shrinking.

Each search is independent (its own engine, state table and oracle), so they run in
worker processes -- one per core by default -- each taking its share of the searches in
a fixed order; the report lists them in that order whatever finishes first, so the
result depends only on the options (and, with a time limit, on how deep each got).
A worker shrinks and writes its own counterexamples. Progress comes back on a queue.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .alphabet import DEFAULT_LETTERS, Alphabet, make_alphabet
from .counterexample import write
from .invariants import FINDINGS, INVARIANTS
from .program import words_of
from .search import Search, SearchSpec, TaskResult
from .setups import DEFAULT_SETUPS
from .shrink import Shrinker

ProgressFn = Callable[[dict], None]
CancelFn = Callable[[], bool]


@dataclass
class Options:
    variants: tuple[str, ...] = ("v2", "v3")
    setups: tuple[str, ...] = DEFAULT_SETUPS
    vcpus: int = 1
    depth: int = 5
    letters: tuple[str, ...] = DEFAULT_LETTERS
    params: dict[str, dict[str, int]] = field(default_factory=dict)
    time_limit: float | None = None
    jobs: int | None = None
    out_dir: str = "explore-out"
    command: str = ""

    def alphabet(self) -> Alphabet:
        return make_alphabet(self.letters, self.params)

    def tasks(self) -> list[tuple[str, str]]:
        return [(v, s) for s in self.setups for v in self.variants]


@dataclass
class FindingReport:
    variant: str
    setup: str
    finding: str
    subclass: str
    title: str
    ops: int
    program: list[str]
    detail: str
    depth_found: int
    file: str = ""
    event: int = -1
    kind: str = ""
    verified: bool = False
    problem: str = ""


@dataclass
class TaskReport:
    variant: str
    setup: str
    vcpus: int
    depth_done: int
    depth_target: int
    states: int
    partial_states: int
    transitions: int
    seconds: float
    oracle_runs: int
    findings: list[FindingReport]

    @property
    def rate(self) -> float:
        return self.transitions / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Report:
    options: dict
    tasks: list[TaskReport]
    seconds: float

    @property
    def findings(self) -> list[FindingReport]:
        return [f for t in self.tasks for f in t.findings]

    def summary_lines(self) -> list[str]:
        """One line per invariant and variant: where it fails (shortest counterexample) or how far it holds."""
        lines = []
        variants = self.options["variants"]
        for name in FINDINGS:
            for variant in variants:
                mine = [f for f in self.findings if f.finding == name and f.variant == variant]
                tasks = [t for t in self.tasks if t.variant == variant]
                if mine:
                    best = min(mine, key=lambda f: (f.ops, f.setup, f.subclass))
                    others = len(mine) - 1
                    more = f" (+{others} more)" if others else ""
                    lines.append(f"{variant.upper()}: {best.title.split(': ', 1)[1]} [{best.setup}]{more}")
                elif name in INVARIANTS:
                    depth = min((t.depth_done for t in tasks), default=0)
                    states = sum(t.states for t in tasks)
                    lines.append(f"{variant.upper()}: {name} holds up to depth {depth}, {_count(states)} states ({len(tasks)} setup{'s' if len(tasks) != 1 else ''})")
        return lines

    def to_dict(self) -> dict:
        return {
            "options": self.options,
            "seconds": round(self.seconds, 3),
            "summary": self.summary_lines(),
            "tasks": [{**asdict(t), "rate": round(t.rate, 1), "seconds": round(t.seconds, 3)} for t in self.tasks],
        }


def _count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    if n >= 10_000:
        return f"{n / 1e3:.0f} k"
    return str(n)


def run_task(opts: Options, variant: str, setup: str, deadline: float | None, progress: ProgressFn | None, cancel: CancelFn | None) -> TaskReport:
    """One search, then its counterexamples shrunk and written."""
    spec = SearchSpec(variant, setup, opts.vcpus, opts.depth, opts.alphabet(), deadline)
    search = Search(spec, progress, cancel)
    result: TaskResult = search.run()
    d = search.driver
    root = d.save()
    shrinker = Shrinker(d, root, search.oracle)
    reports = []
    for f in result.found:
        key = (f.finding, f.subclass)
        rep = shrinker.shrink(words_of(f.steps), key)
        words = rep.words if rep is not None else words_of(f.steps)
        fr = FindingReport(variant, setup, f.finding, f.subclass, "", len(words), [w.label(opts.vcpus) for w in words], f.detail, f.depth)
        if rep is None:
            fr.problem = "the recorded program did not reproduce when replayed"
            fr.title = f"{variant.upper()} [{setup}]: {f.finding}"
        else:
            cx = write(d, root, rep, variant, setup, opts.out_dir, opts.command)
            fr.title, fr.file, fr.event, fr.kind, fr.verified, fr.problem, fr.detail = cx.title, cx.path, cx.event, cx.kind, cx.verified, cx.problem, rep.detail
        reports.append(fr)
    return TaskReport(
        variant, setup, opts.vcpus, result.depth_done, result.depth_target, result.states, result.partial_states,
        result.transitions, result.seconds, search.oracle.runs, reports,
    )


def _share(deadline: float | None, remaining: int) -> float | None:
    if deadline is None:
        return None
    now = time.monotonic()
    return now + max(0.0, deadline - now) / max(1, remaining)


def _worker(opts: Options, mine: list[int], deadline_in: float | None, out: multiprocessing.Queue, stop) -> None:
    started = time.monotonic()
    deadline = started + deadline_in if deadline_in is not None else None
    tasks = opts.tasks()
    for n, index in enumerate(mine):
        variant, setup = tasks[index]

        def progress(status: dict, index: int = index) -> None:
            out.put(("progress", index, status))

        try:
            report = run_task(opts, variant, setup, _share(deadline, len(mine) - n), progress, stop.is_set)
        except Exception as exc:  # a worker must always answer
            out.put(("error", index, f"{type(exc).__name__}: {exc}"))
            return
        out.put(("done", index, report))


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def explore(opts: Options, progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Report:
    """Run every search of `opts`; `progress` gets {"tasks": {index: status}, ...} updates."""
    started = time.monotonic()
    Path(opts.out_dir).mkdir(parents=True, exist_ok=True)
    tasks = opts.tasks()
    jobs = max(1, min(opts.jobs or os.cpu_count() or 1, len(tasks)))
    statuses: dict[int, dict] = {}
    reports: dict[int, TaskReport] = {}

    def note(index: int, status: dict) -> None:
        statuses[index] = status
        if progress is not None:
            progress({"tasks": dict(statuses), "total": len(tasks), "done": len(reports), "seconds": time.monotonic() - started})

    if jobs == 1:
        deadline = started + opts.time_limit if opts.time_limit is not None else None
        for n, (variant, setup) in enumerate(tasks):
            reports[n] = run_task(opts, variant, setup, _share(deadline, len(tasks) - n), lambda s, n=n: note(n, s), cancel)
            note(n, {**statuses.get(n, {}), "finished": True})
    else:
        ctx = _context()
        out = ctx.Queue()
        stop = ctx.Event()
        shares = [list(range(k, len(tasks), jobs)) for k in range(jobs)]
        workers = [ctx.Process(target=_worker, args=(opts, share, opts.time_limit, out, stop), daemon=True) for share in shares]
        for w in workers:
            w.start()
        errors: list[str] = []
        try:
            while len(reports) + len(errors) < len(tasks):
                if cancel is not None and cancel():
                    stop.set()
                try:
                    what, index, payload = out.get(timeout=0.2)
                except queue_mod.Empty:
                    if not any(w.is_alive() for w in workers) and out.empty():
                        errors.append("a worker process ended without a result")
                        break
                    continue
                if what == "progress":
                    note(index, payload)
                elif what == "done":
                    reports[index] = payload
                    note(index, {**statuses.get(index, {}), "finished": True})
                else:
                    errors.append(payload)
                    # the worker stopped: its remaining searches are lost
                    break
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=5)
                if w.is_alive():
                    w.terminate()
        if errors:
            raise RuntimeError(f"explore: {errors[0]}")
    ordered = [reports[i] for i in range(len(tasks)) if i in reports]
    options = {
        "variants": list(opts.variants), "setups": list(opts.setups), "vcpus": opts.vcpus, "depth": opts.depth,
        "letters": list(opts.letters), "params": opts.params, "time_limit": opts.time_limit, "jobs": jobs,
        "out_dir": opts.out_dir,
    }
    return Report(options, ordered, time.monotonic() - started)
