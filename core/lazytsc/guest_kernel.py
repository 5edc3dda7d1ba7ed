"""The guest's Linux: clockevent drivers, hrtimers and NOHZ, timer and IPI handlers, idle, tasks.

The drivers are the seed's: classic `lapic_next_deadline` (arch/x86/kernel/apic/apic.c)
writes MSR_IA32_TSC_DEADLINE on every call; lazy `kvm_lapic_next_deadline` (chosen by
setup_APIC_timer when CPUID advertises KVM_FEATURE_LAZY_TSCDEADLINE) writes `pending`
and skips the MSR write unless `armed == 0 || tsc < armed`.

Above them, a small model of kernel/time/hrtimer.c and tick-sched.c: the clockevent
is reprogrammed only when the earliest hrtimer changes, which is what makes NOHZ idle
entry/exit reprogram on every halt (DESIGN.md section 1). Guest tasks consume CPU
time; the host's time during exits and busy-waits is stolen from them (vcpu_run.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .clock import TscClock
from .config import VcpuConfig
from .guest_cpu import GuestCpu
from .hazards import HazardMonitor
from .lazy_host import ARMED, PENDING
from .memory import GuestMemory
from .sim import Scheduler
from .taxonomy import (
    LOCAL_TIMER_VECTOR,
    MSR_IA32_TSC_DEADLINE,
    MSR_KVM_LAZY_TSCDEADLINE,
    RESCHEDULE_VECTOR,
)
from .taxonomy import KindInts as Kind
from .vcpu import (
    APIC_DEST_NOSHORT,
    APIC_EOI,
    APIC_ICR,
    APIC_LVTT,
    APIC_SPIV,
    APIC_TMICT,
    LVT_MASKED,
    MODE_TSCDEADLINE,
    NEVER,
    SPIV_APIC_ENABLED,
    TIMER_MODE_SHIFT,
)
from .vcpu_run import VcpuRunLoop

TSC_DIVISOR = 8  # arch/x86/kernel/apic/apic.c: the clockevent runs at tsc_khz / 8
MIN_DELTA_TICKS = 0xF  # lapic_clockevent.min_delta_ticks
SCHED_TIMER = "sched_timer"  # tick_sched.sched_timer
WATCHDOG = "watchdog"  # softlockup watchdog hrtimer: keeps expires_next finite
WATCHDOG_PERIOD_NS = 4_000_000_000


class KernelState:
    __slots__ = (
        "timers",
        "expires_next",
        "in_hrtirq",
        "tick_stopped",
        "clockevent_stopped",
        "booted",
        "registered",
        "lazy_driver",
        "idle",
        "task_handler",
        "task_gen",
        "rng",
    )

    def __init__(self, seed: int, vid: int) -> None:
        self.timers: dict[str, int] = {}
        self.expires_next = NEVER
        self.in_hrtirq = False
        self.tick_stopped = False
        self.clockevent_stopped = False
        self.booted = False
        self.registered = False
        self.lazy_driver = False
        self.idle = False
        self.task_handler = -1
        self.task_gen = 0
        # One RNG per vCPU, from the scenario seed: adding a vCPU never changes another's stream.
        self.rng = random.Random((seed << 8) ^ (vid * 0x9E3779B1) ^ 0x1A27)

    def clone(self) -> KernelState:
        new = KernelState.__new__(KernelState)
        for name in KernelState.__slots__:
            setattr(new, name, getattr(self, name))
        new.timers = dict(self.timers)
        new.rng = random.Random()
        new.rng.setstate(self.rng.getstate())
        return new


class GuestKernel:
    """Linux on every vCPU (or the bare program of a script: then only the drivers are used)."""

    def __init__(
        self,
        sched: Scheduler,
        clock: TscClock,
        cpu: GuestCpu,
        run: VcpuRunLoop,
        mem: GuestMemory,
        hazards: HazardMonitor,
        struct_gpa: list[int],
        cfgs: list[VcpuConfig],
        seed: int,
        lazy_mode: bool,
    ) -> None:
        self.sched = sched
        self.clock = clock
        self.cpu = cpu
        self.run = run
        self.mem = mem
        self.hazards = hazards
        self.struct_gpa = struct_gpa
        self.cfgs = cfgs
        self.lazy_mode = lazy_mode
        self.s = [KernelState(seed, i) for i in range(len(cfgs))]
        self.jitter_steps = [c.reprogram_jitter_cycles // TSC_DIVISOR for c in cfgs]
        self.tick_ns = 0
        self.nohz = True
        self.workload: Any = None
        self.after_irq_hooks: list[Callable[[int], None]] = []
        self.task_handlers: list[Callable[[int], None]] = []
        self.H_TASK = sched.register(self._task_done, guest=True)
        self.H_BOOT = sched.register(self._boot, guest=True)
        for vid in range(len(cfgs)):
            cpu.handlers[vid][LOCAL_TIMER_VECTOR] = self.sysvec_apic_timer_interrupt
            cpu.handlers[vid][RESCHEDULE_VECTOR] = self.sysvec_reschedule_ipi
        cpu.resume = self.after_interrupt

    def save(self) -> tuple[list[KernelState], list[int]]:
        return [s.clone() for s in self.s], list(self.struct_gpa)

    def restore(self, saved: tuple[list[KernelState], list[int]]) -> None:
        states, struct_gpa = saved
        self.s = [s.clone() for s in states]
        self.struct_gpa[:] = struct_gpa  # the list is shared with the CPU and the hazard monitor

    @property
    def now(self) -> int:
        return self.sched.now

    # ---- the shared page, as the guest sees it ------------------------------------------------
    def page_armed(self, vid: int) -> int:
        return self.mem.read64(self.struct_gpa[vid] + ARMED)

    def page_pending(self, vid: int) -> int:
        return self.mem.read64(self.struct_gpa[vid] + PENDING)

    # ---- boot -----------------------------------------------------------------------------------
    def boot_linux(self, vid: int) -> None:
        """A booted Linux vCPU: APIC software-enabled, LVTT in TSC-deadline mode (vector 0xec)."""
        a = self.cpu.apic.s[vid]
        a.spiv = 0x100 | SPIV_APIC_ENABLED | 0xFF
        a.sw_enabled = True
        a.lvt[APIC_LVTT] = (MODE_TSCDEADLINE << TIMER_MODE_SHIFT) | LOCAL_TIMER_VECTOR
        self.cpu.timer.s[vid].timer_mode = MODE_TSCDEADLINE
        self.sched.at(0, self.H_BOOT, vid, 0)

    def _boot(self, vid: int, _arg: int) -> None:
        """kvm_guest_cpu_init(): in lazy mode a guest with the driver checks CPUID and registers."""
        self.sched.begin(-1)
        if self.lazy_mode and self.cfgs[vid].pv_lazy:
            if self.cpu.cpuid_lazy(vid):
                self.s[vid].lazy_driver = True  # setup_APIC_timer: kvm_para_has_feature()
                self.register_pv(vid, self.default_gpa(vid))

    def default_gpa(self, vid: int) -> int:
        return self.struct_gpa[vid]

    def register_pv(self, vid: int, gpa: int) -> bool:
        """kvm_guest_cpu_init(): zero the struct, then WRMSR(MSR_KVM_LAZY_TSCDEADLINE, GPA | 1).

        The GPA is the guest's own per-CPU struct (slow_virt_to_phys), so registering at `gpa`
        places the struct there; a guest that writes some other GPA does it with a raw WRMSR."""
        self.struct_gpa[vid] = gpa
        base = gpa
        self.mem.guest_write64(base + ARMED, 0)
        self.mem.guest_write64(base + PENDING, 0)
        ok = self.cpu.wrmsr(vid, MSR_KVM_LAZY_TSCDEADLINE, gpa | 1)
        self.s[vid].registered = ok
        return ok

    def unregister_pv(self, vid: int) -> bool:
        """kvm_guest_cpu_offline(): WRMSR(MSR_KVM_LAZY_TSCDEADLINE, 0)."""
        ok = self.cpu.wrmsr(vid, MSR_KVM_LAZY_TSCDEADLINE, 0)
        self.s[vid].registered = False
        return ok

    # ---- clockevent drivers ------------------------------------------------------------------------
    def driver_program(self, vid: int, tsc: int) -> None:
        """set_next_event(): one absolute TSC deadline through the guest's driver."""
        k = self.s[vid]
        self.hazards.want(vid, tsc)
        if k.lazy_driver:
            # kvm_lapic_next_deadline(): pending = tsc; write only if !armed || tsc < armed.
            base = self.struct_gpa[vid]
            self.mem.guest_write64(base + PENDING, tsc)
            armed = self.mem.read64(base + ARMED)
            self.sched.ev(vid, Kind.DEADLINE_REQUEST, a=tsc, b=armed)
            if armed == 0 or tsc < armed:
                self.cpu.wrmsr(vid, MSR_IA32_TSC_DEADLINE, tsc)
                return
            self.sched.ev(vid, Kind.DEADLINE_SKIP, a=tsc, b=armed)
            if tsc == armed:
                self.sched.ev(vid, Kind.HAZ_EQUAL_SKIP, a=tsc, b=armed)
            self.hazards.skipped(vid, tsc, armed)
            return
        # lapic_next_deadline(): wrmsrl(MSR_IA32_TSC_DEADLINE, rdtsc() + delta * TSC_DIVISOR)
        self.sched.ev(vid, Kind.DEADLINE_REQUEST, a=tsc, b=0)
        self.cpu.wrmsr(vid, MSR_IA32_TSC_DEADLINE, tsc)

    # ---- hrtimer layer (kernel/time/hrtimer.c) ------------------------------------------------
    def hrtimer_start(self, vid: int, name: str, expires: int) -> None:
        """hrtimer_start(): enqueue or move; reprogram only if the earliest expiry changes."""
        k = self.s[vid]
        timers = k.timers
        was_first = timers.get(name) == k.expires_next
        timers[name] = expires
        if k.in_hrtirq:
            return  # hrtimer_interrupt() reprograms once at its end
        if was_first:
            nxt = min(timers.values())
            if nxt != k.expires_next:
                self.tick_program_event(vid, nxt)  # hrtimer_force_reprogram(skip_equal=1)
        elif expires < k.expires_next:
            self.tick_program_event(vid, expires)  # hrtimer_reprogram()

    def hrtimer_cancel(self, vid: int, name: str) -> None:
        """hrtimer_cancel() -> __remove_hrtimer(reprogram): force reprogram if it was first."""
        k = self.s[vid]
        expires = k.timers.pop(name, None)
        if expires is None or k.in_hrtirq:
            return
        if expires == k.expires_next:
            nxt = min(k.timers.values(), default=NEVER)
            if nxt != k.expires_next:
                self.tick_program_event(vid, nxt)

    def hrtimer_interrupt(self, vid: int) -> None:
        """hrtimer_interrupt(): run expired timers, then always reprogram the next expiry."""
        k = self.s[vid]
        now = self.sched.now
        k.in_hrtirq = True
        expired = sorted((exp, name) for name, exp in k.timers.items() if exp <= now)
        for _exp, name in expired:
            if k.timers.get(name, NEVER) <= now:
                del k.timers[name]
                self.hrtimer_callback(vid, name)
        k.in_hrtirq = False
        self.tick_program_event(vid, min(k.timers.values(), default=NEVER))

    def hrtimer_callback(self, vid: int, name: str) -> None:
        k = self.s[vid]
        if name == SCHED_TIMER:
            self.tick_sched_timer(vid)
        elif name == WATCHDOG:
            k.timers[WATCHDOG] = self.sched.now + WATCHDOG_PERIOD_NS
        elif self.workload is not None:
            self.workload.timer_callback(self, vid, name)

    def tick_program_event(self, vid: int, expires: int) -> None:
        """tick_program_event() -> clockevents_program_event() -> set_next_event()."""
        k = self.s[vid]
        k.expires_next = expires
        if expires == NEVER:
            self.hazards.cancel(vid)
            if k.booted and not k.clockevent_stopped:
                # clockevents_switch_state(ONESHOT_STOPPED) -> lapic_timer_shutdown():
                # mask LVTT, TMICT = 0. (A bare script leaves the clockevent alone, as a
                # kernel with some far timer pending would.)
                k.clockevent_stopped = True
                lvtt = self.cpu.apic.s[vid].lvt[APIC_LVTT]
                self.cpu.apic_write(vid, APIC_LVTT, lvtt | LVT_MASKED | LOCAL_TIMER_VECTOR)
                self.cpu.apic_write(vid, APIC_TMICT, 0)
            return
        if k.clockevent_stopped:
            # Leaving ONESHOT_STOPPED: lapic_timer_set_oneshot() -> __setup_APIC_LVTT().
            k.clockevent_stopped = False
            self.cpu.apic_write(vid, APIC_LVTT, (MODE_TSCDEADLINE << TIMER_MODE_SHIFT) | LOCAL_TIMER_VECTOR)
        # delta = expires - ktime_get(); clc = delta * mult >> shift; the driver adds rdtsc().
        # The deadline lands on the ideal TSC of `expires` plus whole TSC_DIVISOR steps
        # (rdtsc read after ktime_get, tick truncation): the explicit reprogram jitter.
        tsc = self.clock.tsc(vid, expires)
        steps = self.jitter_steps[vid]
        if steps:
            tsc += TSC_DIVISOR * int(k.rng.random() * (steps + 1))
        floor = self.clock.tsc(vid, self.sched.now) + MIN_DELTA_TICKS * TSC_DIVISOR
        if tsc < floor:
            tsc = floor  # clockevents_program_min_delta()
        self.driver_program(vid, tsc)

    # ---- NOHZ tick (kernel/time/tick-sched.c) ----------------------------------------------------
    def boot(self, vid: int, tick_ns: int) -> None:
        """tick_setup_sched_timer() on a tick grid from 0, plus the watchdog hrtimer."""
        k = self.s[vid]
        k.booted = True
        k.timers[WATCHDOG] = self.sched.now + WATCHDOG_PERIOD_NS
        if tick_ns:
            k.timers[SCHED_TIMER] = (self.sched.now // tick_ns + 1) * tick_ns
        self.tick_program_event(vid, min(k.timers.values()))

    def tick_sched_timer(self, vid: int) -> None:
        """tick_sched_timer(): in NOHZ idle the stopped tick does not restart itself."""
        k = self.s[vid]
        tick_ns = self.tick_ns
        if k.tick_stopped or not tick_ns:
            return
        k.timers[SCHED_TIMER] = (self.sched.now // tick_ns + 1) * tick_ns  # hrtimer_forward()

    def tick_nohz_stop_tick(self, vid: int, wheel_next: int) -> None:
        """tick_nohz_stop_tick(): move the tick to the next timer event, if > 1 tick away."""
        k = self.s[vid]
        tick_ns = self.tick_ns
        if not tick_ns or not self.nohz:
            return
        now = self.sched.now
        others = min((e for n, e in k.timers.items() if n != SCHED_TIMER), default=NEVER)
        expires = min(wheel_next, others)
        if expires - now <= tick_ns:
            return  # next event within a tick: the tick keeps running
        if k.tick_stopped and k.timers.get(SCHED_TIMER) == expires:
            return  # unchanged since the last stop
        k.tick_stopped = True
        self.sched.ev(vid, Kind.TICK_STOP, a=expires)
        self.hrtimer_start(vid, SCHED_TIMER, expires)

    def tick_nohz_idle_exit(self, vid: int) -> None:
        """tick_nohz_idle_exit() -> tick_nohz_restart(): cancel, forward, start the tick."""
        k = self.s[vid]
        k.idle = False
        if not k.tick_stopped:
            return
        k.tick_stopped = False
        tick_ns = self.tick_ns
        expires = (self.sched.now // tick_ns + 1) * tick_ns
        self.sched.ev(vid, Kind.TICK_RESTART, a=expires)
        self.hrtimer_cancel(vid, SCHED_TIMER)
        self.hrtimer_start(vid, SCHED_TIMER, expires)

    # ---- interrupt handlers ------------------------------------------------------------------------
    def sysvec_apic_timer_interrupt(self, vid: int, vector: int) -> None:
        """sysvec_apic_timer_interrupt(): EOI, then the clockevent handler (hrtimer_interrupt)."""
        k = self.s[vid]
        tsc_now = self.clock.tsc(vid, self.sched.now)
        irq = self.sched.ev(vid, Kind.GUEST_TIMER_IRQ, a=tsc_now, b=self.hazards.wanted(vid))
        self.cpu.apic_write(vid, APIC_EOI, 0)
        self.hazards.timer_interrupt(vid, tsc_now, irq)
        if k.timers:
            self.hrtimer_interrupt(vid)

    def sysvec_reschedule_ipi(self, vid: int, vector: int) -> None:
        """sysvec_reschedule_ipi(): EOI, then scheduler_ipi (the workload's need_resched)."""
        self.sched.ev(vid, Kind.GUEST_IPI, a=vector, b=self.cpu.apic.s[vid].ipi_src.get(vector, -1))
        self.cpu.apic_write(vid, APIC_EOI, 0)
        if self.workload is not None:
            self.workload.on_ipi(self, vid, vector)

    def after_interrupt(self, vid: int) -> None:
        """Back in the interrupted code or the idle loop: whoever owns the vCPU decides."""
        for hook in self.after_irq_hooks:
            hook(vid)

    # ---- other guest activity ----------------------------------------------------------------------
    def send_ipi(self, vid: int, dest: int, vector: int) -> None:
        """native_send_call_func_single_ipi / smp_send_reschedule: an x2APIC ICR write."""
        self.cpu.apic_write(vid, APIC_ICR, (dest << 32) | APIC_DEST_NOSHORT | vector)

    def idle_enter(self, vid: int, wheel_next: int) -> None:
        """do_idle() -> tick_nohz_idle_stop_tick() -> default_idle() (STI; HLT)."""
        self.s[vid].idle = True
        self.tick_nohz_stop_tick(vid, wheel_next)
        self.cpu.hlt(vid)

    def is_idle(self, vid: int) -> bool:
        return self.s[vid].idle

    def work(self, vid: int, duration: int, handler: int) -> None:
        """A task runs for `duration` of CPU time; the host's time in exits is added to it.

        Its CPU time starts at VM entry: exits the guest took just before (the IPI that
        woke the peer, the tick restart on leaving idle) keep the vCPU in the host first.
        """
        k = self.s[vid]
        r = self.run.s[vid]
        r.task_active = True
        now = self.sched.now
        start = r.in_host_until if not r.guest_mode and r.in_host_until > now else now
        r.task_end = start + duration
        k.task_gen += 1
        k.task_handler = handler
        self.sched.at(r.task_end, self.H_TASK, vid, k.task_gen)

    def _task_done(self, vid: int, gen: int) -> None:
        k = self.s[vid]
        r = self.run.s[vid]
        if gen != k.task_gen or not r.task_active:
            return
        if r.task_end > self.sched.now:
            self.sched.at(r.task_end, self.H_TASK, vid, gen)  # exits stole time: not done yet
            return
        r.task_active = False
        self.sched.begin(-1)
        self.task_handlers[k.task_handler](vid)

    def register_task(self, fn: Callable[[int], None]) -> int:
        self.task_handlers.append(fn)
        return len(self.task_handlers) - 1

    def spiv_enable(self, vid: int) -> None:
        self.cpu.apic_write(vid, APIC_SPIV, 0x100 | 0xFF)
