"""What the window shows: a simulated run (scenario + mode) or an imported trace.

A RunDocument runs its scenario once to the end (in a worker thread) so the
timeline, event list and hazards can show the whole run; the Session then goes
back to event 0 and keeps every checkpoint, so stepping, jumping and stepping
back anywhere are cheap. The display log is the session's own (`Session.log`,
everything computed; it does not change while the cursor moves), not a copy.
No Qt here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazytsc.accounting import summarize
from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.eventlog import EventLog
from lazytsc.scenario import Bookmark, Scenario

from .timeline_data import TimelineData, build_timeline_data

PROGRESS_EVERY = 20_000


@dataclass
class RunDocument:
    scenario: Scenario
    mode: str
    session: Session
    log: EventLog
    data: TimelineData
    summary: dict
    bookmarks: list[Bookmark] = field(default_factory=list)
    kind: str = "scenario"

    @property
    def n_vcpus(self) -> int:
        return len(self.scenario.run.vcpus)

    @property
    def title(self) -> str:
        return self.scenario.name

    @property
    def path(self) -> str:
        return self.scenario.path

    @property
    def can_simulate(self) -> bool:
        return True

    @property
    def variant(self) -> str:
        return self.scenario.run.variant

    def tsc_khz(self) -> list[int]:
        return [v.tsc_khz for v in self.scenario.run.vcpus]


@dataclass
class TraceDocument:
    result: Any  # lazytsc.traces.TraceResult
    path: str
    log: EventLog
    data: TimelineData
    summary: dict
    trace_summary: dict
    n_vcpus: int
    bookmarks: list[Bookmark] = field(default_factory=list)
    kind: str = "trace"
    mode: str = "recorded"
    variant: str = ""
    raw: Any = None  # trace_lines.RawLines: the file line behind each event

    @property
    def title(self) -> str:
        return Path(self.path).name

    @property
    def can_simulate(self) -> bool:
        return False


def _progress(job, session: Session, duration: int, label: str):
    def cb(pos: int) -> None:
        if job is not None:
            now = session.engine.now
            job.report(min(1.0, now / duration) if duration else -1.0, f"{label}: {pos:,} events")

    return cb


def build_run(scenario: Scenario, mode: str, job=None) -> RunDocument:
    """Run `scenario` in `mode` to the end, keep checkpoints, return at event 0."""
    session = Session(scenario, mode)
    duration = scenario.run.duration_ns
    result = session.run(
        breakpoints=[],
        progress=_progress(job, session, duration, f"{mode} run"),
        cancel=(job.cancelled if job is not None else None),
        progress_every=PROGRESS_EVERY,
    )
    if result.reason == "cancelled" and job is not None:
        job.check()
    log = session.log
    if job is not None:
        job.report(1.0, "building the timeline")
    data = build_timeline_data({n: log.column(n) for n in ("time", "vcpu", "kind", "exit", "a", "b", "parent")}, len(scenario.run.vcpus), [v.tsc_khz for v in scenario.run.vcpus])
    summary = summarize(log)
    session.goto(0)
    for bp in session.breakpoints:
        bp.hits = 0
    return RunDocument(scenario, mode, session, log, data, summary, list(scenario.bookmarks))


@dataclass
class ModeRun:
    """A run without a debugger session (compare view)."""

    mode: str
    log: EventLog
    data: TimelineData
    summary: dict
    label: str = ""


def build_log(scenario: Scenario, mode: str, job=None) -> ModeRun:
    engine = Engine(scenario, mode)
    duration = scenario.run.duration_ns
    step = 200_000
    while not engine.done:
        if job is not None:
            job.check()
            job.report(min(1.0, engine.now / duration) if duration else -1.0, f"{mode} run: {len(engine.log):,} events")
        engine.run(max_events=step)
    log = engine.log
    data = build_timeline_data({n: log.column(n) for n in ("time", "vcpu", "kind", "exit", "a", "b", "parent")}, len(scenario.run.vcpus), [v.tsc_khz for v in scenario.run.vcpus])
    return ModeRun(mode, log, data, summarize(log), mode)


def build_trace(path: str | os.PathLike, job=None) -> TraceDocument:
    """Import a recorded KVM trace (lazytsc.traces) into a document the timeline draws."""
    try:
        from lazytsc.traces import import_trace
    except ImportError as exc:  # the importer is optional at this stage
        raise RuntimeError(f"trace import is not available in this build ({exc})") from None
    if job is not None:
        job.report(-1.0, f"importing {Path(path).name}")
    result = import_trace(path, keep_events=True)
    if job is not None:
        job.check()
        job.report(-1.0, "building the timeline")
    log = result.to_eventlog()
    cols = {n: log.column(n) for n in ("time", "vcpu", "kind", "exit", "a", "b", "parent")}
    vcpu_col = cols["vcpu"]
    n_vcpus = int(vcpu_col.max()) + 1 if len(vcpu_col) and vcpu_col.max() >= 0 else 1
    data = build_timeline_data(cols, n_vcpus, None)
    return TraceDocument(result, os.fspath(path), log, data, summarize(log), result.summary(), n_vcpus)


def looks_like_scenario(path: str | os.PathLike) -> bool:
    """Scenario files are TOML; anything else is offered to the trace importer."""
    return Path(path).suffix.lower() == ".toml"
