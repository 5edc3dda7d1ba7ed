"""The host side of the lazy TSC-deadline protocol: the seed patch's five functions.

kvm_lazy_tscdeadline_{init,exit,update,kick,clear}, the PV MSR (kvm_set_msr_common /
kvm_get_msr_common for MSR_KVM_LAZY_TSCDEADLINE) and KVM_REQ_LAZY_TSCDEADLINE served in
vcpu_enter_guest(), as the V2 patch (and V3 where it differs) writes them:

- `update` returns early unless `msr_val & KVM_MSR_ENABLED` and the page is mapped;
- `kick` and `clear` return early if `!cached_armed || !(msr_val & KVM_MSR_ENABLED) ||
  !guest` -- so after a `clear` (cached_armed == 0) an expiry kicks nothing;
- the disable path runs clear + exit but never stores the new MSR value, and `exit`
  does not touch msr_val: RDMSR keeps returning GPA|1 after a disable or a LAPIC reset;
- `init` maps any GPA inside guest memory (no alignment check; GPA 0 is valid), the
  struct at offset_in_page(msr - KVM_MSR_ENABLED); V3 runs `exit` before `init`.
"""

from __future__ import annotations

from .clock import TscClock
from .config import HostConfig, VcpuConfig
from .memory import GuestMemory
from .ports import HazardPort, TimerPort
from .sim import Scheduler
from .taxonomy import (
    CLEAR_PV_DISABLE,
    EXIT_PV_DISABLE,
    EXIT_REENABLE,
)
from .taxonomy import KindInts as Kind

KVM_MSR_ENABLED = 1
PAGE = 4096
ARMED = 0  # struct kvm_lazy_tscdeadline { u64 armed; u64 pending; u32 flags; ... } (patch 1/4)
PENDING = 8
STRUCT_BYTES = 16
KICK_GUARD = 2  # LAZY_KICK.b: the guard returned early


class PvState:
    """struct kvm_host_lazy_tscdeadline of one vCPU, plus the pending request."""

    __slots__ = ("msr_val", "mapped", "base", "cached_armed", "req", "req_time", "req_waits", "req_deadline", "ever")

    def __init__(self) -> None:
        self.msr_val = 0
        self.mapped = False
        self.base = 0  # GPA of the host's view of the struct (page | offset_in_page(msr - 1))
        self.cached_armed = 0
        self.req = False
        self.req_time = 0
        self.req_waits = False
        self.req_deadline = 0
        self.ever = False  # PV was ever touched: from then on every kick/request is logged

    def clone(self) -> PvState:
        new = PvState.__new__(PvState)
        for name in PvState.__slots__:
            setattr(new, name, getattr(self, name))
        return new


class LazyHost:
    def __init__(self, sched: Scheduler, clock: TscClock, mem: GuestMemory, cfgs: list[VcpuConfig], host: HostConfig, variant: str) -> None:
        self.sched = sched
        self.clock = clock
        self.mem = mem
        self.cfgs = cfgs
        self.host = host
        self.v3 = variant == "v3"
        self.s = [PvState() for _ in cfgs]
        self.timer: TimerPort
        self.hazards: HazardPort

    def save(self) -> list[PvState]:
        return [s.clone() for s in self.s]

    def restore(self, saved: list[PvState]) -> None:
        self.s = [s.clone() for s in saved]

    # ---- the guest page as the host sees it ---------------------------------------------
    def host_armed(self, vid: int) -> int:
        return self.mem.read64(self.s[vid].base + ARMED)

    def host_pending(self, vid: int) -> int:
        return self.mem.read64(self.s[vid].base + PENDING)

    def _set_armed(self, vid: int, value: int) -> None:
        self.mem.host_write64(self.s[vid].base + ARMED, value)

    # ---- the five functions ---------------------------------------------------------------
    def _guard(self, p: PvState) -> bool:
        """The guard of kick and clear: cached_armed, KVM_MSR_ENABLED and a mapped page."""
        return bool(p.cached_armed) and bool(p.msr_val & KVM_MSR_ENABLED) and p.mapped

    def update(self, vid: int, tsc: int) -> None:
        """kvm_lazy_tscdeadline_update(): on every accepted TSC-deadline MSR write."""
        p = self.s[vid]
        if not (p.msr_val & KVM_MSR_ENABLED) or not p.mapped:
            return
        self._set_armed(vid, tsc)
        p.cached_armed = tsc
        self.sched.ev(vid, Kind.LAZY_UPDATE, a=tsc)

    def kick(self, vid: int) -> bool:
        """kvm_lazy_tscdeadline_kick(): arm `pending` if it is later than `armed`, else disarm.

        Returns whether it re-armed (V3 uses it; V2's kick returns nothing).
        """
        p = self.s[vid]
        if not self._guard(p):
            if p.ever:
                self.sched.ev(vid, Kind.LAZY_KICK, a=self.host_pending(vid) if p.mapped else 0, b=KICK_GUARD)
            self.hazards.timer_changed(vid)
            return False
        nxt = self.host_pending(vid)
        if nxt and nxt > self.host_armed(vid):
            self.sched.ev(vid, Kind.LAZY_KICK, a=nxt, b=1)
            self.timer.set_tscdeadline_msr(vid, nxt)  # "as if the MSR were written"
            return True
        self._set_armed(vid, 0)
        p.cached_armed = 0
        self.sched.ev(vid, Kind.LAZY_KICK, a=nxt, b=0)
        self.hazards.timer_changed(vid)
        return False

    def clear(self, vid: int, reason: int) -> None:
        """kvm_lazy_tscdeadline_clear(): armed = cached_armed = 0, behind the kick's guard."""
        p = self.s[vid]
        if not self._guard(p):
            return
        before = self.host_armed(vid)
        self._set_armed(vid, 0)
        p.cached_armed = 0
        self.sched.ev(vid, Kind.LAZY_CLEAR, a=reason, b=before)
        self.hazards.cleared(vid, reason)

    def init(self, vid: int) -> bool:
        """kvm_lazy_tscdeadline_init(): map the page of msr_val (any GPA inside guest memory)."""
        p = self.s[vid]
        msr = p.msr_val
        gfn = msr >> 12
        ok = gfn < self.host.guest_mem_bytes // PAGE
        base = (gfn << 12) | ((msr - KVM_MSR_ENABLED) & (PAGE - 1))
        self.sched.ev(vid, Kind.LAZY_INIT, a=base, b=int(ok))
        if ok:
            p.mapped = True
            p.base = base
            p.ever = True
            self.hazards.mapped(vid, base)
        return ok

    def exit(self, vid: int, reason: int) -> None:
        """kvm_lazy_tscdeadline_exit(): unmap, cached_armed = 0 (the guest page keeps `armed`)."""
        p = self.s[vid]
        p.mapped = False
        p.cached_armed = 0
        self.sched.ev(vid, Kind.LAZY_EXIT, a=reason)
        self.hazards.unmapped(vid, reason)

    # ---- the PV MSR ------------------------------------------------------------------------
    def guest_pv_has(self, vid: int) -> bool:
        """guest_pv_has(): refuses only when KVM_CAP_ENFORCE_PV_FEATURE_CPUID is on and CPUID lacks the bit."""
        return not self.host.enforce_pv_cpuid or self.cfgs[vid].cpuid_lazy

    def write_msr(self, vid: int, data: int) -> bool:
        """kvm_set_msr_common(MSR_KVM_LAZY_TSCDEADLINE); False: the write faults (#GP)."""
        p = self.s[vid]
        if not self.guest_pv_has(vid):
            return False
        p.ever = True
        if not data & KVM_MSR_ENABLED:
            self.clear(vid, CLEAR_PV_DISABLE)
            self.exit(vid, EXIT_PV_DISABLE)
            return True  # msr_val is not updated: RDMSR still returns GPA|1
        if self.v3:
            self.exit(vid, EXIT_REENABLE)
        p.msr_val = data
        if not self.init(vid):
            p.msr_val = 0
            return False
        return True

    def read_msr(self, vid: int) -> int:
        """kvm_get_msr_common(MSR_KVM_LAZY_TSCDEADLINE): msr_val."""
        return self.s[vid].msr_val

    # ---- KVM_REQ_LAZY_TSCDEADLINE ----------------------------------------------------------------
    def request(self, vid: int, deadline: int, exit_taken: bool) -> None:
        """apic_timer_fn(): kvm_make_request(KVM_REQ_LAZY_TSCDEADLINE) in TSC-deadline mode.

        `exit_taken`: the expiry made the vCPU exit (or it is halted and will be woken);
        without an exit (posted interrupt, HLT in guest) the request waits for an
        unrelated one.
        """
        p = self.s[vid]
        if not p.req:
            p.req = True
            p.req_time = self.sched.now
            # Only a request whose kick can act (the guard open) is worth waiting for.
            p.req_waits = not exit_taken and self._guard(p)
            p.req_deadline = deadline
        if p.ever:
            self.sched.ev(vid, Kind.KICK_REQUEST, a=deadline)

    def serve_request(self, vid: int) -> None:
        """vcpu_enter_guest(): kvm_check_request(KVM_REQ_LAZY_TSCDEADLINE) -> kick."""
        p = self.s[vid]
        if not p.req:
            return
        p.req = False
        self.hazards.request_served(vid, self.sched.now - p.req_time, p.req_waits)
        self.kick(vid)
