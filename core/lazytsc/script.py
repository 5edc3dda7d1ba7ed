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
    U64,
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
CR8 = "cr8"  # MOV to/from CR8: the TPR's priority class (kvm_lapic_set_tpr / kvm_lapic_get_cr8)
MSR_READS = {
    "tsc_deadline": MSR_IA32_TSC_DEADLINE,
    "pv_msr": MSR_KVM_LAZY_TSCDEADLINE,
    "apic_base": MSR_IA32_APICBASE,
    "tsc": MSR_IA32_TSC,
    "tsc_adjust": MSR_IA32_TSC_ADJUST,
}
MSR_READS.pop("tsc")  # `tsc` reads RDTSC (no exit); `rdmsr msr = 0x10` reads the MSR
PAGE_READS = ("armed", "pending")
STATE_READS = ("irr", "isr", "tmr", "if", "tsc", "cr8")  # read without an exit
READABLE_REGS = tuple(APIC_READS) + tuple(MSR_READS) + PAGE_READS + STATE_READS
# Pseudo register numbers of reads that are not APIC registers (LAPIC_READ.a).
REG_PAGE_ARMED = -1
REG_PAGE_PENDING = -2
REG_STATE = {"irr": -3, "isr": -4, "tmr": -5, "if": -6, "tsc": -7, "cr8": -8}
GP_VECTOR = 13  # #GP: what `faults.LABEL` records for a faulting access

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
        {"value": "int", "delta": "duration", "delta_cycles": "int", "ago_cycles": "int"},
        "Raw WRMSR IA32_TSC_DEADLINE: an absolute `value`, `delta` (ns) or `delta_cycles` from the TSC now, "
        "or `ago_cycles` before it; bypasses the driver.",
        ("value", "delta", "delta_cycles", "ago_cycles"),
    ),
    "write": (
        {"reg": "reg", "value": "int"},
        "APIC register write (x2APIC WRMSR or xAPIC MMIO, by the APIC's mode): reg = " + " | ".join(WRITABLE_REGS) + ", "
        "or `cr8` (MOV CR8: the TPR's class, no exit with the TPR shadow). A `label` records a fault in `faults.LABEL`.",
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
    "nop": ({}, "One instruction that does nothing: an instruction boundary (ends an STI shadow).", ()),
    "spin": (
        {"for": "duration", "until_irqs": "int", "until_total": "int", "vector": "int", "timeout": "duration"},
        "Busy-wait in the guest without exiting (a delay loop on RDTSC/PAUSE): `for` a time, until `until_irqs` "
        "more interrupts (of `vector`, if given) were taken, or until `until_total` were taken since the start "
        "(`while (count < N)`: no wait if that many already came), at most `timeout` (default 1s). Interrupts "
        "are taken meanwhile; later script ops of this vCPU wait for the spin.",
        ("for", "until_irqs", "until_total"),
    ),
    "int": ({"vector": "int"}, "Software interrupt INT n: the vector's handler runs (no IRR/ISR change).", ("vector",)),
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
    "vmm_set_msr": ({"msr": "int", "value": "int"}, "Host-initiated KVM_SET_MSRS of one MSR (e.g. IA32_TSC: kvm_synchronize_tsc).", ["msr", "value"]),
    "vmm_get_msr": ({"msr": "int"}, "Host-initiated KVM_GET_MSRS of one MSR into `reads.LABEL`.", ("msr",)),
    "vmm_set_lapic": (
        {"field": "str", "value": "int"},
        "KVM_GET_LAPIC, change one register (`field` = tpr | spiv | lvtt | tmict | tdcr), KVM_SET_LAPIC "
        "(kvm_apic_set_state: PPR update, timer restarted from TMCCT).",
        ["field", "value"],
    ),
    "vmm_get_lapic": ({"field": "str"}, "KVM_GET_LAPIC (TMCCT computed now) and one register of it into `reads.LABEL`.", ("field",)),
    "vmm_enable_cap": (
        {"cap": "str", "value": "int"},
        "KVM_ENABLE_CAP at run time (`cap` = apic_bus_cycles_ns): KVM refuses it once vCPUs exist (EINVAL, "
        "recorded in `reads.LABEL` as 22); set `[host] apic_bus_ns` to configure it before creation.",
        ["cap", "value"],
    ),
}
COMMON_FIELDS: dict[str, str] = {"at": "duration", "vcpu": "int", "op": "str", "label": "str", "note": "str"}
HOST_SIDE_OPS = frozenset({"reset", "save", "restore", "migrate", "vmm_set_msr", "vmm_get_msr", "vmm_set_lapic", "vmm_get_lapic", "vmm_enable_cap"})
LAPIC_FIELDS = ("tpr", "ppr", "spiv", "lvtt", "tmict", "tmcct", "tdcr", "isr", "irr", "apic_base", "ldr", "id")
EINVAL = 22
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
        self.faults: dict[str, int] = {}
        n = len(kernel.cfgs)
        self.waiting = [False] * n  # in HLT, until the next interrupt returns
        self.deferred: list[list[int]] = [[] for _ in range(n)]
        # spin: (ends at ns, interrupts still to wait for (-1: none), vector (-1: any), generation)
        self.spin: list[tuple[int, int, int, int]] = [(-1, -1, -1, 0)] * n
        self.irqs_taken: list[dict[int, int]] = [{} for _ in range(n)]  # per vector, for handlers
        self.H_OP = self.sched.register(self._op, guest=True)
        self.H_SPIN_END = self.sched.register(self._spin_timeout, guest=True)
        for index, op in enumerate(ops):
            self.sched.at(op.at, self.H_OP, op.vcpu, index)

    def save(self) -> tuple:
        return dict(self.reads), dict(self.faults), list(self.waiting), [list(d) for d in self.deferred], list(self.spin), [dict(d) for d in self.irqs_taken]

    def restore(self, saved: tuple) -> None:
        reads, faults, waiting, deferred, spin, taken = saved
        self.reads = dict(reads)
        self.faults = dict(faults)
        self.waiting = list(waiting)
        self.deferred = [list(d) for d in deferred]
        self.spin = list(spin)
        self.irqs_taken = [dict(d) for d in taken]

    def _busy(self, vid: int) -> bool:
        return self.waiting[vid] or self.spin[vid][0] >= 0

    def _op(self, vid: int, index: int) -> None:
        op = self.ops[index]
        if self._busy(vid) and op.op not in HOST_SIDE_OPS:
            self.deferred[vid].append(index)
            return
        self.exec_op(vid, op)

    def _run_deferred(self, vid: int) -> None:
        pending, self.deferred[vid] = self.deferred[vid], []
        for index in pending:
            self.sched.at(self.sched.now, self.H_OP, vid, index)

    def resumed(self, vid: int) -> None:
        """An interrupt returned: a HLT waiting in the script is over, a spin may be done."""
        end, want, _vector, gen = self.spin[vid]
        if end >= 0 and want == 0:
            self.spin[vid] = (-1, -1, -1, gen)
            self._run_deferred(vid)
            return
        if not self.waiting[vid]:
            return
        self.waiting[vid] = False
        self._run_deferred(vid)

    def interrupt_taken(self, vid: int, vector: int) -> None:
        """Counts for `spin until_irqs` and handlers' eoi_limit."""
        taken = self.irqs_taken[vid]
        taken[vector] = taken.get(vector, 0) + 1
        end, want, spin_vector, gen = self.spin[vid]
        if end >= 0 and want > 0 and (spin_vector < 0 or spin_vector == vector):
            self.spin[vid] = (end, want - 1, spin_vector, gen)

    def _spin_timeout(self, vid: int, gen: int) -> None:
        end, _want, _vector, cur = self.spin[vid]
        if end < 0 or gen != cur:
            return
        self.spin[vid] = (-1, -1, -1, cur)
        self._run_deferred(vid)

    def install_handlers(self, specs: list[Any]) -> None:
        """[[handler]] entries: count, optionally EOI (up to eoi_limit deliveries)."""
        for spec in specs:
            targets = range(len(self.waiting)) if spec.vcpu is None else (spec.vcpu,)
            for vid in targets:
                self.cpu.handlers[vid][spec.vector] = self._handler(spec.eoi, spec.eoi_limit)
        self.cpu.on_interrupt = self.interrupt_taken

    def _handler(self, eoi: bool, limit: int) -> Any:
        def handle(vid: int, vector: int) -> None:
            self.sched.ev(vid, Kind.GUEST_IRQ, a=vector)
            if eoi and (limit < 0 or self.irqs_taken[vid].get(vector, 0) <= limit):
                self.cpu.eoi(vid)

        return handle

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
            # kvm_lapic_next_deadline / lapic_next_deadline: rdtsc() + (u64)delta * TSC_DIVISOR, in u64
            self._program_deadline(vid, (k.clock.tsc(vid, now) + ticks * 8) & U64)
        elif name == "set_deadline":
            self._program_deadline(vid, args["tsc"])
        elif name == "wrmsr_tsc_deadline":
            tsc = k.clock.tsc(vid, now)
            if "value" in args:
                value = args["value"]
            elif "delta_cycles" in args:
                value = (tsc + args["delta_cycles"]) & U64
            elif "ago_cycles" in args:
                value = max(0, tsc - args["ago_cycles"])
            else:
                value = tsc + k.clock.cycles(vid, args.get("delta", 0))
            cpu.wrmsr(vid, MSR_IA32_TSC_DEADLINE, value)
        elif name == "write":
            if args["reg"] == CR8:
                cpu.write_cr8(vid, args["value"])
            elif not cpu.apic_write(vid, WRITABLE_REGS[args["reg"]], args["value"]) and op.label:
                self.faults[op.label] = GP_VECTOR
        elif name == "read":
            value = self._read(vid, args["reg"])
            if op.label:
                self.reads[op.label] = value
        elif name == "wrmsr":
            ok = cpu.wrmsr(vid, args["msr"], args["value"])
            if op.label:
                self.reads[op.label] = int(ok)
                if not ok:
                    self.faults[op.label] = GP_VECTOR
        elif name == "rdmsr":
            value = cpu.rdmsr(vid, args["msr"])
            if op.label:
                self.reads[op.label] = -1 if value is None else value
                if value is None:
                    self.faults[op.label] = GP_VECTOR
        elif name == "nop":
            pass
        elif name == "spin":
            gen = self.spin[vid][3] + 1
            vector = args.get("vector", -1)
            timeout = now + args.get("timeout", 1_000_000_000)
            if "for" in args:
                self._start_spin(vid, now + args["for"], -1, -1, gen)
            elif "until_irqs" in args:
                self._start_spin(vid, timeout, args["until_irqs"], vector, gen)
            else:
                taken = self.irqs_taken[vid]
                so_far = taken.get(vector, 0) if vector >= 0 else sum(taken.values())
                if args["until_total"] > so_far:  # else the loop condition already holds
                    self._start_spin(vid, timeout, args["until_total"] - so_far, vector, gen)
        elif name == "int":
            cpu.software_interrupt(vid, args["vector"])
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
        elif name == "vmm_set_msr":
            ok = self.vmm.host.set_msr(vid, args["msr"], args["value"], True)
            if op.label:
                self.reads[op.label] = int(ok)
        elif name == "vmm_get_msr":
            value = self.vmm.host.get_msr(vid, args["msr"])
            if op.label:
                self.reads[op.label] = -1 if value is None else value
        elif name == "vmm_set_lapic":
            self.vmm.set_lapic_field(vid, args["field"], args["value"])
        elif name == "vmm_get_lapic":
            if op.label:
                self.reads[op.label] = self.vmm.get_lapic_field(vid, args["field"])
        elif name == "vmm_enable_cap":
            if op.label:
                self.reads[op.label] = EINVAL  # kvm_vm_ioctl_enable_cap: vCPUs already created
        if name not in ("sti", "sti_hlt"):
            cpu.instruction_done(vid)

    def _start_spin(self, vid: int, end: int, want: int, vector: int, gen: int) -> None:
        self.spin[vid] = (end, want, vector, gen)
        self.sched.at(end, self.H_SPIN_END, vid, gen)

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
            if reg == "tsc":
                value = self.k.clock.tsc(vid, self.sched.now)  # RDTSC: not intercepted
            elif reg == "cr8":
                value = (a.tpr >> 4) & 0xF  # kvm_lapic_get_cr8
            else:
                value = {"irr": a.irr, "isr": a.isr, "tmr": a.tmr, "if": int(cpu.s[vid].if_flag)}[reg]
            self.sched.ev(vid, Kind.LAPIC_READ, a=REG_STATE[reg], b=value & ((1 << 63) - 1))
            return value
        if reg in MSR_READS:
            value = cpu.rdmsr(vid, MSR_READS[reg])
            return -1 if value is None else value
        return cpu.apic_read(vid, APIC_READS[reg])
