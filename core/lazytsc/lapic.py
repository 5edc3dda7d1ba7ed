"""Host LAPIC timer rules (KVM arch/x86/kvm/lapic.c), as a mixin of the Engine.

Each method names the KVM function it models. The mixin relies on the Engine
for `now`, `_ev` (log an event), `_at` (schedule) and the lazy host functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .taxonomy import (
    BACKEND_HV,
    BACKEND_SW,
    CLEAR_EXPIRED_HV,
    CLEAR_EXPIRED_SW,
    CLEAR_LVTT,
    LOCAL_TIMER_VECTOR,
    WAKE_TIMER,
    X2APIC_LVTT,
    X2APIC_SPIV,
    X2APIC_TDCR,
    X2APIC_TMCCT,
    X2APIC_TMICT,
)
from .taxonomy import (
    ExitInts as Exit,
)
from .taxonomy import (
    KindInts as Kind,
)
from .vcpu import (
    LVT_MASKED,
    MODE_PERIODIC,
    MODE_TSCDEADLINE,
    SPIV_APIC_ENABLED,
    TIMER_MODE_SHIFT,
    Vcpu,
    divide_count,
)

if TYPE_CHECKING:
    from .engine import Engine

# kvm_lapic_reg_write(): the LVTT bits KVM keeps (vector, delivery status, mask)
# plus timer_mode_mask (both mode bits: TSC-deadline is advertised).
LVTT_WRITABLE = 0xFF | (1 << 12) | LVT_MASKED | (0x3 << TIMER_MODE_SHIFT)


class LapicMixin:
    """LAPIC timer: LVTT/TMICT/TDCR/SPIV, TSC-deadline MSR, arming, expiry."""

    # ---- register writes --------------------------------------------------------
    def lapic_write(self: Engine, v: Vcpu, reg: int, value: int) -> None:
        """kvm_lapic_reg_write() for the timer-related registers."""
        if reg == X2APIC_LVTT:
            if not (v.spiv & SPIV_APIC_ENABLED):
                value |= LVT_MASKED  # LVT writes are forced masked while the APIC is sw-disabled
            v.lvtt = value & LVTT_WRITABLE
            self.apic_update_lvtt(v)
        elif reg == X2APIC_TMICT:
            if v.timer_mode == MODE_TSCDEADLINE:
                return  # case APIC_TMICT: ignored in TSC-deadline mode
            self.cancel_apic_timer(v)
            v.tmict = value & 0xFFFFFFFF
            self.start_apic_timer_period(v)
        elif reg == X2APIC_TDCR:
            old = v.divisor
            v.tdcr = value & 0xB
            v.divisor = divide_count(v.tdcr)  # update_divide_count()
            if v.period_ns and v.timer_active and v.timer_mode != MODE_TSCDEADLINE:
                self.update_target_expiration(v, old)
        elif reg == X2APIC_SPIV:
            was_enabled = bool(v.spiv & SPIV_APIC_ENABLED)
            v.spiv = value & 0x3FF
            if was_enabled and not (v.spiv & SPIV_APIC_ENABLED):
                # apic_set_spiv(): software-disabling the APIC masks every LVT entry.
                v.lvtt |= LVT_MASKED
                v.latched = False
                self.apic_update_lvtt(v)

    def apic_update_lvtt(self: Engine, v: Vcpu) -> None:
        """apic_update_lvtt(): mode switches, plus the seed's `clear` on mask or mode change."""
        mode = (v.lvtt >> TIMER_MODE_SHIFT) & 0x3
        changed = mode != v.timer_mode
        if changed:
            if (v.timer_mode == MODE_TSCDEADLINE) != (mode == MODE_TSCDEADLINE):
                # Entering or leaving TSC-deadline mode cancels the timer and zeroes
                # TMICT, the period and the stored deadline.
                self.cancel_apic_timer(v)
                v.tmict = 0
                v.period_ns = 0
                v.tscdeadline = 0
            # one-shot <-> periodic keeps the running countdown.
            v.timer_mode = mode
            self.limit_periodic_timer_frequency(v)
        if v.mapped and (changed or v.lvtt & LVT_MASKED):
            self.lazy_clear(v, CLEAR_LVTT)

    def limit_periodic_timer_frequency(self: Engine, v: Vcpu) -> None:
        """limit_periodic_timer_frequency(): periodic periods >= min_timer_period_us."""
        if v.timer_mode == MODE_PERIODIC and v.period_ns:
            floor_ns = self.host.min_timer_period_us * 1000
            if v.period_ns < floor_ns:
                v.period_ns = floor_ns

    # ---- register reads ---------------------------------------------------------
    def apic_get_tmcct(self: Engine, v: Vcpu) -> int:
        """apic_get_tmcct(): remaining count; 0 in TSC-deadline mode, after expiry, or TMICT=0."""
        if v.tmict == 0 or v.period_ns == 0 or v.timer_mode == MODE_TSCDEADLINE:
            return 0
        remaining = v.target_ns - self.now
        if remaining < 0 or not v.timer_active:
            return 0
        remaining %= v.period_ns
        return remaining // (self.host.apic_bus_ns * v.divisor)

    def lapic_read(self: Engine, v: Vcpu, reg: int) -> int:
        if reg == X2APIC_LVTT:
            return v.lvtt
        if reg == X2APIC_TMICT:
            return v.tmict
        if reg == X2APIC_TMCCT:
            return self.apic_get_tmcct(v)
        if reg == X2APIC_TDCR:
            return v.tdcr
        if reg == X2APIC_SPIV:
            return v.spiv
        return 0

    def get_tscdeadline_msr(self: Engine, v: Vcpu) -> int:
        """kvm_get_lapic_tscdeadline_msr(): 0 unless in TSC-deadline mode; 0 after firing."""
        if v.timer_mode != MODE_TSCDEADLINE:
            return 0
        return v.tscdeadline

    # ---- starting and cancelling ------------------------------------------------
    def cancel_apic_timer(self: Engine, v: Vcpu) -> None:
        """cancel_apic_timer(): hrtimer_cancel / cancel_hv_timer; stale expiries are ignored."""
        if v.timer_active:
            v.timer_active = False
            v.timer_gen += 1
            self._ev(v.id, Kind.TIMER_CANCEL, a=v.tscdeadline if v.timer_mode == MODE_TSCDEADLINE else v.tsc(v.target_ns))

    def set_tscdeadline_msr(self: Engine, v: Vcpu, value: int) -> bool:
        """kvm_set_lapic_tscdeadline_msr(): returns False when ignored (not TSC-deadline mode)."""
        if v.timer_mode != MODE_TSCDEADLINE:
            return False
        self.cancel_apic_timer(v)
        v.tscdeadline = value
        if v.mapped:
            self.lazy_update(v, value)
        self.start_tscdeadline(v)
        return True

    def start_tscdeadline(self: Engine, v: Vcpu) -> None:
        """start_apic_timer() in TSC-deadline mode: start_hv_timer / start_sw_tscdeadline."""
        deadline = v.tscdeadline
        if deadline == 0:
            return  # writing 0 disarms
        want_hv = v.cfg.timer_backend == "hv" and not v.blocked
        now_tsc = v.tsc(self.now)
        target_ns = v.ns_of_tsc(deadline)
        if deadline <= now_tsc or target_ns - self.now <= v.cfg.timer_advance_ns:
            # start_sw_tscdeadline(): a deadline already expired -- or due within
            # timer_advance_ns -- expires at once (apic_timer_expired, the busy-wait at
            # entry holds the injection until the deadline); start_hv_timer() likewise
            # gets `expired` back. No hrtimer runs, so no kick: the seed's `clear` instead.
            if v.mapped:
                self.lazy_clear(v, CLEAR_EXPIRED_HV if want_hv else CLEAR_EXPIRED_SW)
            v.tscdeadline = 0
            self.apic_timer_expired(v, deadline, immediate=True)
            return
        backend = BACKEND_HV
        if not want_hv or deadline - now_tsc > self.host.hv_max_delta_cycles:
            backend = BACKEND_SW
            if want_hv and v.mapped and self.variant == "v2":
                # GUESS (documented in docs/model.md): V3's changelog says start_hv_timer
                # clears "only when the deadline already expired"; we read V2 as also
                # clearing when the hv timer cannot be used and KVM falls back to sw.
                self.lazy_clear(v, CLEAR_EXPIRED_HV)
        self._arm(v, target_ns, backend, deadline)

    def start_apic_timer_period(self: Engine, v: Vcpu) -> None:
        """start_sw_period() / set_target_expiration() for one-shot and periodic."""
        if v.tmict == 0:
            v.period_ns = 0
            return
        v.period_ns = v.tmict * self.host.apic_bus_ns * v.divisor
        self.limit_periodic_timer_frequency(v)
        if v.timer_mode not in (0, MODE_PERIODIC):
            return  # reserved mode: KVM keeps TMICT but runs no timer
        backend = BACKEND_HV if v.cfg.timer_backend == "hv" and not v.blocked else BACKEND_SW
        self._arm(v, self.now + v.period_ns, backend, 0)

    def update_target_expiration(self: Engine, v: Vcpu, old_divisor: int) -> None:
        """update_target_expiration(): a TDCR change rescales the remaining time."""
        remaining = max(0, v.target_ns - self.now)
        new_remaining = remaining * v.divisor // old_divisor
        v.period_ns = v.tmict * self.host.apic_bus_ns * v.divisor
        self.limit_periodic_timer_frequency(v)
        v.timer_active = False
        v.timer_gen += 1
        backend = BACKEND_HV if v.cfg.timer_backend == "hv" and not v.blocked else BACKEND_SW
        self._arm(v, self.now + new_remaining, backend, 0)

    def _arm(self: Engine, v: Vcpu, target_ns: int, backend: int, deadline: int) -> None:
        """Queue the host expiry `timer_advance_ns` early (the busy-wait hides it from the guest)."""
        v.timer_gen += 1
        v.timer_active = True
        v.timer_backend = backend
        v.target_ns = target_ns
        fire_ns = target_ns - v.cfg.timer_advance_ns
        if fire_ns < self.now:
            fire_ns = self.now
        idx = self._ev(v.id, Kind.TIMER_ARM, a=deadline if deadline else v.tsc(target_ns), b=backend)
        self._at(fire_ns, self.H_TIMER_FIRE, v.id, (v.timer_gen, idx))

    # ---- expiry -------------------------------------------------------------------
    def _timer_fire(self: Engine, v: Vcpu, arg: tuple[int, int]) -> None:
        """apic_timer_fn (sw) / kvm_lapic_expired_hv_timer (hv) for an armed timer."""
        gen, arm_idx = arg
        if gen != v.timer_gen or not v.timer_active:
            return  # cancelled or re-armed since: hrtimer_cancel won the race
        if v.stall_until >= self.now and v.timer_mode == MODE_TSCDEADLINE:
            # A deadline (re-armed by kick) expiring while the vCPU busy-waits in the host
            # for the previous injection is seen at the next entry, after that injection.
            self._at(v.stall_until, self.H_TIMER_FIRE, v.id, arg)
            return
        v.timer_active = False
        tscdl = v.timer_mode == MODE_TSCDEADLINE
        deadline = v.tscdeadline if tscdl else v.tsc(v.target_ns)
        if v.blocked:
            backend, exit_reason = BACKEND_SW, Exit.NONE  # switched to sw when it blocked
        elif v.timer_backend == BACKEND_HV:
            backend, exit_reason = BACKEND_HV, Exit.PREEMPTION_TIMER
        elif v.cfg.posted_timer_interrupts:
            backend, exit_reason = BACKEND_SW, Exit.NONE  # posted: no exit on the target
        else:
            backend, exit_reason = BACKEND_SW, Exit.INTR
        self.cause = arm_idx
        self._ev(v.id, Kind.TIMER_FIRE, exit_reason, a=deadline, b=backend)
        if tscdl:
            v.tscdeadline = 0  # apic_timer_expired(): the MSR reads 0 after firing
        elif v.timer_mode == MODE_PERIODIC and v.period_ns:
            # advance_periodic_target_expiration(): target += period; if already past,
            # restart from now (one interrupt, no burst).
            nxt = v.target_ns + v.period_ns
            if nxt < self.now:
                nxt = self.now
            self._arm(v, nxt, v.timer_backend, 0)
        inject = True
        if tscdl and v.mapped:
            if backend == BACKEND_HV:
                rearmed = self.lazy_kick(v)  # hv path: kick directly in kvm_lapic_expired_hv_timer
                if rearmed and self.variant == "v3":
                    inject = False  # V3: no interrupt when the kick re-arms on the hv path
            else:
                # sw path: apic_timer_fn raises KVM_REQ_LAZY_TSCDEADLINE for the next entry.
                v.req_lazy = True
                v.req_time = self.now
                v.req_waits = exit_reason == Exit.NONE and not v.blocked  # posted: no exit to serve it
                self._ev(v.id, Kind.KICK_REQUEST, a=deadline)
        if inject:
            self.apic_timer_expired(v, deadline, immediate=False)
        if exit_reason != Exit.NONE:
            self._entry(v)

    def apic_timer_expired(self: Engine, v: Vcpu, deadline: int, immediate: bool) -> None:
        """apic_timer_expired(): latch one expiry (at most one at a time) and get it injected."""
        if v.latched:
            self._ev(v.id, Kind.TIMER_COALESCED, a=deadline)
            return
        v.latched = True
        if v.blocked:
            self._wake(v, WAKE_TIMER)  # kvm_vcpu_kick(): the blocked vCPU is woken
            return
        if immediate:
            delay = 0  # found expired at arm time (during an exit): injected at this entry
        elif v.cfg.timer_backend == "hv" and v.timer_backend == BACKEND_HV:
            delay = self.host.hv_timer_latency_ns
        else:
            delay = self.host.sw_timer_latency_ns
        at = self.now + delay
        target = v.ns_of_tsc(deadline) if deadline else self.now
        if target > at:
            at = target  # __kvm_wait_lapic_expire(): busy-wait until the deadline
        if not v.cfg.posted_timer_interrupts or v.timer_backend == BACKEND_HV:
            # The vCPU sits in the host (exit handling, then the busy-wait) until the
            # injection: no guest instruction runs meanwhile.
            v.stall_until = at
        self._at(at, self.H_DELIVER_TIMER, v.id, self.root)

    def _deliver_timer(self: Engine, v: Vcpu, parent: int) -> None:
        """kvm_inject_apic_timer_irqs() -> kvm_apic_local_deliver(APIC_LVTT)."""
        if v.stall_until == self.now:
            v.stall_until = -1  # the busy-wait ends: actions waiting for it may run
        if not v.latched:
            return  # already delivered (e.g. at a wake-up) or reset by a new deadline
        if v.blocked:
            return  # it blocked meanwhile; the wake-up delivers it
        self.cause = parent
        self.deliver_latched_timer(v)

    def deliver_latched_timer(self: Engine, v: Vcpu) -> None:
        v.latched = False
        if v.lvtt & LVT_MASKED:
            self._ev(v.id, Kind.IRQ_INJECT, a=LOCAL_TIMER_VECTOR, b=1)  # masked: dropped
            return
        self.guest_timer_interrupt(v)
