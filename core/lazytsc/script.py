"""Register-level and clockevent-level guest scripts (scenario `[[script]]` entries).

OPS is the single table of script operations and their fields: the scenario validator
checks against it and the docs are generated from it. `ScriptRunner` executes each op
at its time as the guest instruction (or VMM action) it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .taxonomy import MSR_IA32_TSC_DEADLINE, MSR_KVM_LAZY_TSCDEADLINE, RESTORE_STEPS
from .taxonomy import KindInts as Kind
from .vcpu import (
    APIC_DEST_NOSHORT,
    APIC_DFR,
    APIC_EOI,
    APIC_ESR,
    APIC_ICR,
    APIC_ICR2,
    APIC_ID,
    APIC_LDR,
    APIC_LVR,
    APIC_LVT0,
    APIC_LVT1,
    APIC_LVTERR,
    APIC_LVTPC,
    APIC_LVTT,
    APIC_LVTTHMR,
    APIC_PROCPRI,
    APIC_SELF_IPI,
    APIC_SPIV,
    APIC_TASKPRI,
    APIC_TDCR,
    APIC_TMCCT,
    APIC_TMICT,
    MSR_IA32_APICBASE,
    MSR_IA32_TSC,
    MSR_IA32_TSC_ADJUST,
)

if TYPE_CHECKING:
    from .guest_kernel import GuestKernel
    from .vmm import Vmm

# Writable and readable APIC registers by name (xAPIC offsets; x2APIC MSR = 0x800 + off >> 4).
WRITABLE_REGS = {
    "lvtt": APIC_LVTT,
    "tmict": APIC_TMICT,
    "tdcr": APIC_TDCR,
    "spiv": APIC_SPIV,
    "tpr": APIC_TASKPRI,
    "eoi": APIC_EOI,
    "esr": APIC_ESR,
    "icr": APIC_ICR,
    "self_ipi": APIC_SELF_IPI,
    "lvt0": APIC_LVT0,
    "lvt1": APIC_LVT1,
    "lvterr": APIC_LVTERR,
    "lvtpc": APIC_LVTPC,
    "lvtthmr": APIC_LVTTHMR,
    "ldr": APIC_LDR,
    "dfr": APIC_DFR,
    "id": APIC_ID,
    "tmcct": APIC_TMCCT,
    "ppr": APIC_PROCPRI,
    "lvr": APIC_LVR,
}
APIC_READS = {**WRITABLE_REGS}
MSR_READS = {
    "tsc_deadline": MSR_IA32_TSC_DEADLINE,
    "pv_msr": MSR_KVM_LAZY_TSCDEADLINE,
    "apic_base": MSR_IA32_APICBASE,
    "tsc": MSR_IA32_TSC,
    "tsc_adjust": MSR_IA32_TSC_ADJUST,
}
PAGE_READS = ("armed", "pending")
STATE_READS = ("irr", "isr", "tmr", "if")  # whole 256-bit bitmaps / RFLAGS.IF, read without an exit
READABLE_REGS = tuple(APIC_READS) + tuple(MSR_READS) + PAGE_READS + STATE_READS
# Pseudo register numbers of reads that are not APIC registers (LAPIC_READ.a).
REG_PAGE_ARMED = -1
REG_PAGE_PENDING = -2
REG_STATE = {"irr": -3, "isr": -4, "tmr": -5, "if": -6}

# NOTE event codes
NOTE_CLASSIC_SKIPS_PV = 1  # classic mode: the guest has no lazy driver, PV op skipped
NOTE_SCRIPT = 2  # a script entry's `note`
NOTE_SAVE = 3

# op name -> (fields: name -> kind, doc, required). Kinds: duration, int, bool, str, reg,
# rreg, steps. `required`: field names of which exactly one is needed (a tuple), or all
# of them (a list).
OPS: dict[str, tuple[dict[str, str], str, tuple[str, ...] | list[str]]] = {
    "set_next_event": (
        {"delta": "duration", "delta_ticks": "int"},
        "Clockevent call set_next_event(delta) through the guest's driver (classic or lazy); "
        "`delta` in ns/units or `delta_ticks` in clockevent ticks (TSC/8).",
        ("delta", "delta_ticks"),
    ),
    "set_deadline": ({"tsc": "int"}, "Clockevent call for an absolute TSC deadline (used by trace what-if replay).", ("tsc",)),
    "wrmsr_tsc_deadline": (
        {"value": "int", "delta": "duration"},
        "Raw WRMSR IA32_TSC_DEADLINE with an absolute `value` (TSC) or `delta` from now; bypasses the driver.",
        ("value", "delta"),
    ),
    "write": (
        {"reg": "reg", "value": "int"},
        "APIC register write (x2APIC WRMSR or xAPIC MMIO, by the APIC's mode): reg = " + " | ".join(WRITABLE_REGS) + ".",
        ["reg", "value"],
    ),
    "read": (
        {"reg": "rreg"},
        "Register read: an APIC register (" + " | ".join(APIC_READS) + "), an MSR (" + " | ".join(MSR_READS) + "), "
        "the shared page's armed | pending (a memory read, no exit), or irr | isr | tmr | if (state, no exit). "
        "Give it a `label` to check its value in [[expect]].",
        ("reg",),
    ),
    "wrmsr": ({"msr": "int", "value": "int"}, "WRMSR of any MSR (e.g. 0x1b IA32_APIC_BASE, 0x10 IA32_TSC, 0x3b IA32_TSC_ADJUST).", ["msr", "value"]),
    "rdmsr": ({"msr": "int"}, "RDMSR of any MSR; with a `label` its value can be checked ([[expect]] `reads.LABEL`; -1 when it faults).", ("msr",)),
    "pv_enable": ({"gpa": "int"}, "kvm_guest_cpu_init: zero the page, WRMSR the PV MSR with GPA | 1 (lazy mode only).", ()),
    "pv_disable": ({}, "kvm_guest_cpu_offline: WRMSR the PV MSR with 0 (lazy mode only).", ()),
    "hlt": ({}, "HLT until the next interrupt; later script ops of this vCPU wait for the wake-up.", ()),
    "sti_hlt": ({}, "STI; HLT (the idle idiom: the STI shadow covers the HLT, so no interrupt slips in between).", ()),
    "cli": ({}, "CLI: RFLAGS.IF = 0 (interrupts stay in the IRR).", ()),
    "sti": ({}, "STI: RFLAGS.IF = 1, effective after the next instruction (the STI shadow).", ()),
    "ipi": (
        {"dest": "int", "vector": "int", "shorthand": "str"},
        "Send a fixed IPI (ICR write) to vCPU `dest` (default vector 0xfd); shorthand = self | all | others.",
        ("dest", "shorthand"),
    ),
    "eoi": ({"vector": "int"}, "EOI write (clears the highest in-service vector; `vector` only labels the event).", ()),
    "cpuid": ({}, "CPUID 0x40000001 (a `cpuid` exit): reports KVM_FEATURE_LAZY_TSCDEADLINE.", ()),
    "reset": ({}, "INIT (kvm_vcpu_reset(init_event)): LAPIC reset values and `exit`; the guest page keeps `armed`, the PV MSR keeps GPA|1.", ()),
    "save": ({}, "VMM saves the vCPU (LAPIC state incl. TMCCT, IA32_TSC, TSC deadline, IA32_APIC_BASE, the PV MSR) and guest memory.", ()),
    "restore": (
        {"vmm_support": "bool", "order": "steps"},
        "VMM restores the last `save` on a fresh vCPU (migration), in `order` (default "
        "apic_base, lapic, tsc, pv_msr, tsc_deadline). Without `vmm_support` the PV MSR is not migrated. "
        "Guest memory arrives as of the guest's last write to each page (host writes are not dirty-logged).",
        (),
    ),
    "migrate": ({"vmm_support": "bool", "order": "steps"}, "`save` and `restore` at once.", ()),
    "hrtimer_start": ({"name": "str", "delta": "duration"}, "Kernel hrtimer_start(name, now + delta): reprograms if earliest.", ["name", "delta"]),
    "hrtimer_cancel": ({"name": "str"}, "Kernel hrtimer_cancel(name): reprograms if it was earliest.", ("name",)),
}
COMMON_FIELDS: dict[str, str] = {"at": "duration", "vcpu": "int", "op": "str", "label": "str", "note": "str"}
HOST_SIDE_OPS = frozenset({"reset", "save", "restore", "migrate"})  # run even while the guest halts
SHORTHANDS = {"self": 0x40000, "all": 0x80000, "others": 0xC0000}
DEFAULT_RESTORE_ORDER = ("apic_base", "lapic", "tsc", "pv_msr", "tsc_deadline")
RESTORE_STEP_NAMES = tuple(RESTORE_STEPS)


@dataclass(frozen=True)
class ScriptOp:
    at: int
    vcpu: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    note: str = ""
    line: int = 0


class ScriptRunner:
    """Executes ScriptOps at their time; guest ops wait while the guest halts in HLT."""

    def __init__(self, kernel: GuestKernel, vmm: Vmm, ops: list[ScriptOp], lazy_mode: bool) -> None:
        self.k = kernel
        self.cpu = kernel.cpu
        self.sched = kernel.sched
        self.vmm = vmm
        self.ops = ops
        self.lazy_mode = lazy_mode
        self.reads: dict[str, int] = {}
        n = len(kernel.cfgs)
        self.waiting = [False] * n  # in HLT, until the next interrupt returns
        self.deferred: list[list[int]] = [[] for _ in range(n)]
        self.H_OP = self.sched.register(self._op, guest=True)
        for index, op in enumerate(ops):
            self.sched.at(op.at, self.H_OP, op.vcpu, index)

    def save(self) -> tuple[dict[str, int], list[bool], list[list[int]]]:
        return dict(self.reads), list(self.waiting), [list(d) for d in self.deferred]

    def restore(self, saved: tuple[dict[str, int], list[bool], list[list[int]]]) -> None:
        reads, waiting, deferred = saved
        self.reads = dict(reads)
        self.waiting = list(waiting)
        self.deferred = [list(d) for d in deferred]

    def _op(self, vid: int, index: int) -> None:
        op = self.ops[index]
        if self.waiting[vid] and op.op not in HOST_SIDE_OPS:
            self.deferred[vid].append(index)
            return
        self.exec_op(vid, op)

    def resumed(self, vid: int) -> None:
        """An interrupt returned: a HLT waiting in the script is over; deferred ops run next."""
        if not self.waiting[vid]:
            return
        self.waiting[vid] = False
        pending, self.deferred[vid] = self.deferred[vid], []
        for index in pending:
            self.sched.at(self.sched.now, self.H_OP, vid, index)

    def exec_op(self, vid: int, op: ScriptOp) -> None:
        self.sched.begin(-1)
        k = self.k
        cpu = self.cpu
        if op.note:
            self.sched.ev(vid, Kind.NOTE, a=NOTE_SCRIPT, b=op.line)
        args = op.args
        name = op.op
        now = self.sched.now
        if name == "set_next_event":
            ticks = args["delta_ticks"] if "delta_ticks" in args else args.get("delta", 0) * k.clock.khz[vid] // 8_000_000
            self._program_deadline(vid, k.clock.tsc(vid, now) + ticks * 8)
        elif name == "set_deadline":
            self._program_deadline(vid, args["tsc"])
        elif name == "wrmsr_tsc_deadline":
            value = args["value"] if "value" in args else k.clock.tsc(vid, now) + k.clock.cycles(vid, args.get("delta", 0))
            cpu.wrmsr(vid, MSR_IA32_TSC_DEADLINE, value)
        elif name == "write":
            reg = WRITABLE_REGS[args["reg"]]
            cpu.apic_write(vid, reg, args["value"])
        elif name == "read":
            value = self._read(vid, args["reg"])
            if op.label:
                self.reads[op.label] = value
        elif name == "wrmsr":
            ok = cpu.wrmsr(vid, args["msr"], args["value"])
            if op.label:
                self.reads[op.label] = int(ok)
        elif name == "rdmsr":
            value = cpu.rdmsr(vid, args["msr"])
            if op.label:
                self.reads[op.label] = -1 if value is None else value
        elif name in ("pv_enable", "pv_disable"):
            if not self.lazy_mode:
                self.sched.ev(vid, Kind.NOTE, a=NOTE_CLASSIC_SKIPS_PV)
            elif name == "pv_enable":
                k.register_pv(vid, args.get("gpa", k.default_gpa(vid)))
            else:
                k.unregister_pv(vid)
        elif name == "hlt":
            self.waiting[vid] = True
            cpu.hlt(vid)
        elif name == "sti_hlt":
            cpu.sti(vid)
            self.waiting[vid] = True
            cpu.hlt(vid)
        elif name == "cli":
            cpu.cli(vid)
        elif name == "sti":
            cpu.sti(vid)
        elif name == "ipi":
            vector = args.get("vector", 0xFD)
            short = SHORTHANDS.get(args.get("shorthand", ""), APIC_DEST_NOSHORT)
            dest = args.get("dest", 0)
            if cpu.apic.s[vid].x2apic:
                icr = (dest << 32) | short | vector
            else:
                cpu.apic_write(vid, APIC_ICR2, dest << 24)  # ICR2 holds the destination in xAPIC mode
                icr = short | vector
            cpu.apic_write(vid, APIC_ICR, icr)
        elif name == "eoi":
            cpu.eoi(vid)
        elif name == "cpuid":
            cpu.cpuid_lazy(vid)
        elif name == "reset":
            self.vmm.init_vcpu(vid)
            self.waiting[vid] = False
            self.deferred[vid] = []
        elif name == "save":
            self.vmm.save_vcpu(vid)
        elif name == "restore":
            self.vmm.restore_vcpu(vid, bool(args.get("vmm_support", False)), tuple(args.get("order", DEFAULT_RESTORE_ORDER)))
        elif name == "migrate":
            self.vmm.save_vcpu(vid)
            self.vmm.restore_vcpu(vid, bool(args.get("vmm_support", False)), tuple(args.get("order", DEFAULT_RESTORE_ORDER)))
        elif name == "hrtimer_start":
            k.hrtimer_start(vid, args["name"], now + args.get("delta", 0))
        elif name == "hrtimer_cancel":
            k.hrtimer_cancel(vid, args["name"])
        if name not in ("sti", "sti_hlt"):
            cpu.instruction_done(vid)

    def _program_deadline(self, vid: int, tsc: int) -> None:
        """A direct clockevent call: the kernel's `script` hrtimer tracks what it wants."""
        k = self.k
        ks = k.s[vid]
        ks.timers["script"] = k.clock.ns_of(vid, tsc)
        ks.expires_next = min(ks.timers.values())
        k.driver_program(vid, tsc)

    def _read(self, vid: int, reg: str) -> int:
        cpu = self.cpu
        if reg in PAGE_READS:
            value = self.k.page_armed(vid) if reg == "armed" else self.k.page_pending(vid)
            self.sched.ev(vid, Kind.LAPIC_READ, a=REG_PAGE_ARMED if reg == "armed" else REG_PAGE_PENDING, b=value)
            return value
        if reg in STATE_READS:
            a = cpu.apic.s[vid]
            value = {"irr": a.irr, "isr": a.isr, "tmr": a.tmr, "if": int(cpu.s[vid].if_flag)}[reg]
            self.sched.ev(vid, Kind.LAPIC_READ, a=REG_STATE[reg], b=value & ((1 << 63) - 1))
            return value
        if reg in MSR_READS:
            value = cpu.rdmsr(vid, MSR_READS[reg])
            return -1 if value is None else value
        return cpu.apic_read(vid, APIC_READS[reg])
