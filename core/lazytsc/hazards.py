"""Hazards judged from state (DESIGN.md section 1), each logged as an event kind.

The guest's *wanted* deadline is what its clockevent last asked for in the current
timer mode (a TSC-deadline value, or the one-shot/periodic target a TMICT write set).
The guest cancels it itself by disarming (deadline 0), masking LVTT or switching mode;
then nothing it wanted can be lost.

- `spurious`: a timer interrupt before the wanted deadline of the current mode.
- `late`: the first interrupt after the wanted deadline, more than late_tolerance_ns after it.
- `lost`: the guest wants a deadline and nothing will ever deliver it: no host timer
  armed (hrtimer or preemption timer), no latched expiry, no timer vector in IRR/ISR,
  and no pending KVM_REQ_LAZY_TSCDEADLINE whose kick would re-arm. Judged when the lazy
  driver skips a write (the guest relies on `armed`) -- the moment the timer is lost --
  and at the end of the run for a wanted deadline that passed undelivered (a request
  no exit ever served is known to be lost only then).
- `stale_armed`: the guest page's `armed` is non-zero while the host keeps no copy of
  it (unmapped, or cached_armed == 0): the guest skips later writes against a deadline
  nobody will arm -- with cached_armed == 0, kick and clear return at their guard.
- `stale_pending`: `pending` still holds a future deadline after clear (LVTT mask or
  mode switch, PV disable) or exit (reset, migration).
- `sw_kick_delayed`: a KVM_REQ_LAZY_TSCDEADLINE raised without an exit waited longer
  than late_tolerance_ns for an unrelated exit -- or was never served.
"""

from __future__ import annotations

from .apic import InterruptController
from .clock import TscClock
from .config import HostConfig, VcpuConfig
from .lapic_timer import LapicTimer
from .lazy_host import ARMED, PENDING, LazyHost
from .memory import GuestMemory
from .sim import Scheduler
from .taxonomy import CLEAR_LVTT, CLEAR_PV_DISABLE, EXIT_MIGRATE, EXIT_PV_DISABLE, EXIT_REENABLE
from .taxonomy import KindInts as Kind
from .vcpu import APIC_LVTT, LVT_MASKED, MODE_PERIODIC, MODE_TSCDEADLINE


class WantState:
    __slots__ = ("tsc", "ns", "mode", "period_cycles", "done", "lost", "stale_armed")

    def __init__(self) -> None:
        self.tsc = 0
        self.ns = 0
        self.mode = -1
        self.period_cycles = 0
        self.done = True
        self.lost = False
        self.stale_armed = False

    def clone(self) -> WantState:
        new = WantState.__new__(WantState)
        for name in WantState.__slots__:
            setattr(new, name, getattr(self, name))
        return new


class HazardMonitor:
    def __init__(
        self,
        sched: Scheduler,
        clock: TscClock,
        apic: InterruptController,
        timer: LapicTimer,
        lazy: LazyHost,
        mem: GuestMemory,
        struct_gpa: list[int],
        cfgs: list[VcpuConfig],
        host: HostConfig,
    ) -> None:
        self.sched = sched
        self.clock = clock
        self.apic = apic
        self.timer = timer
        self.lazy = lazy
        self.mem = mem
        self.struct_gpa = struct_gpa
        self.cfgs = cfgs
        self.tolerance = host.late_tolerance_ns
        self.s = [WantState() for _ in cfgs]
        self.quiet = False  # set while a VMM restore is half done: judged when it completes

    def save(self) -> list[WantState]:
        return [s.clone() for s in self.s]

    def restore(self, saved: list[WantState]) -> None:
        self.s = [s.clone() for s in saved]

    # ---- what the guest wants --------------------------------------------------------------
    def want(self, vid: int, tsc: int, mode: int = MODE_TSCDEADLINE, period_cycles: int = 0) -> None:
        """The guest programmed its timer: a TSC deadline, or a one-shot/periodic target."""
        w = self.s[vid]
        if tsc == 0:
            w.done = True  # disarmed by the guest
            return
        w.tsc = tsc
        w.ns = self.clock.ns_of(vid, tsc)
        w.mode = mode
        w.period_cycles = period_cycles
        w.done = False
        w.lost = False

    def cancel(self, vid: int) -> None:
        """The guest itself masked its timer, switched mode, or was reset: nothing is wanted."""
        self.s[vid].done = True

    def wanted(self, vid: int) -> int:
        w = self.s[vid]
        return 0 if w.done else w.tsc

    # ---- judging ------------------------------------------------------------------------------
    def will_fire(self, vid: int) -> bool:
        """Will anything deliver a timer interrupt to this vCPU as things stand?"""
        a = self.apic.s[vid]
        lvtt = a.lvt[APIC_LVTT]
        if lvtt & LVT_MASKED or not self.apic.apic_enabled(vid):
            return True  # the guest's own choice: nothing can be "lost"
        t = self.timer.s[vid]
        if t.sw_active or t.hv_in_use or t.pending:
            return True
        vector = lvtt & 0xFF
        if (a.irr | a.isr) >> vector & 1:
            return True
        p = self.lazy.s[vid]
        # A pending KVM_REQ_LAZY_TSCDEADLINE whose kick would re-arm delivers once any exit
        # serves it; whether one ever comes is known only at the end of the run.
        return bool(p.req and p.cached_armed and p.msr_val & 1 and p.mapped and self.lazy.host_pending(vid) > self.lazy.host_armed(vid))

    def skipped(self, vid: int, tsc: int, armed: int) -> None:
        """kvm_lapic_next_deadline() skipped the MSR write: the guest relies on `armed`."""
        w = self.s[vid]
        if not w.lost and not self.will_fire(vid):
            w.lost = True
            self.sched.ev(vid, Kind.HAZ_LOST, a=tsc, b=armed)

    def timer_interrupt(self, vid: int, tsc_now: int, irq: int) -> None:
        """The guest took a timer interrupt: early or late against the wanted deadline?"""
        w = self.s[vid]
        if not w.tsc or w.mode != self.timer.s[vid].timer_mode:
            return  # nothing wanted in this mode: not judged
        hazard = -1
        if tsc_now < w.tsc:
            hazard = self.sched.ev(vid, Kind.HAZ_SPURIOUS, a=tsc_now, b=w.tsc)
        elif not w.done:
            if self.sched.now - w.ns > self.tolerance:
                hazard = self.sched.ev(vid, Kind.HAZ_LATE, a=tsc_now, b=w.tsc)
            if w.mode == MODE_PERIODIC and w.period_cycles:
                # the next period's target is wanted next
                w.tsc += w.period_cycles * ((tsc_now - w.tsc) // w.period_cycles + 1)
                w.ns = self.clock.ns_of(vid, w.tsc)
            else:
                w.done = True
        if hazard >= 0:
            self.sched.set_value(hazard, 4, irq)  # the hazard judges this interrupt: its parent

    # ---- host-side state changes ---------------------------------------------------------------
    def timer_changed(self, vid: int) -> None:
        """A host path changed what will fire (kick, expiry, injection): re-judge the page."""
        self._check_page(vid, -1)

    def cleared(self, vid: int, reason: int) -> None:
        if reason in (CLEAR_LVTT, CLEAR_PV_DISABLE):
            self._stale_pending(vid, reason)

    def mapped(self, vid: int, base: int) -> None:
        self._check_page(vid, -1)

    def unmapped(self, vid: int, reason: int) -> None:
        if reason != EXIT_REENABLE:
            self._check_page(vid, reason)
            if reason not in (EXIT_MIGRATE, EXIT_PV_DISABLE):  # PV disable: `clear` judged it
                self._stale_pending(vid, 100 + reason)

    def restored(self, vid: int) -> None:
        self._check_page(vid, EXIT_MIGRATE)

    def _stale_pending(self, vid: int, reason: int) -> None:
        if self.quiet:
            return
        pending = self.mem.read64(self.struct_gpa[vid] + PENDING)
        if pending > self.clock.tsc(vid, self.sched.now):
            self.sched.ev(vid, Kind.HAZ_STALE_PENDING, a=pending, b=reason)

    def _check_page(self, vid: int, cause: int) -> None:
        if self.quiet:
            return
        w = self.s[vid]
        armed = self.mem.read64(self.struct_gpa[vid] + ARMED)
        p = self.lazy.s[vid]
        stale = bool(armed) and (not p.mapped or not p.cached_armed or p.base != self.struct_gpa[vid])
        if stale and not w.stale_armed:
            self.sched.ev(vid, Kind.HAZ_STALE_ARMED, a=armed, b=cause)
        w.stale_armed = stale

    def request_served(self, vid: int, delay: int, waited: bool) -> None:
        if waited and delay > self.tolerance:
            self.sched.ev(vid, Kind.HAZ_SW_KICK_DELAYED, a=delay, b=self.lazy.s[vid].req_deadline)

    # ---- end of run ------------------------------------------------------------------------------
    def finish(self) -> None:
        now = self.sched.now
        for vid, w in enumerate(self.s):
            if not w.done and not w.lost and w.ns + self.tolerance < now:
                w.lost = True
                self.sched.ev(vid, Kind.HAZ_LOST, a=w.tsc, b=self.mem.read64(self.struct_gpa[vid] + ARMED))
            p = self.lazy.s[vid]
            if p.req and p.req_waits and now - p.req_time > self.tolerance:
                self.sched.ev(vid, Kind.HAZ_SW_KICK_DELAYED, a=now - p.req_time, b=p.req_deadline)
