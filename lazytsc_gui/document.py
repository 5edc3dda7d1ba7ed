"""What the window shows: a simulated run (scenario + mode) or an imported trace.

A run is *streamed*: a worker thread runs the document's debugger `Session` to
the end in chunks (`stream_session`: the session keeps checkpoints of all it
computes, so any jump later is cheap) and hands each finished chunk, unpacked
into columns, to the UI thread, which appends it to the `TimelineData` (keeping
only the events' times besides the lanes; `RunDocument.add`). The window shows
the first chunk at once -- its panels read that chunk -- and the timeline fills in
the rest while the run streams. The UI never reads the session's log while the
worker appends to it (a numpy view of the growing array would make the next
append fail); when the run is complete the document switches to the session's
own log (`Session.log`, the whole run), so the GUI holds no copy of the log.
No Qt here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazytsc.accounting import summarize
from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.eventlog import WORDS, EventLog
from lazytsc.scenario import Bookmark, Scenario

from .runlog import ColumnLog, TimeColumn
from .timeline_data import TimelineData

FIRST_CHUNK = 20_000  # events of the first screen: small, so it shows at once
CHUNK = 100_000
# The compiled engine never gives up the GIL while it runs (the interpreter's switch interval
# only acts between bytecodes): the worker runs at most this many events at a time and then
# sleeps a moment, so the UI thread can paint while the run streams in.
GIL_STEP = 5_000
GIL_PAUSE_S = 0.0005
MAX_RESERVE = 50_000_000  # never pre-allocate more events than this from an estimate


class RunStream:
    """Runs one engine in chunks and returns each chunk's rows as columns.

    Only the thread that calls `next_chunk` touches the engine and its log: the
    chunk is copied out of the log's packed rows (5 int64 words per event) and
    unpacked with the log's own `columns()`, so nothing else ever holds a view
    of the growing array.
    """

    def __init__(self, scenario: Scenario, mode: str) -> None:
        self.engine = Engine(scenario, mode)
        self.duration = scenario.run.duration_ns
        self.sent = 0

    @property
    def done(self) -> bool:
        return self.engine.done and self.sent >= len(self.engine.log)

    def next_chunk(self, max_events: int) -> dict | None:
        engine = self.engine
        target = self.sent + max_events
        while not engine.done and len(engine.log) < target:
            engine.run(max_events=min(GIL_STEP, target - len(engine.log)))
            time.sleep(GIL_PAUSE_S)  # see GIL_STEP
        n = len(engine.log)
        if n <= self.sent:
            return None
        part = EventLog()
        part.rows = engine.log.rows[self.sent * WORDS : n * WORDS]
        self.sent = n
        return part.columns()

    def fraction(self) -> float:
        return min(1.0, self.engine.now / self.duration) if self.duration else -1.0


def _chunk_columns(log, start: int, stop: int) -> dict:
    """Events [start, stop) of a log as columns (copied out of its packed rows, 5 int64 words each)."""
    part = EventLog()
    part.rows = log.rows[start * WORDS : stop * WORDS]
    return part.columns()


def stream_session(session: Session, job=None, emit=None) -> int:
    """Run a session to the end in chunks, passing each chunk's columns to `emit`; back at event 0.

    Worker thread: only it touches the session (and its log) until this returns.
    """
    log = session.log
    duration = session.scenario.run.duration_ns
    size = FIRST_CHUNK
    sent = 0
    while True:
        if job is not None:
            job.check()
        cancel = job.cancelled if job is not None else None
        target = len(log) + size
        while not session.complete and not session.engine.done and len(log) < target:
            session.run(max_events=min(GIL_STEP, target - len(log)), breakpoints=[], cancel=cancel)
            time.sleep(GIL_PAUSE_S)
            if cancel is not None and cancel():
                break
        n = len(log)
        if n > sent:
            if emit is not None:
                emit(_chunk_columns(log, sent, n))
            sent = n
        if job is not None:
            job.report(min(1.0, session.engine.now / duration) if duration else -1.0, f"{session.mode} run: {n:,} events")
        if session.complete or session.engine.done:
            break
        size = CHUNK
    if job is not None:
        job.check()
    session.goto(0)
    for bp in session.breakpoints:
        bp.hits = 0
    return sent


def stream_run(scenario: Scenario, mode: str, job=None, emit=None) -> int:
    """Run a plain engine to the end, passing each chunk of columns to `emit` (worker thread)."""
    stream = RunStream(scenario, mode)
    size = FIRST_CHUNK
    total = 0
    while True:
        if job is not None:
            job.check()
        cols = stream.next_chunk(size)
        if cols is None:
            break
        total += len(cols["time"])
        if emit is not None:
            emit(cols)
        if job is not None:
            job.report(stream.fraction(), f"{mode} run: {total:,} events")
        size = CHUNK
    return total


@dataclass
class RunDocument:
    scenario: Scenario
    mode: str
    session: Session
    log: Any  # while the run streams in: its first chunk (ColumnLog); then the session's own log
    data: TimelineData
    summary: dict
    bookmarks: list[Bookmark] = field(default_factory=list)
    kind: str = "scenario"
    start_snapshot: Any = None  # the state at event 0, shown while the run streams in

    @classmethod
    def empty(cls, scenario: Scenario, mode: str) -> RunDocument:
        """A document that chunks are added to (UI thread); its session is at event 0."""
        log = ColumnLog()
        khz = [v.tsc_khz for v in scenario.run.vcpus]
        data = TimelineData(TimeColumn(), khz, vcpus=list(range(len(khz))), expected_end_ns=scenario.run.duration_ns)
        session = Session(scenario, mode)
        return cls(scenario, mode, session, log, data, {}, list(scenario.bookmarks), start_snapshot=session.snapshot())

    def add(self, cols: dict) -> bool:
        """Append one streamed chunk; True if it was the first."""
        first = self.data.n_events == 0
        self.data.log.append(cols["time"])
        self.data.extend(cols)
        if first:
            self.log.append_chunk(cols)
            self.log.finish()
            self._reserve()
            self.summary = summarize(self.log)
        return first

    def _reserve(self) -> None:
        """Pre-size the times from the first chunk's event rate (no 1.5x growth slack)."""
        t = self.data.t_end_ns
        duration = self.scenario.run.duration_ns
        if t > 0 and duration and duration > t:
            estimate = int(self.data.n_events * duration / t * 1.05)
            self.data.log.reserve(min(MAX_RESERVE, estimate))

    def finish(self) -> None:
        """The run is complete (UI thread, the worker done): read the session's log from now on."""
        own = self.session.log
        if len(own) != self.data.n_events:  # pragma: no cover - the worker computed something else
            raise RuntimeError(f"the session computed {len(own):,} events, {self.data.n_events:,} were streamed")
        self.log = own
        self.data.log = own
        self.data.finish()
        self.summary = summarize(self.log)

    @property
    def complete(self) -> bool:
        """The whole run is in (the worker has handed the session back)."""
        return self.data.complete

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


def build_run(scenario: Scenario, mode: str, job=None) -> RunDocument:
    """Run `scenario` in `mode` to the end in one go (no streaming); the session is at event 0."""
    doc = RunDocument.empty(scenario, mode)
    stream_session(doc.session, job, doc.add)
    doc.finish()
    return doc


@dataclass
class TraceDocument:
    result: Any  # lazytsc.traces.TraceResult
    path: str
    log: Any  # the trace's EventLog (read through its columns: no copy)
    data: TimelineData
    summary: dict
    trace_summary: dict
    n_vcpus: int
    bookmarks: list[Bookmark] = field(default_factory=list)
    kind: str = "trace"
    mode: str = "recorded"
    variant: str = ""
    complete: bool = True
    raw: Any = None  # trace_lines.RawLines: the file line behind each event

    @property
    def title(self) -> str:
        return Path(self.path).name

    @property
    def can_simulate(self) -> bool:
        return False

    @property
    def vcpu_ids(self) -> list[int]:
        return [lane.vcpu for lane in self.data.vcpus]

    def empty_text(self) -> str:
        """What the timeline says when the trace holds no per-event rows (a perf kvm stat table)."""
        fmt = self.trace_summary.get("format", "")
        total = self.summary.get("exits", {}).get("total", 0)
        if fmt.startswith("perf-kvm-stat"):
            return (
                f"{self.title} is a perf kvm stat table: {total:,} exits counted, no per-event timeline.\n"
                "The exit accounting shows its counts. Record kvm:kvm_exit and kvm:kvm_msr "
                "(perf record / trace-cmd) for a timeline."
            )
        return f"{self.title}: no events to draw ({total:,} exits counted)."


@dataclass
class ModeRun:
    """A run without a debugger session (compare view)."""

    mode: str
    log: Any
    data: TimelineData
    summary: dict
    label: str = ""


def build_log(scenario: Scenario, mode: str, job=None) -> ModeRun:
    """One mode of a scenario to the end, as columns (the compare view's other run)."""
    log = ColumnLog()
    khz = [v.tsc_khz for v in scenario.run.vcpus]
    data = TimelineData(log, khz, vcpus=list(range(len(khz))))

    def add(cols: dict) -> None:
        log.append_chunk(cols)
        data.extend(cols)

    stream_run(scenario, mode, job, add)
    log.finish()
    data.finish()
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
    data = TimelineData(log, None, kind="trace")
    data.extend(log.columns())
    data.finish()
    trace_summary = result.summary()
    # A table of counts (perf kvm stat) has no rows: its counts are the summary.
    summary = summarize(log) if len(log) else trace_summary
    ids = [lane.vcpu for lane in data.vcpus]
    n_vcpus = max(ids) + 1 if ids else 1
    return TraceDocument(result, os.fspath(path), log, data, summary, trace_summary, n_vcpus)


def what_if_data(w) -> dict[str, TimelineData]:
    """Timelines of a what-if's classic and lazy replays, labelled with the trace's vCPU ids.

    The replay numbers the traced vCPUs 0..k-1 (`w.vcpus` maps trace id -> replay
    index); the lanes keep the ids the trace uses.
    """
    to_trace = {i: v for v, i in w.vcpus.items()}
    khz = {i: w.calibration.tsc_khz for i in to_trace} or {0: w.calibration.tsc_khz}
    labels = {i: f"vCPU {v}" for i, v in to_trace.items()}
    out = {}
    for mode, log in w.logs.items():
        data = TimelineData(log, khz, vcpus=sorted(to_trace), labels=labels)
        data.extend(log.columns())
        data.finish()
        out[mode] = data
    return out


def looks_like_scenario(path: str | os.PathLike) -> bool:
    """Scenarios are TOML; anything else is offered to the trace importer."""
    return Path(path).suffix.lower() == ".toml"
