"""Host-side choices the explorer branches over at the root: one search per setup.

A setup fixes what the host does that a guest program cannot choose: which LAPIC timer
backend KVM uses while the vCPU runs, whether an expiry raises an exit (so the
KVM_REQ_LAZY_TSCDEADLINE request is served at the next entry) or is posted without one
(so the request waits for an unrelated exit), and whether APICv is on. Everything else
(halted or running at expiry, restore orders, TSC writes) is a letter of the guest program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Settings common to every search: no reprogram jitter (deadlines are exactly what the
# letters ask for), no unrelated host interrupts (an unrelated exit is a letter).
COMMON_DEFAULTS = {"reprogram_jitter_cycles": 0}


@dataclass(frozen=True)
class Setup:
    name: str
    description: str
    defaults: dict[str, object] = field(default_factory=dict)
    host: dict[str, object] = field(default_factory=dict)


SETUPS: dict[str, Setup] = {
    s.name: s
    for s in (
        Setup(
            "hv",
            "VMX preemption timer while the vCPU runs (hrtimer while it is blocked), APICv: "
            "every expiry exits, the kick runs in kvm_lapic_expired_hv_timer",
            {"timer_backend": "hv"},
        ),
        Setup(
            "sw",
            "host hrtimer only, APICv: apic_timer_fn raises KVM_REQ_LAZY_TSCDEADLINE and kicks the vCPU "
            "(an `intr` exit), the request is served at the next entry",
            {"timer_backend": "sw"},
        ),
        Setup(
            "sw-posted",
            "hrtimer with posted timer interrupts and HLT passed through (pi_inject_timer): no exit at "
            "expiry, the request waits for an unrelated exit",
            {"timer_backend": "sw", "posted_timer_interrupts": True, "hlt_exits": False},
        ),
        Setup(
            "hv-noapicv",
            "VMX preemption timer without APICv: an expiry is latched and injected at entry, so the "
            "kick's re-arm can zero an expiry not yet delivered",
            {"timer_backend": "hv", "apicv": False},
        ),
    )
}
DEFAULT_SETUPS = ("hv", "sw", "sw-posted", "hv-noapicv")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def header_text(setup: Setup, variant: str, vcpus: int, duration_ns: int, mode: str, name: str, description: str) -> str:
    """The top of a scenario file for this setup (everything but script, expects, breakpoints)."""
    lines = [
        "format = 1",
        f"name = {_toml_value(name)}",
        f"description = {_toml_value(description)}",
        f'variant = "{variant}"',
        f"vcpus = {vcpus}",
        f"duration = {duration_ns}",
        f'mode = "{mode}"',
        "",
        "[defaults]",
    ]
    for key, value in {**COMMON_DEFAULTS, **setup.defaults}.items():
        lines.append(f"{key} = {_toml_value(value)}")
    if setup.host:
        lines += ["", "[host]"]
        for key, value in setup.host.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
