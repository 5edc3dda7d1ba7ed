"""Running an engine to the end within a stated event limit, reporting progress.

A valid scenario can still be enormous (a 1 ns periodic timer, 64 vCPUs at the
highest rate for an hour, 820 k script entries): run blindly, it grows the event
log until memory is gone. So every headless run goes through `run_to_end`, which
drives the public Engine API in chunks (`run(max_events=...)`, `now`, `log`) and

* stops with RunLimitExceeded at `max_events` (default DEFAULT_MAX_EVENTS, about
  400 MB of event log; the CLI's `--max-events N` raises it, 0 removes it), and
  earlier when the rate so far projects a total over ten times the limit;
* calls `progress(RunProgress)` after every chunk, for a progress line or bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import eventlog

DEFAULT_MAX_EVENTS = 10_000_000
CHUNK_EVENTS = 50_000
# Projection only after this many events: early rates are dominated by boot.
_PROJECT_AFTER_EVENTS = 1_000_000
_PROJECT_FACTOR = 10


def bytes_per_event() -> int:
    return int(getattr(eventlog, "BYTES_PER_EVENT", 40))


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def format_seconds_sim(ns: int) -> str:
    if ns >= 1_000_000_000_000:
        return f"{ns / 1e9:,.0f} s"
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.3g} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.3g} us"
    return f"{ns} ns"


@dataclass(frozen=True)
class RunProgress:
    """Where a run is: simulated time against its duration, events, wall time."""

    mode: str
    now_ns: int
    duration_ns: int
    events: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.now_ns / self.duration_ns) if self.duration_ns > 0 else 1.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the simulated-time rate so far (None until there is a rate)."""
        f = self.fraction
        if f <= 0 or self.elapsed_s < 0.2:
            return None
        return self.elapsed_s * (1 - f) / f

    @property
    def projected_events(self) -> int | None:
        f = self.fraction
        return int(self.events / f) if f > 0 else None


class RunLimitExceeded(Exception):
    """A run stopped at its event limit: the message says how far it got and how to raise it."""

    def __init__(self, state: RunProgress, limit: int, projected: int | None = None) -> None:
        self.state = state
        self.limit = limit
        self.projected = projected
        super().__init__(str(self))

    def __str__(self) -> str:
        s = self.state
        per = bytes_per_event()
        where = f"at {format_seconds_sim(s.now_ns)} of {format_seconds_sim(s.duration_ns)} simulated"
        if self.projected is not None:
            need = f"would log about {self.projected:,} events (~{format_bytes(self.projected * per)} of event log)"
            return (
                f"the {s.mode} run {need}, over the limit of {self.limit:,} events "
                f"({where}); raise it with --max-events N, or 0 for no limit"
            )
        return (
            f"the {s.mode} run reached the limit of {self.limit:,} events "
            f"(~{format_bytes(self.limit * per)} of event log) {where}; raise it with --max-events N, or 0 for no limit"
        )


def event_limit(requested: int | None, declared: int) -> int:
    """The event limit of one scenario's runs: `--max-events` when given, else the default
    raised to what the scenario declares it logs (`max_events`); 0 is no limit."""
    if requested is not None:
        return requested
    return max(DEFAULT_MAX_EVENTS, declared)


def run_to_end(
    engine: Any,
    duration_ns: int,
    max_events: int | None = DEFAULT_MAX_EVENTS,
    progress: Callable[[RunProgress], None] | None = None,
    mode: str = "",
    chunk: int = CHUNK_EVENTS,
) -> None:
    """Run `engine` to its end; RunLimitExceeded past `max_events` events (None or 0: no limit)."""
    limit = max_events or None
    start = time.monotonic()
    label = mode or str(getattr(engine, "mode", ""))

    def state() -> RunProgress:
        return RunProgress(label, int(engine.now), int(duration_ns), len(engine.log), time.monotonic() - start)

    while not engine.done:
        events = len(engine.log)
        if limit is not None:
            if events >= limit:
                raise RunLimitExceeded(state(), limit)
            step = min(chunk, limit - events)
        else:
            step = chunk
        engine.run(max_events=step)
        now = state()
        if progress is not None:
            progress(now)
        if limit is not None and now.events >= _PROJECT_AFTER_EVENTS and not engine.done:
            projected = now.projected_events
            if projected is not None and projected > _PROJECT_FACTOR * limit:
                raise RunLimitExceeded(now, limit, projected)


class TerminalProgress:
    """A one-line progress report with ETA on a terminal (stderr), redrawn at most 4 times a second.

    Only for a TTY: piped or redirected output never gets carriage returns.
    """

    def __init__(self, stream: Any, label: str = "", interval_s: float = 0.25) -> None:
        self.stream = stream
        self.label = label
        self.interval_s = interval_s
        self._last = 0.0
        self._shown = False

    @classmethod
    def for_stderr(cls, label: str = "") -> TerminalProgress | None:
        import sys

        stream = sys.stderr
        try:
            tty = stream is not None and stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(stream, label) if tty else None

    def __call__(self, state: RunProgress) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        eta = state.eta_s
        eta_text = f", ETA {_format_wall(eta)}" if eta is not None else ""
        prefix = f"{self.label} " if self.label else ""
        line = (
            f"{prefix}{state.mode}: {state.fraction:6.1%} of {format_seconds_sim(state.duration_ns)} simulated, "
            f"{state.events:,} events{eta_text}"
        )
        try:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
        except (OSError, ValueError):
            return
        self._shown = True

    def clear(self) -> None:
        """Erase the progress line (before normal output or an error message)."""
        if self._shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._shown = False


def _format_wall(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
