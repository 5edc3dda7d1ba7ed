"""Register-level and clockevent-level guest scripts (scenario `[[script]]` entries).

OPS is the single table of script operations and their fields: the scenario
validator checks against it and the docs are generated from it. Execution is a
mixin of the Engine: each op becomes the guest instruction it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .taxonomy import (
    EXIT_MIGRATE,
    EXIT_RESET,
    KVM_FEATURE_LAZY_TSCDEADLINE,
    MSR_KVM_LAZY_TSCDEADLINE,
    X2APIC_LVTT,
    X2APIC_SPIV,
    X2APIC_TDCR,
    X2APIC_TMCCT,
    X2APIC_TMICT,
)
from .taxonomy import (
    ExitInts as Exit,
)
from .taxonomy import (
    KindInts as Kind,
)
from .taxonomy import (
    MsrSubInts as MsrSub,
)
from .vcpu import MODE_TSCDEADLINE, Vcpu

if TYPE_CHECKING:
    from .engine import Engine

WRITABLE_REGS = {"lvtt": X2APIC_LVTT, "tmict": X2APIC_TMICT, "tdcr": X2APIC_TDCR, "spiv": X2APIC_SPIV}
READABLE_REGS = (
    "lvtt",
    "tmict",
    "tmcct",
    "tdcr",
    "spiv",
    "tsc_deadline",
    "pv_msr",
    "armed",
    "pending",
)
# Pseudo register numbers for guest-memory reads of the shared page (LAPIC_READ.a).
REG_PAGE_ARMED = -1
REG_PAGE_PENDING = -2
REG_PV_MSR = MSR_KVM_LAZY_TSCDEADLINE

# NOTE event codes
NOTE_CLASSIC_SKIPS_PV = 1  # classic mode: the guest has no lazy driver, PV op skipped
NOTE_SCRIPT = 2  # a script entry's `note`
NOTE_SAVE = 3

# op name -> (fields: name -> kind, doc). Kinds: duration, int, bool, str, reg, rreg.
OPS: dict[str, tuple[dict[str, str], str]] = {
    "set_next_event": (
        {"delta": "duration", "delta_ticks": "int"},
        "Clockevent call set_next_event(delta) through the guest's driver (classic or lazy); "
        "`delta` in ns/units or `delta_ticks` in clockevent ticks (TSC/8).",
    ),
    "set_deadline": ({"tsc": "int"}, "Clockevent call for an absolute TSC deadline (used by trace what-if replay)."),
    "wrmsr_tsc_deadline": (
        {"value": "int", "delta": "duration"},
        "Raw WRMSR IA32_TSC_DEADLINE with an absolute `value` (TSC) or `delta` from now; bypasses the driver.",
    ),
    "write": ({"reg": "reg", "value": "int"}, "x2APIC register write: reg = lvtt | tmict | tdcr | spiv."),
    "read": (
        {"reg": "rreg"},
        "Register read: lvtt | tmict | tmcct | tdcr | spiv | tsc_deadline | pv_msr, or the shared page's armed | pending. "
        "Give it a `label` to check its value in [[expect]].",
    ),
    "pv_enable": ({"gpa": "int"}, "kvm_guest_cpu_init: zero the page, WRMSR the PV MSR with GPA | 1 (lazy mode only)."),
    "pv_disable": ({}, "kvm_guest_cpu_offline: WRMSR the PV MSR with 0 (lazy mode only)."),
    "hlt": ({}, "HLT until the next interrupt; later script ops of this vCPU wait for the wake-up."),
    "ipi": ({"dest": "int", "vector": "int"}, "Send an IPI (x2APIC ICR write) to vCPU `dest` (default vector 0xfd)."),
    "eoi": ({"vector": "int"}, "EOI write."),
    "cpuid": ({}, "CPUID 0x40000001 (a `cpuid` exit): reports KVM_FEATURE_LAZY_TSCDEADLINE."),
    "reset": ({}, "INIT / kvm_lapic_reset: LAPIC reset values and `exit` (the guest page keeps `armed`)."),
    "save": ({}, "VMM saves vCPU state (LAPIC, TSC deadline, PV MSR) and a copy of guest memory."),
    "restore": (
        {"vmm_support": "bool"},
        "VMM restores the last `save` (migration). Without `vmm_support` the PV MSR is not migrated; "
        "the guest page comes back as it was at `save` (host writes are not dirty-tracked).",
    ),
    "migrate": ({"vmm_support": "bool"}, "`save` and `restore` at once."),
    "hrtimer_start": ({"name": "str", "delta": "duration"}, "Kernel hrtimer_start(name, now + delta): reprograms if earliest."),
    "hrtimer_cancel": ({"name": "str"}, "Kernel hrtimer_cancel(name): reprograms if it was earliest."),
}
COMMON_FIELDS: dict[str, str] = {"at": "duration", "vcpu": "int", "op": "str", "label": "str", "note": "str"}
HOST_SIDE_OPS = frozenset({"reset", "save", "restore", "migrate"})  # run even while the guest halts


@dataclass(frozen=True)
class ScriptOp:
    at: int
    vcpu: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    note: str = ""
    line: int = 0


@dataclass
class SavedState:
    """What a VMM migrates: LAPIC registers, the TSC deadline, the PV MSR, guest memory."""

    lvtt: int
    tmict: int
    tdcr: int
    spiv: int
    tscdeadline: int
    msr_val: int
    page_pending: int
    page_armed: int


class ScriptMixin:
    """Executes ScriptOps at their time; guest ops wait while the guest is halted."""

    def _script_op(self: Engine, v: Vcpu, index: int) -> None:
        op = self.script[index]
        if v.guest_idle and op.op not in HOST_SIDE_OPS:
            v.deferred.append(index)
            return
        self.exec_op(v, op)

    def run_deferred(self: Engine, v: Vcpu) -> None:
        while v.deferred and not v.guest_idle:
            self.exec_op(v, self.script[v.deferred.pop(0)])

    def exec_op(self: Engine, v: Vcpu, op: ScriptOp) -> None:
        self.cause = -1
        if op.note:
            self._ev(v.id, Kind.NOTE, a=NOTE_SCRIPT, b=op.line)
        args = op.args
        name = op.op
        if name == "set_next_event":
            ticks = args["delta_ticks"] if "delta_ticks" in args else args.get("delta", 0) * v.khz // 8_000_000
            tsc = v.tsc(self.now) + ticks * 8
            self._program_script_deadline(v, tsc)
        elif name == "set_deadline":
            self._program_script_deadline(v, args["tsc"])
        elif name == "wrmsr_tsc_deadline":
            value = args["value"] if "value" in args else v.tsc(self.now) + args.get("delta", 0) * v.khz // 1_000_000
            v.wanted = value
            v.wanted_ns = v.ns_of_tsc(value)
            v.wanted_done = value == 0
            self.guest_wrmsr_tsc_deadline(v, value)
        elif name == "write":
            self.guest_lapic_write(v, WRITABLE_REGS[args["reg"]], args["value"])
        elif name == "read":
            value = self._script_read(v, args["reg"])
            if op.label:
                self.reads[op.label] = value
        elif name in ("pv_enable", "pv_disable"):
            self._script_pv(v, name, args.get("gpa", 0))
        elif name == "hlt":
            self.guest_hlt(v)
        elif name == "ipi":
            self.guest_send_ipi(v, args["dest"], args.get("vector", 0xFD))
        elif name == "eoi":
            if v.cfg.apicv:
                self._ev(v.id, Kind.WRMSR_EOI, a=args.get("vector", 0xEC))  # virtualized: no exit
            else:
                self.guest_eoi(v, args.get("vector", 0xEC))
        elif name == "cpuid":
            eax = (1 << KVM_FEATURE_LAZY_TSCDEADLINE) if v.cfg.cpuid_lazy else 0
            self._ev(v.id, Kind.CPUID, Exit.CPUID, a=eax)
            self._entry(v)
        elif name == "reset":
            self.vcpu_reset(v)
        elif name == "save":
            self.vmm_save(v)
        elif name == "restore":
            self.vmm_restore(v, bool(args.get("vmm_support", False)))
        elif name == "migrate":
            self.vmm_save(v)
            self.vmm_restore(v, bool(args.get("vmm_support", False)))
        elif name == "hrtimer_start":
            self.hrtimer_start(v, args["name"], self.now + args.get("delta", 0))
        elif name == "hrtimer_cancel":
            self.hrtimer_cancel(v, args["name"])

    def _program_script_deadline(self: Engine, v: Vcpu, tsc: int) -> None:
        """A direct clockevent call: the kernel's `script` hrtimer tracks what it wants."""
        expires = v.ns_of_tsc(tsc)
        v.timers["script"] = expires
        v.expires_next = min(v.timers.values())
        self.driver_program(v, tsc)

    def _script_read(self: Engine, v: Vcpu, reg: str) -> int:
        if reg == "tsc_deadline":
            return self.guest_read_tscdeadline(v)
        if reg in ("armed", "pending"):
            value = v.page_armed if reg == "armed" else v.page_pending
            self._ev(v.id, Kind.LAPIC_READ, a=REG_PAGE_ARMED if reg == "armed" else REG_PAGE_PENDING, b=value)
            return value
        if reg == "pv_msr":
            self._ev(v.id, Kind.LAPIC_READ, Exit.MSR_READ, a=REG_PV_MSR, b=v.msr_val)
            self._entry(v)
            return v.msr_val
        number = X2APIC_TMCCT if reg == "tmcct" else WRITABLE_REGS[reg]
        value = self.lapic_read(v, number)
        # TMCCT is never virtualized; other reads exit only without APICv.
        exits = number == X2APIC_TMCCT or not v.cfg.apicv
        reason = (Exit.MSR_READ if v.cfg.x2apic else Exit.OTHER) if exits else Exit.NONE
        self._ev(v.id, Kind.LAPIC_READ, reason, a=number, b=value)
        if exits:
            self._entry(v)
        return value

    def _script_pv(self: Engine, v: Vcpu, name: str, gpa: int) -> None:
        if not self.lazy:
            self._ev(v.id, Kind.NOTE, a=NOTE_CLASSIC_SKIPS_PV)
            return
        if name == "pv_enable":
            self.guest_pv_register(v, gpa or self.default_gpa(v))
            return
        # kvm_guest_cpu_offline(): wrmsrl(MSR_KVM_LAZY_TSCDEADLINE, 0)
        idx = self._ev(v.id, Kind.WRMSR_PV, Exit.MSR_WRITE, MsrSub.PV_LAZY, a=0, b=1)
        self.rows[idx * 5 + 3] = int(self.pv_msr_write(v, 0))
        v.pv_registered = False
        self._entry(v)

    def guest_pv_register(self: Engine, v: Vcpu, gpa: int) -> bool:
        """kvm_guest_cpu_init(): zero the page, then WRMSR GPA | 1; on #GP stay classic."""
        v.page_pending = 0
        v.page_armed = 0
        value = gpa | 1
        idx = self._ev(v.id, Kind.WRMSR_PV, Exit.MSR_WRITE, MsrSub.PV_LAZY, a=value, b=0)
        ok = self.pv_msr_write(v, value)
        self.rows[idx * 5 + 3] = int(ok)  # the result is known only after the host ran
        v.pv_registered = ok
        self._entry(v)
        return ok

    def default_gpa(self: Engine, v: Vcpu) -> int:
        return v.cfg.pv_gpa or (0x10000 + 64 * v.id)

    # ---- VMM operations ----------------------------------------------------------------
    def vcpu_reset(self: Engine, v: Vcpu) -> None:
        """INIT: kvm_lapic_reset() runs `exit`; the guest page is guest memory and keeps `armed`."""
        self._ev(v.id, Kind.VCPU_RESET)
        self.cancel_apic_timer(v)
        if v.mapped:
            self.lazy_exit(v, EXIT_RESET)
        v.msr_val = 0
        v.reset_lapic()
        v.req_lazy = False
        v.blocked = False
        v.guest_idle = False
        v.wanted = 0
        v.wanted_done = True
        v.timers.clear()
        v.expires_next = (1 << 63) - 1
        v.clockevent_stopped = False

    def vmm_save(self: Engine, v: Vcpu) -> None:
        v.saved = SavedState(v.lvtt, v.tmict, v.tdcr, v.spiv, v.tscdeadline, v.msr_val, v.page_pending, v.page_armed)
        self._ev(v.id, Kind.NOTE, a=NOTE_SAVE)

    def vmm_restore(self: Engine, v: Vcpu, vmm_support: bool) -> None:
        """Restore on the destination: KVM_SET_LAPIC, KVM_SET_MSRS (0x6e0; PV MSR if supported)."""
        saved: SavedState | None = v.saved
        if saved is None:
            self._ev(v.id, Kind.NOTE, a=NOTE_SAVE, b=-1)
            return
        self._ev(v.id, Kind.MIGRATE, a=int(vmm_support))
        self.cancel_apic_timer(v)
        if v.mapped:
            self.lazy_exit(v, EXIT_MIGRATE, check_stale=False)
        v.msr_val = 0
        v.lvtt, v.tmict, v.tdcr, v.spiv = saved.lvtt, saved.tmict, saved.tdcr, saved.spiv
        v.timer_mode = (v.lvtt >> 17) & 3
        # Guest memory arrives as of the last copy: host writes to the page are not dirty-tracked.
        v.page_pending, v.page_armed = saved.page_pending, saved.page_armed
        if vmm_support and saved.msr_val & 1:
            if self.lazy_init(v, saved.msr_val & ~1):
                v.msr_val = saved.msr_val
        if v.timer_mode == MODE_TSCDEADLINE:
            self.set_tscdeadline_msr(v, saved.tscdeadline)
        elif v.tmict:
            self.start_apic_timer_period(v)
        if not v.mapped and v.page_armed:
            self._ev(v.id, Kind.HAZ_STALE_ARMED, a=v.page_armed, b=EXIT_MIGRATE)
