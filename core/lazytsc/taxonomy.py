"""Names shared by the engine, the event log, the CLI, trace import and the GUI.

The exit reasons and MSR-write sub-reasons MUST match the seed's table
(DESIGN.md section 3): they are the column names of every exit table we print.
Each event kind is also a breakpoint target, so hazards are kinds too.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """VM-exit reasons (DESIGN.md section 3); `NONE` marks an event without an exit."""

    NONE = -1
    INTR = 0
    CPUID = 1
    HALT = 2
    MSR_WRITE = 3
    PAUSE = 4
    EPT_VIOLATION = 5
    EPT_MISCONFIG = 6
    PREEMPTION_TIMER = 7
    MSR_READ = 8
    OTHER = 9
    IRQ_WINDOW = 10


EXIT_NAMES: dict[int, str] = {
    Exit.INTR: "intr",
    Exit.CPUID: "cpuid",
    Exit.HALT: "halt",
    Exit.MSR_WRITE: "msr-write",
    Exit.PAUSE: "pause",
    Exit.EPT_VIOLATION: "ept-violation",
    Exit.EPT_MISCONFIG: "ept-misconfig",
    Exit.PREEMPTION_TIMER: "preemption-timer",
    Exit.MSR_READ: "msr-read",
    Exit.OTHER: "other",
    Exit.IRQ_WINDOW: "irq-window",
}
EXIT_BY_NAME: dict[str, Exit] = {name: Exit(code) for code, name in EXIT_NAMES.items()}
# Order of rows in the seed's table; reasons after these are ours.
EXIT_ORDER: tuple[str, ...] = (
    "intr",
    "cpuid",
    "halt",
    "msr-write",
    "pause",
    "ept-violation",
    "ept-misconfig",
    "preemption-timer",
    "msr-read",
    "irq-window",
    "other",
)


class MsrSub(IntEnum):
    """Sub-reasons of an `msr-write` exit: which MSR the guest wrote."""

    NONE = -1
    TSC_DEADLINE = 0
    APIC_ICR = 1
    APIC_EOI = 2
    PV_LAZY = 3
    OTHER = 4


MSR_SUB_NAMES: dict[int, str] = {
    MsrSub.TSC_DEADLINE: "tsc-deadline",
    MsrSub.APIC_ICR: "apic-icr",
    MsrSub.APIC_EOI: "apic-eoi",
    MsrSub.PV_LAZY: "pv-lazy-tscdeadline",
    MsrSub.OTHER: "other",
}
MSR_SUB_BY_NAME: dict[str, MsrSub] = {name: MsrSub(code) for code, name in MSR_SUB_NAMES.items()}
MSR_SUB_ORDER: tuple[str, ...] = ("apic-icr", "tsc-deadline", "apic-eoi", "pv-lazy-tscdeadline", "other")

# MSR numbers (Intel SDM; x2APIC registers are 0x800 + (xAPIC offset >> 4)).
MSR_IA32_TSC_DEADLINE = 0x6E0
MSR_KVM_LAZY_TSCDEADLINE = 0x4B564D09  # patch 1/4 of the seed series
KVM_FEATURE_LAZY_TSCDEADLINE = 18  # CPUID 0x40000001 EAX bit
X2APIC_EOI = 0x80B
X2APIC_SPIV = 0x80F
X2APIC_ICR = 0x830
X2APIC_LVTT = 0x832
X2APIC_TMICT = 0x838
X2APIC_TMCCT = 0x839
X2APIC_TDCR = 0x83E
LOCAL_TIMER_VECTOR = 0xEC  # Linux's timer vector
RESCHEDULE_VECTOR = 0xFD  # Linux's reschedule IPI vector


def msr_sub_for(msr: int) -> MsrSub:
    """Classify a WRMSR exit the way the seed's table splits `msr-write`."""
    if msr == MSR_IA32_TSC_DEADLINE:
        return MsrSub.TSC_DEADLINE
    if msr == X2APIC_ICR:
        return MsrSub.APIC_ICR
    if msr == X2APIC_EOI:
        return MsrSub.APIC_EOI
    if msr == MSR_KVM_LAZY_TSCDEADLINE:
        return MsrSub.PV_LAZY
    return MsrSub.OTHER


class Kind(IntEnum):
    """Event kinds of the log. Columns `a`/`b` carry the values named in KIND_FIELDS."""

    # guest clockevent driver
    DEADLINE_REQUEST = 0  # set_next_event(): a=tsc wanted, b=armed seen by the guest
    WRMSR_TSC_DEADLINE = 1  # guest WRMSR 0x6e0: a=value, b=armed after
    DEADLINE_SKIP = 2  # lazy driver skipped the write: a=tsc, b=armed
    # other guest register accesses
    WRMSR_PV = 3  # PV enable MSR write: a=value (GPA|1 or 0), b=1 if accepted
    WRMSR_ICR = 4  # x2APIC ICR write (IPI): a=destination vCPU, b=vector
    WRMSR_EOI = 5  # EOI: a=vector
    LAPIC_WRITE = 6  # LVTT/TMICT/TDCR/SPIV write: a=register (x2APIC MSR), b=value
    LAPIC_READ = 7  # register read: a=register, b=value read
    CPUID = 8  # CPUID leaf 0x40000001: a=features EAX
    HLT = 9  # guest executes HLT: a=1 if nothing was pending then (it blocks unless an interrupt arrives during the exit)
    WAKE = 10  # halted vCPU resumes: a=cause (WAKE_*)
    GUEST_TIMER_IRQ = 11  # guest takes the LAPIC timer interrupt: a=tsc now, b=tsc wanted
    GUEST_IPI = 12  # guest takes an IPI: a=vector, b=source vCPU
    TICK_STOP = 13  # NOHZ: tick_nohz_stop_tick: a=new expiry ns
    TICK_RESTART = 14  # NOHZ: tick_nohz_restart: a=new expiry ns
    # host KVM
    TIMER_ARM = 15  # host arms the LAPIC timer: a=deadline tsc, b=backend (0 hv, 1 sw)
    TIMER_CANCEL = 16  # host cancels the armed timer: a=deadline tsc that was armed
    TIMER_FIRE = 17  # armed timer expires on the host: a=deadline tsc, b=backend
    IRQ_INJECT = 18  # host injects the timer interrupt: a=vector, b=1 if dropped (masked)
    LAZY_UPDATE = 19  # kvm_lazy_tscdeadline_update: a=tsc -> armed, cached_armed
    LAZY_KICK = 20  # kvm_lazy_tscdeadline_kick: a=pending read, b=1 if re-armed
    LAZY_CLEAR = 21  # kvm_lazy_tscdeadline_clear: a=reason (CLEAR_*), b=armed before
    LAZY_INIT = 22  # kvm_lazy_tscdeadline_init: a=GPA, b=1 if mapped
    LAZY_EXIT = 23  # kvm_lazy_tscdeadline_exit: a=reason (EXIT_*)
    KICK_REQUEST = 24  # sw path raises KVM_REQ_LAZY_TSCDEADLINE: a=deadline tsc
    HOST_IRQ = 25  # unrelated host interrupt while the guest runs (an `intr` exit)
    VCPU_RESET = 26  # INIT / kvm_lapic_reset
    MIGRATE = 27  # save on source + restore on destination: a=1 with VMM support
    NOTE = 28  # scenario annotation or skipped script op: a=code
    # hazards (DESIGN.md section 1): every one is a breakpoint target
    HAZ_SPURIOUS = 29  # early interrupt: a=tsc delivered, b=tsc wanted
    HAZ_LATE = 30  # late interrupt: a=tsc delivered, b=tsc wanted
    HAZ_LOST = 31  # lost timer: a=tsc wanted, b=armed the guest relied on
    HAZ_STALE_PENDING = 32  # pending left non-zero after clear: a=pending, b=reason
    HAZ_EQUAL_SKIP = 33  # tsc == armed skipped (`<` not `<=`): a=tsc
    HAZ_STALE_ARMED = 34  # guest page armed != 0 with no host copy: a=armed, b=cause
    HAZ_SW_KICK_DELAYED = 35  # sw request waited for an unrelated exit: a=delay ns
    TIMER_COALESCED = 36  # an expiry found one already latched (dropped): a=deadline
    END = 37  # end of the run: a=duration ns
    # added with the component engine (numbers above stay stable)
    TIMER_EXPIRED = 38  # apic_timer_expired(): a=expired deadline tsc, b=EXPIRED_* (latched / into IRR / posted)
    TIMER_DROPPED = 39  # a latched expiry zeroed before injection: a=its deadline tsc, b=DROP_* reason
    BACKEND_SWITCH = 40  # kvm_lapic_switch_to_{sw,hv}_timer moved the timer: a=new backend, b=SWITCH_* reason
    IRQ_ACCEPT = 41  # __apic_accept_irq(): vector set in IRR: a=vector, b=SRC_* source
    GUEST_IRQ = 42  # guest takes an interrupt other than the timer and IPIs: a=vector
    GUEST_IF = 43  # guest CLI/STI: a=1 if interrupts are enabled after it
    TSC_WRITE = 44  # IA32_TSC write (guest WRMSR or VMM restore): a=new guest TSC, b=1 if host-initiated
    VMM_RESTORE = 45  # one step of a VMM restore: a=RESTORE_* step, b=value restored
    BUSY_WAIT = 46  # kvm_wait_lapic_expire(): a=ns the vCPU waits in the host, b=deadline tsc
    WRMSR = 47  # another MSR write (IA32_APIC_BASE, IA32_TSC, ...): a=MSR, b=value
    HAZ_LIVELOCK = 48  # too many events at one instant: the run stops here: a=events
    BLOCK = 49  # vcpu_block(): the halted vCPU blocks (until a kick wakes it)


KIND_NAMES: dict[int, str] = {
    Kind.DEADLINE_REQUEST: "deadline_request",
    Kind.WRMSR_TSC_DEADLINE: "wrmsr_tsc_deadline",
    Kind.DEADLINE_SKIP: "deadline_skip",
    Kind.WRMSR_PV: "wrmsr_pv",
    Kind.WRMSR_ICR: "wrmsr_icr",
    Kind.WRMSR_EOI: "wrmsr_eoi",
    Kind.LAPIC_WRITE: "lapic_write",
    Kind.LAPIC_READ: "lapic_read",
    Kind.CPUID: "cpuid",
    Kind.HLT: "hlt",
    Kind.WAKE: "wake",
    Kind.GUEST_TIMER_IRQ: "guest_timer_irq",
    Kind.GUEST_IPI: "guest_ipi",
    Kind.TICK_STOP: "tick_stop",
    Kind.TICK_RESTART: "tick_restart",
    Kind.TIMER_ARM: "timer_arm",
    Kind.TIMER_CANCEL: "timer_cancel",
    Kind.TIMER_FIRE: "timer_fire",
    Kind.IRQ_INJECT: "irq_inject",
    Kind.LAZY_UPDATE: "update",
    Kind.LAZY_KICK: "kick",
    Kind.LAZY_CLEAR: "clear",
    Kind.LAZY_INIT: "init",
    Kind.LAZY_EXIT: "exit",
    Kind.KICK_REQUEST: "kick_request",
    Kind.HOST_IRQ: "host_irq",
    Kind.VCPU_RESET: "vcpu_reset",
    Kind.MIGRATE: "migrate",
    Kind.NOTE: "note",
    Kind.HAZ_SPURIOUS: "spurious",
    Kind.HAZ_LATE: "late",
    Kind.HAZ_LOST: "lost",
    Kind.HAZ_STALE_PENDING: "stale_pending",
    Kind.HAZ_EQUAL_SKIP: "equal_skip",
    Kind.HAZ_STALE_ARMED: "stale_armed",
    Kind.HAZ_SW_KICK_DELAYED: "sw_kick_delayed",
    Kind.TIMER_COALESCED: "timer_coalesced",
    Kind.END: "end",
    Kind.TIMER_EXPIRED: "timer_expired",
    Kind.TIMER_DROPPED: "timer_dropped",
    Kind.BACKEND_SWITCH: "backend_switch",
    Kind.IRQ_ACCEPT: "irq_accept",
    Kind.GUEST_IRQ: "guest_irq",
    Kind.GUEST_IF: "guest_if",
    Kind.TSC_WRITE: "tsc_write",
    Kind.VMM_RESTORE: "vmm_restore",
    Kind.BUSY_WAIT: "busy_wait",
    Kind.WRMSR: "wrmsr",
    Kind.HAZ_LIVELOCK: "livelock",
    Kind.BLOCK: "block",
}
KIND_BY_NAME: dict[str, Kind] = {name: Kind(code) for code, name in KIND_NAMES.items()}
HAZARD_KINDS: frozenset[int] = frozenset(
    {
        Kind.HAZ_SPURIOUS,
        Kind.HAZ_LATE,
        Kind.HAZ_LOST,
        Kind.HAZ_STALE_PENDING,
        Kind.HAZ_EQUAL_SKIP,
        Kind.HAZ_STALE_ARMED,
        Kind.HAZ_SW_KICK_DELAYED,
        Kind.HAZ_LIVELOCK,
    }
)

# What columns a and b mean, per kind (for the event list and exports).
KIND_FIELDS: dict[int, tuple[str, str]] = {
    Kind.DEADLINE_REQUEST: ("tsc", "armed"),
    Kind.WRMSR_TSC_DEADLINE: ("value", "armed"),
    Kind.DEADLINE_SKIP: ("tsc", "armed"),
    Kind.WRMSR_PV: ("value", "accepted"),
    Kind.WRMSR_ICR: ("dest", "vector"),
    Kind.WRMSR_EOI: ("vector", ""),
    Kind.LAPIC_WRITE: ("reg", "value"),
    Kind.LAPIC_READ: ("reg", "value"),
    Kind.CPUID: ("eax", ""),
    Kind.HLT: ("blocked", ""),
    Kind.WAKE: ("cause", ""),
    Kind.GUEST_TIMER_IRQ: ("tsc", "wanted"),
    Kind.GUEST_IPI: ("vector", "source"),
    Kind.TICK_STOP: ("expires_ns", ""),
    Kind.TICK_RESTART: ("expires_ns", ""),
    Kind.TIMER_ARM: ("deadline", "backend"),
    Kind.TIMER_CANCEL: ("deadline", ""),
    Kind.TIMER_FIRE: ("deadline", "backend"),
    Kind.IRQ_INJECT: ("vector", "dropped"),
    Kind.LAZY_UPDATE: ("tsc", ""),
    Kind.LAZY_KICK: ("pending", "rearmed"),
    Kind.LAZY_CLEAR: ("reason", "armed_before"),
    Kind.LAZY_INIT: ("gpa", "mapped"),
    Kind.LAZY_EXIT: ("reason", ""),
    Kind.KICK_REQUEST: ("deadline", ""),
    Kind.HOST_IRQ: ("", ""),
    Kind.VCPU_RESET: ("", ""),
    Kind.MIGRATE: ("vmm_support", ""),
    Kind.NOTE: ("code", ""),
    Kind.HAZ_SPURIOUS: ("tsc", "wanted"),
    Kind.HAZ_LATE: ("tsc", "wanted"),
    Kind.HAZ_LOST: ("wanted", "armed"),
    Kind.HAZ_STALE_PENDING: ("pending", "reason"),
    Kind.HAZ_EQUAL_SKIP: ("tsc", "armed"),
    Kind.HAZ_STALE_ARMED: ("armed", "cause"),
    Kind.HAZ_SW_KICK_DELAYED: ("delay_ns", "deadline"),
    Kind.TIMER_COALESCED: ("deadline", ""),
    Kind.END: ("duration_ns", ""),
    Kind.TIMER_EXPIRED: ("deadline", "how"),
    Kind.TIMER_DROPPED: ("deadline", "reason"),
    Kind.BACKEND_SWITCH: ("backend", "reason"),
    Kind.IRQ_ACCEPT: ("vector", "source"),
    Kind.GUEST_IRQ: ("vector", ""),
    Kind.GUEST_IF: ("enabled", ""),
    Kind.TSC_WRITE: ("tsc", "host"),
    Kind.VMM_RESTORE: ("step", "value"),
    Kind.BUSY_WAIT: ("wait_ns", "deadline"),
    Kind.WRMSR: ("msr", "value"),
    Kind.HAZ_LIVELOCK: ("events", ""),
    Kind.BLOCK: ("", ""),
}

BACKEND_HV = 0
BACKEND_SW = 1
BACKEND_NAMES = {BACKEND_HV: "hv", BACKEND_SW: "sw"}

# LAZY_CLEAR reasons: the KVM function that called clear.
CLEAR_LVTT = 0  # apic_update_lvtt: masked or mode change
CLEAR_EXPIRED_SW = 1  # start_sw_tscdeadline: deadline already expired
CLEAR_EXPIRED_HV = 2  # start_hv_timer: expired (v2: also when an expiry was already pending)
CLEAR_PV_DISABLE = 3  # PV MSR written without bit 0
CLEAR_KICK = 4  # kick found nothing later pending
CLEAR_REASONS = {
    CLEAR_LVTT: "lvtt",
    CLEAR_EXPIRED_SW: "expired-sw",
    CLEAR_EXPIRED_HV: "expired-hv",
    CLEAR_PV_DISABLE: "pv-disable",
    CLEAR_KICK: "kick",
}
# LAZY_EXIT reasons
EXIT_RESET = 0
EXIT_PV_DISABLE = 1
EXIT_DESTROY = 2
EXIT_REENABLE = 3
EXIT_MIGRATE = 4
LAZY_EXIT_REASONS = {
    EXIT_RESET: "reset",
    EXIT_PV_DISABLE: "pv-disable",
    EXIT_DESTROY: "destroy",
    EXIT_REENABLE: "re-enable",
    EXIT_MIGRATE: "migrate",
}
# TIMER_EXPIRED: what apic_timer_expired() did with the expiry
EXPIRED_LATCHED = 0  # lapic_timer.pending = 1, injected at the next entry
EXPIRED_DIRECT = 1  # APICv, not from the hrtimer callback: straight into the IRR
EXPIRED_POSTED = 2  # posted timer interrupt (pi_inject_timer) to the running guest
EXPIRED_HOW = {EXPIRED_LATCHED: "latched", EXPIRED_DIRECT: "into-irr", EXPIRED_POSTED: "posted"}
# TIMER_DROPPED reasons: what zeroed lapic_timer.pending
DROP_RESTART = 0  # __start_apic_timer() (a new deadline, e.g. the kick's re-arm)
DROP_CANCEL = 1  # cancel_apic_timer() (TMICT write, mode switch)
DROP_SPIV = 2  # software disable (SPIV)
DROP_RESET = 3  # kvm_lapic_reset()
DROP_REASONS = {DROP_RESTART: "restart", DROP_CANCEL: "cancel", DROP_SPIV: "spiv-disable", DROP_RESET: "reset"}
# BACKEND_SWITCH reasons
SWITCH_BLOCK = 0  # vcpu_block(): kvm_lapic_switch_to_sw_timer before halting
SWITCH_WAKE = 1  # vcpu_block(): kvm_lapic_switch_to_hv_timer after waking
SWITCH_REASONS = {SWITCH_BLOCK: "block", SWITCH_WAKE: "wake"}
# IRQ_ACCEPT sources
SRC_TIMER = 0
SRC_IPI = 1
SRC_LVT = 2
SRC_NAMES = {SRC_TIMER: "timer", SRC_IPI: "ipi", SRC_LVT: "lvt"}
# VMM_RESTORE steps
RESTORE_APIC_BASE = 0
RESTORE_LAPIC = 1
RESTORE_TSC = 2
RESTORE_TSC_DEADLINE = 3
RESTORE_PV_MSR = 4
RESTORE_MEMORY = 5
RESTORE_STEPS = {
    "apic_base": RESTORE_APIC_BASE,
    "lapic": RESTORE_LAPIC,
    "tsc": RESTORE_TSC,
    "tsc_deadline": RESTORE_TSC_DEADLINE,
    "pv_msr": RESTORE_PV_MSR,
}
# WAKE causes
WAKE_TIMER = 0
WAKE_IPI = 1
WAKE_OTHER = 2
WAKE_SPURIOUS = 3  # kicked, but not runnable (e.g. a masked timer's expiry): blocks again
WAKE_CAUSES = {WAKE_TIMER: "timer", WAKE_IPI: "ipi", WAKE_OTHER: "other", WAKE_SPURIOUS: "not-runnable"}


def _plain_ints(enum_cls: type[IntEnum]) -> type:
    """The same names as plain ints: IntEnum arithmetic costs ~3x on the engine's hot path."""
    return type(f"{enum_cls.__name__}Ints", (), {m.name: int(m) for m in enum_cls})


KindInts = _plain_ints(Kind)
ExitInts = _plain_ints(Exit)
MsrSubInts = _plain_ints(MsrSub)
