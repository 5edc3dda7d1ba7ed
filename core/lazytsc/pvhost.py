"""Host side of the lazy TSC-deadline protocol: the five functions of the seed patch.

`init`, `exit`, `update`, `kick`, `clear` exactly as DESIGN.md section 1 states
them, plus the PV MSR write (kvm_set_msr_common, MSR_KVM_LAZY_TSCDEADLINE) and
the sw path's KVM_REQ_LAZY_TSCDEADLINE handled at vcpu_enter_guest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .taxonomy import (
    CLEAR_LVTT,
    CLEAR_PV_DISABLE,
    EXIT_PV_DISABLE,
    EXIT_REENABLE,
)
from .taxonomy import (
    KindInts as Kind,
)
from .vcpu import Vcpu

if TYPE_CHECKING:
    from .engine import Engine

PAGE_ALIGN = 64  # struct kvm_lazy_tscdeadline is padded to 64 bytes per vCPU


class LazyHostMixin:
    """kvm_lazy_tscdeadline_{init,exit,update,kick,clear} and the PV MSR."""

    def pv_msr_write(self: Engine, v: Vcpu, value: int) -> bool:
        """WRMSR MSR_KVM_LAZY_TSCDEADLINE: enable with GPA|1, disable with bit 0 clear.

        Returns False when the write fails (#GP): feature not in CPUID, or the page
        cannot be mapped. A failed mapping leaves the feature disabled.
        """
        if not v.cfg.cpuid_lazy:
            return False  # guest_pv_has(KVM_FEATURE_LAZY_TSCDEADLINE) is false: #GP
        if value & 1:
            if v.mapped and self.variant == "v3":
                self.lazy_exit(v, EXIT_REENABLE)  # V3: re-enabling runs exit before init
            if not self.lazy_init(v, value & ~1):  # reserved low bits: init refuses unaligned GPAs
                v.msr_val = 0
                return False
            v.msr_val = value
            return True
        # Disable: clear, then exit.
        if v.mapped:
            self.lazy_clear(v, CLEAR_PV_DISABLE)
            self.lazy_exit(v, EXIT_PV_DISABLE)
        v.msr_val = value
        return True

    def lazy_init(self: Engine, v: Vcpu, gpa: int) -> bool:
        """kvm_lazy_tscdeadline_init(): map the page named by the PV MSR."""
        ok = gpa % PAGE_ALIGN == 0 and 0 < gpa and gpa + PAGE_ALIGN <= self.host.guest_mem_bytes
        self._ev(v.id, Kind.LAZY_INIT, a=gpa, b=int(ok))
        v.mapped = ok
        return ok

    def lazy_exit(self: Engine, v: Vcpu, reason: int, check_stale: bool = True) -> None:
        """kvm_lazy_tscdeadline_exit(): unmap, cached_armed = 0 -- but never the guest's `armed`."""
        self._ev(v.id, Kind.LAZY_EXIT, a=reason)
        v.mapped = False
        v.cached_armed = 0
        if not check_stale:
            return
        if v.page_armed:
            # Hazard: the guest page keeps a non-zero `armed` with no host copy; the
            # guest skips every later write with tsc >= armed until it re-registers.
            self._ev(v.id, Kind.HAZ_STALE_ARMED, a=v.page_armed, b=reason)
        if v.page_pending > v.tsc(self.now) and reason not in (EXIT_REENABLE, EXIT_PV_DISABLE):
            # (PV disable ran `clear` first, which already flagged it.)
            self._ev(v.id, Kind.HAZ_STALE_PENDING, a=v.page_pending, b=100 + reason)

    def lazy_update(self: Engine, v: Vcpu, tsc: int) -> None:
        """kvm_lazy_tscdeadline_update(): on every accepted TSC-deadline MSR write."""
        v.page_armed = tsc
        v.cached_armed = tsc
        self._ev(v.id, Kind.LAZY_UPDATE, a=tsc)

    def lazy_clear(self: Engine, v: Vcpu, reason: int) -> None:
        """kvm_lazy_tscdeadline_clear(): armed = cached_armed = 0."""
        before = v.page_armed
        v.page_armed = 0
        v.cached_armed = 0
        self._ev(v.id, Kind.LAZY_CLEAR, a=reason, b=before)
        if v.page_pending > v.tsc(self.now) and reason in (CLEAR_LVTT, CLEAR_PV_DISABLE):
            # The guest's pending deadline is no longer backed by any host timer.
            self._ev(v.id, Kind.HAZ_STALE_PENDING, a=v.page_pending, b=reason)

    def lazy_kick(self: Engine, v: Vcpu) -> bool:
        """kvm_lazy_tscdeadline_kick(): arm `pending` if later than `armed`, else disarm.

        Returns whether it re-armed (V3 uses that to skip the interrupt on the hv path).
        """
        if not v.mapped:
            return False
        nxt = v.page_pending
        if nxt and nxt > v.page_armed:
            self._ev(v.id, Kind.LAZY_KICK, a=nxt, b=1)
            # "as if the MSR were written": cancel, store, update(), start.
            self.set_tscdeadline_msr(v, nxt)
            return True
        self._ev(v.id, Kind.LAZY_KICK, a=nxt, b=0)
        v.page_armed = 0
        v.cached_armed = 0
        return False

    def handle_lazy_request(self: Engine, v: Vcpu) -> None:
        """vcpu_enter_guest(): kvm_check_request(KVM_REQ_LAZY_TSCDEADLINE) -> kick."""
        v.req_lazy = False
        delay = self.now - v.req_time
        if v.req_waits and delay > self.host.late_tolerance_ns:
            # Only a request raised without an exit (posted interrupt, HLT in guest)
            # waits for an unrelated exit; a blocked vCPU is woken by its own timer.
            self._ev(v.id, Kind.HAZ_SW_KICK_DELAYED, a=delay, b=v.page_pending)
        self.lazy_kick(v)
