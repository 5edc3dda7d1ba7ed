"""What the VMM does to a vCPU: INIT, save, and restore on a fresh vCPU in a chosen order.

- INIT (kvm_vcpu_reset(init_event=true)): kvm_lapic_reset -- hrtimer_cancel, the seed's
  `exit`, LVTs masked (apic_update_lvtt then cancels the timer), SPIV 0xff, TPR/ICR/
  IRR/ISR 0, TMICT/TDCR 0, pending 0. IA32_APIC_BASE and the PV MSR's msr_val are kept;
  the guest page keeps `armed` and `pending`. The guest CPU restarts with IF = 0.
- save: KVM_GET_LAPIC (registers, TMCCT computed now), KVM_GET_MSRS (IA32_TSC,
  IA32_TSC_DEADLINE, IA32_APIC_BASE, MSR_KVM_LAZY_TSCDEADLINE) and guest memory.
- restore: the destination vCPU starts from creation state (no timer, PV unmapped,
  cached_armed 0); guest memory arrives as of the guest's last write to each page; then
  each step in `order` runs the host-initiated path: KVM_SET_LAPIC (kvm_apic_set_state),
  IA32_TSC (kvm_synchronize_tsc: the guest TSC resumes from its saved value),
  IA32_TSC_DEADLINE (ignored unless LVTT is already in TSC-deadline mode), the PV MSR
  (only with VMM support). Restore-order bugs are real: Firecracker had to restore the
  TSC before the TSC deadline, and restoring the deadline before the PV MSR leaves
  cached_armed == 0 under a non-zero guest `armed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .apic import ApicState, InterruptController
from .clock import TscClock
from .guest_cpu import GuestCpu
from .guest_kernel import GuestKernel
from .hazards import HazardMonitor
from .host import Host
from .lapic_timer import LapicTimer, TimerState
from .lazy_host import LazyHost, PvState
from .memory import GuestMemory
from .sim import Scheduler
from .taxonomy import (
    DROP_RESET,
    EXIT_MIGRATE,
    EXIT_RESET,
    MSR_IA32_TSC_DEADLINE,
    MSR_KVM_LAZY_TSCDEADLINE,
    RESTORE_STEPS,
)
from .taxonomy import KindInts as Kind
from .vcpu import NEVER, SPIV_APIC_ENABLED, divide_count
from .vcpu_run import RunState, VcpuRunLoop

NOTE_SAVE = 3


@dataclass
class SavedVcpu:
    apic: ApicState
    tmict: int
    tdcr: int
    tmcct: int
    tsc: int
    tsc_deadline: int
    apic_base: int
    pv_msr: int
    memory: dict[int, int]


class Vmm:
    def __init__(
        self,
        sched: Scheduler,
        clock: TscClock,
        apic: InterruptController,
        timer: LapicTimer,
        lazy: LazyHost,
        run: VcpuRunLoop,
        host: Host,
        cpu: GuestCpu,
        kernel: GuestKernel,
        mem: GuestMemory,
        hazards: HazardMonitor,
    ) -> None:
        self.sched = sched
        self.clock = clock
        self.apic = apic
        self.timer = timer
        self.lazy = lazy
        self.run = run
        self.host = host
        self.cpu = cpu
        self.kernel = kernel
        self.mem = mem
        self.hazards = hazards
        self.saved: list[SavedVcpu | None] = [None] * len(apic.s)

    def save(self) -> list[SavedVcpu | None]:
        return list(self.saved)

    def restore(self, saved: list[SavedVcpu | None]) -> None:
        self.saved = list(saved)

    # ---- INIT ----------------------------------------------------------------------------------
    def init_vcpu(self, vid: int) -> None:
        """kvm_vcpu_reset(init_event=true) -> kvm_lapic_reset()."""
        self.sched.ev(vid, Kind.VCPU_RESET)
        self.timer.reset(vid)  # hrtimer_cancel
        self.lazy.exit(vid, EXIT_RESET)
        self.apic.s[vid].reset()
        self.timer.apic_update_lvtt(vid)  # LVTT masked: leaving TSC-deadline mode cancels
        self.timer._drop_pending(vid, DROP_RESET)
        self.apic.update_ppr(vid)
        r = self.run.s[vid]
        r.blocked = False
        r.halted = False
        r.guest_mode = r.in_host_until <= self.sched.now
        r.task_active = False
        r.irq_window = False
        r.injected = -1
        c = self.cpu.s[vid]
        c.if_flag = False  # RFLAGS = 0x2 after INIT
        c.shadow = False
        c.halted_in_guest = False
        k = self.kernel.s[vid]
        k.timers.clear()
        k.expires_next = NEVER
        k.booted = False
        k.registered = False
        k.clockevent_stopped = False
        k.tick_stopped = False
        k.idle = False
        self.hazards.cancel(vid)

    # ---- save / restore ------------------------------------------------------------------------
    def save_vcpu(self, vid: int) -> None:
        t = self.timer.s[vid]
        a = self.apic.s[vid]
        self.saved[vid] = SavedVcpu(
            apic=a.clone(),
            tmict=t.tmict,
            tdcr=t.tdcr,
            tmcct=self.timer.read_tmcct(vid),
            tsc=self.clock.tsc(vid, self.sched.now),
            tsc_deadline=self.timer.get_tscdeadline_msr(vid),
            apic_base=a.apic_base,
            pv_msr=self.lazy.s[vid].msr_val,
            memory=self.mem.migration_copy(),
        )
        self.sched.ev(vid, Kind.NOTE, a=NOTE_SAVE)

    def restore_vcpu(self, vid: int, vmm_support: bool, order: tuple[str, ...]) -> None:
        saved = self.saved[vid]
        if saved is None:
            self.sched.ev(vid, Kind.NOTE, a=NOTE_SAVE, b=-1)
            return
        self.sched.ev(vid, Kind.MIGRATE, a=int(vmm_support))
        self.hazards.quiet = True  # the source vCPU goes away; the destination is judged when restored
        # The destination's vCPU, as KVM creates it (the source's host state is gone).
        self.timer.cancel_apic_timer(vid)
        if self.lazy.s[vid].mapped:
            self.lazy.exit(vid, EXIT_MIGRATE)
        self.timer.s[vid] = TimerState()
        self.lazy.s[vid] = PvState()
        fresh = ApicState(vid, False)
        self.apic.s[vid] = fresh
        source = self.run.s[vid]
        dest = RunState()
        dest.entry_queued = source.entry_queued
        # KVM_GET/SET_MP_STATE carry a halted guest's KVM_MP_STATE_HALTED: the destination's
        # first KVM_RUN goes through vcpu_block(), which sees what became pending meanwhile.
        dest.halted = source.halted
        dest.hlt_event = source.hlt_event
        # The VMM's KVM_SET_* ioctls run outside KVM_RUN: nothing is taken before VM entry.
        dest.guest_mode = False
        self.run.s[vid] = dest
        self.mem.load(saved.memory)
        for step in order:
            self._restore_step(vid, step, saved, vmm_support)
        self.hazards.quiet = False
        self.hazards.restored(vid)
        self.run.resume_after_restore(vid)

    def _restore_step(self, vid: int, step: str, saved: SavedVcpu, vmm_support: bool) -> None:
        code = RESTORE_STEPS[step]
        if step == "apic_base":
            self.apic.set_base(vid, saved.apic_base, True, True)
            self.sched.ev(vid, Kind.VMM_RESTORE, a=code, b=saved.apic_base)
        elif step == "lapic":
            self.set_lapic_state(vid, saved)
            self.sched.ev(vid, Kind.VMM_RESTORE, a=code, b=saved.tmcct)
        elif step == "tsc":
            self.host.write_tsc(vid, saved.tsc, True)
            self.sched.ev(vid, Kind.VMM_RESTORE, a=code, b=saved.tsc)
        elif step == "tsc_deadline":
            self.sched.ev(vid, Kind.VMM_RESTORE, a=code, b=saved.tsc_deadline)
            self.host.set_msr(vid, MSR_IA32_TSC_DEADLINE, saved.tsc_deadline, True)
        elif step == "pv_msr":
            if vmm_support and saved.pv_msr:
                self.sched.ev(vid, Kind.VMM_RESTORE, a=code, b=saved.pv_msr)
                self.host.set_msr(vid, MSR_KVM_LAZY_TSCDEADLINE, saved.pv_msr, True)

    # ---- KVM_GET_LAPIC / KVM_SET_LAPIC of one register --------------------------------------------
    def get_lapic_field(self, vid: int, name: str) -> int:
        """kvm_apic_get_state(): the register file, TMCCT computed now."""
        a = self.apic.s[vid]
        t = self.timer.s[vid]
        values = {
            "tpr": a.tpr,
            "ppr": self.apic.update_ppr(vid),
            "spiv": a.spiv,
            "lvtt": a.lvt[0x320],
            "tmict": t.tmict,
            "tmcct": self.timer.read_tmcct(vid),
            "tdcr": t.tdcr,
            "isr": a.isr & ((1 << 63) - 1),
            "irr": a.irr & ((1 << 63) - 1),
            "apic_base": a.apic_base,
            "ldr": self.apic.read(vid, 0xD0) or 0,
            "id": self.apic.read(vid, 0x20) or 0,
        }
        return values[name]

    def set_lapic_field(self, vid: int, name: str, value: int) -> None:
        """KVM_GET_LAPIC, one register changed, KVM_SET_LAPIC (kvm_apic_set_state)."""
        saved = SavedVcpu(
            apic=self.apic.s[vid].clone(),
            tmict=self.timer.s[vid].tmict,
            tdcr=self.timer.s[vid].tdcr,
            tmcct=self.timer.read_tmcct(vid),
            tsc=0,
            tsc_deadline=0,
            apic_base=self.apic.s[vid].apic_base,
            pv_msr=0,
            memory={},
        )
        if name == "tpr":
            saved.apic.tpr = value & 0xFF
        elif name == "spiv":
            saved.apic.spiv = value & 0x3FF
        elif name == "lvtt":
            saved.apic.lvt[0x320] = value
        elif name == "tmict":
            saved.tmict = value & 0xFFFFFFFF
        elif name == "tdcr":
            saved.tdcr = value & 0xB
        self.sched.ev(vid, Kind.VMM_RESTORE, a=RESTORE_STEPS["lapic"], b=value)
        self.set_lapic_state(vid, saved)
        self.run.request_event(vid)

    def set_lapic_state(self, vid: int, saved: SavedVcpu) -> None:
        """kvm_apic_set_state(): registers, cancel, apic_update_lvtt, __start_apic_timer(TMCCT)."""
        a = self.apic.s[vid]
        src = saved.apic
        for name in ("spiv", "tpr", "irr", "isr", "tmr", "icr", "icr2", "ldr", "dfr", "xapic_id"):
            setattr(a, name, getattr(src, name))
        a.sw_enabled = bool(src.spiv & SPIV_APIC_ENABLED)
        a.lvt = dict(src.lvt)
        a.ipi_src = dict(src.ipi_src)
        self.apic.update_ppr(vid)
        t = self.timer.s[vid]
        self.timer.cancel_apic_timer(vid)
        t.expired_tscdeadline = 0
        t.tmict = saved.tmict
        t.tdcr = saved.tdcr
        self.timer.apic_update_lvtt(vid)
        t.divide = divide_count(t.tdcr)
        self.timer.restore_timer(vid, saved.tmcct)
