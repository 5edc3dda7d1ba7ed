"""The debugger API over one Engine: step, run with breakpoints and watchpoints, go back.

Positions are event counts: position p means events 0..p-1 have happened and the
state shown is the state as of event p-1 (the engine's `probe_event` captures it
inside the action that logged it; at an action boundary it is the engine's own).

Going back never undoes anything: the session keeps engine checkpoints of
everything it has computed, restores the nearest one at or before the target and
replays at most one interval, forward or back (DESIGN.md section 7). The event log
keeps its future while replaying (`EventLog.keep_future`), so `Session.log` is the
whole computed run at every position, with no second copy.

Checkpoint memory is bounded: the interval is chosen from the size of the first
checkpoints so that they take at most `CHECKPOINT_BYTES_PER_EVENT` bytes per
logged event (pickled size, re-estimated as the run grows). They are kept pickled
(`_freeze`): in memory an engine state is about three times its pickled size, and
restoring one is rare next to replaying an interval. The session holds the log
(40 B/event) plus at most that.
"""

from __future__ import annotations

import bisect
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import Engine
from .eventlog import RecordedLog
from .expr import INT, Condition, FieldType, enum_type
from .observe import FIELD_TYPES, STATE_GETTERS
from .scenario import BreakpointSpec, Scenario
from .snapshot import Snapshot
from .taxonomy import EXIT_BY_NAME, EXIT_NAMES, KIND_BY_NAME, KIND_NAMES, MSR_SUB_NAMES
from .vcpu import MODE_NAMES

# Names a breakpoint condition may use: the event's columns, then the state of the
# event's vCPU as of that event.
_EVENT_FIELDS = ("index", "time", "vcpu", "kind", "exit", "sub", "a", "b", "parent")
# The typed schema conditions are checked against (lazytsc.expr): integers, and four
# names compared with 'strings' that must be one of their values.
_ENUM_FIELDS: dict[str, FieldType] = {
    "kind": enum_type(KIND_NAMES.values(), "event kind"),
    "exit": enum_type(["", *EXIT_NAMES.values()], "exit reason"),
    "sub": enum_type(["", *MSR_SUB_NAMES.values()], "MSR"),
    "mode": enum_type(MODE_NAMES.values(), "timer mode"),
}
CONDITION_NAMES: dict[str, FieldType] = {
    name: _ENUM_FIELDS.get(name, INT if FIELD_TYPES.get(name, "int") == "int" else _ENUM_FIELDS["mode"])
    for name in (*_EVENT_FIELDS, *STATE_GETTERS)
}
# Names a watchpoint may watch (per-vCPU state values, lazytsc.observe).
WATCH_NAMES: tuple[str, ...] = tuple(sorted(STATE_GETTERS))
# Values that change on (almost) every event are useless as watchpoints.
_UNWATCHABLE = frozenset({"now", "tsc", "now_ns", "tmcct"})

CHECKPOINT_BYTES_PER_EVENT = 8
MIN_INTERVAL, MAX_INTERVAL = 256, 1 << 16
STATE_WINDOW = 8  # events before a replay target whose state is kept too (cheap step back)
STATE_CACHE_MAX = 4096
_END = KIND_BY_NAME["end"]


class Breakpoint:
    """A stop rule: every set filter must match; `hits` counts matching events."""

    def __init__(
        self,
        kind: str = "",
        exit: str = "",
        vcpu: int | None = None,
        condition: str = "",
        enabled: bool = True,
        name: str = "",
    ) -> None:
        self.kind = kind
        self.exit = exit
        self.vcpu = vcpu
        self.condition = condition
        self.enabled = enabled
        self.name = name
        self.hits = 0
        self._kind = KIND_BY_NAME[kind] if kind else None
        self._exit = EXIT_BY_NAME[exit] if exit else None
        self._cond = Condition(condition, CONDITION_NAMES) if condition else None

    @classmethod
    def from_spec(cls, spec: BreakpointSpec) -> Breakpoint:
        return cls(spec.kind, spec.exit, spec.vcpu, spec.condition, spec.enabled, spec.name)

    @property
    def needs_state(self) -> bool:
        """A condition reads engine state: it is checked while replaying, event by event."""
        return self._cond is not None

    def describe(self) -> str:
        parts = []
        if self.kind:
            parts.append(f"kind={self.kind}")
        if self.exit:
            parts.append(f"exit={self.exit}")
        if self.vcpu is not None:
            parts.append(f"vcpu={self.vcpu}")
        if self.condition:
            parts.append(f"if {self.condition}")
        return self.name or " ".join(parts)

    def column_mask(self, kind: np.ndarray, exit_col: np.ndarray, vcpu: np.ndarray) -> np.ndarray:
        """Which events the kind/exit/vCPU filters match (the condition aside)."""
        m = np.ones(len(kind), dtype=bool)
        if self._kind is not None:
            m &= kind == self._kind
        if self._exit is not None:
            m &= exit_col == self._exit
        if self.vcpu is not None:
            m &= vcpu == self.vcpu
        return m

    def matches_filters(self, log, index: int) -> bool:
        """The kind/exit/vCPU filters alone."""
        if self._kind is not None and log.kind_at(index) != self._kind:
            return False
        if self._exit is not None and log.exit_at(index) != self._exit:
            return False
        return self.vcpu is None or log.vcpu_at(index) == self.vcpu

    def matches(self, engine: Engine, index: int) -> bool:
        """Does event `index` match, with the engine's state as the condition's state?"""
        log = engine.log
        if self._kind is not None and log.kind_at(index) != self._kind:
            return False
        if self._exit is not None and log.exit_at(index) != self._exit:
            return False
        if self.vcpu is not None and log.vcpu_at(index) != self.vcpu:
            return False
        if self._cond is None:
            return True
        return self._cond(_env(engine, index, self._cond.names))


class Watchpoint:
    """Stop when a named state value (lazytsc.observe) of a vCPU changes."""

    def __init__(self, name: str, vcpu: int | None = None, enabled: bool = True) -> None:
        if name not in STATE_GETTERS:
            hint = _closest(name, STATE_GETTERS)
            raise ValueError(f"unknown state name {name!r}" + (f": did you mean {hint!r}?" if hint else f"; known: {', '.join(WATCH_NAMES)}"))
        if name in _UNWATCHABLE:
            raise ValueError(f"{name!r} changes with time on every event; watch a register or page field instead")
        self.name = name
        self.vcpu = vcpu
        self.enabled = enabled
        self.hits = 0

    def describe(self) -> str:
        return f"watch {self.name}" + (f" (vCPU {self.vcpu})" if self.vcpu is not None else "")


def _closest(name: str, known: Iterable[str]) -> str:
    import difflib

    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else ""


def _env(engine: Engine, index: int, names: frozenset[str]) -> dict[str, Any]:
    log = engine.log
    ev = log.event(index)
    env: dict[str, Any] = {
        "index": index,
        "time": ev.time,
        "vcpu": ev.vcpu,
        "kind": KIND_NAMES.get(ev.kind, ""),
        "exit": EXIT_NAMES.get(ev.exit, "") if ev.exit >= 0 else "",
        "sub": MSR_SUB_NAMES.get(ev.sub, "") if ev.sub >= 0 else "",
        "a": ev.a,
        "b": ev.b,
        "parent": ev.parent,
    }
    known = 0 <= ev.vcpu < _nvcpus(engine)
    for name in names:
        if name in STATE_GETTERS:
            env[name] = engine.observe(ev.vcpu, name) if known else 0
    return env


def _nvcpus(engine: Engine) -> int:
    return len(engine.scenario.run.vcpus)


def _observe_all(engine: Engine) -> tuple[dict[str, Any], ...]:
    observe = engine.observe
    return tuple({name: observe(v, name) for name in STATE_GETTERS} for v in range(_nvcpus(engine)))


@dataclass(frozen=True)
class RunResult:
    """Why a run stopped: `breakpoint`, `watchpoint`, `end`, `until`, `limit`, `cancelled`, `start`.

    `event` is the index of the event that hit (the position is `event + 1`);
    for a watchpoint `old`/`new` are the value before and after it.
    """

    reason: str
    position: int
    breakpoint: Breakpoint | None = None
    event: int = -1
    watchpoint: Watchpoint | None = None
    old: Any = None
    new: Any = None


@dataclass
class _Captured:
    snapshot: Snapshot
    values: tuple[dict[str, Any], ...]


def _freeze(state: Any) -> Any:
    """An engine state as its pickle (a third of its size in memory), or as is if it does not pickle.

    Only the session's own states are pickled and unpickled, never anything read from a file.
    """
    try:
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return state


def _thaw(frozen: Any) -> Any:
    return pickle.loads(frozen) if isinstance(frozen, bytes) else frozen  # noqa: S301 (our own states)


class Session:
    """One debuggable run: an Engine plus checkpoints, breakpoints and watchpoints."""

    def __init__(self, scenario: Scenario, mode: str, checkpoint_every: int | None = None) -> None:
        self.scenario = scenario
        self.mode = mode
        self.engine = Engine(scenario, mode)
        self.engine.log.keep_future()
        self.log: RecordedLog = self.engine.log.recorded()
        self.breakpoints: list[Breakpoint] = [Breakpoint.from_spec(s) for s in scenario.breakpoints]
        self.watchpoints: list[Watchpoint] = []
        first = self.engine.save_state()
        self._cp_pos: list[int] = [0]
        self._cp_state: list[Any] = [_freeze(first)]
        self._adaptive = not checkpoint_every
        self.checkpoint_every = max(16, checkpoint_every) if checkpoint_every else self._interval_for(first)
        self._pos = 0
        self._states: dict[int, _Captured] = {}

    @staticmethod
    def _interval_for(state: Any) -> int:
        """Events between checkpoints so that they cost <= CHECKPOINT_BYTES_PER_EVENT each."""
        size = len(state) if isinstance(state, bytes) else 16_384  # a state that does not pickle: assume a large one
        return int(min(MAX_INTERVAL, max(MIN_INTERVAL, -(-size // CHECKPOINT_BYTES_PER_EVENT))))

    # ---- state ---------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Events executed so far: the cursor stands after event `position - 1`."""
        return self._pos

    @property
    def total(self) -> int:
        """Events computed so far (the whole run once it has ended)."""
        return len(self.log)

    @property
    def done(self) -> bool:
        """True with the cursor at the end of the run (nothing more to step)."""
        return self._pos >= len(self.log) and self.engine.done

    @property
    def complete(self) -> bool:
        """The whole run is computed (its END event is in the log)."""
        n = len(self.log)
        return n > 0 and self.log.kind_at(n - 1) == _END

    @property
    def checkpoints(self) -> int:
        return len(self._cp_pos)

    def checkpoint_bytes(self) -> int:
        """Pickled size of all checkpoints (the bound in the module docstring)."""
        return sum(len(s) if isinstance(s, bytes) else len(_freeze(s)) for s in self._cp_state)

    def _at_boundary(self) -> bool:
        return self._pos == len(self.engine.log)

    def snapshot(self) -> Snapshot:
        """The state as of event `position - 1` (the start state at position 0)."""
        if self._at_boundary():
            return self.engine.snapshot()
        return self._states[self._pos - 1].snapshot

    def observe(self, vcpu: int, name: str) -> Any:
        """A named state value (lazytsc.observe) of one vCPU as of the cursor."""
        if self._at_boundary():
            return self.engine.observe(vcpu, name)
        return self._states[self._pos - 1].values[vcpu][name]

    def _values(self) -> tuple[dict[str, Any], ...]:
        if self._at_boundary():
            return _observe_all(self.engine)
        return self._states[self._pos - 1].values

    # ---- engine movement -------------------------------------------------------------------
    def _restore(self, k: int) -> None:
        self.engine.probe_event(-1, None)
        self.engine.restore_state(_thaw(self._cp_state[k]))

    def _restore_before(self, index: int) -> int:
        """Restore the last checkpoint at or before event count `index`; returns its position."""
        k = bisect.bisect_right(self._cp_pos, max(0, index)) - 1
        self._restore(k)
        return self._cp_pos[k]

    def _maybe_checkpoint(self) -> None:
        n = len(self.engine.log)
        if n - self._cp_pos[-1] >= self.checkpoint_every:
            self._cp_pos.append(n)
            self._cp_state.append(_freeze(self.engine.save_state()))
            count = len(self._cp_pos)
            if self._adaptive and count & (count - 1) == 0:
                self._reestimate()

    def _reestimate(self) -> None:
        """States grow as a run goes on: widen the interval (and thin) to keep the bound."""
        wanted = self._interval_for(self._cp_state[-1])
        if wanted <= self.checkpoint_every:
            return
        self.checkpoint_every = wanted
        keep_pos, keep_state = [self._cp_pos[0]], [self._cp_state[0]]
        for pos, state in zip(self._cp_pos[1:], self._cp_state[1:], strict=True):
            if pos - keep_pos[-1] >= wanted or pos == self._cp_pos[-1]:
                keep_pos.append(pos)
                keep_state.append(state)
        self._cp_pos, self._cp_state = keep_pos, keep_state

    def _forward_to(self, target: int, cancel: Callable[[], bool] | None = None, progress: Callable[[int], None] | None = None, progress_every: int = 20_000) -> bool:
        """Run the engine to the first action boundary >= `target`; False if cancelled."""
        engine = self.engine
        log = engine.log
        next_progress = len(log) + progress_every
        while True:
            self._maybe_checkpoint()
            n = len(log)
            if n >= target or engine.done:
                return True
            if cancel is not None and cancel():
                return False
            chunk = min(target - n, self._cp_pos[-1] + self.checkpoint_every - n, progress_every)
            engine.run(max_events=max(1, chunk))
            if progress is not None and len(log) >= next_progress:
                progress(len(log))
                next_progress = len(log) + progress_every

    def _walk(self, lo: int, grab: Callable[[Engine, int], Any], visit: Callable[[int, Any], bool], keep_going: Callable[[int], bool]) -> int:
        """Visit events from index `lo` on, in order, each with the state as of that event.

        The engine runs from where it stands (a boundary at or before `lo`): in bulk up
        to `lo`, then one action at a time. `grab(engine, i)` takes what `visit` needs
        right after event i is logged; for the last event of an action it is taken again
        at the action's end (the state after that event is the action's final state).
        `visit(i, grabbed)` returns True to stop; `keep_going(events)` is asked before
        each action. Returns the index visit stopped at, or -1.
        """
        engine = self.engine
        pending: list = []
        stopped = [-1]

        def flush() -> None:
            if pending and stopped[0] < 0 and visit(pending[0], pending[1]):
                stopped[0] = pending[0]
            pending.clear()

        def probe(e: Engine) -> None:
            i = len(e.log) - 1
            flush()
            if stopped[0] < 0:
                pending[:] = [i, grab(e, i)]
                e.probe_event(i + 1, probe)

        engine.probe_event(lo, probe)
        try:
            self._forward_to(lo)
            while True:
                if pending:
                    pending[1] = grab(engine, pending[0])
                    flush()
                n = len(engine.log)
                if stopped[0] >= 0 or engine.done or not keep_going(n):
                    break
                engine.step()
                self._maybe_checkpoint()
        finally:
            engine.probe_event(-1, None)
        return stopped[0]

    def _capture(self, lo: int, p: int) -> None:
        """Replay from where the engine stands to the boundary >= p, keeping states from lo."""
        states = self._states
        if len(states) > STATE_CACHE_MAX:
            keep = states.get(self._pos - 1)
            states.clear()
            if keep is not None:
                states[self._pos - 1] = keep

        def visit(i: int, captured: _Captured) -> bool:
            states[i] = captured
            return False

        self._walk(lo, lambda e, _i: _Captured(e.snapshot(), _observe_all(e)), visit, lambda n: n < p)

    def _seek(self, p: int, window: int = STATE_WINDOW, cancel=None, progress=None) -> bool:
        """Make `p` the position: restore the nearest checkpoint and replay (either direction)."""
        p = max(0, p)
        engine = self.engine
        b = len(engine.log)
        if p == b or (p < b and (p - 1) in self._states):
            self._pos = p
            return True
        k = bisect.bisect_right(self._cp_pos, p) - 1
        if self._cp_pos[k] == p:
            self._restore(k)
            self._pos = p
            return True
        start = self._cp_pos[k]  # < p
        if b > p or start > b:
            # the engine is past the target, or a checkpoint between it and the target is nearer
            self._restore(k)
            b = start
        lo = max(b, p - 1 - window)
        if lo - b > 2 * self.checkpoint_every and (cancel is not None or progress is not None):
            if not self._forward_to(lo - window, cancel, progress):
                self._pos = len(engine.log)
                return False
            lo = max(len(engine.log), lo)
        self._capture(lo, p)
        self._pos = min(p, len(engine.log))
        return True

    # ---- forward -------------------------------------------------------------------------
    def step(self) -> int:
        """One event forward (F10); returns 1, or 0 at the end of the run."""
        if self.done:
            return 0
        before = self._pos
        self._seek(before + 1)
        return self._pos - before

    def step_action(self) -> int:
        """To the end of the engine action holding the next event (F11); returns events passed."""
        if self.done:
            return 0
        before = self._pos
        if len(self.engine.log) > before:
            self._pos = len(self.engine.log)
        else:
            self.engine.probe_event(-1, None)
            self.engine.step()
            self._maybe_checkpoint()
            self._pos = len(self.engine.log)
        return self._pos - before

    def step_vcpu(self, vcpu: int) -> int:
        """Forward to the next event of `vcpu` (next event in this lane)."""
        start = self._pos
        nxt = self.next_in_lane(vcpu, +1)
        if nxt >= 0:
            self._seek(nxt + 1)
        else:
            self.run(breakpoints=[Breakpoint(vcpu=vcpu)], watchpoints=[])
        return self._pos - start

    def next_in_lane(self, vcpu: int, direction: int) -> int:
        """Index of the next (+1) or previous (-1) computed event of `vcpu`, -1 if none."""
        col = self.log.column("vcpu")
        cur = self._pos - 1
        if direction > 0:
            hits = np.flatnonzero(col[cur + 1 :] == vcpu)
            return cur + 1 + int(hits[0]) if len(hits) else -1
        hits = np.flatnonzero(col[: max(0, cur)] == vcpu)
        return int(hits[-1]) if len(hits) else -1

    def goto(self, pos: int, cancel: Callable[[], bool] | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Make event count `pos` the position (either direction); returns the position."""
        self._seek(pos, cancel=cancel, progress=progress)
        return self._pos

    def goto_event(self, index: int) -> int:
        """Make event `index` the current event (the cursor after it)."""
        return self.goto(index + 1)

    def _active(self, breakpoints: list[Breakpoint] | None, watchpoints: list[Watchpoint] | None) -> tuple[list[Breakpoint], list[Watchpoint]]:
        bps = [b for b in (self.breakpoints if breakpoints is None else breakpoints) if b.enabled]
        wps = [w for w in (self.watchpoints if watchpoints is None else watchpoints) if w.enabled]
        return bps, wps

    def run(
        self,
        until_ns: int | None = None,
        max_events: int | None = None,
        breakpoints: list[Breakpoint] | None = None,
        progress: Callable[[int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        progress_every: int = 20_000,
        watchpoints: list[Watchpoint] | None = None,
    ) -> RunResult:
        """Run forward until a breakpoint or watchpoint hits, `until_ns`, `max_events` more events, the end, or cancel."""
        bps, wps = self._active(breakpoints, watchpoints)
        limit = self._pos + max_events if max_events is not None else None
        if any(b.needs_state for b in bps) or wps:
            return self._run_stateful(bps, wps, until_ns, limit, progress, cancel, progress_every)
        return self._run_plain(bps, until_ns, limit, progress, cancel, progress_every)

    def _stop_index(self, until_ns: int | None, limit: int | None) -> int:
        """How far a run may go within what is computed."""
        stop = len(self.log)
        if limit is not None:
            stop = min(stop, limit)
        if until_ns is not None:
            stop = min(stop, int(np.searchsorted(self.log.column("time"), until_ns, side="right")))
        return max(stop, self._pos)

    def _first_plain_hit(self, bps: list[Breakpoint], lo: int, hi: int) -> tuple[int, list[Breakpoint]]:
        if not bps or hi <= lo:
            return -1, []
        log = self.log
        kind, exit_col, vcpu = (log.column(n)[lo:hi] for n in ("kind", "exit", "vcpu"))
        masks = [b.column_mask(kind, exit_col, vcpu) for b in bps]
        found = np.flatnonzero(np.logical_or.reduce(masks))
        if not len(found):
            return -1, []
        j = int(found[0])
        return lo + j, [b for b, m in zip(bps, masks, strict=True) if m[j]]

    def _stop_at(self, index: int, bps: list[Breakpoint]) -> RunResult:
        self._seek(index + 1)
        for b in bps:
            b.hits += 1
        return RunResult("breakpoint", self._pos, bps[0], index)

    def _stop_on(self, index: int, hit: list[Breakpoint], change) -> RunResult:
        """Stop after event `index`: on the watchpoint that changed there, else on its breakpoints."""
        if change is None:
            return self._stop_at(index, hit)
        self._seek(index + 1)
        w, old, new = change
        w.hits += 1
        return RunResult("watchpoint", self._pos, None, index, w, old, new)

    def _run_plain(self, bps, until_ns, limit, progress, cancel, progress_every) -> RunResult:
        # 1. What is already computed: search the columns, then jump once.
        stop = self._stop_index(until_ns, limit)
        index, hit = self._first_plain_hit(bps, self._pos, stop)
        if index >= 0:
            return self._stop_at(index, hit)
        if stop < len(self.log) or self.complete:
            if not self._seek(stop, cancel=cancel, progress=progress):
                return RunResult("cancelled", self._pos)
            if self.done:
                return RunResult("end", self._pos)
            return RunResult("limit" if limit is not None and self._pos >= limit else "until", self._pos)
        # 2. Beyond: run the engine in chunks, searching each new chunk.
        self._seek(stop)
        engine = self.engine
        next_progress = self._pos + progress_every
        while not engine.done:
            n0 = len(engine.log)
            if limit is not None and n0 >= limit:
                return RunResult("limit", self._pos)
            nxt = engine.next_time
            if until_ns is not None and nxt is not None and nxt > until_ns:
                return RunResult("until", self._pos)
            if cancel is not None and cancel():
                return RunResult("cancelled", self._pos)
            self._maybe_checkpoint()
            chunk = min(progress_every, self._cp_pos[-1] + self.checkpoint_every - n0)
            if limit is not None:
                chunk = min(chunk, limit - n0)
            engine.run(until_ns=until_ns, max_events=max(1, chunk))
            self._maybe_checkpoint()
            n1 = len(engine.log)
            index, hit = self._first_plain_hit(bps, n0, n1 if limit is None else min(n1, limit))
            if index >= 0:
                return self._stop_at(index, hit)
            self._pos = n1
            if limit is not None and n1 > limit:
                self._seek(limit)
                return RunResult("limit", self._pos)
            if progress is not None and n1 >= next_progress:
                progress(n1)
                next_progress = n1 + progress_every
        return RunResult("end", self._pos)

    def _grabber(self, bps: list[Breakpoint], wps: list[Watchpoint]) -> Callable[[Engine, int], Any]:
        """What conditions and watchpoints read at one event: (env or None, watched values)."""
        names = frozenset().union(*(b._cond.names for b in bps if b._cond is not None))
        watched = sorted({w.name for w in wps})

        def grab(e: Engine, i: int) -> tuple:
            env = _env(e, i, names) if names else None
            values = tuple(tuple(e.observe(v, n) for n in watched) for v in range(_nvcpus(e))) if watched else ()
            return env, values

        grab.watched = watched  # type: ignore[attr-defined]
        return grab

    @staticmethod
    def _hits_at(e: Engine, i: int, env, bps: list[Breakpoint]) -> list[Breakpoint]:
        out = []
        for b in bps:
            if b._cond is None:
                if b.matches(e, i):
                    out.append(b)
            elif b.matches_filters(e.log, i) and b._cond(env):
                out.append(b)
        return out

    @staticmethod
    def _watch_change(values: tuple, prev: list, watched: list[str], wps: list[Watchpoint]):
        """The first watchpoint whose value differs from `prev` (then `prev` is updated)."""
        found = None
        for vid, row in enumerate(values):
            for j, name in enumerate(watched):
                old = prev[vid][j]
                new = row[j]
                if new != old and found is None:
                    for w in wps:
                        if w.name == name and (w.vcpu is None or w.vcpu == vid):
                            found = (w, old, new)
                            break
        prev[:] = [list(r) for r in values]
        return found

    def _initial_watch(self, watched: list[str]) -> list[list]:
        values = self._values()
        return [[v[n] for n in watched] for v in values]

    def _run_stateful(self, bps, wps, until_ns, limit, progress, cancel, progress_every) -> RunResult:
        """Conditions and watchpoints need the state as of each event: walk with probes."""
        engine = self.engine
        start = self._pos
        grab = self._grabber(bps, wps)
        watched = grab.watched  # type: ignore[attr-defined]
        prev = self._initial_watch(watched)
        if len(engine.log) > start:
            self._restore_before(start)  # the engine is past the cursor: replay that action
        result: list = []
        next_progress = [start + progress_every]

        def visit(i: int, grabbed) -> bool:
            env, values = grabbed
            hit = self._hits_at(engine, i, env, bps) if bps else []
            if hit:
                result[:] = [i, hit, None]
                return True
            if wps:
                change = self._watch_change(values, prev, watched, wps)
                if change is not None:
                    result[:] = [i, [], change]
                    return True
            return False

        def keep_going(n: int) -> bool:
            if n < start:
                return True
            if limit is not None and n >= limit:
                return False
            nxt = engine.next_time
            if until_ns is not None and nxt is not None and nxt > until_ns:
                return False
            if cancel is not None and cancel():
                result[:] = ["cancelled"]
                return False
            if progress is not None and n >= next_progress[0]:
                progress(n)
                next_progress[0] = n + progress_every
            return True

        index = self._walk(start, grab, visit, keep_going)
        if index < 0:
            n = len(engine.log)
            if result == ["cancelled"]:
                self._pos = n
                return RunResult("cancelled", n)
            if engine.done:
                self._pos = n
                return RunResult("end", n)
            if limit is not None and n >= limit:
                self._seek(limit)
                return RunResult("limit", self._pos)
            self._pos = n
            return RunResult("until", n)
        return self._stop_on(*result)

    # ---- backward ------------------------------------------------------------------------
    def step_back(self) -> bool:
        """One event back (Shift+F10); False at the start."""
        if self._pos == 0:
            return False
        self._seek(self._pos - 1)
        return True

    def action_start(self, pos: int | None = None) -> int:
        """The action boundary before event count `pos` (default: the cursor)."""
        pos = self._pos if pos is None else pos
        if pos <= 0:
            return 0
        here = self._pos
        last = self._restore_before(pos - 1)
        engine = self.engine
        while len(engine.log) < pos and not engine.done:
            last = len(engine.log)
            engine.step()
        self._seek(here)
        return last

    def step_back_action(self) -> bool:
        """Back to the start of the action holding the current event (Shift+F11)."""
        if self._pos == 0:
            return False
        self._seek(self.action_start())
        return True

    def reverse_continue(self, breakpoints: list[Breakpoint] | None = None, watchpoints: list[Watchpoint] | None = None) -> RunResult:
        """Back to the most recent earlier event that hits an enabled breakpoint or watchpoint."""
        bps, wps = self._active(breakpoints, watchpoints)
        limit = self._pos - 1  # the current event is where we stand: look strictly before it
        if limit <= 0 or not (bps or wps):
            self._seek(0)
            return RunResult("start", 0)
        if not wps and not any(b.needs_state for b in bps):
            log = self.log
            kind, exit_col, vcpu = (log.column(n)[:limit] for n in ("kind", "exit", "vcpu"))
            masks = [b.column_mask(kind, exit_col, vcpu) for b in bps]
            found = np.flatnonzero(np.logical_or.reduce(masks))
            if not len(found):
                self._seek(0)
                return RunResult("start", 0)
            i = int(found[-1])
            return self._stop_at(i, [b for b, m in zip(bps, masks, strict=True) if m[i]])
        # Stateful: scan checkpoint intervals backward, replaying each with probes.
        k = bisect.bisect_right(self._cp_pos, limit - 1) - 1
        seg_end = limit
        while k >= 0:
            last = self._scan_interval(k, seg_end, bps, wps)
            if last is not None:
                return self._stop_on(*last)
            seg_end = self._cp_pos[k]
            k -= 1
        self._seek(0)
        return RunResult("start", 0)

    def _scan_interval(self, k: int, seg_end: int, bps: list[Breakpoint], wps: list[Watchpoint]):
        """Replay checkpoint interval k up to event count `seg_end`: its last hit, or None."""
        self._restore(k)
        engine = self.engine
        grab = self._grabber(bps, wps)
        watched = grab.watched  # type: ignore[attr-defined]
        prev = [[v[n] for n in watched] for v in _observe_all(engine)]
        last: list = []

        def visit(i: int, grabbed) -> bool:
            if i >= seg_end:
                return True
            env, values = grabbed
            hit = self._hits_at(engine, i, env, bps) if bps else []
            change = self._watch_change(values, prev, watched, wps) if wps else None
            if hit:
                last[:] = [(i, hit, None)]
            elif change is not None:
                last[:] = [(i, [], change)]
            return False

        self._walk(self._cp_pos[k], grab, visit, lambda n: n < seg_end)
        return last[0] if last else None

    def last_change(self, vcpu: int, name: str, cancel: Callable[[], bool] | None = None, progress: Callable[[float], None] | None = None) -> int:
        """Index of the latest event at or before the cursor that changed `name` of `vcpu`.

        -1 if unchanged since the start (or the search was cancelled). The position is
        kept. Replays interval by interval backward: about one interval's replay each.
        """
        here = self._pos
        if here == 0 or name in _UNWATCHABLE:
            return -1
        watch = [Watchpoint(name, vcpu)]
        k = bisect.bisect_right(self._cp_pos, here - 1) - 1
        seg_end = here
        total = max(1, k + 1)
        found = -1
        try:
            while k >= 0:
                if cancel is not None and cancel():
                    break
                last = self._scan_interval(k, seg_end, [], watch)
                if last is not None:
                    found = last[0]
                    break
                seg_end = self._cp_pos[k]
                k -= 1
                if progress is not None:
                    progress(1.0 - (k + 1) / total)
        finally:
            self._seek(here)
        return found

    def restart(self) -> None:
        """Back to the start: the first checkpoint; hit counts reset."""
        self._seek(0)
        for bp in self.breakpoints:
            bp.hits = 0
        for wp in self.watchpoints:
            wp.hits = 0

    def run_to_time(self, time_ns: int) -> int:
        """Run-to-cursor on the timeline: forward or back to the last event at or before `time_ns`."""
        times = self.log.column("time")
        if len(times) and (times[-1] > time_ns or self.complete):
            return self.goto(int(np.searchsorted(times, time_ns, side="right")))
        self.run(until_ns=time_ns, breakpoints=[], watchpoints=[])
        return self._pos


def range_stats(log, start: int, stop: int) -> dict:
    """Counts per event kind and per exit reason (and msr-write sub-reason) in events [start, stop)."""
    start, stop = max(0, start), max(0, min(stop, len(log)))
    if stop < start:
        start, stop = stop, start
    kind = log.column("kind")[start:stop]
    exit_col = log.column("exit")[start:stop]
    sub = log.column("sub")[start:stop]
    times = log.column("time")
    kinds = {KIND_NAMES.get(int(k), str(k)): int(n) for k, n in zip(*np.unique(kind, return_counts=True), strict=True)}
    has_exit = exit_col >= 0
    exits = {EXIT_NAMES.get(int(e), str(e)): int(n) for e, n in zip(*np.unique(exit_col[has_exit], return_counts=True), strict=True)}
    msr = EXIT_BY_NAME.get("msr-write")
    subs = {}
    if msr is not None:
        sel = (exit_col == msr) & (sub >= 0)
        subs = {MSR_SUB_NAMES.get(int(s), str(s)): int(n) for s, n in zip(*np.unique(sub[sel], return_counts=True), strict=True)}
    t0 = int(times[start]) if start < len(times) and stop > start else 0
    t1 = int(times[stop - 1]) if stop > start else t0
    return {"events": stop - start, "first": start, "last": stop - 1, "t_first_ns": t0, "t_last_ns": t1, "dt_ns": t1 - t0, "kinds": kinds, "exits": exits, "exits_total": int(np.count_nonzero(has_exit)), "msr_write": subs}


def watchable_names() -> Iterable[str]:
    """State names a watchpoint accepts."""
    return [n for n in WATCH_NAMES if n not in _UNWATCHABLE]
