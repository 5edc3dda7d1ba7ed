"""Architectural constants of the local APIC and its timer, shared by every component.

Register offsets are the xAPIC MMIO offsets KVM's lapic.c uses; an x2APIC MSR is
0x800 + (offset >> 4) (Intel SDM vol. 3, 11.12.1.2). Events name registers by their
x2APIC MSR number in both modes.
"""

from __future__ import annotations

NEVER = (1 << 63) - 1  # "no expiry" for ns times (KTIME_MAX)
U64 = (1 << 64) - 1

# ---- register offsets (arch/x86/include/asm/apicdef.h) -----------------------------------
APIC_ID = 0x20
APIC_LVR = 0x30
APIC_TASKPRI = 0x80
APIC_ARBPRI = 0x90
APIC_PROCPRI = 0xA0
APIC_EOI = 0xB0
APIC_LDR = 0xD0
APIC_DFR = 0xE0
APIC_SPIV = 0xF0
APIC_ISR = 0x100
APIC_TMR = 0x180
APIC_IRR = 0x200
APIC_ESR = 0x280
APIC_LVTCMCI = 0x2F0
APIC_ICR = 0x300
APIC_ICR2 = 0x310
APIC_LVTT = 0x320
APIC_LVTTHMR = 0x330
APIC_LVTPC = 0x340
APIC_LVT0 = 0x350
APIC_LVT1 = 0x360
APIC_LVTERR = 0x370
APIC_TMICT = 0x380
APIC_TMCCT = 0x390
APIC_TDCR = 0x3E0
APIC_SELF_IPI = 0x3F0
LVT_REGS = (APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR)


def x2apic_msr(offset: int) -> int:
    return 0x800 + (offset >> 4)


def apic_offset(msr: int) -> int:
    return (msr - 0x800) << 4


# ---- LVT / SPIV / ICR fields (Intel SDM vol. 3, 11.5.1, 11.6.1, 11.9) ------------------
APIC_VECTOR_MASK = 0xFF
APIC_SEND_PENDING = 1 << 12
LVT_MASKED = 1 << 16
TIMER_MODE_SHIFT = 17
TIMER_MODE_MASK = 0x3 << TIMER_MODE_SHIFT  # timer_mode_mask: TSC-deadline is advertised
MODE_ONESHOT = 0
MODE_PERIODIC = 1
MODE_TSCDEADLINE = 2
MODE_RESERVED = 3
MODE_NAMES = {MODE_ONESHOT: "one-shot", MODE_PERIODIC: "periodic", MODE_TSCDEADLINE: "tsc-deadline", MODE_RESERVED: "reserved"}
LVT_MASK = LVT_MASKED | APIC_SEND_PENDING | APIC_VECTOR_MASK  # lapic.c LVT_MASK
APIC_MODE_MASK = 0x700
APIC_INPUT_POLARITY = 1 << 13
APIC_LVT_REMOTE_IRR = 1 << 14
APIC_LVT_LEVEL_TRIGGER = 1 << 15
LINT_MASK = LVT_MASK | APIC_MODE_MASK | APIC_INPUT_POLARITY | APIC_LVT_REMOTE_IRR | APIC_LVT_LEVEL_TRIGGER
SPIV_APIC_ENABLED = 1 << 8
LVTT_RESET = LVT_MASKED  # kvm_lapic_reset: every LVT = APIC_LVT_MASKED
SPIV_RESET = 0xFF
APIC_VERSION = 0x14  # lapic.c APIC_VERSION (Xeon / Pentium 4)
APIC_DM_FIXED = 0x000
APIC_DM_LOWEST = 0x100
APIC_DM_NMI = 0x400
APIC_DM_INIT = 0x500
APIC_DM_STARTUP = 0x600
APIC_DM_EXTINT = 0x700
APIC_DEST_LOGICAL = 1 << 11
APIC_INT_ASSERT = 1 << 14
APIC_INT_LEVELTRIG = 1 << 15
APIC_SHORT_MASK = 0xC0000
APIC_DEST_NOSHORT = 0x0
APIC_DEST_SELF = 0x40000
APIC_DEST_ALLINC = 0x80000
APIC_DEST_ALLBUT = 0xC0000

# ---- IA32_APIC_BASE (Intel SDM vol. 3, 11.4.4) -----------------------------------------
MSR_IA32_APICBASE = 0x1B
APICBASE_BSP = 1 << 8
X2APIC_ENABLE = 1 << 10
APICBASE_ENABLE = 1 << 11
APIC_DEFAULT_PHYS_BASE = 0xFEE00000
MSR_IA32_TSC = 0x10
MSR_IA32_TSC_ADJUST = 0x3B


def divide_count(tdcr: int) -> int:
    """update_divide_count(): TDCR bits 0,1,3 -> 2,4,8,16,32,64,128,1."""
    tmp = ((tdcr & 0x3) | ((tdcr & 0x8) >> 1)) + 1
    return 1 << (tmp & 0x7)
