"""Drives one engine through a guest program, letter by letter, checking the invariants.

The explorer branches with `Engine.save_state`/`restore_state`, so a program cannot be
a scenario fixed at construction. Instead each letter's script operations are handed to
the engine's own ScriptRunner (the same code a scenario's `[[script]]` runs) at the
current time, ahead of every other action of that instant -- exactly where a scenario
file's operation, queued when the engine is built, would run. A counterexample written
as a scenario file therefore replays event for event; `counterexample.verify` checks it.

Time advances action by action (`Engine.run(until_ns, max_events=1)`), and the
invariants (invariants.py) are judged after every action: an action is atomic in the
engine (nothing else runs between its events), so this is "after every event" as any
guest or host observer can see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from heapq import heappush

from ..engine import Engine
from ..lazy_host import ARMED, PENDING
from ..scenario import parse_scenario
from ..script import ScriptOp
from ..taxonomy import Kind
from ..vcpu import APIC_LVTT
from .alphabet import Alphabet, Letter, Move
from .invariants import Candidate, check_state, held_at_boundary, phantom
from .setups import Setup, header_text

T0_NS = 10_000  # the first letter's time (boot and PV registration are over by then)
EXPLORE_DURATION_NS = 3_600_000_000_000  # the engine never reaches its end while exploring
SLOTS = 16  # script op slots a letter's operations are written into
SENTINEL_NS = EXPLORE_DURATION_NS - 1
OP_SEQ_BASE = -(1 << 40)  # ahead of every action the run itself schedules at the same instant
LIVELOCK_EVENTS = 2_000  # events at one instant that count as a livelock (the engine stops at 20,000)
STORM_EVENTS = 20_000  # events in one letter's time (or the program end) that count as a livelock
STARVE_NS = 1_000_000  # a letter's guest operations still waiting for VM entry this long: starved
_GUEST_IRQ = int(Kind.GUEST_TIMER_IRQ)
_REQUEST = int(Kind.DEADLINE_REQUEST)
_LAPIC_WRITE = int(Kind.LAPIC_WRITE)
_RESET = int(Kind.VCPU_RESET)
_LVTT_MSR = 0x832  # LAPIC_WRITE.a of an LVTT write (the x2APIC MSR number)
CANCEL = -1  # Track.asked: a cancel (mask, mode switch, INIT) not yet executed
CANCEL_BY_REQUEST = -2  # a set_next_event() while the clockevent is not live: wants nothing
_LIVELOCK = int(Kind.HAZ_LIVELOCK)


@dataclass(frozen=True)
class Step:
    """One applied letter: what it was and the script operations it became."""

    letter: str
    vcpu: int
    params: tuple[tuple[str, int], ...]
    at: int
    ops: tuple[tuple[str, dict], ...]
    comment: str
    want: int | None


@dataclass
class Track:
    """What the guest wants of its timer, per vCPU (the explorer's own bookkeeping)."""

    want: list[int]
    want_step: list[int]
    delivered: list[int]  # ns of the delivering interrupt, -1: not yet
    flagged: list[int]  # bit 0: lost raised for this want, bit 1: late raised
    asked: list[int]  # a deadline (or CANCEL) a letter asked for whose instruction has not run yet (0: none)
    asked_step: list[int]
    hang: list[str]  # the letter that left a non-zero armed without a host copy ("": it has one)
    phantoms: list[int]  # timer interrupts taken while nothing was wanted (not part of the state key)

    @classmethod
    def fresh(cls, n: int) -> Track:
        return cls([0] * n, [-1] * n, [-1] * n, [0] * n, [0] * n, [-1] * n, [""] * n, [0] * n)

    def copy(self) -> Track:
        return Track(
            list(self.want), list(self.want_step), list(self.delivered), list(self.flagged), list(self.asked), list(self.asked_step),
            list(self.hang), list(self.phantoms),
        )



@dataclass
class Checkpoint:
    engine: object
    t: int
    track: Track
    steps: int
    instant: int
    instant_events: int
    stuck: bool
    held: dict


@dataclass
class Driver:
    """An engine in one mode plus the program applied so far."""

    setup: Setup
    variant: str
    nvcpus: int
    alphabet: Alphabet
    mode: str = "lazy"
    program: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        text = header_text(self.setup, self.variant, self.nvcpus, EXPLORE_DURATION_NS, self.mode, "explore", "explorer base")
        self.scenario = parse_scenario(text, "<explore>")
        e = self.engine = Engine(self.scenario, self.mode)
        self.script = e.script
        self.slot_base = len(self.script.ops)
        self.script.ops.extend(ScriptOp(at=0, vcpu=0, op="nop") for _ in range(SLOTS + 1))
        self.sentinel_ns = SENTINEL_NS
        self._push(SENTINEL_NS, 0, self.slot_base + SLOTS, 0)  # keeps the queue from running dry
        self.h_op = self.script.H_OP
        self.h_posted = e.timer.H_POSTED
        self.tolerance = e.host_cfg.late_tolerance_ns
        self.struct_gpa = e.struct_gpa
        self.track = Track.fresh(self.nvcpus)
        self.instant = -1
        self.instant_events = 0
        self.livelock_events = LIVELOCK_EVENTS
        self.window_events = 0
        self.stuck = False  # a livelock stopped time here
        self.t = T0_NS
        self.candidates: list[Candidate] = []
        self.held: dict[tuple[str, str], Candidate] = {}  # state properties violated since (invariants.py)
        self._advance(T0_NS - 1)
        self.candidates.clear()
        self.held.clear()

    # ---- Ctx for the letters ------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.t

    def tsc(self, vid: int) -> int:
        return self.engine.clock.tsc(vid, self.t)

    def armed(self, vid: int) -> int:
        return self.engine.mem.read64(self.struct_gpa[vid] + ARMED)

    def pending(self, vid: int) -> int:
        return self.engine.mem.read64(self.struct_gpa[vid] + PENDING)

    def lvtt(self, vid: int) -> int:
        return self.engine.apic.s[vid].lvt[APIC_LVTT]

    def apic_enabled(self, vid: int) -> bool:
        return self.engine.apic.apic_enabled(vid)

    def registered(self, vid: int) -> bool:
        return bool(self.engine.kernel.s[vid].registered)

    def waiting(self, vid: int) -> bool:
        return bool(self.script.waiting[vid])

    def next_host_timer_ns(self) -> int | None:
        """When the next host timer callback or preemption-timer exit is due."""
        best = None
        latency = self.engine.host_cfg.sw_timer_latency_ns
        for t in self.engine.timer.s:
            when = None
            if t.hv_in_use:
                when = t.hv_fire
            elif t.sw_active:
                when = t.sw_expires + latency
            if when is not None and (best is None or when < best):
                best = when
        return best

    # ---- checkpoints ---------------------------------------------------------------------------------
    def save(self) -> Checkpoint:
        return Checkpoint(self.engine.save_state(), self.t, self.track.copy(), len(self.program), self.instant, self.instant_events, self.stuck, dict(self.held))

    def restore(self, cp: Checkpoint) -> None:
        self.engine.restore_state(cp.engine)
        self.t = cp.t
        self.track = cp.track.copy()
        del self.program[cp.steps :]
        self.instant = cp.instant
        self.instant_events = cp.instant_events
        self.stuck = cp.stuck
        self.candidates = []
        self.held = dict(cp.held)

    # ---- applying letters ------------------------------------------------------------------------------
    def moves(self) -> list[tuple[Letter, int, Move]]:
        """Every letter enabled now (per vCPU where it applies), in alphabet order."""
        out = []
        for letter in self.alphabet.letters:
            params = self.alphabet.params_of(letter.name)
            vcpus = range(self.nvcpus) if letter.per_vcpu else (0,)
            for v in vcpus:
                if letter.scope == "guest" and self.waiting(v):
                    continue
                move = letter.build(self, v, params)
                if move is not None:
                    out.append((letter, v, move))
        return out

    def apply(self, letter: Letter, vid: int, move: Move, params: dict[str, int] | None = None) -> list[Candidate]:
        """Apply one letter now and let time pass to the next letter; returns invariant candidates."""
        self.candidates = []
        at = self.t
        params = self.alphabet.params_of(letter.name) if params is None else params
        self.program.append(Step(letter.name, vid, tuple(sorted(params.items())), at, move.ops, move.comment, move.want))
        if move.want is not None:
            # What the guest wants changes when its instruction runs (it may wait for VM
            # entry): a deadline at its set_next_event(), a cancel at the LVTT write or INIT.
            by_request = bool(move.ops) and move.ops[0][0] == "set_deadline"
            self.track.asked[vid] = move.want if move.want else (CANCEL_BY_REQUEST if by_request else CANCEL)
            self.track.asked_step[vid] = len(self.program) - 1
        for k, (name, args) in enumerate(move.ops):
            slot = self.slot_base + k
            self.script.ops[slot] = ScriptOp(at=at, vcpu=vid, op=name, args=dict(args))
            self._push(at, OP_SEQ_BASE + k, slot, vid)
        target = move.until if move.until is not None else at + move.gap
        self.window_events = 0
        # Up to (not including) the next letter's instant: a scenario's operation runs before
        # any other action of its instant, and so must the next letter's.
        self._advance(target - 1)
        # A letter's operations may still wait for VM entry (several exits in a row): they
        # finish before the next letter, which comes after them -- unless the vCPU never
        # gets back to guest code (a livelock spread over time).
        while not self.engine.done and not self.stuck and self._ops_queued():
            if self.engine.now - at > STARVE_NS:
                self._livelock(f"the guest's operations of {letter.name} still wait for VM entry {self.engine.now - at} ns later")
                break
            self._advance(self.engine.next_time)
            target = max(target, self.engine.now + 1)
        self.t = target
        return self._boundary()

    def _livelock(self, detail: str) -> None:
        if not self.stuck:
            self.stuck = True
            n = len(self.engine.log.rows) // 5
            self.candidates.append(Candidate("livelock", detail, -1, self.engine.now, max(0, n - 1), n))

    def settle(self, horizon: int) -> list[Candidate]:
        """Let `horizon` ns pass with no more letters (the program's end)."""
        self.candidates = []
        self.t += horizon
        self.window_events = 0
        self._advance(self.t)
        return self._boundary()

    def _boundary(self) -> list[Candidate]:
        """The letter boundary: overdue deadlines are judged at its time, held states reported."""
        n = len(self.engine.log.rows) // 5
        found = check_state(self, n, n, self.t)
        if found:
            self.candidates.extend(found)
        return self.candidates + held_at_boundary(self)

    def _push(self, at: int, seq: int, slot: int, vid: int) -> None:
        heappush(self.engine.sched.queue, (at, seq, self.script.H_OP, vid, slot))

    def _ops_queued(self) -> bool:
        h = self.h_op
        stop = self.slot_base + SLOTS
        return any(item[2] == h and item[4] < stop for item in self.engine.sched.queue) or any(self.script.deferred)

    def _advance(self, target: int) -> None:
        e = self.engine
        rows = e.log.rows
        queue = e.sched.queue
        while not e.done and not self.stuck and queue and queue[0][0] <= target:
            n0 = len(rows) // 5
            e.run(until_ns=target, max_events=1)
            n1 = len(rows) // 5
            self._after_action(n0, n1)

    def _after_action(self, n0: int, n1: int) -> None:
        e = self.engine
        rows = e.log.rows
        now = e.sched.now
        if now != self.instant:
            self.instant = now
            self.instant_events = 0
        self.instant_events += n1 - n0
        self.window_events += n1 - n0
        if self.window_events > STORM_EVENTS:
            self._livelock(f"{self.window_events} events in {now - self.t} ns after one letter")
        tr = self.track
        for i in range(n0, n1):
            tag = rows[i * 5 + 1]
            kind = (tag >> 16) & 0xFFFF
            if kind == _REQUEST or kind == _LAPIC_WRITE or kind == _RESET:
                vid = (tag & 0xFFFF) - 1
                asked = tr.asked[vid]
                if asked and (
                    (kind == _REQUEST and (rows[i * 5 + 2] == asked or asked == CANCEL_BY_REQUEST))
                    or (asked == CANCEL and (kind == _RESET or (kind == _LAPIC_WRITE and rows[i * 5 + 2] == _LVTT_MSR)))
                ):
                    tr.want[vid] = max(asked, 0)
                    tr.want_step[vid] = tr.asked_step[vid]
                    tr.delivered[vid] = -1
                    tr.flagged[vid] = 0
                    tr.asked[vid] = 0
            elif kind == _GUEST_IRQ:
                vid = (tag & 0xFFFF) - 1
                if tr.want[vid] and tr.delivered[vid] < 0:
                    if rows[i * 5 + 2] >= tr.want[vid]:
                        tr.delivered[vid] = rows[i * 5]
                elif not tr.asked[vid]:
                    tr.phantoms[vid] += 1
                    self.candidates.append(phantom(self, vid, i, rows[i * 5]))
            elif kind == _LIVELOCK:
                self.instant_events = LIVELOCK_EVENTS + 1
        found = check_state(self, n0, n1)
        if found:
            self.candidates.extend(found)
