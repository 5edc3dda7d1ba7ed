"""The local APIC's interrupt controller (KVM arch/x86/kvm/lapic.c), without the timer.

Per vCPU: IRR/ISR/TMR as 256-bit integers, TPR and the PPR derived from it, SPIV, the
LVT registers, ICR, LDR/DFR/ID, ESR, LVR and IA32_APIC_BASE. Each method names the
KVM function it models. The timer registers (LVTT mode changes, TMICT, TMCCT, TDCR)
belong to lapic_timer.py, which reads LVTT from here.

What KVM does that real hardware does not (and we model KVM): ESR is never set by
KVM (an IPI with an illegal vector is accepted like any other, and an ESR write
stores nothing: a read returns 0); writes with reserved bits of TPR are masked, not
faulted.
"""

from __future__ import annotations

from collections.abc import Callable

from .vcpu import (
    APIC_DEFAULT_PHYS_BASE,
    APIC_DEST_ALLBUT,
    APIC_DEST_ALLINC,
    APIC_DEST_LOGICAL,
    APIC_DEST_SELF,
    APIC_DFR,
    APIC_DM_EXTINT,
    APIC_DM_FIXED,
    APIC_DM_LOWEST,
    APIC_EOI,
    APIC_ESR,
    APIC_ICR,
    APIC_ICR2,
    APIC_ID,
    APIC_INT_ASSERT,
    APIC_INT_LEVELTRIG,
    APIC_LDR,
    APIC_LVR,
    APIC_LVT0,
    APIC_LVT1,
    APIC_LVTCMCI,
    APIC_LVTERR,
    APIC_LVTPC,
    APIC_LVTT,
    APIC_LVTTHMR,
    APIC_MODE_MASK,
    APIC_PROCPRI,
    APIC_SELF_IPI,
    APIC_SHORT_MASK,
    APIC_SPIV,
    APIC_TASKPRI,
    APIC_VECTOR_MASK,
    APIC_VERSION,
    APICBASE_BSP,
    APICBASE_ENABLE,
    LINT_MASK,
    LVT_MASK,
    LVT_MASKED,
    LVT_REGS,
    SPIV_APIC_ENABLED,
    SPIV_RESET,
    X2APIC_ENABLE,
)

# lapic.c apic_lvt_mask[]: writable bits per LVT (the timer's mode bits are added by
# the timer component, kvm_lapic_reg_write(APIC_LVTT)).
LVT_WRITABLE = {
    APIC_LVTT: LVT_MASK,
    APIC_LVTTHMR: LVT_MASK | APIC_MODE_MASK,
    APIC_LVTPC: LVT_MASK | APIC_MODE_MASK,
    APIC_LVT0: LINT_MASK,
    APIC_LVT1: LINT_MASK,
    APIC_LVTERR: LVT_MASK,
    APIC_LVTCMCI: LVT_MASK | APIC_MODE_MASK,
}


class ApicState:
    """struct kvm_lapic's registers for one vCPU (plain attributes: copied at checkpoints)."""

    __slots__ = ("apic_base", "sw_enabled", "spiv", "tpr", "ppr", "irr", "isr", "tmr", "lvt", "icr", "icr2", "ldr", "dfr", "xapic_id", "ipi_src")

    def __init__(self, vid: int, x2apic: bool) -> None:
        self.apic_base = APIC_DEFAULT_PHYS_BASE | APICBASE_ENABLE | (APICBASE_BSP if vid == 0 else 0) | (X2APIC_ENABLE if x2apic else 0)
        self.xapic_id = vid
        self.reset()

    def reset(self) -> None:
        """kvm_lapic_reset(): LVTs masked, SPIV 0xff (software-disabled), TPR/ICR/IRR/ISR 0.

        On the BSP, KVM_X86_QUIRK_LINT0_REENABLED (on unless userspace disables it) then
        sets LINT0 to ExtINT, unmasked: `SET_APIC_DELIVERY_MODE(0, APIC_MODE_EXTINT)`.
        """
        cmci = hasattr(self, "lvt") and APIC_LVTCMCI in self.lvt
        self.sw_enabled = False
        self.spiv = SPIV_RESET
        self.tpr = 0
        self.ppr = 0
        self.irr = 0
        self.isr = 0
        self.tmr = 0
        self.lvt = dict.fromkeys(LVT_REGS, LVT_MASKED)
        if cmci:
            self.lvt[APIC_LVTCMCI] = LVT_MASKED
        if self.apic_base & APICBASE_BSP:
            self.lvt[APIC_LVT0] = APIC_DM_EXTINT
        self.icr = 0
        self.icr2 = 0
        self.ldr = 0
        self.dfr = 0xFFFFFFFF
        self.ipi_src: dict[int, int] = {}  # vector -> vCPU that last sent it (for the event log)

    def clone(self) -> ApicState:
        new = ApicState.__new__(ApicState)
        for name in ApicState.__slots__:
            setattr(new, name, getattr(self, name))
        new.lvt = dict(self.lvt)
        new.ipi_src = dict(self.ipi_src)
        return new

    @property
    def x2apic(self) -> bool:
        return bool(self.apic_base & X2APIC_ENABLE)

    @property
    def hw_enabled(self) -> bool:
        return bool(self.apic_base & APICBASE_ENABLE)


def highest(bitmap: int) -> int:
    """apic_find_highest_vector(): -1 when empty."""
    return bitmap.bit_length() - 1


class InterruptController:
    """IRR/ISR/PPR bookkeeping, register access and IPI routing for every vCPU."""

    def __init__(self, nvcpus: int, x2apic: list[bool], apicv: list[bool], cmci: list[bool] | None = None, directed_eoi: list[bool] | None = None) -> None:
        self.s = [ApicState(i, x2apic[i]) for i in range(nvcpus)]
        self.apicv = list(apicv)
        self.nr_lvt = [7 if (cmci and cmci[i]) else 6 for i in range(nvcpus)]
        self.directed_eoi = list(directed_eoi) if directed_eoi else [False] * nvcpus
        for i, st in enumerate(self.s):
            if self.nr_lvt[i] == 7:
                st.lvt[APIC_LVTCMCI] = LVT_MASKED
        # Called after a vector is set in a vCPU's IRR: the run loop posts it, kicks
        # the vCPU or injects it at the next entry (vmx_deliver_interrupt).
        self.on_accept: Callable[[int, int, int], None] = lambda vid, vector, source: None
        # Called after an EOI or a TPR write that may unblock a pending interrupt
        # (KVM_REQ_EVENT).
        self.on_event: Callable[[int], None] = lambda vid: None

    # ---- state ----------------------------------------------------------------------------
    def save(self) -> list[ApicState]:
        return [s.clone() for s in self.s]

    def restore(self, saved: list[ApicState]) -> None:
        self.s = [s.clone() for s in saved]

    def lvtt(self, vid: int) -> int:
        return self.s[vid].lvt[APIC_LVTT]

    def apic_enabled(self, vid: int) -> bool:
        """apic_enabled(): software- and hardware-enabled."""
        s = self.s[vid]
        return s.sw_enabled and bool(s.apic_base & APICBASE_ENABLE)

    def lvr(self, vid: int) -> int:
        """kvm_apic_set_version(): version 0x14, max LVT entry index in bits 16-23 (6 LVTs,
        7 with MCG_CMCI_P), APIC_LVR_DIRECTED_EOI only for an x2APIC guest with the IOAPIC
        in userspace (split irqchip)."""
        return APIC_VERSION | ((self.nr_lvt[vid] - 1) << 16) | ((1 << 24) if self.directed_eoi[vid] else 0)

    # ---- priorities --------------------------------------------------------------------
    def update_ppr(self, vid: int) -> int:
        """__apic_update_ppr(): PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4] << 4."""
        s = self.s[vid]
        isr = highest(s.isr)
        isrv = isr if isr >= 0 else 0
        ppr = s.tpr & 0xFF if (s.tpr & 0xF0) >= (isrv & 0xF0) else isrv & 0xF0
        s.ppr = ppr
        return ppr

    def has_interrupt(self, vid: int) -> int:
        """kvm_apic_has_interrupt() -> apic_has_interrupt_for_ppr(): the vector or -1."""
        s = self.s[vid]
        if not (s.apic_base & APICBASE_ENABLE):
            return -1
        ppr = self.update_ppr(vid)
        vector = highest(s.irr)
        if vector < 0 or (vector & 0xF0) <= ppr:
            return -1
        return vector

    def ack(self, vid: int, vector: int) -> None:
        """kvm_apic_ack_interrupt(): IRR -> ISR, PPR raised."""
        s = self.s[vid]
        bit = 1 << vector
        s.irr &= ~bit
        s.isr |= bit
        self.update_ppr(vid)

    def eoi(self, vid: int) -> int:
        """apic_set_eoi(): clear the highest ISR bit (none: -1), update PPR, KVM_REQ_EVENT."""
        s = self.s[vid]
        vector = highest(s.isr)
        if vector < 0:
            return -1
        s.isr &= ~(1 << vector)
        self.update_ppr(vid)
        self.on_event(vid)
        return vector

    # ---- interrupt acceptance ------------------------------------------------------------
    def accept_irq(
        self, vid: int, vector: int, delivery_mode: int = APIC_DM_FIXED, trig_mode: int = 0, level: int = 1, source: int = 0, src_vid: int = -1
    ) -> bool:
        """__apic_accept_irq() for fixed/lowest-priority delivery: set IRR (and TMR), notify.

        Dropped (returns False) when the APIC is software- or hardware-disabled, or a
        level-triggered deassert. Any vector is accepted (KVM checks none).
        """
        if delivery_mode not in (APIC_DM_FIXED, APIC_DM_LOWEST):
            return False
        if trig_mode and not level:
            return False
        if not self.apic_enabled(vid):
            return False
        s = self.s[vid]
        bit = 1 << vector
        if trig_mode:
            s.tmr |= bit
        else:
            s.tmr &= ~bit
        s.irr |= bit
        if src_vid >= 0:
            s.ipi_src[vector] = src_vid
        self.on_accept(vid, vector, source)
        return True

    def local_deliver(self, vid: int, lvt_reg: int, source: int) -> bool:
        """kvm_apic_local_deliver(): an LVT source fires unless masked or the APIC is hw-disabled."""
        s = self.s[vid]
        reg = s.lvt[lvt_reg]
        if not (s.apic_base & APICBASE_ENABLE) or reg & LVT_MASKED:
            return False
        return self.accept_irq(vid, reg & APIC_VECTOR_MASK, reg & APIC_MODE_MASK, reg & APIC_INT_LEVELTRIG, 1, source)

    def ipi_destinations(self, src: int, icr: int, dest: int) -> list[int]:
        """kvm_irq_delivery_to_apic(): physical destination or a shorthand; logical by LDR bits."""
        short = icr & APIC_SHORT_MASK
        n = len(self.s)
        if short == APIC_DEST_SELF:
            return [src]
        if short == APIC_DEST_ALLINC:
            return list(range(n))
        if short == APIC_DEST_ALLBUT:
            return [i for i in range(n) if i != src]
        if icr & APIC_DEST_LOGICAL:
            return [i for i in range(n) if self._match_logical(i, dest)]
        broadcast = 0xFFFFFFFF if self.s[src].x2apic else 0xFF
        if dest == broadcast:
            return list(range(n))
        return [i for i in range(n) if i == dest]

    def _match_logical(self, vid: int, mda: int) -> bool:
        """kvm_apic_match_logical_addr(): x2APIC cluster/bitmap, xAPIC flat (DFR 0xffffffff)."""
        s = self.s[vid]
        if s.x2apic:
            ldr = ((vid >> 4) << 16) | (1 << (vid & 0xF))
            return (ldr >> 16) == (mda >> 16) and (ldr & mda & 0xFFFF) != 0
        logical_id = (s.ldr >> 24) & 0xFF
        if s.dfr == 0xFFFFFFFF:
            return (logical_id & mda) != 0
        return (logical_id >> 4) == (mda >> 4) and (logical_id & mda & 0xF) != 0

    # ---- register access -------------------------------------------------------------------
    def read(self, vid: int, offset: int) -> int | None:
        """__apic_read() for everything but TMCCT; None for a register that does not read."""
        s = self.s[vid]
        if offset == APIC_ID:
            return vid if s.x2apic else s.xapic_id << 24
        if offset == APIC_LVR:
            return self.lvr(vid)
        if offset == APIC_TASKPRI:
            return s.tpr
        if offset == APIC_PROCPRI:
            return self.update_ppr(vid)
        if offset == APIC_LDR:
            return ((vid >> 4) << 16) | (1 << (vid & 0xF)) if s.x2apic else s.ldr
        if offset == APIC_DFR:
            return None if s.x2apic else s.dfr
        if offset == APIC_SPIV:
            return s.spiv
        if offset == APIC_ESR:
            return 0
        if offset == APIC_ICR:
            return s.icr
        if offset == APIC_ICR2:
            return None if s.x2apic else s.icr2
        if offset in s.lvt:
            return s.lvt[offset]
        if 0x100 <= offset < 0x180:
            return (s.isr >> ((offset - 0x100) << 1)) & 0xFFFFFFFF
        if 0x180 <= offset < 0x200:
            return (s.tmr >> ((offset - 0x180) << 1)) & 0xFFFFFFFF
        if 0x200 <= offset < 0x280:
            return (s.irr >> ((offset - 0x200) << 1)) & 0xFFFFFFFF
        return None

    def write(self, vid: int, offset: int, value: int) -> tuple[bool, int]:
        """kvm_lapic_reg_write() for the non-timer registers.

        Returns (ok, ipi_icr): ok False means the write faults (#GP for x2APIC MSRs);
        an ICR or SELF-IPI write returns the ICR value to route (the caller sends it).
        SPIV and LVTT have timer side effects the caller applies.
        """
        s = self.s[vid]
        if offset == APIC_TASKPRI:
            s.tpr = value & 0xFF
            self.update_ppr(vid)
            self.on_event(vid)
            return True, -1
        if offset == APIC_EOI:
            self.eoi(vid)
            return True, -1
        if offset == APIC_SPIV:
            # apic_set_spiv(); a software disable masks every LVT (the caller then runs
            # apic_update_lvtt and zeroes lapic_timer.pending).
            s.spiv = value & 0x3FF
            s.sw_enabled = bool(value & SPIV_APIC_ENABLED)
            if not s.sw_enabled:
                for reg in s.lvt:
                    s.lvt[reg] |= LVT_MASKED
            return True, -1
        if offset == APIC_LDR:
            if s.x2apic:
                return False, -1
            s.ldr = value & 0xFF000000
            return True, -1
        if offset == APIC_DFR:
            if s.x2apic:
                return False, -1
            s.dfr = value | 0x0FFFFFFF
            return True, -1
        if offset == APIC_ID:
            if s.x2apic:
                return False, -1  # read-only in x2APIC mode
            s.xapic_id = (value >> 24) & 0xFF
            return True, -1
        if offset == APIC_ESR:
            return (not (s.x2apic and value != 0)), -1
        if offset == APIC_ICR:
            s.icr = value & ~(1 << 12)  # BUSY is always clear: KVM delivers without delay
            return True, s.icr
        if offset == APIC_ICR2:
            if s.x2apic:
                return False, -1
            s.icr2 = value & 0xFF000000
            return True, -1
        if offset == APIC_SELF_IPI:
            if not s.x2apic or value & ~APIC_VECTOR_MASK:
                return False, -1
            return True, APIC_DEST_SELF | (value & APIC_VECTOR_MASK)
        if offset in s.lvt and offset != APIC_LVTT:
            if not s.sw_enabled:
                value |= LVT_MASKED
            s.lvt[offset] = value & LVT_WRITABLE[offset]
            return True, -1
        return False, -1

    def icr_fields(self, vid: int, icr: int) -> tuple[int, int, int, int, int]:
        """kvm_icr_to_lapic_irq(): (vector, delivery mode, trigger, level, destination)."""
        s = self.s[vid]
        dest = (icr >> 32) & 0xFFFFFFFF if s.x2apic else (s.icr2 >> 24) & 0xFF
        return icr & APIC_VECTOR_MASK, icr & APIC_MODE_MASK, icr & APIC_INT_LEVELTRIG, int(bool(icr & APIC_INT_ASSERT)), dest

    def set_base(self, vid: int, value: int, host_initiated: bool, x2apic_supported: bool, maxphyaddr: int = 46) -> bool:
        """kvm_apic_set_base(): reserved bits and the illegal mode transitions fault for the guest."""
        s = self.s[vid]
        old = s.apic_base
        if old == value:
            return True
        reserved = (((1 << 64) - 1) << maxphyaddr) & ((1 << 64) - 1) | 0x2FF | (0 if x2apic_supported else X2APIC_ENABLE)
        new_mode = value & (APICBASE_ENABLE | X2APIC_ENABLE)
        old_mode = old & (APICBASE_ENABLE | X2APIC_ENABLE)
        if value & reserved or new_mode == X2APIC_ENABLE:
            return False  # LAPIC_MODE_INVALID: x2APIC without xAPIC enable
        if not host_initiated:
            if old_mode == APICBASE_ENABLE | X2APIC_ENABLE and new_mode == APICBASE_ENABLE:
                return False  # x2APIC -> xAPIC must go through disabled
            if old_mode == 0 and new_mode == APICBASE_ENABLE | X2APIC_ENABLE:
                return False  # disabled -> x2APIC must go through xAPIC
        s.apic_base = value
        if (old ^ value) & X2APIC_ENABLE and value & X2APIC_ENABLE:
            s.ldr = ((vid >> 4) << 16) | (1 << (vid & 0xF))  # kvm_apic_set_x2apic_id()
        return True
