"""The debugger API over one Engine: step, run with breakpoints, step back, reverse continue.

Going back never undoes anything: the session keeps engine checkpoints every
`checkpoint_every` events, restores the nearest one at or before the target and
replays forward deterministically (DESIGN.md section 7). Positions are event
counts at action boundaries (an action may log several causally linked events).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import Engine, EngineState
from .expr import INT, Condition, FieldType, enum_type
from .observe import FIELD_TYPES, STATE_GETTERS
from .scenario import BreakpointSpec, Scenario
from .snapshot import Snapshot
from .taxonomy import EXIT_BY_NAME, EXIT_NAMES, KIND_BY_NAME, KIND_NAMES, MSR_SUB_NAMES
from .vcpu import MODE_NAMES

# Names a breakpoint condition may use: the event's columns, then the state of the
# event's vCPU after the step that logged it.
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

    def matches(self, engine: Engine, index: int) -> bool:
        log = engine.log
        if self._kind is not None and log.kind_at(index) != self._kind:
            return False
        if self._exit is not None and log.exit_at(index) != self._exit:
            return False
        vid = log.vcpu_at(index)
        if self.vcpu is not None and vid != self.vcpu:
            return False
        if self._cond is None:
            return True
        return self._cond(_env(engine, index, self._cond.names))


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
    v = engine.vcpus[ev.vcpu] if 0 <= ev.vcpu < len(engine.vcpus) else None
    for name in names:
        if name in STATE_GETTERS:
            env[name] = STATE_GETTERS[name](engine, v) if v is not None else 0
    return env


@dataclass(frozen=True)
class RunResult:
    """Why a run stopped: `breakpoint`, `end`, `until`, `limit`, `cancelled`, `step`, `start`."""

    reason: str
    position: int
    breakpoint: Breakpoint | None = None
    event: int = -1


class Session:
    """One debuggable run: an Engine plus checkpoints and breakpoints."""

    def __init__(self, scenario: Scenario, mode: str, checkpoint_every: int = 512) -> None:
        self.scenario = scenario
        self.mode = mode
        self.engine = Engine(scenario, mode)
        self.checkpoint_every = max(16, checkpoint_every)
        self.breakpoints: list[Breakpoint] = [Breakpoint.from_spec(s) for s in scenario.breakpoints]
        self._cp_pos: list[int] = [0]
        self._cp_state: list[EngineState] = [self.engine.save_state()]
        # Events of the last action after the one a breakpoint stopped on: the next
        # run() checks them first, so no hit inside one action is skipped.
        self._unchecked: tuple[int, int] | None = None

    # ---- state ---------------------------------------------------------------------------
    @property
    def position(self) -> int:
        return len(self.engine.log)

    @property
    def done(self) -> bool:
        return self.engine.done

    @property
    def log(self):
        return self.engine.log

    def snapshot(self) -> Snapshot:
        return self.engine.snapshot()

    def _maybe_checkpoint(self) -> None:
        pos = self.position
        if pos - self._cp_pos[-1] >= self.checkpoint_every:
            self._cp_pos.append(pos)
            self._cp_state.append(self.engine.save_state())

    # ---- forward -------------------------------------------------------------------------
    def step(self) -> int:
        """Run one action (at least one event); returns the number of events it logged."""
        self._unchecked = None
        n = self.engine.step()
        self._maybe_checkpoint()
        return n

    def step_vcpu(self, vcpu: int) -> int:
        """Step until an event of `vcpu` is logged (F11: step into one vCPU)."""
        start = self.position
        while not self.done:
            n0 = self.position
            self.step()
            log = self.engine.log
            if any(log.vcpu_at(i) == vcpu for i in range(n0, self.position)):
                break
        return self.position - start

    def run(
        self,
        until_ns: int | None = None,
        max_events: int | None = None,
        breakpoints: list[Breakpoint] | None = None,
        progress: Callable[[int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        progress_every: int = 20_000,
    ) -> RunResult:
        """Run forward until a breakpoint hits, `until_ns`, `max_events` more events, the end, or cancel."""
        active = [b for b in (self.breakpoints if breakpoints is None else breakpoints) if b.enabled]
        engine = self.engine
        limit = self.position + max_events if max_events is not None else None
        next_progress = self.position + progress_every
        pending, self._unchecked = self._unchecked, None
        if pending is not None and active and pending[1] == self.position:
            hit = self._check(active, pending[0], pending[1])
            if hit is not None:
                return hit
        while not engine.done:
            if cancel is not None and cancel():
                return RunResult("cancelled", self.position)
            if limit is not None and self.position >= limit:
                return RunResult("limit", self.position)
            nxt = engine.next_time
            if until_ns is not None and nxt is not None and nxt > until_ns:
                return RunResult("until", self.position)
            if not active:
                chunk = self.checkpoint_every - (self.position - self._cp_pos[-1])
                if limit is not None:
                    chunk = min(chunk, limit - self.position)
                engine.run(until_ns=until_ns, max_events=max(1, chunk))
                self._maybe_checkpoint()
            else:
                n0 = self.position
                self.step()
                hit = self._check(active, n0, self.position)
                if hit is not None:
                    return hit
            if progress is not None and self.position >= next_progress:
                progress(self.position)
                next_progress = self.position + progress_every
        return RunResult("end", self.position)

    def _check(self, active: list[Breakpoint], start: int, stop: int) -> RunResult | None:
        """Check events [start, stop) in order; stop at the first event any breakpoint hits."""
        for index in range(start, stop):
            hit = None
            for bp in active:
                if bp.matches(self.engine, index):
                    bp.hits += 1
                    hit = hit or bp
            if hit is not None:
                if index + 1 < stop:
                    self._unchecked = (index + 1, stop)
                return RunResult("breakpoint", self.position, hit, index)
        return None

    # ---- backward ------------------------------------------------------------------------
    def _restore_at_or_before(self, pos: int) -> int:
        k = bisect.bisect_right(self._cp_pos, pos) - 1
        self.engine.restore_state(self._cp_state[k])
        return self._cp_pos[k]

    def goto(self, pos: int) -> int:
        """Go to the first action boundary at or after event count `pos` (either direction)."""
        pos = max(0, pos)
        self._unchecked = None
        if pos < self.position:
            # Only checkpoints inside the current log are usable (their prefix is there);
            # going forward simply runs on.
            self._restore_at_or_before(pos)
        while self.position < pos and not self.done:
            self.step()
        return self.position

    def _boundaries(self, start_cp: int, stop: int) -> list[int]:
        """Replay from checkpoint `start_cp` to `stop`, returning every boundary passed."""
        self.engine.restore_state(self._cp_state[start_cp])
        bounds = [self.position]
        while self.position < stop and not self.done:
            self.engine.step()
            bounds.append(self.position)
        return bounds

    def step_back(self) -> bool:
        """Return to the boundary before the current one; False at the start."""
        self._unchecked = None
        here = self.position
        if here == 0:
            return False
        k = bisect.bisect_left(self._cp_pos, here) - 1
        bounds = self._boundaries(max(0, k), here)
        earlier = [b for b in bounds if b < here]
        target = earlier[-1] if earlier else 0
        self.goto(target)
        return True

    def reverse_continue(self, breakpoints: list[Breakpoint] | None = None) -> RunResult:
        """Run backwards to the most recent earlier event that hits an enabled breakpoint."""
        active = [b for b in (self.breakpoints if breakpoints is None else breakpoints) if b.enabled]
        here = self.position
        # The current batch is where we stand; look strictly before its first event.
        k = bisect.bisect_left(self._cp_pos, here) - 1
        bounds = self._boundaries(max(0, k), here)
        current_start = [b for b in bounds if b < here]
        limit = current_start[-1] if current_start else 0
        seg_end = limit
        k = bisect.bisect_right(self._cp_pos, max(0, seg_end - 1)) - 1
        while k >= 0 and active:
            self.engine.restore_state(self._cp_state[k])
            last_hit: tuple[int, Breakpoint, int] | None = None
            while self.position < seg_end and not self.done:
                n0 = self.position
                self.engine.step()
                for index in range(n0, min(self.position, seg_end)):
                    for bp in active:
                        if bp.matches(self.engine, index):
                            last_hit = (self.position, bp, index)
                            break
            if last_hit is not None:
                pos, bp, index = last_hit
                self.goto(pos)
                bp.hits += 1
                return RunResult("breakpoint", self.position, bp, index)
            seg_end = self._cp_pos[k]
            k -= 1
        self.goto(0)
        return RunResult("start", self.position)

    def restart(self) -> None:
        """Back to the start: the first checkpoint; hit counts reset."""
        self._unchecked = None
        self.engine.restore_state(self._cp_state[0])
        for bp in self.breakpoints:
            bp.hits = 0

    def run_to_time(self, time_ns: int) -> int:
        """Run-to-cursor on the timeline: forward or back to the last boundary at or before `time_ns`."""
        times = self.engine.log.column("time")
        if len(times) and times[-1] > time_ns:
            import numpy as np

            idx = int(np.searchsorted(times, time_ns, side="right"))
            return self.goto(idx)
        self.run(until_ns=time_ns, breakpoints=[])
        return self.position
