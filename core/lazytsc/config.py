"""Typed configuration of a run, with one `Spec` per field.

The specs are the single source of truth for a field's type, range, default and
documentation: the scenario validator checks against them and
docs/scenario-format.md is generated from them (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spec:
    """One scenario field: `kind` is int | bool | duration | str | choice | float."""

    name: str
    kind: str
    default: Any
    doc: str
    min: int | float | None = None
    max: int | float | None = None
    choices: tuple[str, ...] = ()


@dataclass
class VcpuConfig:
    """Per-vCPU settings (scenario `[defaults]` and `[[vcpu]]`)."""

    tsc_khz: int = 2_000_000
    timer_backend: str = "hv"
    timer_advance_ns: int = 1000
    x2apic: bool = True
    apicv: bool = True
    pv_lazy: bool = True
    cpuid_lazy: bool = True
    boot: str = "linux"
    hlt_exits: bool = True
    posted_timer_interrupts: bool = False
    host_irq_rate_hz: int = 0
    pv_gpa: int = 0  # 0: pick 0x10000 + 64 * vcpu
    reprogram_jitter_cycles: int = 8
    cpuid_tsc_deadline: bool = True
    cpuid_x2apic: bool = True
    cmci: bool = False


VCPU_SPECS: tuple[Spec, ...] = (
    Spec("tsc_khz", "int", 2_000_000, "Guest TSC frequency in kHz (2000000 = 2 GHz).", 1_000, 10_000_000),
    Spec(
        "timer_backend",
        "choice",
        "hv",
        "Host backend for the LAPIC timer while the vCPU runs: `hv` (VMX preemption timer, "
        "expiry is a `preemption-timer` exit) or `sw` (host hrtimer, expiry is an `intr` exit). "
        "A halted vCPU always uses the hrtimer (kvm_lapic_switch_to_sw_timer).",
        choices=("hv", "sw"),
    ),
    Spec(
        "timer_advance_ns",
        "duration",
        1000,
        "KVM's lapic_timer_advance_ns: the host arms this much early and busy-waits "
        "(__kvm_wait_lapic_expire) so the guest never sees an early interrupt.",
        0,
        1_000_000,
    ),
    Spec("x2apic", "bool", True, "Guest uses x2APIC (APIC registers are MSRs; writes are `msr-write` exits)."),
    Spec(
        "apicv",
        "bool",
        True,
        "APIC virtualization: EOI and posted IPIs need no exit; without it every EOI is an "
        "`msr-write`/`apic-eoi` exit and an IPI to a running vCPU costs it an `intr` exit.",
    ),
    Spec("pv_lazy", "bool", True, "The guest kernel has the lazy driver (kvm_lapic_next_deadline) and registers in lazy mode."),
    Spec(
        "cpuid_lazy",
        "bool",
        True,
        "The host advertises KVM_FEATURE_LAZY_TSCDEADLINE (CPUID bit 18); without it the PV MSR write fails (#GP).",
    ),
    Spec(
        "boot",
        "choice",
        "linux",
        "`linux`: start as a booted Linux guest (SPIV enabled, LVTT in TSC-deadline mode, vector 0xec, "
        "PV registered in lazy mode). `reset`: start from LAPIC reset values; the script sets everything up.",
        choices=("linux", "reset"),
    ),
    Spec("hlt_exits", "bool", True, "HLT causes a `halt` exit and blocks the vCPU (false: HLT passed through)."),
    Spec(
        "posted_timer_interrupts",
        "bool",
        False,
        "sw-timer expiries are posted to a running or HLT-in-guest vCPU without an exit "
        "(KVM pi_inject_timer); the lazy request then waits for an unrelated exit.",
    ),
    Spec("host_irq_rate_hz", "int", 0, "Unrelated host interrupts per second while the vCPU runs (each an `intr` exit).", 0, 10_000_000),
    Spec("pv_gpa", "int", 0, "Guest physical address of the guest's struct kvm_lazy_tscdeadline (0: 0x10000 + 64 * vcpu); any address inside guest memory maps.", 0, (1 << 52) - 1),
    Spec(
        "reprogram_jitter_cycles",
        "int",
        8,
        "Spread of the TSC deadline computed for the same hrtimer expiry (rdtsc after ktime_get and "
        "the ns->clockevent-tick truncation), in steps of TSC_DIVISOR (8 cycles). Sets lazy mode's residual writes.",
        0,
        1_000_000,
    ),
    Spec(
        "cpuid_tsc_deadline",
        "bool",
        True,
        "CPUID.1:ECX.TSC_DEADLINE: without it KVM's timer_mode_mask has only the periodic bit, so LVTT cannot select TSC-deadline mode.",
    ),
    Spec("cpuid_x2apic", "bool", True, "CPUID.1:ECX.x2APIC: without it IA32_APIC_BASE.EXTD is reserved (kvm_apic_set_base #GPs)."),
    Spec("cmci", "bool", False, "MCG_CAP.MCG_CMCI_P: a 7th LVT (CMCI) exists and LVR reports it (kvm_apic_calc_nr_lvt_entries)."),
)


@dataclass
class HostConfig:
    """Host-wide settings (scenario `[host]`)."""

    min_timer_period_us: int = 200
    apic_bus_ns: int = 1
    sw_timer_latency_ns: int = 800
    wakeup_latency_ns: int = 8000
    exit_cost_ns: int = 600
    late_tolerance_ns: int = 10_000
    hv_max_delta_cycles: int = (1 << 32) << 5
    guest_mem_bytes: int = 4 << 30
    enforce_pv_cpuid: bool = False
    split_irqchip: bool = False


HOST_SPECS: tuple[Spec, ...] = (
    Spec("min_timer_period_us", "int", 200, "KVM's min_timer_period_us: periodic periods are clamped to it (limit_periodic_timer_frequency).", 0, 1_000_000),
    Spec("apic_bus_ns", "int", 1, "APIC bus cycle in ns: KVM's APIC_BUS_CYCLE_NS_DEFAULT (1), or what the VMM set with KVM_CAP_X86_APIC_BUS_CYCLES_NS.", 1, 1_000),
    Spec("sw_timer_latency_ns", "duration", 800, "From a host hrtimer's programmed expiry to its callback (apic_timer_fn) running on the host.", 0, 10_000_000),
    Spec("wakeup_latency_ns", "duration", 8000, "From an interrupt for a halted (blocked) vCPU to the guest running again.", 0, 100_000_000),
    Spec(
        "exit_cost_ns",
        "duration",
        600,
        "Time a vCPU spends in the host per exit (VM exit, handling, VM entry): guest code "
        "waits for it and a running task finishes that much later.",
        0,
        1_000_000,
    ),
    Spec("late_tolerance_ns", "duration", 10_000, "An interrupt more than this after the wanted deadline is flagged `late` (default above wakeup_latency_ns: a timer waking a halted vCPU is not late).", 0, 1_000_000_000),
    Spec("hv_max_delta_cycles", "int", (1 << 32) << 5, "Longest delta the VMX preemption timer takes; longer deadlines fall back to the hrtimer.", 1, 1 << 62),
    Spec("guest_mem_bytes", "int", 4 << 30, "Guest memory size: a PV page GPA beyond it fails to map (the MSR write #GPs).", 4096, 1 << 52),
    Spec(
        "enforce_pv_cpuid",
        "bool",
        False,
        "KVM_CAP_ENFORCE_PV_FEATURE_CPUID: the PV MSR faults unless CPUID advertises the feature "
        "(QEMU turns it on only with kvm-pv-enforce-cpuid).",
    ),
    Spec(
        "split_irqchip",
        "bool",
        False,
        "IOAPIC in userspace (QEMU kernel-irqchip=split): LVR advertises directed EOI (bit 24) to x2APIC guests.",
    ),
)


@dataclass
class RunConfig:
    """Everything the engine needs besides the guest program."""

    vcpus: list[VcpuConfig] = field(default_factory=lambda: [VcpuConfig()])
    host: HostConfig = field(default_factory=HostConfig)
    variant: str = "v2"
    seed: int = 1
    duration_ns: int = 10_000_000
