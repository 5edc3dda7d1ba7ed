"""KVM's register and MSR paths: what a guest access does once it reached the host.

kvm_lapic_reg_write/kvm_lapic_reg_read (lapic.c) dispatch to the interrupt controller
and the timer; kvm_x2apic_msr_write/read add the x2APIC rules (MSR access only in
x2APIC mode, 64-bit ICR, bits 63:32 reserved elsewhere); kvm_set_msr_common/
kvm_get_msr_common (x86.c) cover the MSRs the protocol touches: IA32_TSC_DEADLINE,
IA32_TSC, IA32_TSC_ADJUST, IA32_APIC_BASE and MSR_KVM_LAZY_TSCDEADLINE.
"""

from __future__ import annotations

from .apic import InterruptController
from .clock import TscClock
from .config import VcpuConfig
from .lapic_timer import LapicTimer
from .lazy_host import LazyHost
from .sim import Scheduler
from .taxonomy import MSR_IA32_TSC_DEADLINE, MSR_KVM_LAZY_TSCDEADLINE, SRC_IPI
from .taxonomy import KindInts as Kind
from .vcpu import (
    APIC_ICR,
    APIC_LVR,
    APIC_LVTT,
    APIC_PROCPRI,
    APIC_SPIV,
    APIC_TDCR,
    APIC_TMCCT,
    APIC_TMICT,
    MSR_IA32_APICBASE,
    MSR_IA32_TSC,
    MSR_IA32_TSC_ADJUST,
    SPIV_APIC_ENABLED,
    U64,
    apic_offset,
)

# __kvm_x2apic_icr_write(): bits 31:20, 17:16 and 13 are reserved.
X2APIC_ICR_RESERVED = (0xFFF << 20) | (0x3 << 16) | (1 << 13)
READ_ONLY = (APIC_LVR, APIC_PROCPRI, APIC_TMCCT)


class Host:
    def __init__(
        self,
        sched: Scheduler,
        clock: TscClock,
        apic: InterruptController,
        timer: LapicTimer,
        lazy: LazyHost,
        cfgs: list[VcpuConfig],
    ) -> None:
        self.sched = sched
        self.clock = clock
        self.apic = apic
        self.timer = timer
        self.lazy = lazy
        self.cfgs = cfgs
        self.tsc_adjust = [0] * len(cfgs)

    # ---- LAPIC registers -----------------------------------------------------------------------
    def lapic_reg_write(self, vid: int, offset: int, value: int) -> bool:
        """kvm_lapic_reg_write(): False where the access faults (x2APIC #GP) or is ignored."""
        if offset == APIC_LVTT:
            self.timer.write_lvtt(vid, value)
            return True
        if offset == APIC_TMICT:
            self.timer.write_tmict(vid, value)
            return True
        if offset == APIC_TDCR:
            self.timer.write_tdcr(vid, value)
            return True
        if offset in READ_ONLY:
            return False
        ok, icr = self.apic.write(vid, offset, value)
        if offset == APIC_SPIV and not value & SPIV_APIC_ENABLED:
            self.timer.spiv_disabled(vid)
        if ok and icr >= 0:
            self.send_ipi(vid, icr)
        return ok

    def lapic_reg_read(self, vid: int, offset: int) -> int | None:
        """__apic_read(): TMCCT from the timer, the rest from the registers."""
        if offset == APIC_TMCCT:
            return self.timer.read_tmcct(vid)
        if offset == APIC_LVTT:
            return self.apic.s[vid].lvt[APIC_LVTT]
        if offset == APIC_TMICT:
            return self.timer.s[vid].tmict
        if offset == APIC_TDCR:
            return self.timer.s[vid].tdcr
        return self.apic.read(vid, offset)

    def mmio_write(self, vid: int, offset: int, value: int) -> bool:
        """apic_mmio_write(): an xAPIC page store never faults; with the APIC hardware-disabled
        it is dropped (KVM_X86_QUIRK_LAPIC_MMIO_HOLE, on by default)."""
        if not self.apic.s[vid].hw_enabled:
            return True
        self.lapic_reg_write(vid, offset, value)
        return True

    def mmio_read(self, vid: int, offset: int) -> int | None:
        """apic_mmio_read(): with the APIC hardware-disabled the page reads all-ones
        (`memset(data, 0xff, len)` under KVM_X86_QUIRK_LAPIC_MMIO_HOLE)."""
        if not self.apic.s[vid].hw_enabled:
            return 0xFFFFFFFF
        return self.lapic_reg_read(vid, offset)

    def send_ipi(self, vid: int, icr: int) -> int:
        """kvm_apic_send_ipi() -> kvm_irq_delivery_to_apic(): returns how many accepted it."""
        vector, mode, trig, level, dest = self.apic.icr_fields(vid, icr)
        accepted = 0
        for target in self.apic.ipi_destinations(vid, icr, dest):
            accepted += self.apic.accept_irq(target, vector, mode, trig, level, SRC_IPI, vid)
        return accepted

    def x2apic_msr_write(self, vid: int, msr: int, data: int) -> bool:
        """kvm_x2apic_msr_write(): #GP outside x2APIC mode; ICR is 64-bit, others 32-bit."""
        if not self.apic.s[vid].x2apic:
            return False
        offset = apic_offset(msr)
        if offset == APIC_ICR:
            if data & X2APIC_ICR_RESERVED:
                return False
            data &= ~(1 << 12)
            self.apic.s[vid].icr = data
            self.send_ipi(vid, data)
            return True
        if data >> 32:
            return False
        return self.lapic_reg_write(vid, offset, data)

    def x2apic_msr_read(self, vid: int, msr: int) -> int | None:
        if not self.apic.s[vid].x2apic:
            return None
        return self.lapic_reg_read(vid, apic_offset(msr))

    # ---- MSRs ---------------------------------------------------------------------------------
    def set_msr(self, vid: int, msr: int, data: int, host_initiated: bool = False) -> bool:
        """kvm_set_msr_common() for the MSRs the protocol involves; False: #GP."""
        if msr == MSR_IA32_TSC_DEADLINE:
            self.timer.set_tscdeadline_msr(vid, data & U64)
            return True
        if msr == MSR_KVM_LAZY_TSCDEADLINE:
            return self.lazy.write_msr(vid, data)
        if 0x800 <= msr <= 0x8FF:
            return self.x2apic_msr_write(vid, msr, data)
        if msr == MSR_IA32_APICBASE:
            return self.apic.set_base(vid, data, host_initiated, self.cfgs[vid].cpuid_x2apic)
        if msr == MSR_IA32_TSC:
            self.write_tsc(vid, data, host_initiated)
            return True
        if msr == MSR_IA32_TSC_ADJUST:
            # A guest write moves the TSC by the difference (adjust_tsc_offset_guest).
            now = self.sched.now
            if not host_initiated:
                tsc = self.clock.tsc(vid, now) + (data - self.tsc_adjust[vid])
                self.clock.write(vid, now, tsc)
            self.tsc_adjust[vid] = data
            return True
        return False

    def write_tsc(self, vid: int, value: int, host_initiated: bool) -> None:
        """MSR_IA32_TSC: kvm_synchronize_tsc (VMM) or adjust_tsc_offset_guest (guest).

        The guest's TSC jumps to `value`; IA32_TSC_ADJUST follows a guest write. Host
        timers already armed keep their host expiry time.
        """
        now = self.sched.now
        if not host_initiated:
            self.tsc_adjust[vid] += value - self.clock.tsc(vid, now)
        self.clock.write(vid, now, value)
        self.sched.ev(vid, Kind.TSC_WRITE, a=value, b=int(host_initiated))

    def get_msr(self, vid: int, msr: int) -> int | None:
        """kvm_get_msr_common(); None: #GP."""
        if msr == MSR_IA32_TSC_DEADLINE:
            return self.timer.get_tscdeadline_msr(vid)
        if msr == MSR_KVM_LAZY_TSCDEADLINE:
            return self.lazy.read_msr(vid) if self.lazy.guest_pv_has(vid) else None
        if 0x800 <= msr <= 0x8FF:
            return self.x2apic_msr_read(vid, msr)
        if msr == MSR_IA32_APICBASE:
            return self.apic.s[vid].apic_base
        if msr == MSR_IA32_TSC:
            return self.clock.tsc(vid, self.sched.now)
        if msr == MSR_IA32_TSC_ADJUST:
            return self.tsc_adjust[vid]
        return None
