"""The guest's CPU as the host sees it: instructions that exit, RFLAGS.IF, taking interrupts.

Instructions (APIC register accesses, WRMSR/RDMSR, HLT, CLI/STI, CPUID) log one event,
exit where KVM intercepts them (`apic_exit` says which do, with and without APICv, in
x2APIC and xAPIC mode), run the host's handling and re-enter. Interrupts are taken at
an instruction boundary when RFLAGS.IF is set, no STI shadow is in effect and the
highest IRR vector's priority class is above the PPR -- by hardware (APICv: posted,
virtual-interrupt delivery) or by KVM's injection at entry (without APICv, one vector
per entry; a vector pending while interrupts are off opens an interrupt window, whose
exit comes as soon as the guest can take it). The interrupt gate clears IF for the
handler; IRET sets it again.
"""

from __future__ import annotations

from collections.abc import Callable

from .apic import InterruptController
from .clock import TscClock
from .config import VcpuConfig
from .hazards import HazardMonitor
from .host import Host
from .lapic_timer import LapicTimer
from .lazy_host import ARMED
from .memory import GuestMemory
from .sim import Scheduler
from .taxonomy import (
    KVM_FEATURE_LAZY_TSCDEADLINE,
    MSR_IA32_TSC_DEADLINE,
    MSR_KVM_LAZY_TSCDEADLINE,
)
from .taxonomy import ExitInts as Exit
from .taxonomy import KindInts as Kind
from .taxonomy import MsrSubInts as MsrSub
from .vcpu import (
    APIC_EOI,
    APIC_ICR,
    APIC_ICR2,
    APIC_LVTT,
    APIC_SELF_IPI,
    APIC_TASKPRI,
    APIC_TMCCT,
    APIC_TMICT,
    LVT_MASKED,
    MODE_PERIODIC,
    MODE_TSCDEADLINE,
    TIMER_MODE_MASK,
    x2apic_msr,
)
from .vcpu_run import VcpuRunLoop

Handler = Callable[[int, int], None]  # (vid, vector): runs with the vector in service


class CpuState:
    __slots__ = ("if_flag", "shadow", "halted_in_guest", "irq_scheduled", "in_irq", "causes")

    def __init__(self) -> None:
        self.if_flag = True
        self.shadow = False
        self.halted_in_guest = False
        self.irq_scheduled = False
        self.in_irq = 0
        self.causes: dict[int, int] = {}  # vector -> the IRQ_ACCEPT event that raised it

    def clone(self) -> CpuState:
        new = CpuState.__new__(CpuState)
        for name in CpuState.__slots__:
            setattr(new, name, getattr(self, name))
        new.causes = dict(self.causes)
        return new


class GuestCpu:
    def __init__(
        self,
        sched: Scheduler,
        clock: TscClock,
        apic: InterruptController,
        timer: LapicTimer,
        host: Host,
        run: VcpuRunLoop,
        mem: GuestMemory,
        hazards: HazardMonitor,
        struct_gpa: list[int],
        cfgs: list[VcpuConfig],
    ) -> None:
        self.sched = sched
        self.clock = clock
        self.apic = apic
        self.timer = timer
        self.host = host
        self.run = run
        self.mem = mem
        self.hazards = hazards
        self.struct_gpa = struct_gpa
        self.cfgs = cfgs
        self.s = [CpuState() for _ in cfgs]
        self.handlers: list[dict[int, Handler]] = [{} for _ in cfgs]
        self.default_handler: Handler = self._eoi_handler
        # Called when interrupted guest code resumes (no interrupt left to take).
        self.resume: Callable[[int], None] = lambda vid: None
        # Called for every interrupt the guest takes (vid, vector), before its handler.
        self.on_interrupt: Callable[[int, int], None] = lambda vid, vector: None
        self.H_TAKE = sched.register(self._take, guest=True)
        self.H_SHADOW = sched.register(self._shadow_end, guest=True)
        run.guest = self

    def save(self) -> list[CpuState]:
        return [s.clone() for s in self.s]

    def restore(self, saved: list[CpuState]) -> None:
        self.s = [s.clone() for s in saved]

    # ---- which accesses exit -------------------------------------------------------------------
    def apic_exit(self, vid: int, offset: int, write: bool) -> tuple[int, int]:
        """(exit reason, MSR sub-reason) of an APIC register access, or (NONE, NONE).

        x2APIC: KVM passes TPR, EOI and SELF-IPI writes and most reads through with APICv;
        TMCCT and every other write are intercepted MSR accesses. Without APICv every
        x2APIC access is an MSR exit. xAPIC MMIO: APIC-access / APIC-write exits, reported
        as `other`; with APICv, TPR/EOI/ICR2 writes and non-TMCCT reads are virtualized.
        """
        apicv = self.cfgs[vid].apicv
        if self.apic.s[vid].x2apic:
            if write:
                if apicv and offset in (APIC_TASKPRI, APIC_EOI, APIC_SELF_IPI):
                    return Exit.NONE, MsrSub.NONE
                sub = MsrSub.APIC_ICR if offset == APIC_ICR else MsrSub.APIC_EOI if offset == APIC_EOI else MsrSub.OTHER
                return Exit.MSR_WRITE, sub
            if apicv and offset != APIC_TMCCT:
                return Exit.NONE, MsrSub.NONE
            return Exit.MSR_READ, MsrSub.NONE
        if apicv and (offset in (APIC_TASKPRI, APIC_EOI, APIC_ICR2) if write else offset != APIC_TMCCT):
            return Exit.NONE, MsrSub.NONE
        return Exit.OTHER, MsrSub.NONE

    # ---- APIC register accesses ----------------------------------------------------------------
    def apic_write(self, vid: int, offset: int, value: int) -> bool:
        """The guest writes an APIC register: WRMSR in x2APIC mode, an MMIO store in xAPIC mode."""
        exit_reason, sub = self.apic_exit(vid, offset, True)
        if offset == APIC_EOI:
            self.sched.ev(vid, Kind.WRMSR_EOI, exit_reason, sub, a=self._isr_top(vid))
        elif offset == APIC_ICR:
            self.sched.ev(vid, Kind.WRMSR_ICR, exit_reason, sub, a=(value >> 32) & 0xFFFFFFFF, b=value & 0xFF)
        else:
            self.sched.ev(vid, Kind.LAPIC_WRITE, exit_reason, sub, a=x2apic_msr(offset), b=value)
        if exit_reason != Exit.NONE:
            self.run.exit_taken(vid)
        if self.apic.s[vid].x2apic:
            ok = self.host.x2apic_msr_write(vid, x2apic_msr(offset), value)
        else:
            ok = self.host.mmio_write(vid, offset, value)
        self._track_intent(vid, offset)
        return ok

    def apic_read(self, vid: int, offset: int) -> int:
        """The guest reads an APIC register (a register that does not read gives 0)."""
        value = self.apic_read_checked(vid, offset)
        return 0 if value is None else value

    def apic_read_checked(self, vid: int, offset: int) -> int | None:
        """As apic_read; None where the read faults: an x2APIC RDMSR of a register
        kvm_lapic_readable_reg_mask() leaves out (EOI, SELF IPI, ...) is a #GP."""
        exit_reason, _sub = self.apic_exit(vid, offset, False)
        if self.apic.s[vid].x2apic:
            value = self.host.x2apic_msr_read(vid, x2apic_msr(offset))
        else:
            value = self.host.mmio_read(vid, offset)
        self.sched.ev(vid, Kind.LAPIC_READ, exit_reason, a=x2apic_msr(offset), b=0 if value is None else value)
        if exit_reason != Exit.NONE:
            self.run.exit_taken(vid)
        return value

    def _isr_top(self, vid: int) -> int:
        return self.apic.s[vid].isr.bit_length() - 1

    def _track_intent(self, vid: int, offset: int) -> None:
        """What the guest now wants from its timer (hazards judge against it)."""
        if offset == APIC_LVTT:
            lvtt = self.apic.s[vid].lvt[APIC_LVTT]
            mode = (lvtt & TIMER_MODE_MASK) >> 17
            if lvtt & LVT_MASKED or mode != self.hazards.s[vid].mode:
                self.hazards.cancel(vid)
        elif offset == APIC_TMICT:
            t = self.timer.s[vid]
            if t.timer_mode == MODE_TSCDEADLINE:
                return
            if t.tmict and t.tscdeadline:
                period = self.clock.cycles(vid, t.period) if t.timer_mode == MODE_PERIODIC else 0
                self.hazards.want(vid, t.tscdeadline, t.timer_mode, period)
            else:
                self.hazards.cancel(vid)

    # ---- MSRs -------------------------------------------------------------------------------
    def wrmsr(self, vid: int, msr: int, value: int) -> bool:
        """WRMSR: every MSR the protocol uses is intercepted (an msr-write exit). The x2APIC
        range outside x2APIC mode is a plain MSR exit that #GPs (kvm_x2apic_msr_write)."""
        if 0x800 <= msr <= 0x8FF and self.apic.s[vid].x2apic:
            from .vcpu import apic_offset

            return self.apic_write(vid, apic_offset(msr), value)
        if msr == MSR_IA32_TSC_DEADLINE:
            idx = self.sched.ev(vid, Kind.WRMSR_TSC_DEADLINE, Exit.MSR_WRITE, MsrSub.TSC_DEADLINE, a=value)
            self.run.exit_taken(vid)
            ok = self.host.set_msr(vid, msr, value)
            self.sched.set_value(idx, 3, self.mem.read64(self.struct_gpa[vid] + ARMED))
            if self.timer.s[vid].timer_mode == MODE_TSCDEADLINE:
                self.hazards.want(vid, value)
            return ok
        if msr == MSR_KVM_LAZY_TSCDEADLINE:
            idx = self.sched.ev(vid, Kind.WRMSR_PV, Exit.MSR_WRITE, MsrSub.PV_LAZY, a=value)
            self.run.exit_taken(vid)
            ok = self.host.set_msr(vid, msr, value)
            self.sched.set_value(idx, 3, int(ok))
            return ok
        idx = self.sched.ev(vid, Kind.WRMSR, Exit.MSR_WRITE, MsrSub.OTHER, a=msr, b=value)
        self.run.exit_taken(vid)
        return self.host.set_msr(vid, msr, value)

    def rdmsr(self, vid: int, msr: int) -> int | None:
        """RDMSR; None where it #GPs (kvm_x2apic_msr_read: outside x2APIC mode, or a register
        that does not read)."""
        if 0x800 <= msr <= 0x8FF and self.apic.s[vid].x2apic:
            from .vcpu import apic_offset

            return self.apic_read_checked(vid, apic_offset(msr))
        value = self.host.get_msr(vid, msr)
        self.sched.ev(vid, Kind.LAPIC_READ, Exit.MSR_READ, a=msr, b=0 if value is None else value)
        self.run.exit_taken(vid)
        return value

    def cpuid_lazy(self, vid: int) -> bool:
        """CPUID 0x40000001: KVM_FEATURE_LAZY_TSCDEADLINE as the VMM advertises it."""
        eax = (1 << KVM_FEATURE_LAZY_TSCDEADLINE) if self.cfgs[vid].cpuid_lazy else 0
        self.sched.ev(vid, Kind.CPUID, Exit.CPUID, a=eax)
        self.run.exit_taken(vid)
        return bool(eax)

    # ---- HLT, CLI, STI ------------------------------------------------------------------------
    def hlt(self, vid: int) -> None:
        """HLT: a halt exit (vcpu_block decides at re-entry), or halted in guest mode."""
        c = self.s[vid]
        c.shadow = False
        if self.cfgs[vid].hlt_exits:
            idle = not self.run.block_ends(vid)
            idx = self.sched.ev(vid, Kind.HLT, Exit.HALT, a=int(idle))
            self.run.halt(vid, idx)
            return
        self.sched.ev(vid, Kind.HLT, a=0)
        c.halted_in_guest = True
        self.posted(vid)

    def cli(self, vid: int) -> None:
        c = self.s[vid]
        c.if_flag = False
        c.shadow = False
        self.sched.ev(vid, Kind.GUEST_IF, a=0)

    def sti(self, vid: int) -> None:
        """STI: interrupts are recognized only after the next instruction (the STI shadow)."""
        c = self.s[vid]
        was = c.if_flag
        c.if_flag = True
        self.sched.ev(vid, Kind.GUEST_IF, a=1)
        if not was:
            c.shadow = True
            self.sched.at(self.sched.now, self.H_SHADOW, vid, 0)

    def _shadow_end(self, vid: int, _arg: int) -> None:
        c = self.s[vid]
        if not c.shadow:
            return
        c.shadow = False
        self.sched.begin(-1)
        self.interrupt_window(vid)

    def instruction_done(self, vid: int) -> None:
        """An instruction retired: the STI shadow (if any) is over; take what is pending."""
        c = self.s[vid]
        if c.shadow:
            c.shadow = False
        self.interrupt_window(vid)

    # ---- taking interrupts ---------------------------------------------------------------------
    def interrupts_allowed(self, vid: int) -> bool:
        c = self.s[vid]
        return c.if_flag and not c.shadow

    def interrupt_window(self, vid: int) -> None:
        """An instruction boundary of this vCPU with interrupts allowed: take a pending vector.

        APICv delivers it at once (virtual-interrupt delivery); without APICv KVM asked for
        an interrupt window and the guest exits for it.
        """
        if not self.interrupts_allowed(vid) or not self.run.in_guest(vid):
            return
        if self.cfgs[vid].apicv:
            self._take_pending(vid, -1)
            return
        r = self.run.s[vid]
        if r.irq_window and self.apic.has_interrupt(vid) >= 0:
            r.irq_window = False
            self.sched.ev(vid, Kind.HOST_IRQ, Exit.IRQ_WINDOW)
            self.run.exit_taken(vid)

    def note_cause(self, vid: int, vector: int, event: int) -> None:
        self.s[vid].causes[vector] = event

    def posted(self, vid: int) -> None:
        """A posted interrupt reached a running guest from elsewhere: taken as a new action."""
        c = self.s[vid]
        if c.irq_scheduled or not self.interrupts_allowed(vid) or not self.run.in_guest(vid):
            return
        if self.apic.has_interrupt(vid) >= 0:
            c.irq_scheduled = True
            self.sched.at(self.sched.now, self.H_TAKE, vid, -1)

    def entered(self, vid: int, injected: int) -> None:
        """VM entry: the guest takes the vector KVM injected (or, with APICv, what is deliverable)
        before it executes its next instruction."""
        if injected >= 0:
            self._take_pending(vid, injected)
        elif self.cfgs[vid].apicv:
            self._take_pending(vid, -1)
        else:
            self.interrupt_window(vid)

    def _take(self, vid: int, injected: int) -> None:
        self.s[vid].irq_scheduled = False
        self._take_pending(vid, injected)

    def _take_pending(self, vid: int, injected: int) -> None:
        """Take interrupts while one is deliverable: IRR -> ISR, the handler with IF clear, IRET."""
        c = self.s[vid]
        resumed = False
        while True:
            if injected >= 0:
                vector = injected  # KVM acknowledged it at injection
                injected = -1
            else:
                if not self.interrupts_allowed(vid) or not self.run.in_guest(vid):
                    break
                vector = self.apic.has_interrupt(vid)
                if vector < 0:
                    break
                self.apic.ack(vid, vector)
            self.sched.begin(c.causes.pop(vector, -1))
            c.halted_in_guest = False
            c.if_flag = False
            c.in_irq += 1
            self.on_interrupt(vid, vector)
            handler = self.handlers[vid].get(vector, self.default_handler)
            handler(vid, vector)
            c.in_irq -= 1
            c.if_flag = True  # IRET
            resumed = True
            if not self.cfgs[vid].apicv:
                if self.apic.has_interrupt(vid) >= 0:
                    # One injection per entry: the next vector needs an interrupt window,
                    # and the interrupted code resumes after that one.
                    self.run.s[vid].irq_window = True
                    if self.run.in_guest(vid):
                        self.interrupt_window(vid)
                        return
                break
        if resumed:
            self.resume(vid)

    def _eoi_handler(self, vid: int, vector: int) -> None:
        """A handler that only acknowledges: GUEST_IRQ, then EOI."""
        self.sched.ev(vid, Kind.GUEST_IRQ, a=vector)
        self.apic_write(vid, APIC_EOI, 0)

    def eoi(self, vid: int) -> None:
        self.apic_write(vid, APIC_EOI, 0)

    def write_cr8(self, vid: int, value: int) -> None:
        """MOV to CR8 with the TPR shadow: kvm_lapic_set_tpr (TPR = CR8 << 4), no exit."""
        self.sched.ev(vid, Kind.LAPIC_WRITE, a=-8, b=value & 0xF)
        self.host.lapic_reg_write(vid, APIC_TASKPRI, (value & 0xF) << 4)

    def software_interrupt(self, vid: int, vector: int) -> None:
        """INT n: the handler runs through the IDT; the APIC's IRR/ISR are not involved."""
        c = self.s[vid]
        was = c.if_flag
        c.if_flag = False
        c.in_irq += 1
        self.on_interrupt(vid, vector)
        self.handlers[vid].get(vector, self.default_handler)(vid, vector)
        c.in_irq -= 1
        c.if_flag = was
