"""The stepping discrete-event engine: one VM of N vCPUs, guest and host, in integer ns.

Every change of state is an *action* popped from a time-ordered queue (ties broken
by insertion order, so runs are deterministic). An action logs one or more
causally linked events; `step()` runs actions until at least one event is logged.
The queue holds only integers and tuples of integers, so a checkpoint is a cheap
copy and step back is restore + deterministic replay (DESIGN.md section 7).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from .eventlog import EventLog
from .guest import GuestMixin
from .lapic import LapicMixin
from .observe import STATE_GETTERS
from .pvhost import LazyHostMixin
from .script import ScriptMixin, ScriptOp
from .snapshot import Snapshot, take_snapshot
from .taxonomy import (
    KVM_FEATURE_LAZY_TSCDEADLINE,
    LOCAL_TIMER_VECTOR,
)
from .taxonomy import (
    ExitInts as Exit,
)
from .taxonomy import (
    KindInts as Kind,
)
from .vcpu import MODE_TSCDEADLINE, SPIV_APIC_ENABLED, TIMER_MODE_SHIFT, Vcpu

if TYPE_CHECKING:
    from .scenario import Scenario
    from .workloads.base import Workload

MODES = ("classic", "lazy")


@dataclass
class EngineState:
    """A checkpoint: everything but the log, whose length is kept instead."""

    log_len: int
    now: int
    seq: int
    done: bool
    queue: list[tuple]
    vcpus: list[Vcpu]
    workload_state: Any
    reads: dict[str, int]


class Engine(LapicMixin, LazyHostMixin, GuestMixin, ScriptMixin):
    """Runs one scenario in one mode (`classic` or `lazy`)."""

    def __init__(self, scenario: Scenario, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.scenario = scenario
        self.mode = mode
        self.lazy = mode == "lazy"
        run = scenario.run
        self.host = run.host
        self.variant = run.variant
        self.duration = run.duration_ns
        self.exit_cost = run.host.exit_cost_ns
        self.log = EventLog()
        self.rows = self.log.rows
        self.now = 0
        self.seq = 0
        self.done = False
        self.queue: list[tuple] = []
        self.root = -1
        self.cause_in = -1
        self.reads: dict[str, int] = {}
        self.probe_index = -1
        self.probe_callback: Callable[[Engine], None] | None = None
        self.script: list[ScriptOp] = list(scenario.script)
        self.vcpus = [Vcpu(i, cfg, run.seed) for i, cfg in enumerate(run.vcpus)]
        self.handlers: list[Callable[[Vcpu | None, Any], None]] = []
        self.guest_side: list[bool] = []
        self.H_TIMER_FIRE = self.register(self._timer_fire, guest=False)
        self.H_DELIVER_TIMER = self.register(self._deliver_timer, guest=False)
        self.H_WAKE = self.register(self._do_wake, guest=False)
        self.H_DELIVER_IPI = self.register(self._deliver_ipi)
        self.H_SCRIPT = self.register(self._script_op)
        self.H_HOST_IRQ = self.register(self._host_irq)
        self.H_BOOT = self.register(self._boot)
        self.workload: Workload | None = None
        self.tick_ns = 0
        self.nohz = True
        if scenario.workload is not None:
            from .workloads import make_workload

            self.workload = make_workload(scenario.workload, run)
            self.tick_ns = self.workload.tick_ns
            self.nohz = self.workload.nohz
        for v in self.vcpus:
            if v.cfg.boot == "linux":
                # A booted Linux guest: APIC enabled, LVTT in TSC-deadline mode, vector 0xec.
                v.spiv = 0x100 | SPIV_APIC_ENABLED | 0xFF
                v.lvtt = (MODE_TSCDEADLINE << TIMER_MODE_SHIFT) | LOCAL_TIMER_VECTOR
                v.timer_mode = MODE_TSCDEADLINE
                self._at(0, self.H_BOOT, v.id, 0)
            if v.cfg.host_irq_rate_hz:
                self._at(self._next_host_irq(v), self.H_HOST_IRQ, v.id, 0)
        if self.workload is not None:
            self.workload.attach(self)
        for index, op in enumerate(self.script):
            self._at(op.at, self.H_SCRIPT, op.vcpu, index)

    # ---- plumbing ------------------------------------------------------------------------
    def register(self, handler: Callable[[Vcpu | None, Any], None], guest: bool = True) -> int:
        """Give an action handler a queue id (queue entries stay plain integers).

        Guest-side actions wait while their vCPU is held in the host (`stall_until`:
        the timer_advance_ns busy-wait of __kvm_wait_lapic_expire); host-side ones don't.
        """
        self.handlers.append(handler)
        self.guest_side.append(guest)
        return len(self.handlers) - 1

    def _at(self, time: int, handler: int, vcpu: int, arg: Any) -> None:
        self.seq += 1
        heappush(self.queue, (time, self.seq, handler, vcpu, arg))

    def _ev(self, vcpu: int, kind: int, exit_reason: int = -1, sub: int = -1, a: int = 0, b: int = 0) -> int:
        """Log one event of the current action; the action's first event is its root cause."""
        rows = self.rows
        idx = len(rows) // 5
        root = self.root
        if root < 0:
            parent = self.cause_in
            self.root = idx
        else:
            parent = root
        # eventlog.pack_tag, inlined: this is the hottest line of the engine.
        rows.extend((self.now, (vcpu + 1) | (kind << 16) | ((exit_reason + 1) << 32) | ((sub + 1) << 40), a, b, parent))
        if exit_reason >= 0:
            self.vcpus[vcpu].penalty_ns += self.exit_cost
        if idx == self.probe_index:
            self._fire_probe()
        return idx

    def probe_event(self, index: int, callback: Callable[[Engine], None] | None) -> None:
        """Call `callback(engine)` once, right after event `index` is logged (None disarms).

        Why: an action can log several events, but the debugger steps one *event* at a time;
        replaying the action with a probe shows the state as of that event.
        """
        self.probe_index = index if callback is not None else -1
        self.probe_callback = callback

    def _fire_probe(self) -> None:
        callback = self.probe_callback
        self.probe_index = -1
        self.probe_callback = None
        if callback is not None:
            callback(self)

    def observe(self, vcpu: int, name: str) -> Any:
        """The named state value (observe.STATE_GETTERS) of one vCPU, now."""
        return STATE_GETTERS[name](self, self.vcpus[vcpu])

    @property
    def cause(self) -> int:
        return self.root

    @cause.setter
    def cause(self, parent: int) -> None:
        """Start a new causal group whose root event gets `parent` (-1: none)."""
        self.root = -1
        self.cause_in = parent

    def _entry(self, v: Vcpu) -> None:
        """vcpu_enter_guest(): pending requests are handled before the guest runs again."""
        if v.req_lazy:
            self.handle_lazy_request(v)

    def _wake(self, v: Vcpu, cause: int) -> None:
        """kvm_vcpu_kick() of a blocked vCPU: it runs again after the wake-up latency."""
        if v.blocked and not v.wake_pending:
            v.wake_pending = True
            self._at(self.now + self.host.wakeup_latency_ns, self.H_WAKE, v.id, (cause, self.root))

    def _do_wake(self, v: Vcpu, arg: tuple[int, int]) -> None:
        cause, parent = arg
        v.wake_pending = False
        if not v.blocked:
            return
        v.blocked = False
        self.cause = parent
        self._ev(v.id, Kind.WAKE, a=cause)
        self._entry(v)
        if v.latched or v.ipi_pending:
            self.deliver_pending(v)
        else:
            self.after_interrupt(v)  # HLT returned without an interrupt (e.g. masked LVTT)

    def _deliver_ipi(self, v: Vcpu, parent: int) -> None:
        if v.blocked or not v.ipi_pending:
            return
        self.cause = parent
        if not v.cfg.apicv:
            # No posted interrupts: the host kicks the running vCPU out with an IPI.
            self._ev(v.id, Kind.HOST_IRQ, Exit.INTR)
            self._entry(v)
        self.deliver_ipis(v)

    def _next_host_irq(self, v: Vcpu) -> int:
        gap = int(v.rng.expovariate(v.cfg.host_irq_rate_hz) * 1e9) + 1
        return self.now + gap

    def _host_irq(self, v: Vcpu, _arg: int) -> None:
        """An unrelated host interrupt: an `intr` exit if the vCPU is in guest mode."""
        if not v.blocked:
            self._ev(v.id, Kind.HOST_IRQ, Exit.INTR)
            self._entry(v)
        self._at(self._next_host_irq(v), self.H_HOST_IRQ, v.id, 0)

    def _boot(self, v: Vcpu, _arg: int) -> None:
        """kvm_guest_cpu_init(): in lazy mode a guest with the driver checks CPUID and registers."""
        if self.lazy and v.cfg.pv_lazy:
            eax = (1 << KVM_FEATURE_LAZY_TSCDEADLINE) if v.cfg.cpuid_lazy else 0
            self._ev(v.id, Kind.CPUID, Exit.CPUID, a=eax)
            self._entry(v)
            if eax:
                self.guest_pv_register(v, self.default_gpa(v))

    # ---- stepping ------------------------------------------------------------------------
    def step(self) -> int:
        """Run actions until at least one event is logged; returns how many were logged."""
        if self.done:
            return 0
        n0 = len(self.rows)
        self.run(max_events=1)
        return (len(self.rows) - n0) // 5

    def run(self, until_ns: int | None = None, max_events: int | None = None) -> None:
        """Run without breakpoints: to the end, to `until_ns`, or until `max_events` more events."""
        rows = self.rows
        limit = len(rows) + 5 * max_events if max_events is not None else None
        queue = self.queue
        handlers = self.handlers
        vcpus = self.vcpus
        end = self.duration
        stop_at = end if until_ns is None else min(until_ns, end)
        guest_side = self.guest_side
        while not self.done:
            if limit is not None and len(rows) >= limit:
                return
            if not queue or queue[0][0] > end:
                self._finish()
                return
            if queue[0][0] > stop_at:
                return
            time, _seq, handler, vid, arg = heappop(queue)
            self.now = time
            v = vcpus[vid] if vid >= 0 else None
            if v is not None and v.stall_until >= time and guest_side[handler]:
                self._at(v.stall_until, handler, vid, arg)
                continue
            self.root = -1
            self.cause_in = -1
            handlers[handler](v, arg)

    def _finish(self) -> None:
        """End of run: flag deadlines the guest still waits for with nothing armed (lost)."""
        self.now = max(self.now, self.duration)
        self.root = -1
        self.cause_in = -1
        late = self.host.late_tolerance_ns
        for v in self.vcpus:
            if v.wanted and not v.wanted_done and not v.wanted_lost and v.wanted_ns + late < self.now:
                v.wanted_lost = True
                self._ev(v.id, Kind.HAZ_LOST, a=v.wanted, b=v.page_armed)
        self._ev(-1, Kind.END, a=self.duration)
        self.done = True

    # ---- checkpoints -------------------------------------------------------------------
    def save_state(self) -> EngineState:
        return EngineState(
            log_len=len(self.log),
            now=self.now,
            seq=self.seq,
            done=self.done,
            queue=list(self.queue),
            vcpus=[v.clone() for v in self.vcpus],
            workload_state=copy.deepcopy(self.workload.state) if self.workload else None,
            reads=dict(self.reads),
        )

    def restore_state(self, state: EngineState) -> None:
        self.log.truncate(state.log_len)
        self.now = state.now
        self.seq = state.seq
        self.done = state.done
        self.queue = list(state.queue)
        self.vcpus = [v.clone() for v in state.vcpus]
        if self.workload is not None:
            self.workload.state = copy.deepcopy(state.workload_state)
        self.reads = dict(state.reads)

    # ---- views ----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return take_snapshot(self)

    def summary(self) -> dict:
        """The DESIGN.md section 4 JSON object for this run (so far)."""
        from .accounting import summarize

        out = summarize(self.log)
        out["mode"] = self.mode
        out["sim_time_ns"] = self.now
        return {"mode": self.mode, **{k: v for k, v in out.items() if k != "mode"}}

    @property
    def next_time(self) -> int | None:
        return self.queue[0][0] if self.queue else None
