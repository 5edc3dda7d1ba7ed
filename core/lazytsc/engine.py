"""The engine: one VM of N vCPUs, guest and host, as components on one scheduler.

Components (each with its own per-vCPU state, each modelling named kernel functions):

  sim.Scheduler        time, the action queue, the event log
  apic.InterruptController   IRR/ISR/TPR/PPR, LVTs, ICR, IA32_APIC_BASE     (lapic.c)
  lapic_timer.LapicTimer     one-shot/periodic/TSC-deadline, hv and sw backends (lapic.c)
  lazy_host.LazyHost         the seed's init/exit/update/kick/clear, the PV MSR
  host.Host                  register and MSR dispatch                       (lapic.c, x86.c)
  vcpu_run.VcpuRunLoop       exits, vcpu_run/vcpu_enter_guest/vcpu_block, kicks (x86.c)
  guest_cpu.GuestCpu         the guest's instructions, RFLAGS.IF, taking interrupts
  guest_kernel.GuestKernel   Linux: clockevent drivers, hrtimers, NOHZ, handlers, tasks
  script.ScriptRunner, vmm.Vmm, workloads/   what drives the guest and the VMM
  hazards.HazardMonitor      hazards judged from state

An action popped from the queue runs to completion and logs causally linked events;
nothing on the event path recurses (a guest takes an interrupt, re-enters after an
exit or wakes up as a new action). A checkpoint copies every component's state.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from .apic import InterruptController
from .clock import TscClock
from .guest_cpu import GuestCpu
from .guest_kernel import GuestKernel
from .hazards import HazardMonitor
from .host import Host
from .lapic_timer import LapicTimer
from .lazy_host import LazyHost
from .memory import GuestMemory
from .observe import STATE_GETTERS
from .script import ScriptRunner
from .sim import LIVELOCK_EVENTS, Scheduler
from .snapshot import Snapshot, take_snapshot
from .taxonomy import KindInts as Kind
from .vcpu_run import VcpuRunLoop
from .vmm import Vmm

if TYPE_CHECKING:
    from .scenario import Scenario
    from .workloads.base import Workload

MODES = ("classic", "lazy")
STRUCT_BASE = 0x10000  # default GPA of vCPU 0's struct kvm_lazy_tscdeadline (64 bytes each)


def _clone_rng(rng: random.Random) -> random.Random:
    """A copy of a generator's state held in C (2.5 KB), not as getstate()'s tuple of 625 ints (25 KB).

    Checkpoints keep one per vCPU, so the tuple would dominate a debugger session's memory.
    """
    copy_ = random.Random()
    copy_.setstate(rng.getstate())
    return copy_


@dataclass
class EngineState:
    """A checkpoint: everything but the log, whose length is kept instead."""

    log_len: int
    now: int
    seq: int
    serial: int
    action: int
    done: bool
    queue: list[tuple]
    components: tuple
    workload_state: Any


class Engine:
    """Runs one scenario in one mode (`classic` or `lazy`)."""

    def __init__(self, scenario: Scenario, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.scenario = scenario
        self.mode = mode
        self.lazy_mode = mode == "lazy"
        run = scenario.run
        cfgs = run.vcpus
        n = len(cfgs)
        self.host_cfg = run.host
        self.variant = run.variant
        self.duration = run.duration_ns
        self.done = False
        sched = self.sched = Scheduler()
        self.log = sched.log
        self.clock = TscClock([c.tsc_khz for c in cfgs])
        self.mem = GuestMemory(lambda: sched.action)
        struct_gpa = [c.pv_gpa or STRUCT_BASE + 64 * i for i, c in enumerate(cfgs)]
        self.struct_gpa = struct_gpa
        self.apic = InterruptController(
            n,
            [c.x2apic for c in cfgs],
            [c.apicv for c in cfgs],
            [c.cmci for c in cfgs],
            [c.cpuid_x2apic and run.host.split_irqchip for c in cfgs],
        )
        self.timer = LapicTimer(sched, self.clock, self.apic, cfgs, run.host, run.variant)
        self.lazy = LazyHost(sched, self.clock, self.mem, cfgs, run.host, run.variant)
        irq_rngs = [random.Random((run.seed << 8) ^ (i * 0x9E3779B1) ^ 0x5EED) for i in range(n)]
        self.run_loop = VcpuRunLoop(sched, self.apic, cfgs, run.host, irq_rngs)
        self.hazards = HazardMonitor(sched, self.clock, self.apic, self.timer, self.lazy, self.mem, struct_gpa, cfgs, run.host)
        self.host = Host(sched, self.clock, self.apic, self.timer, self.lazy, cfgs)
        self.cpu = GuestCpu(sched, self.clock, self.apic, self.timer, self.host, self.run_loop, self.mem, self.hazards, struct_gpa, cfgs)
        self.kernel = GuestKernel(sched, self.clock, self.cpu, self.run_loop, self.mem, self.hazards, struct_gpa, cfgs, run.seed, self.lazy_mode)
        self.vmm = Vmm(sched, self.clock, self.apic, self.timer, self.lazy, self.run_loop, self.host, self.cpu, self.kernel, self.mem, self.hazards)
        # Ports: who calls whom across components.
        self.timer.lazy = self.lazy
        self.timer.run = self.run_loop
        self.timer.hazards = self.hazards
        self.lazy.timer = self.timer
        self.lazy.hazards = self.hazards
        self.run_loop.timer = self.timer
        self.run_loop.lazy = self.lazy
        self.workload: Workload | None = None
        if scenario.workload is not None:
            from .workloads import make_workload

            self.workload = make_workload(scenario.workload, run)
            self.kernel.workload = self.workload
            self.kernel.tick_ns = self.workload.tick_ns
            self.kernel.nohz = self.workload.nohz
        self.script = ScriptRunner(self.kernel, self.vmm, list(scenario.script), self.lazy_mode)
        self.script.install_handlers(scenario.handlers)
        self.kernel.after_irq_hooks.append(self.script.resumed)
        if self.workload is not None:
            w = self.workload
            members = w.vcpus
            k = self.kernel
            self.kernel.after_irq_hooks.append(lambda vid: w.after_irq(k, vid) if vid in members else None)
        for vid, cfg in enumerate(cfgs):
            if cfg.boot == "linux":
                self.kernel.boot_linux(vid)
            self.run_loop.host_irq_next(vid)
        if self.workload is not None:
            self.workload.attach(self.kernel)
        self._components = (
            self.clock,
            self.mem,
            self.apic,
            self.timer,
            self.lazy,
            self.run_loop,
            self.hazards,
            self.cpu,
            self.kernel,
            self.script,
            self.vmm,
        )
        self._irq_rngs = irq_rngs

    # ---- stepping --------------------------------------------------------------------------
    def step(self) -> int:
        """Run actions until at least one event is logged; returns how many were logged."""
        if self.done:
            return 0
        n0 = len(self.log)
        self.run(max_events=1)
        return len(self.log) - n0

    def run(self, until_ns: int | None = None, max_events: int | None = None) -> None:
        """Run without breakpoints: to the end, to `until_ns`, or until `max_events` more events."""
        sched = self.sched
        rows = sched.rows
        limit = len(rows) + 5 * max_events if max_events is not None else None
        queue = sched.queue
        handlers = sched.handlers
        guest_side = sched.guest_side
        run_state = self.run_loop.s
        end = self.duration
        stop_at = end if until_ns is None else min(until_ns, end)
        instant = sched.instant
        instant_start = sched.instant_events
        while not self.done:
            if limit is not None and len(rows) >= limit:
                break
            if not queue or queue[0][0] > end:
                self._finish()
                break
            if queue[0][0] > stop_at:
                break
            time, _seq, handler, vid, arg = heappop(queue)
            sched.now = time
            if time != instant:
                instant = time
                instant_start = len(rows)
            if guest_side[handler] and vid >= 0:
                r = run_state[vid]
                if not r.guest_mode and not r.blocked:
                    # A guest instruction waits for VM entry (exit handling, busy-wait).
                    if r.entry_queued:
                        busy = r.in_host_until if r.in_host_until > time else time
                        sched.seq += 1
                        heappush(queue, (busy, sched.seq, handler, vid, arg))
                        continue
                    r.guest_mode = True
            sched.root = -1
            sched.cause_in = -1
            sched.action += 1
            handlers[handler](vid, arg)
            if len(rows) - instant_start > 5 * LIVELOCK_EVENTS:
                sched.begin(-1)
                sched.ev(vid, Kind.HAZ_LIVELOCK, a=(len(rows) - instant_start) // 5)
                self._finish()
                break
        sched.instant = instant
        sched.instant_events = instant_start

    def _finish(self) -> None:
        """End of run: wanted deadlines that passed undelivered are lost; requests never served."""
        sched = self.sched
        sched.now = max(sched.now, self.duration)
        sched.begin(-1)
        self.hazards.finish()
        sched.begin(-1)
        sched.ev(-1, Kind.END, a=self.duration)
        self.done = True

    # ---- checkpoints --------------------------------------------------------------------------
    def save_state(self) -> EngineState:
        sched = self.sched
        return EngineState(
            log_len=len(self.log),
            now=sched.now,
            seq=sched.seq,
            serial=sched.serial,
            action=sched.action,
            done=self.done,
            queue=list(sched.queue),
            components=tuple(c.save() for c in self._components) + ([_clone_rng(r) for r in self._irq_rngs], list(self.host.tsc_adjust)),
            workload_state=copy.deepcopy(self.workload.state) if self.workload else None,
        )

    def restore_state(self, state: EngineState) -> None:
        sched = self.sched
        self.log.truncate(state.log_len)
        sched.now = state.now
        sched.seq = state.seq
        sched.serial = state.serial
        sched.action = state.action
        sched.queue[:] = state.queue
        sched.instant = -1
        self.done = state.done
        saved = state.components
        for component, part in zip(self._components, saved, strict=False):
            component.restore(part)
        rng_states, tsc_adjust = saved[len(self._components)], saved[len(self._components) + 1]
        for rng, saved_rng in zip(self._irq_rngs, rng_states, strict=True):
            rng.setstate(saved_rng.getstate())
        self.host.tsc_adjust = list(tsc_adjust)
        if self.workload is not None:
            self.workload.state = copy.deepcopy(state.workload_state)

    # ---- views ---------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.sched.now

    @property
    def next_time(self) -> int | None:
        return self.sched.next_time

    @property
    def reads(self) -> dict[str, int]:
        return self.script.reads

    @property
    def nvcpus(self) -> int:
        return len(self.apic.s)

    def snapshot(self) -> Snapshot:
        return take_snapshot(self)

    def observe(self, vcpu: int, name: str) -> Any:
        """The named state value (observe.STATE_GETTERS) of one vCPU, now."""
        return STATE_GETTERS[name](self, vcpu)

    def probe_event(self, index: int, callback: Callable[[Engine], None] | None) -> None:
        """Call `callback(engine)` once, right after event `index` is logged (None disarms).

        Why: an action can log several events, but the debugger steps one *event* at a time;
        replaying the action with a probe shows the state as of that event.
        """
        sched = self.sched
        if callback is None:
            sched.probe_index = -1
            sched.probe_callback = None
            return
        sched.probe_index = index
        sched.probe_callback = lambda: callback(self)

    @property
    def probe_index(self) -> int:
        return self.sched.probe_index

    def summary(self) -> dict:
        """The DESIGN.md section 4 JSON object for this run (so far)."""
        from .accounting import summarize

        out = summarize(self.log)
        out["sim_time_ns"] = self.now
        return {"mode": self.mode, **out}
