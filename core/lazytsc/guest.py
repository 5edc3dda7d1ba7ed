"""Guest side: the clockevent drivers, the hrtimer/NOHZ layer above them, HLT, IPIs.

The drivers are the seed's: classic `lapic_next_deadline` (arch/x86/kernel/apic/apic.c)
writes MSR_IA32_TSC_DEADLINE on every call; lazy `kvm_lapic_next_deadline`
(arch/x86/kernel/kvm.c in the seed) writes `pending` and skips the MSR write unless
`armed == 0 || tsc < armed`.

Above them, a small model of kernel/time/hrtimer.c and tick-sched.c: the clockevent
is reprogrammed only when the earliest hrtimer changes, which is what makes NOHZ
idle entry/exit reprogram on every halt (DESIGN.md section 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .taxonomy import (
    LOCAL_TIMER_VECTOR,
    MSR_IA32_TSC_DEADLINE,
    WAKE_IPI,
    X2APIC_LVTT,
    X2APIC_TMICT,
)
from .taxonomy import (
    ExitInts as Exit,
)
from .taxonomy import (
    KindInts as Kind,
)
from .taxonomy import (
    MsrSubInts as MsrSub,
)
from .vcpu import LVT_MASKED, MODE_TSCDEADLINE, NEVER, TIMER_MODE_SHIFT, Vcpu

if TYPE_CHECKING:
    from .engine import Engine

TSC_DIVISOR = 8  # arch/x86/kernel/apic/apic.c: the clockevent runs at tsc_khz / 8
MIN_DELTA_TICKS = 0xF  # lapic_clockevent.min_delta_ticks
SCHED_TIMER = "sched_timer"  # tick_sched.sched_timer
WATCHDOG = "watchdog"  # softlockup watchdog hrtimer: keeps expires_next finite
WATCHDOG_PERIOD_NS = 4_000_000_000


class GuestMixin:
    """Guest kernel model used by scripts and workloads."""

    # ---- clockevent drivers ---------------------------------------------------------
    def driver_program(self: Engine, v: Vcpu, tsc: int) -> None:
        """set_next_event(): route one absolute TSC deadline through the guest's driver."""
        v.wanted = tsc
        v.wanted_ns = -((-tsc * 1_000_000) // v.khz)  # Vcpu.ns_of_tsc, inlined (hot path)
        v.wanted_done = False
        v.wanted_lost = False
        if self.lazy and v.pv_registered:
            # kvm_lapic_next_deadline(): pending = tsc; write only if armed == 0 || tsc < armed.
            v.page_pending = tsc
            armed = v.page_armed
            self._ev(v.id, Kind.DEADLINE_REQUEST, a=tsc, b=armed)
            if armed == 0 or tsc < armed:
                self.guest_wrmsr_tsc_deadline(v, tsc)
                return
            self._ev(v.id, Kind.DEADLINE_SKIP, a=tsc, b=armed)
            if tsc == armed:
                self._ev(v.id, Kind.HAZ_EQUAL_SKIP, a=tsc, b=armed)
            if not self.host_timer_pending(v):
                # The guest relies on an armed timer that does not exist.
                v.wanted_lost = True
                self._ev(v.id, Kind.HAZ_LOST, a=tsc, b=armed)
            return
        # lapic_next_deadline(): wrmsrl(MSR_IA32_TSC_DEADLINE, rdtsc() + delta * TSC_DIVISOR)
        self._ev(v.id, Kind.DEADLINE_REQUEST, a=tsc, b=0)
        self.guest_wrmsr_tsc_deadline(v, tsc)

    def host_timer_pending(self: Engine, v: Vcpu) -> bool:
        """Will the host ever deliver a timer interrupt to this vCPU as things stand?"""
        if v.latched or v.req_lazy:
            return True
        return v.timer_active and not (v.lvtt & LVT_MASKED)

    def guest_wrmsr_tsc_deadline(self: Engine, v: Vcpu, value: int) -> None:
        """WRMSR 0x6e0: an msr-write exit handled by kvm_set_lapic_tscdeadline_msr()."""
        self._ev(v.id, Kind.WRMSR_TSC_DEADLINE, Exit.MSR_WRITE, MsrSub.TSC_DEADLINE, a=value, b=v.page_armed)
        if v.timer_mode == MODE_TSCDEADLINE:
            # The guest re-programs before a latched expiry was injected: KVM's
            # start_apic_timer() path resets lapic_timer.pending, so the stale expiry
            # is never delivered against the new deadline.
            v.latched = False
        self.set_tscdeadline_msr(v, value)
        self._entry(v)

    # ---- hrtimer layer (kernel/time/hrtimer.c) ------------------------------------
    def hrtimer_start(self: Engine, v: Vcpu, name: str, expires: int) -> None:
        """hrtimer_start(): enqueue or move; reprogram only if the earliest expiry changes."""
        timers = v.timers
        was_first = timers.get(name) == v.expires_next
        timers[name] = expires
        if v.in_hrtirq:
            return  # hrtimer_interrupt() reprograms once at its end
        if was_first:
            nxt = min(timers.values())
            if nxt != v.expires_next:
                self.tick_program_event(v, nxt)  # hrtimer_force_reprogram(skip_equal=1)
        elif expires < v.expires_next:
            self.tick_program_event(v, expires)  # hrtimer_reprogram()

    def hrtimer_cancel(self: Engine, v: Vcpu, name: str) -> None:
        """hrtimer_cancel() -> __remove_hrtimer(reprogram): force reprogram if it was first."""
        expires = v.timers.pop(name, None)
        if expires is None or v.in_hrtirq:
            return
        if expires == v.expires_next:
            nxt = min(v.timers.values(), default=NEVER)
            if nxt != v.expires_next:
                self.tick_program_event(v, nxt)

    def hrtimer_interrupt(self: Engine, v: Vcpu) -> None:
        """hrtimer_interrupt(): run expired timers, then always reprogram the next expiry."""
        now = self.now
        v.in_hrtirq = True
        expired = sorted((exp, name) for name, exp in v.timers.items() if exp <= now)
        for _exp, name in expired:
            if v.timers.get(name, NEVER) <= now:
                del v.timers[name]
                self.hrtimer_callback(v, name)
        v.in_hrtirq = False
        self.tick_program_event(v, min(v.timers.values(), default=NEVER))

    def hrtimer_callback(self: Engine, v: Vcpu, name: str) -> None:
        if name == SCHED_TIMER:
            self.tick_sched_timer(v)
        elif name == WATCHDOG:
            v.timers[WATCHDOG] = self.now + WATCHDOG_PERIOD_NS
        elif self.workload is not None:
            self.workload.timer_callback(self, v, name)

    def tick_program_event(self: Engine, v: Vcpu, expires: int) -> None:
        """tick_program_event() -> clockevents_program_event() -> set_next_event()."""
        v.expires_next = expires
        if expires == NEVER:
            v.wanted = 0
            v.wanted_done = True
            if v.kernel_booted and not v.clockevent_stopped:
                # clockevents_switch_state(ONESHOT_STOPPED) -> lapic_timer_shutdown():
                # mask LVTT, TMICT = 0 (two register writes).
                # (Only a booted kernel model does this; a bare script leaves the
                # clockevent alone, as a kernel with some far timer pending would.)
                v.clockevent_stopped = True
                self.guest_lapic_write(v, X2APIC_LVTT, v.lvtt | LVT_MASKED)
                self.guest_lapic_write(v, X2APIC_TMICT, 0)
            return
        if v.clockevent_stopped:
            # Leaving ONESHOT_STOPPED: lapic_timer_set_oneshot() -> __setup_APIC_LVTT().
            v.clockevent_stopped = False
            self.guest_lapic_write(v, X2APIC_LVTT, (MODE_TSCDEADLINE << TIMER_MODE_SHIFT) | LOCAL_TIMER_VECTOR)
        # delta = expires - ktime_get(); clc = delta * mult >> shift; the driver then adds
        # rdtsc(). The deadline lands on the ideal TSC of `expires` plus a deviation of
        # whole TSC_DIVISOR steps (rdtsc read after ktime_get, tick truncation): our
        # explicit model of the reprogram jitter (VcpuConfig.reprogram_jitter_cycles).
        khz = v.khz
        tsc = expires * khz // 1_000_000
        steps = v.jitter_steps
        if steps:
            tsc += TSC_DIVISOR * int(v.rng.random() * (steps + 1))
        floor = self.now * khz // 1_000_000 + MIN_DELTA_TICKS * TSC_DIVISOR
        if tsc < floor:
            tsc = floor  # clockevents_program_min_delta()
        self.driver_program(v, tsc)

    # ---- NOHZ tick (kernel/time/tick-sched.c) ----------------------------------------
    def kernel_boot(self: Engine, v: Vcpu, tick_ns: int) -> None:
        """tick_setup_sched_timer() on a tick grid from 0, plus the watchdog hrtimer."""
        v.kernel_booted = True
        v.timers[WATCHDOG] = self.now + WATCHDOG_PERIOD_NS
        if tick_ns:
            v.timers[SCHED_TIMER] = (self.now // tick_ns + 1) * tick_ns
        self.tick_program_event(v, min(v.timers.values()))

    def tick_sched_timer(self: Engine, v: Vcpu) -> None:
        """tick_sched_timer(): in NOHZ idle the stopped tick does not restart itself."""
        tick_ns = self.tick_ns
        if v.tick_stopped or not tick_ns:
            return
        v.timers[SCHED_TIMER] = (self.now // tick_ns + 1) * tick_ns  # hrtimer_forward()

    def tick_nohz_stop_tick(self: Engine, v: Vcpu, wheel_next: int) -> None:
        """tick_nohz_stop_tick(): move the tick to the next timer event, if > 1 tick away."""
        tick_ns = self.tick_ns
        if not tick_ns or not self.nohz:
            return
        others = min((e for n, e in v.timers.items() if n != SCHED_TIMER), default=NEVER)
        expires = min(wheel_next, others)
        if expires - self.now <= tick_ns:
            return  # next event within a tick: the tick keeps running
        if v.tick_stopped and v.timers.get(SCHED_TIMER) == expires:
            return  # unchanged since the last stop
        v.tick_stopped = True
        self._ev(v.id, Kind.TICK_STOP, a=expires)
        self.hrtimer_start(v, SCHED_TIMER, expires)

    def tick_nohz_idle_exit(self: Engine, v: Vcpu) -> None:
        """tick_nohz_idle_exit() -> tick_nohz_restart(): cancel, forward, start the tick."""
        v.guest_idle = False
        if not v.tick_stopped:
            return
        v.tick_stopped = False
        tick_ns = self.tick_ns
        expires = (self.now // tick_ns + 1) * tick_ns
        self._ev(v.id, Kind.TICK_RESTART, a=expires)
        self.hrtimer_cancel(v, SCHED_TIMER)
        self.hrtimer_start(v, SCHED_TIMER, expires)

    # ---- interrupts into the guest -----------------------------------------------------
    def guest_timer_interrupt(self: Engine, v: Vcpu) -> None:
        """sysvec_apic_timer_interrupt(): EOI, then the clockevent handler (hrtimer_interrupt)."""
        tsc_now = v.tsc(self.now)
        wanted = v.wanted
        irq = self._ev(v.id, Kind.GUEST_TIMER_IRQ, a=tsc_now, b=wanted)
        if not v.cfg.apicv:
            self.guest_eoi(v, LOCAL_TIMER_VECTOR)
        if wanted:
            hazard = -1
            if tsc_now < wanted:
                hazard = self._ev(v.id, Kind.HAZ_SPURIOUS, a=tsc_now, b=wanted)
            elif not v.wanted_done:
                v.wanted_done = True
                if self.now - v.wanted_ns > self.host.late_tolerance_ns:
                    hazard = self._ev(v.id, Kind.HAZ_LATE, a=tsc_now, b=wanted)
            if hazard >= 0:
                self.rows[hazard * 5 + 4] = irq  # the hazard judges this interrupt: its parent
        if v.timers:
            self.hrtimer_interrupt(v)
        self.after_interrupt(v)

    def deliver_ipis(self: Engine, v: Vcpu) -> None:
        """Posted or injected IPIs reach the guest handler (e.g. scheduler_ipi)."""
        pending = v.ipi_pending
        v.ipi_pending = []
        for vector, source in pending:
            self._ev(v.id, Kind.GUEST_IPI, a=vector, b=source)
            if not v.cfg.apicv:
                self.guest_eoi(v, vector)
            if self.workload is not None and v.id in self.workload.vcpus:
                self.workload.on_ipi(self, v, vector, source)
        self.after_interrupt(v)

    def after_interrupt(self: Engine, v: Vcpu) -> None:
        """Back in the idle loop or the interrupted code: the owner decides what runs next."""
        if self.workload is not None and v.id in self.workload.vcpus:
            self.workload.after_irq(self, v)
        elif v.guest_idle:
            v.guest_idle = False  # a script's HLT returns after one interrupt
            self.run_deferred(v)

    def guest_eoi(self: Engine, v: Vcpu, vector: int) -> None:
        """EOI write: an msr-write exit unless APICv (or PV EOI) absorbs it."""
        if v.cfg.x2apic:
            self._ev(v.id, Kind.WRMSR_EOI, Exit.MSR_WRITE, MsrSub.APIC_EOI, a=vector)
        else:
            self._ev(v.id, Kind.WRMSR_EOI, Exit.OTHER, a=vector)  # xAPIC: MMIO write
        self._entry(v)

    # ---- other guest instructions -----------------------------------------------------
    def guest_lapic_write(self: Engine, v: Vcpu, reg: int, value: int) -> None:
        """x2APIC WRMSR of a timer register: an msr-write exit to kvm_lapic_reg_write()."""
        exit_reason = Exit.MSR_WRITE if v.cfg.x2apic else Exit.OTHER
        sub = MsrSub.OTHER if v.cfg.x2apic else MsrSub.NONE
        self._ev(v.id, Kind.LAPIC_WRITE, exit_reason, sub, a=reg, b=value)
        self.lapic_write(v, reg, value)
        self._entry(v)

    def guest_hlt(self: Engine, v: Vcpu) -> None:
        """HLT: a halt exit; kvm_vcpu_halt() blocks unless an interrupt is already pending."""
        v.guest_idle = True
        has_events = v.latched or bool(v.ipi_pending)
        if v.cfg.hlt_exits:
            blocked = not has_events
            self._ev(v.id, Kind.HLT, Exit.HALT, a=int(blocked))
            if blocked:
                v.blocked = True
                return
            self._entry(v)
        else:
            self._ev(v.id, Kind.HLT, a=0)  # HLT passed through: the host never knows
        if has_events:
            self.deliver_pending(v)

    def deliver_pending(self: Engine, v: Vcpu) -> None:
        if v.latched:
            self.deliver_latched_timer(v)
        if v.ipi_pending:
            self.deliver_ipis(v)

    def guest_send_ipi(self: Engine, v: Vcpu, dest: int, vector: int) -> None:
        """x2APIC ICR write: msr-write/apic-icr exit, then kvm_apic_accept_irq() on `dest`."""
        if v.cfg.x2apic:
            self._ev(v.id, Kind.WRMSR_ICR, Exit.MSR_WRITE, MsrSub.APIC_ICR, a=dest, b=vector)
        else:
            self._ev(v.id, Kind.WRMSR_ICR, Exit.OTHER, a=dest, b=vector)  # xAPIC: MMIO APIC-write exit
        if 0 <= dest < len(self.vcpus):
            target = self.vcpus[dest]
            target.ipi_pending.append((vector, v.id))
            if target.blocked:
                self._wake(target, WAKE_IPI)
            else:
                self._at(self.now, self.H_DELIVER_IPI, dest, 0)
        self._entry(v)

    def guest_read_tscdeadline(self: Engine, v: Vcpu) -> int:
        value = self.get_tscdeadline_msr(v)
        self._ev(v.id, Kind.LAPIC_READ, Exit.MSR_READ, a=MSR_IA32_TSC_DEADLINE, b=value)
        self._entry(v)
        return value

    def guest_idle_enter(self: Engine, v: Vcpu, wheel_next: int) -> None:
        """do_idle() -> tick_nohz_idle_stop_tick() -> default_idle() (HLT)."""
        v.guest_idle = True
        self.tick_nohz_stop_tick(v, wheel_next)
        self.guest_hlt(v)

    def guest_work(self: Engine, v: Vcpu, duration: int, handler: int) -> None:
        """Guest task runs for `duration` of CPU time; exits taken meanwhile add their cost."""
        self._at(self.now + duration + v.penalty_ns, handler, v.id, 0)
        v.penalty_ns = 0
