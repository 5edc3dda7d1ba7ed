"""The scheduler kernel: simulated time, the action queue and the event log writer.

Like SimPy's kernel, it knows nothing of what the actions do. Components register
handlers and get an integer id back; the queue holds only tuples of integers
(time, sequence, handler, vcpu, argument), so a checkpoint is a list copy and the
order of actions at one instant is the order they were scheduled in (deterministic).

Every change of state logs events through `ev`: the first event of an action is its
causal root, the others name it as their parent (DESIGN.md section 3: every exit
names the event that caused it).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

from .eventlog import EventLog

Handler = Callable[[int, Any], None]

# A livelock guard: this many events at one simulated instant end the run with a
# `livelock` hazard instead of spinning forever (no real protocol path needs it).
LIVELOCK_EVENTS = 20_000


def _s64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


class Scheduler:
    """Time, queue, handler registry and the append-only event log."""

    __slots__ = (
        "now",
        "seq",
        "queue",
        "handlers",
        "guest_side",
        "log",
        "rows",
        "root",
        "cause_in",
        "probe_index",
        "probe_callback",
        "instant",
        "instant_events",
        "serial",
        "action",
    )

    def __init__(self) -> None:
        self.now = 0
        self.seq = 0
        self.queue: list[tuple[int, int, int, int, Any]] = []
        self.handlers: list[Handler] = []
        self.guest_side: list[bool] = []
        self.log = EventLog()
        self.rows = self.log.rows
        self.root = -1
        self.cause_in = -1
        self.probe_index = -1
        self.probe_callback: Callable[[], None] | None = None
        self.instant = -1
        self.instant_events = 0
        self.serial = 0
        self.action = 0  # counts actions run: identifies "the current action"

    def register(self, handler: Handler, guest: bool) -> int:
        """Give an action handler a queue id.

        `guest` actions are guest instructions: they cannot run while their vCPU is in
        the host (exit handling, the timer_advance_ns busy-wait) and wait for VM entry.
        """
        self.handlers.append(handler)
        self.guest_side.append(guest)
        return len(self.handlers) - 1

    def at(self, time: int, handler: int, vcpu: int, arg: Any = 0) -> None:
        """Schedule `handler(vcpu, arg)` at `time` (after everything already at `time`)."""
        self.seq += 1
        heappush(self.queue, (time, self.seq, handler, vcpu, arg))

    def gen(self) -> int:
        """A number never handed out before: generation tags that make queued actions stale."""
        self.serial += 1
        return self.serial

    def pop(self) -> tuple[int, int, int, int, Any]:
        return heappop(self.queue)

    def ev(self, vcpu: int, kind: int, exit_reason: int = -1, sub: int = -1, a: int = 0, b: int = 0) -> int:
        """Log one event of the current action and return its index."""
        rows = self.rows
        idx = len(rows) // 5
        root = self.root
        if root < 0:
            parent = self.cause_in
            self.root = idx
        else:
            parent = root
        tag = (vcpu + 1) | (kind << 16) | ((exit_reason + 1) << 32) | ((sub + 1) << 40)  # eventlog.pack_tag
        try:
            rows.extend((self.now, tag, a, b, parent))
        except OverflowError:
            # A 64-bit register value (a TSC deadline near 2^64) is stored as its two's
            # complement: the log's columns are int64.
            del rows[idx * 5 :]
            rows.extend((self.now, tag, _s64(a), _s64(b), parent))
        if idx == self.probe_index:
            self._fire_probe()
        return idx

    def set_value(self, index: int, word: int, value: int) -> None:
        """Fill in a value of an event of the *current action*, known only after it was logged.

        Never for an earlier action's event: a checkpoint keeps the log prefix as it was.
        """
        self.rows[index * 5 + word] = value if -(1 << 63) <= value < (1 << 63) else _s64(value)

    def begin(self, parent: int) -> None:
        """Start a new causal group whose first event gets `parent` (-1: none)."""
        self.root = -1
        self.cause_in = parent

    def _fire_probe(self) -> None:
        callback = self.probe_callback
        self.probe_index = -1
        self.probe_callback = None
        if callback is not None:
            callback()

    @property
    def next_time(self) -> int | None:
        return self.queue[0][0] if self.queue else None
