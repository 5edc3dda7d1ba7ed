"""The local APIC timer as KVM emulates it (arch/x86/kvm/lapic.c), with the seed's hooks.

Every method is one lapic.c function of the same name (or says which): one-shot,
periodic and TSC-deadline modes on two backends, the VMX preemption timer (`hv`,
vmx_set_hv_timer) and the host hrtimer (`sw`), `lapic_timer.pending` (one latched
expiry at most), `expired_tscdeadline` and the timer_advance_ns busy-wait. The lazy
TSC-deadline patch adds calls to `update` (kvm_set_lapic_tscdeadline_msr), `clear`
(apic_update_lvtt, start_sw_tscdeadline, start_hv_timer) and `kick`
(kvm_lapic_expired_hv_timer; apic_timer_fn raises KVM_REQ_LAZY_TSCDEADLINE); where V2
and V3 differ, the code says which is which.

Times: `target` is ktime (simulated ns); `tscdeadline` is guest TSC. The host fires a
TSC-deadline timer `timer_advance_ns` early (start_sw_tscdeadline, vmx_set_hv_timer) and
busy-waits at entry (kvm_wait_lapic_expire); one-shot and periodic timers on the hrtimer
are armed at their exact target (start_sw_period) and never waited for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .apic import InterruptController
from .clock import TscClock
from .config import HostConfig, VcpuConfig
from .sim import Scheduler
from .taxonomy import (
    BACKEND_HV,
    BACKEND_SW,
    CLEAR_EXPIRED_HV,
    CLEAR_EXPIRED_SW,
    CLEAR_LVTT,
    DROP_CANCEL,
    DROP_RESTART,
    DROP_SPIV,
    EXPIRED_DIRECT,
    EXPIRED_LATCHED,
    EXPIRED_POSTED,
    SRC_TIMER,
    SWITCH_BLOCK,
    SWITCH_WAKE,
    WAKE_TIMER,
)
from .taxonomy import ExitInts as Exit
from .taxonomy import KindInts as Kind
from .vcpu import (
    APIC_LVTT,
    LVT_MASK,
    LVT_MASKED,
    MODE_ONESHOT,
    MODE_PERIODIC,
    MODE_TSCDEADLINE,
    TIMER_MODE_MASK,
    TIMER_MODE_SHIFT,
    divide_count,
)

if TYPE_CHECKING:  # the ports (ports.py) by their implementations: compiled calls are direct
    from .hazards import HazardMonitor
    from .lazy_host import LazyHost
    from .vcpu_run import VcpuRunLoop

# TimerState's attributes: its __slots__ and what clone() copies (a compiled class has no
# __slots__ to read back).
_TIMER_STATE_FIELDS = (
    "timer_mode",
    "tmict",
    "tdcr",
    "divide",
    "period",
    "target",
    "tscdeadline",
    "pending",
    "pending_deadline",
    "expired_tscdeadline",
    "hv_in_use",
    "hv_gen",
    "hv_fire",
    "hv_arm",
    "hv_deadline",
    "sw_active",
    "sw_gen",
    "sw_expires",
    "posted_gen",
)


class TimerState:
    """struct kvm_timer (+ the timer registers) of one vCPU."""

    __slots__ = _TIMER_STATE_FIELDS

    def __init__(self) -> None:
        self.timer_mode = MODE_ONESHOT
        self.tmict = 0
        self.tdcr = 0
        self.divide = divide_count(0)
        self.period = 0
        self.target = 0
        self.tscdeadline = 0
        self.pending = 0
        self.pending_deadline = 0
        self.expired_tscdeadline = 0
        self.hv_in_use = False
        self.hv_gen = 0
        self.hv_fire = 0
        self.hv_arm = -1  # the TIMER_ARM event of the armed preemption timer
        self.hv_deadline = 0
        self.sw_active = False
        self.sw_gen = 0
        self.sw_expires = 0
        self.posted_gen = 0  # tag of the queued posted injection (0: none)

    def clone(self) -> TimerState:
        new = TimerState()  # a blank instance (compiled classes run __init__ in __new__)
        for name in _TIMER_STATE_FIELDS:
            setattr(new, name, getattr(self, name))
        return new


class LapicTimer:
    """One LAPIC timer per vCPU; see the module docstring."""

    def __init__(
        self,
        sched: Scheduler,
        clock: TscClock,
        apic: InterruptController,
        cfgs: list[VcpuConfig],
        host: HostConfig,
        variant: str,
    ) -> None:
        self.sched = sched
        self.clock = clock
        self.apic = apic
        self.cfgs = cfgs
        self.host = host
        self.v3 = variant == "v3"
        self.s = [TimerState() for _ in cfgs]
        self.advance = [c.timer_advance_ns for c in cfgs]
        # kvm_can_post_timer_interrupt(): pi_inject_timer && APICv && HLT/MWAIT in guest.
        self.can_post = [c.posted_timer_interrupts and c.apicv and not c.hlt_exits for c in cfgs]
        # kvm_can_use_hv_timer(): the VMX preemption timer, unless interrupts are posted.
        self.hv_ok = [c.timer_backend == "hv" and not self.can_post[i] for i, c in enumerate(cfgs)]
        # timer_mode_mask: both mode bits only when CPUID advertises TSC-deadline.
        self.mode_mask = [TIMER_MODE_MASK if c.cpuid_tsc_deadline else (1 << TIMER_MODE_SHIFT) for c in cfgs]
        self.lazy: LazyHost  # LazyPort
        self.run: VcpuRunLoop  # RunPort
        self.hazards: HazardMonitor  # HazardPort
        self.H_SW_FIRE = sched.register(self.apic_timer_fn, guest=False)
        self.H_HV_FIRE = sched.register(self.hv_timer_exit, guest=False)
        self.H_POSTED = sched.register(self._posted_inject, guest=False)

    # ---- state ---------------------------------------------------------------------------
    def save(self) -> list[TimerState]:
        return [s.clone() for s in self.s]

    def restore(self, saved: list[TimerState]) -> None:
        self.s = [s.clone() for s in saved]

    def hv_in_use(self, vid: int) -> bool:
        return self.s[vid].hv_in_use

    def armed(self, vid: int) -> bool:
        """A host timer (hrtimer or preemption timer) will expire for this vCPU."""
        t = self.s[vid]
        return t.sw_active or t.hv_in_use

    def deadline_of(self, vid: int) -> int:
        """The guest TSC the armed timer stands for (what events show)."""
        return self.s[vid].tscdeadline

    # ---- registers -------------------------------------------------------------------------
    def write_lvtt(self, vid: int, value: int) -> None:
        """kvm_lapic_reg_write(APIC_LVTT): forced masked while software-disabled."""
        if not self.apic.s[vid].sw_enabled:
            value |= LVT_MASKED
        self.apic.s[vid].lvt[APIC_LVTT] = value & (LVT_MASK | self.mode_mask[vid])
        self.apic_update_lvtt(vid)

    def apic_update_lvtt(self, vid: int) -> None:
        """apic_update_lvtt(): a switch into or out of TSC-deadline mode cancels the timer.

        The seed adds `clear` when LVTT is masked or the TSC-deadline mode changes
        (V2 and V3 alike). One-shot <-> periodic keeps the running countdown, and a mask
        alone does not stop the timer: it expires, but nothing is delivered.
        """
        t = self.s[vid]
        lvtt = self.apic.s[vid].lvt[APIC_LVTT]
        mode = (lvtt & self.mode_mask[vid]) >> TIMER_MODE_SHIFT
        clear = bool(lvtt & LVT_MASKED)
        if t.timer_mode != mode:
            if (t.timer_mode == MODE_TSCDEADLINE) != (mode == MODE_TSCDEADLINE):
                self.cancel_apic_timer(vid)
                t.tmict = 0
                t.period = 0
                t.tscdeadline = 0
                clear = True
            t.timer_mode = mode
            self.limit_periodic_timer_frequency(vid)
        if clear:
            self.lazy.clear(vid, CLEAR_LVTT)
        self.hazards.timer_changed(vid)

    def write_tmict(self, vid: int, value: int) -> None:
        """kvm_lapic_reg_write(APIC_TMICT): ignored in TSC-deadline mode, else restart the count."""
        t = self.s[vid]
        if t.timer_mode == MODE_TSCDEADLINE:
            return
        self.cancel_apic_timer(vid)
        t.tmict = value & 0xFFFFFFFF
        self.start_apic_timer(vid)

    def write_tdcr(self, vid: int, value: int) -> None:
        """kvm_lapic_reg_write(APIC_TDCR): a new divisor rescales the remaining time.

        Whenever `period` is set -- also after a one-shot expired, whose target was reset
        to 0 at injection -- the timer is restarted: an expired one-shot fires again.
        """
        t = self.s[vid]
        old = t.divide
        t.tdcr = value & 0xB
        t.divide = divide_count(t.tdcr)
        if t.divide != old and t.period:
            self.hrtimer_cancel(vid)
            self.update_target_expiration(vid, old)
            self.restart_apic_timer(vid)

    def spiv_disabled(self, vid: int) -> None:
        """kvm_lapic_reg_write(APIC_SPIV) without the enable bit: LVTs masked, pending zeroed."""
        self.apic_update_lvtt(vid)
        self._drop_pending(vid, DROP_SPIV)

    def read_tmcct(self, vid: int) -> int:
        """__apic_read(APIC_TMCCT): 0 in TSC-deadline mode, else apic_get_tmcct()."""
        if self.s[vid].timer_mode == MODE_TSCDEADLINE:
            return 0
        return self.apic_get_tmcct(vid)

    def apic_get_tmcct(self, vid: int) -> int:
        """apic_get_tmcct(): remaining time mod period, in bus cycles * divisor; 0 if expired."""
        t = self.s[vid]
        if t.tmict == 0 or t.period == 0:
            return 0
        remaining = t.target - self.sched.now
        if remaining < 0:
            remaining = 0
        return (remaining % t.period) // (self.host.apic_bus_ns * t.divide)

    def get_tscdeadline_msr(self, vid: int) -> int:
        """kvm_get_lapic_tscdeadline_msr(): 0 unless in TSC-deadline mode."""
        t = self.s[vid]
        return t.tscdeadline if t.timer_mode == MODE_TSCDEADLINE else 0

    def set_tscdeadline_msr(self, vid: int, value: int) -> None:
        """kvm_set_lapic_tscdeadline_msr(): ignored unless in TSC-deadline mode.

        hrtimer_cancel, store the deadline, the seed's `update` (armed = cached_armed =
        value), then start_apic_timer -- whose __start_apic_timer zeroes a latched expiry.
        """
        t = self.s[vid]
        if t.timer_mode != MODE_TSCDEADLINE:
            return
        self.hrtimer_cancel(vid)
        t.tscdeadline = value
        self.lazy.update(vid, value)
        self.start_apic_timer(vid)

    # ---- starting -----------------------------------------------------------------------------
    def start_apic_timer(self, vid: int) -> None:
        self.__start_apic_timer(vid, -1)

    def restore_timer(self, vid: int, tmcct: int) -> None:
        """kvm_apic_set_state() -> __start_apic_timer(APIC_TMCCT) with the saved count."""
        self.__start_apic_timer(vid, tmcct)

    def __start_apic_timer(self, vid: int, count: int) -> None:
        """__start_apic_timer(): pending = 0, then set_target_expiration and restart."""
        t = self.s[vid]
        self._drop_pending(vid, DROP_RESTART)
        if t.timer_mode in (MODE_PERIODIC, MODE_ONESHOT) and not self.set_target_expiration(vid, count):
            return
        self.restart_apic_timer(vid)

    def set_target_expiration(self, vid: int, count: int) -> bool:
        """set_target_expiration(): period from TMICT; a restore (`count` >= 0) starts from TMCCT."""
        t = self.s[vid]
        unit = self.host.apic_bus_ns * t.divide
        t.period = t.tmict * unit
        if not t.period:
            t.tscdeadline = 0
            return False
        self.limit_periodic_timer_frequency(vid)
        deadline = t.period
        if count >= 0:
            deadline = count * unit
            if deadline <= 0:
                deadline = t.period if t.timer_mode == MODE_PERIODIC else 0
            elif deadline > t.period:
                deadline = t.period
        now = self.sched.now
        t.tscdeadline = self.clock.tsc(vid, now) + self.clock.cycles(vid, deadline)
        t.target = now + deadline
        return True

    def update_target_expiration(self, vid: int, old_divisor: int) -> None:
        """update_target_expiration(): remaining * new / old divisor, from now."""
        t = self.s[vid]
        t.period = t.tmict * self.host.apic_bus_ns * t.divide
        self.limit_periodic_timer_frequency(vid)
        now = self.sched.now
        remaining = t.target - now
        if remaining < 0:
            remaining = 0
        new = remaining * t.divide // old_divisor
        t.tscdeadline += self.clock.cycles(vid, new) - self.clock.cycles(vid, remaining)
        t.target = now + new

    def advance_periodic_target_expiration(self, vid: int) -> None:
        """advance_periodic_target_expiration(): target += period; a past target becomes now."""
        t = self.s[vid]
        now = self.sched.now
        t.target += t.period
        if t.target < now:
            t.target = now
        t.tscdeadline = self.clock.tsc(vid, now) + self.clock.cycles(vid, t.target - now)

    def limit_periodic_timer_frequency(self, vid: int) -> None:
        """limit_periodic_timer_frequency(): periods below min_timer_period_us are raised to it."""
        t = self.s[vid]
        if t.timer_mode == MODE_PERIODIC and t.period:
            floor = self.host.min_timer_period_us * 1000
            if t.period < floor:
                t.period = floor

    def restart_apic_timer(self, vid: int) -> None:
        """restart_apic_timer(): nothing while a non-periodic expiry is pending; hv, else sw."""
        t = self.s[vid]
        if t.timer_mode != MODE_PERIODIC and t.pending:
            return
        if not self.start_hv_timer(vid):
            self.start_sw_timer(vid)

    def start_hv_timer(self, vid: int) -> bool:
        """start_hv_timer() with vmx_set_hv_timer(): False means "use the hrtimer".

        vmx_set_hv_timer arms the preemption timer timer_advance_ns early; a delta within
        the advance is `expired` at once. It fails (-ERANGE) when the delta does not fit
        the preemption timer: start_hv_timer then returns before its pending/expired
        branches, so the seed's clear does not run on that path.
        """
        t = self.s[vid]
        if not self.hv_ok[vid] or self.run.blocked(vid) or not t.tscdeadline:
            return False
        now = self.sched.now
        guest_tsc = self.clock.tsc(vid, now)
        delta = t.tscdeadline - guest_tsc if t.tscdeadline > guest_tsc else 0
        advance_cycles = self.clock.cycles(vid, self.advance[vid])
        delta = delta - advance_cycles if delta > advance_cycles else 0
        if delta > self.host.hv_max_delta_cycles:
            return False
        expired = delta == 0
        was_sw = t.sw_active
        if t.hv_in_use:
            self.sched.ev(vid, Kind.TIMER_CANCEL, a=t.hv_deadline)  # set_hv_timer replaces it
        t.hv_in_use = True
        t.hv_deadline = t.tscdeadline
        t.hv_gen = self.sched.gen()
        t.hv_fire = now + self.clock.ns_for_cycles(vid, delta)
        if was_sw:
            t.sw_active = False  # hrtimer_cancel(): the hrtimer hands over to the hv timer
            t.sw_gen = self.sched.gen()
        periodic = t.timer_mode == MODE_PERIODIC
        arm = -1
        if not expired or periodic:
            arm = self.sched.ev(vid, Kind.TIMER_ARM, a=t.tscdeadline, b=BACKEND_HV)
        t.hv_arm = arm
        if not expired:
            self.sched.at(t.hv_fire, self.H_HV_FIRE, vid, (t.hv_gen, arm))
        if not periodic:
            if t.pending:
                self.cancel_hv_timer(vid)
                if not self.v3:
                    self.lazy.clear(vid, CLEAR_EXPIRED_HV)
            elif expired:
                self.apic_timer_expired(vid, False)
                self.cancel_hv_timer(vid)
                if not self.v3:
                    self.lazy.clear(vid, CLEAR_EXPIRED_HV)
        elif expired:
            # A periodic hv timer stays armed when expired: the resulting exit (right
            # after entry) recomputes the target.
            self.sched.at(now, self.H_HV_FIRE, vid, (t.hv_gen, arm))
        if self.v3 and t.timer_mode == MODE_TSCDEADLINE and expired:
            self.lazy.clear(vid, CLEAR_EXPIRED_HV)
        return True

    def cancel_hv_timer(self, vid: int) -> None:
        """cancel_hv_timer(): hv_timer_in_use = false (a queued expiry is stale)."""
        t = self.s[vid]
        t.hv_in_use = False
        t.hv_gen = self.sched.gen()

    def start_sw_timer(self, vid: int) -> None:
        """start_sw_timer(): hv off, then start_sw_period or start_sw_tscdeadline."""
        t = self.s[vid]
        if t.hv_in_use:
            self.cancel_hv_timer(vid)
            self.sched.ev(vid, Kind.TIMER_CANCEL, a=t.hv_deadline)
        if t.timer_mode != MODE_PERIODIC and t.pending:
            return
        if t.timer_mode in (MODE_PERIODIC, MODE_ONESHOT):
            self.start_sw_period(vid)
        elif t.timer_mode == MODE_TSCDEADLINE:
            self.start_sw_tscdeadline(vid)

    def start_sw_tscdeadline(self, vid: int) -> None:
        """start_sw_tscdeadline(): hrtimer timer_advance_ns early, or expired at once.

        The seed's `clear` runs in the expired branch (V2 and V3): a deadline already
        past -- or within timer_advance_ns -- expires without any hrtimer, so no kick.
        """
        t = self.s[vid]
        if not t.tscdeadline:
            return
        now = self.sched.now
        guest_tsc = self.clock.tsc(vid, now)
        advance = self.advance[vid]
        if t.tscdeadline > guest_tsc:
            ns = self.clock.ns_for_cycles(vid, t.tscdeadline - guest_tsc)
            if ns > advance:
                self.hrtimer_start(vid, now + ns - advance)
                return
        self.apic_timer_expired(vid, False)
        self.lazy.clear(vid, CLEAR_EXPIRED_SW)

    def start_sw_period(self, vid: int) -> None:
        """start_sw_period(): one-shot/periodic hrtimer at the exact target (no advance).

        KVM compares a fresh ktime_get() with the target (`ktime_after`); a target set to
        "now" a few instructions earlier (update_target_expiration after an expired
        one-shot, a restore from TMCCT 0) is already behind it. Simulated time does not
        advance within an action, so a target equal to now counts as passed.
        """
        t = self.s[vid]
        if not t.period:
            return
        if self.sched.now >= t.target:
            self.apic_timer_expired(vid, False)
            if t.timer_mode == MODE_ONESHOT:
                return
            self.advance_periodic_target_expiration(vid)
        self.hrtimer_start(vid, t.target)

    def hrtimer_start(self, vid: int, expires: int) -> None:
        """hrtimer_start(HRTIMER_MODE_ABS_HARD): apic_timer_fn runs after the host's latency."""
        t = self.s[vid]
        t.sw_active = True
        t.sw_gen = self.sched.gen()
        t.sw_expires = expires
        arm = self.sched.ev(vid, Kind.TIMER_ARM, a=t.tscdeadline, b=BACKEND_SW)
        self.sched.at(max(expires, self.sched.now) + self.host.sw_timer_latency_ns, self.H_SW_FIRE, vid, (t.sw_gen, arm))

    def hrtimer_cancel(self, vid: int) -> None:
        t = self.s[vid]
        if t.sw_active:
            t.sw_active = False
            t.sw_gen = self.sched.gen()
            self.sched.ev(vid, Kind.TIMER_CANCEL, a=t.tscdeadline)

    def cancel_apic_timer(self, vid: int) -> None:
        """cancel_apic_timer(): hrtimer_cancel, cancel_hv_timer, pending = 0."""
        t = self.s[vid]
        was_hv = t.hv_in_use
        self.hrtimer_cancel(vid)
        if was_hv:
            self.cancel_hv_timer(vid)
            self.sched.ev(vid, Kind.TIMER_CANCEL, a=t.hv_deadline)
        self._drop_pending(vid, DROP_CANCEL)

    def _drop_pending(self, vid: int, reason: int) -> None:
        t = self.s[vid]
        if t.pending:
            t.pending = 0
            self.sched.ev(vid, Kind.TIMER_DROPPED, a=t.pending_deadline, b=reason)

    # ---- expiry -------------------------------------------------------------------------------
    def apic_timer_expired(self, vid: int, from_timer_fn: bool) -> None:
        """apic_timer_expired(): latch one expiry, or inject it at once.

        - an expiry already pending: nothing (at most one is latched);
        - not from the hrtimer callback and APICv active: straight into the IRR
          (kvm_apic_inject_pending_timer_irqs);
        - posted timer interrupts to a running guest: busy-wait on the host, then post;
        - otherwise pending = 1 (injected at the next entry), and the hrtimer callback
          kicks the vCPU.
        """
        t = self.s[vid]
        if t.pending:
            self.sched.ev(vid, Kind.TIMER_COALESCED, a=t.tscdeadline)
            return
        if t.timer_mode == MODE_TSCDEADLINE or t.hv_in_use:
            t.expired_tscdeadline = t.tscdeadline
        deadline = t.tscdeadline
        if not from_timer_fn and self.cfgs[vid].apicv:
            self.sched.ev(vid, Kind.TIMER_EXPIRED, a=deadline, b=EXPIRED_DIRECT)
            self.kvm_apic_inject_pending_timer_irqs(vid)
            return
        if from_timer_fn and self.can_post[vid] and self.run.in_guest(vid):
            self.sched.ev(vid, Kind.TIMER_EXPIRED, a=deadline, b=EXPIRED_POSTED)
            when = self.sched.now
            if t.expired_tscdeadline and self.advance[vid]:
                # __kvm_wait_lapic_expire() in the callback: the host CPU waits, then posts.
                wake = self.clock.ns_of(vid, t.expired_tscdeadline)
                t.expired_tscdeadline = 0
                if wake > when:
                    when = min(wake, when + self.advance[vid])
            if when > self.sched.now:
                t.posted_gen = self.sched.gen()
                self.sched.at(when, self.H_POSTED, vid, (t.posted_gen, self.sched.root))
            else:
                self.kvm_apic_inject_pending_timer_irqs(vid)
            return
        t.pending = 1
        t.pending_deadline = deadline
        self.sched.ev(vid, Kind.TIMER_EXPIRED, a=deadline, b=EXPIRED_LATCHED)
        if from_timer_fn:
            self.run.kick(vid, WAKE_TIMER)

    def _posted_inject(self, vid: int, arg: tuple[int, int]) -> None:
        """The end of apic_timer_fn's busy-wait: inject into the vCPU whose timer fired.

        A vCPU replaced meanwhile (a migration's restore builds a fresh timer) is not that
        vCPU: the callback completed on the source, whose state is gone."""
        gen, parent = arg
        t = self.s[vid]
        if gen != t.posted_gen:
            return
        t.posted_gen = 0
        self.sched.begin(parent)
        self.kvm_apic_inject_pending_timer_irqs(vid)

    def kvm_apic_inject_pending_timer_irqs(self, vid: int) -> None:
        """kvm_apic_inject_pending_timer_irqs(): deliver LVTT; the deadline (one-shot: target) is spent."""
        t = self.s[vid]
        delivered = self.apic.local_deliver(vid, APIC_LVTT, SRC_TIMER)
        if not delivered:
            self.sched.ev(vid, Kind.IRQ_INJECT, a=self.apic.s[vid].lvt[APIC_LVTT] & 0xFF, b=1)
        if t.timer_mode == MODE_TSCDEADLINE:
            t.tscdeadline = 0
        elif t.timer_mode == MODE_ONESHOT:
            t.tscdeadline = 0
            t.target = 0
        self.hazards.timer_changed(vid)

    def has_pending_timer(self, vid: int) -> bool:
        """apic_has_pending_timer(): a pending expiry counts only with LVTT unmasked and the APIC on."""
        return bool(self.s[vid].pending) and self.apic.apic_enabled(vid) and not self.apic.s[vid].lvt[APIC_LVTT] & LVT_MASKED

    def inject_pending_timer_irqs(self, vid: int) -> None:
        """kvm_inject_pending_timer_irqs() at the end of each vcpu_run() iteration."""
        if self.has_pending_timer(vid):
            self.s[vid].pending = 0
            self.kvm_apic_inject_pending_timer_irqs(vid)

    def wait_lapic_expire(self, vid: int) -> int:
        """kvm_wait_lapic_expire(): ns the vCPU busy-waits before entry (at most timer_advance_ns).

        Only when an expiry of the TSC-deadline (or hv) timer is recorded and its vector
        is already injected: in the ISR, or the IRR with APICv.
        """
        t = self.s[vid]
        advance = self.advance[vid]
        if not t.expired_tscdeadline or not advance:
            return 0
        a = self.apic.s[vid]
        vector = a.lvt[APIC_LVTT] & 0xFF
        bitmap = a.irr if self.cfgs[vid].apicv else a.isr
        if not (bitmap >> vector) & 1:
            return 0
        deadline = t.expired_tscdeadline
        t.expired_tscdeadline = 0
        now = self.sched.now
        if self.clock.tsc(vid, now) >= deadline:
            return 0
        wait = min(self.clock.ns_of(vid, deadline) - now, advance)
        self.sched.ev(vid, Kind.BUSY_WAIT, a=wait, b=deadline)
        return wait

    def apic_timer_fn(self, vid: int, arg: tuple[int, int]) -> None:
        """apic_timer_fn(): the hrtimer callback (host side, any time).

        apic_timer_expired(from_timer_fn) latches and kicks; the seed raises
        KVM_REQ_LAZY_TSCDEADLINE in TSC-deadline mode (served at the next entry); a
        periodic timer is re-armed at the next target. A vCPU running in guest mode
        takes an external-interrupt exit for it, unless the interrupt is posted.
        """
        gen, arm = arg
        t = self.s[vid]
        if gen != t.sw_gen or not t.sw_active:
            return
        t.sw_active = False
        self.sched.begin(arm)
        running = self.run.in_guest(vid)
        exits = running and not self.can_post[vid]
        self.sched.ev(vid, Kind.TIMER_FIRE, Exit.INTR if exits else Exit.NONE, a=t.tscdeadline, b=BACKEND_SW)
        if exits:
            self.run.exit_taken(vid)
        deadline = t.tscdeadline
        self.apic_timer_expired(vid, True)
        if t.timer_mode == MODE_TSCDEADLINE:
            self.lazy.request(vid, deadline, exits)
        elif t.timer_mode == MODE_PERIODIC and t.period:
            self.advance_periodic_target_expiration(vid)
            self.hrtimer_start(vid, t.target)

    def hv_timer_exit(self, vid: int, arg: tuple[int, int]) -> None:
        """A preemption-timer exit -> kvm_lapic_expired_hv_timer().

        The preemption timer counts only in guest mode: an expiry while the vCPU is in
        the host is taken right after the next entry.

        V2: apic_timer_expired; cancel_hv_timer; then in TSC-deadline mode `kick`.
        V3: `kick` first; only if it did not re-arm, apic_timer_expired + cancel_hv_timer
        (no interrupt when the kick re-arms).
        """
        gen, arm = arg
        t = self.s[vid]
        if gen != t.hv_gen or not t.hv_in_use:
            return
        if not self.run.in_guest(vid):
            if not self.run.blocked(vid):
                self.sched.at(self.run.defer_to_entry(vid), self.H_HV_FIRE, vid, arg)
            return
        self.sched.begin(arm)
        self.sched.ev(vid, Kind.TIMER_FIRE, Exit.PREEMPTION_TIMER, a=t.tscdeadline, b=BACKEND_HV)
        self.run.exit_taken(vid)
        tscdl = t.timer_mode == MODE_TSCDEADLINE
        if self.v3:
            if not tscdl or not self.lazy.kick(vid):
                self.apic_timer_expired(vid, False)
                self.cancel_hv_timer(vid)
        else:
            self.apic_timer_expired(vid, False)
            self.cancel_hv_timer(vid)
            if tscdl:
                self.lazy.kick(vid)
        if t.timer_mode == MODE_PERIODIC and t.period:
            self.advance_periodic_target_expiration(vid)
            self.restart_apic_timer(vid)
        self.hazards.timer_changed(vid)

    def hv_expired_at_entry(self, vid: int) -> bool:
        """A preemption timer already at 0 exits right after VM entry, before any interrupt
        is delivered (the preemption-timer exit outranks interrupt delivery)."""
        t = self.s[vid]
        if not t.hv_in_use or t.hv_fire > self.sched.now:
            return False
        self.hv_timer_exit(vid, (t.hv_gen, t.hv_arm))
        return True

    # ---- backend switches (vcpu_block) -----------------------------------------------------
    def switch_to_sw_timer(self, vid: int) -> None:
        """kvm_lapic_switch_to_sw_timer(): before blocking, an hv timer moves to the hrtimer."""
        t = self.s[vid]
        if t.hv_in_use:
            self.sched.ev(vid, Kind.BACKEND_SWITCH, a=BACKEND_SW, b=SWITCH_BLOCK)
            self.start_sw_timer(vid)

    def switch_to_hv_timer(self, vid: int) -> None:
        """kvm_lapic_switch_to_hv_timer() -> restart_apic_timer(): after waking (expired: clear)."""
        t = self.s[vid]
        if t.timer_mode != MODE_PERIODIC and t.pending:
            return  # restart_apic_timer(): nothing to move while an expiry is pending
        self.restart_apic_timer(vid)
        self.sched.ev(vid, Kind.BACKEND_SWITCH, a=BACKEND_HV if t.hv_in_use else BACKEND_SW, b=SWITCH_WAKE)

    def reset(self, vid: int) -> None:
        """kvm_lapic_reset()'s timer part: hrtimer_cancel (the LVTT reset then cancels the rest)."""
        self.hrtimer_cancel(vid)
        t = self.s[vid]
        t.tdcr = 0
        t.tmict = 0
        t.divide = divide_count(0)

    def snapshot_fields(self, vid: int) -> dict[str, Any]:
        t = self.s[vid]
        return {
            "timer_mode": t.timer_mode,
            "tmict": t.tmict,
            "tdcr": t.tdcr,
            "divide": t.divide,
            "tmcct": self.read_tmcct(vid),
            "tsc_deadline": self.get_tscdeadline_msr(vid),
            "armed": t.sw_active or t.hv_in_use,
            "target_ns": (t.hv_fire if t.hv_in_use else t.sw_expires) if (t.sw_active or t.hv_in_use) else 0,
            "backend": BACKEND_HV if t.hv_in_use else BACKEND_SW,
            "pending": t.pending,
        }
