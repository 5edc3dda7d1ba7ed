"""Bounded exhaustive search over guest programs: iterative deepening with state merging.

For depth d = 1, 2, ... the search walks every program of up to d letters depth-first,
branching with Engine.save_state/restore_state, and merges states by their canonical
fingerprint (canon.py): a state already explored with at least as many letters left is
not explored again. A path stops at its first violation: what follows is its consequence
(the patch's known hang is a flag, not a violation: the walk goes on to find the lost
timers it causes). Depth d is complete when its walk ends:
then every program of d letters either holds throughout -- checked after every engine
action, and through its end (a long idle time with no more letters) -- or first fails
with one of the findings. A finding recorded in iteration d has no counterexample
shorter than d letters.

Violations of `lost_timer` and `late_vs_classic` are confirmed by the classic oracle: the
same program replayed as a scenario in classic mode must deliver the deadline (on time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import Engine
from ..scenario import parse_scenario
from ..taxonomy import Kind
from .alphabet import Alphabet
from .canon import fingerprint
from .driver import EXPLORE_DURATION_NS, Driver, Step
from .invariants import LOST_AFTER_NS, ORACLE, Candidate, is_flag
from .program import script_text
from .setups import SETUPS, Setup, header_text

SETTLE_NS = 1_000_000  # the program end: time with no more letters, more than LOST_AFTER_NS
ProgressFn = Callable[[dict], None]


class Stop(Exception):
    """The time limit passed or the user cancelled: the current depth is incomplete."""


@dataclass
class Found:
    """The first violation of one finding (and subclass) in one search."""

    finding: str
    subclass: str
    detail: str
    steps: tuple[Step, ...]
    settled: bool  # found in the program-end idle time after the last letter
    candidate: Candidate
    depth: int


@dataclass
class TaskResult:
    variant: str
    setup: str
    nvcpus: int
    depth_done: int  # every program of this many letters was explored
    depth_target: int
    states: int  # distinct states of the last complete depth
    transitions: int  # letters applied, all iterations
    seconds: float
    found: list[Found] = field(default_factory=list)
    partial_states: int = 0  # states seen in the incomplete iteration (if any)
    oracle_runs: int = 0


class Oracle:
    """Classic mode on the same program: when does it deliver a deadline?"""

    def __init__(self, setup: Setup, variant: str, nvcpus: int) -> None:
        self.setup = setup
        self.variant = variant
        self.nvcpus = nvcpus
        self.cache: dict[tuple, list[list[tuple[int, int]]]] = {}
        self.runs = 0

    def interrupts(self, steps: tuple[Step, ...], until: int) -> list[list[tuple[int, int]]]:
        """(ns, tsc) of every timer interrupt per vCPU, classic mode, up to `until`."""
        key = (tuple((s.at, s.vcpu, repr(s.ops)) for s in steps), until)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.runs += 1
        text = header_text(self.setup, self.variant, self.nvcpus, until, "classic", "oracle", "classic replay") + "\n" + script_text(steps, self.nvcpus)
        engine = Engine(parse_scenario(text, "<oracle>"), "classic")
        engine.run()
        log = engine.log
        kinds = log.column("kind")
        out: list[list[tuple[int, int]]] = [[] for _ in range(self.nvcpus)]
        times, vcpus, a = log.column("time"), log.column("vcpu"), log.column("a")
        for i in (kinds == int(Kind.GUEST_TIMER_IRQ)).nonzero()[0]:
            out[int(vcpus[i])].append((int(times[i]), int(a[i])))
        if len(self.cache) > 4096:
            self.cache.clear()
        self.cache[key] = out
        return out

    def delivery(self, steps: tuple[Step, ...], cand: Candidate) -> int | None:
        """When classic mode delivers the candidate's deadline (None: never, in the horizon)."""
        req = steps[cand.want_step].at
        until = max(cand.time, req) + LOST_AFTER_NS + SETTLE_NS
        for ns, tsc in self.interrupts(steps, until)[cand.vcpu]:
            if ns >= req and tsc >= cand.want:
                return ns
        return None

    def phantoms(self, steps: tuple[Step, ...], vcpu: int, until: int) -> int:
        """Timer interrupts classic mode takes up to `until` while the guest wants nothing."""
        wants = sorted((s.at, n, s.want) for n, s in enumerate(steps) if s.vcpu == vcpu and s.want is not None)
        want, delivered, count, k = 0, False, 0, 0
        for ns, tsc in self.interrupts(steps, until + SETTLE_NS)[vcpu]:
            if ns > until:
                break
            while k < len(wants) and wants[k][0] <= ns:
                want, delivered = wants[k][2], False
                k += 1
            if want and not delivered:
                delivered = tsc >= want
            else:
                count += 1
        return count

    def confirms(self, steps: tuple[Step, ...], cand: Candidate, tolerance: int) -> tuple[bool, str]:
        if cand.finding == "no_phantom":
            classic = self.phantoms(steps, cand.vcpu, cand.late_by + tolerance)
            if cand.want > classic:
                return True, f"{cand.detail}; classic mode takes {classic} such interrupt{'s' if classic != 1 else ''} by then"
            return False, ""
        t_c = self.delivery(steps, cand)
        if t_c is None:
            return False, ""
        if cand.finding == "lost_timer":
            return True, f"{cand.detail}; classic delivers it at {t_c} ns"
        if cand.late_by > t_c + tolerance:
            return True, f"{cand.detail}; classic delivers it at {t_c} ns, {cand.late_by - t_c} ns earlier"
        return False, ""


@dataclass
class SearchSpec:
    variant: str
    setup: str
    nvcpus: int
    depth: int
    alphabet: Alphabet
    deadline: float | None = None  # time.monotonic() after which the search stops


class Search:
    def __init__(self, spec: SearchSpec, progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None) -> None:
        self.spec = spec
        self.driver = Driver(SETUPS[spec.setup], spec.variant, spec.nvcpus, spec.alphabet)
        self.oracle = Oracle(SETUPS[spec.setup], spec.variant, spec.nvcpus)
        self.progress = progress
        self.cancel = cancel
        self.found: dict[tuple[str, str], Found] = {}
        self.transitions = 0
        self.seen: dict[int, int] = {}
        self.depth = 0
        self._next_report = 0.0
        self.started = 0.0

    # ---- findings -----------------------------------------------------------------------------
    def _record(self, cands: list[Candidate], settled: bool) -> bool:
        """Record new findings; True if any candidate is a (confirmed) failure of this path."""
        d = self.driver
        failed = False
        for cand in cands:
            key = cand.key
            flag = is_flag(cand)
            if key in self.found:
                failed = failed or not flag
                continue
            steps = tuple(d.program)
            detail = cand.detail
            if cand.finding in ORACLE:
                ok, detail = self.oracle.confirms(steps, cand, d.tolerance)
                if not ok:
                    continue
            failed = failed or not flag
            self.found[key] = Found(cand.finding, cand.subclass, detail, steps, settled, cand, len(steps))
        return failed

    # ---- the walk -------------------------------------------------------------------------------
    def _tick(self) -> None:
        self.transitions += 1
        if self.transitions & 63:
            return
        now = time.monotonic()
        if self.spec.deadline is not None and now > self.spec.deadline:
            raise Stop
        if self.cancel is not None and self.cancel():
            raise Stop
        if self.progress is not None and now >= self._next_report:
            self._next_report = now + 0.5
            self.progress(self._status(now))

    def _status(self, now: float) -> dict:
        elapsed = now - self.started
        return {
            "variant": self.spec.variant,
            "setup": self.spec.setup,
            "depth": self.depth,
            "depth_target": self.spec.depth,
            "states": len(self.seen),
            "transitions": self.transitions,
            "seconds": elapsed,
            "rate": self.transitions / elapsed if elapsed > 0 else 0.0,
            "found": sorted({f"{k[0]}" + (f"/{k[1]}" if k[1] else "") for k in self.found}),
        }

    def _expand(self, remaining: int) -> None:
        d = self.driver
        cp = d.save()
        moves = d.moves()
        for i, (letter, v, move) in enumerate(moves):
            if i:
                d.restore(cp)
            cands = d.apply(letter, v, move)
            self._tick()
            if cands and self._record(cands, False):
                continue  # the first failure on this path: what follows is its consequence
            fp = fingerprint(d)
            if remaining == 1:
                if fp not in self.seen:
                    self.seen[fp] = 0
                    cands = d.settle(SETTLE_NS)
                    if cands:
                        self._record(cands, True)
                continue
            if self.seen.get(fp, -1) >= remaining - 1 or d.stuck:
                continue
            self.seen[fp] = remaining - 1
            self._expand(remaining - 1)

    def run(self) -> TaskResult:
        self.started = time.monotonic()
        d = self.driver
        root = d.save()
        done = 0
        states = 1
        partial = 0
        try:
            for depth in range(1, self.spec.depth + 1):
                self.depth = depth
                d.restore(root)
                self.seen = {fingerprint(d): depth}
                self._expand(depth)
                done = depth
                states = len(self.seen)
        except Stop:
            partial = len(self.seen)
        d.restore(root)
        if self.progress is not None:
            self.progress(self._status(time.monotonic()))
        return TaskResult(
            self.spec.variant, self.spec.setup, self.spec.nvcpus, done, self.spec.depth, states, self.transitions,
            time.monotonic() - self.started, sorted(self.found.values(), key=lambda f: (f.finding, f.subclass)),
            partial, self.oracle.runs,
        )


__all__ = ["EXPLORE_DURATION_NS", "Found", "Oracle", "Search", "SearchSpec", "Stop", "TaskResult"]
