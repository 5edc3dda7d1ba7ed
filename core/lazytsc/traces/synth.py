"""Synthetic KVM traces in the real tools' layouts, for benchmarks and scale tests.

Why: import speed and memory must be measured on traces of any size without
shipping large files. The pattern mimics the seed's TCP_RR: per vCPU a cycle of
IPI (ICR write), TSC-deadline writes, HLT, external interrupt, preemption timer
and the timer interrupt, with kvm_entry between exits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

FORMATS = ("ftrace", "ftrace-old", "trace-cmd", "perf-script")

_NEW_INFO = (
    " info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000"
    " error_code 0x00000000"
)
_RIP = "0xffffffff81065cd4"


def _payloads(vcpu: int, deadline: int, old: bool) -> list[tuple[str, str]]:
    """One cycle of (event, payload) for a vCPU; `old` uses the pre-5.5 kvm_exit layout."""

    def exit_(reason: str) -> tuple[str, str]:
        if old:
            return "kvm_exit", f"reason {reason} rip {_RIP} info 0 0"
        return "kvm_exit", f"vcpu {vcpu} reason {reason} rip {_RIP}{_NEW_INFO}"

    entry = ("kvm_entry", f"vcpu {vcpu}" if old else f"vcpu {vcpu}, rip {_RIP}")
    other = (vcpu + 1) % 4
    return [
        entry,
        exit_("MSR_WRITE"),
        ("kvm_apic_ipi", f"dst {other:x} vec 253 (Fixed|physical|assert|edge|dst)"),
        ("kvm_apic_accept_irq", f"apicid {other:x} vec 253 (Fixed|edge)"),
        ("kvm_msr", "msr_write 830 = 0x%x" % ((other << 32) | 0xFD)),
        entry,
        exit_("MSR_WRITE"),
        ("kvm_msr", f"msr_write 6e0 = 0x{deadline:x}"),
        entry,
        exit_("HLT"),
        entry,
        exit_("MSR_WRITE"),
        ("kvm_msr", f"msr_write 6e0 = 0x{deadline + 3_000_000:x}"),
        entry,
        exit_("PREEMPTION_TIMER"),
        ("kvm_apic_accept_irq", f"apicid {vcpu:x} vec 236 (Fixed|edge)"),
        entry,
        exit_("EXTERNAL_INTERRUPT"),
        entry,
    ]


def _header(fmt: str, vcpu: int, cpu: int, ts_us: int) -> str:
    sec, usec = divmod(ts_us, 1_000_000)
    comm = f"CPU {vcpu}/KVM"
    pid = 2345 + vcpu
    if fmt == "perf-script":
        return f"{comm:>16} {pid:>6} [{cpu:03d}] {sec:>5}.{usec:06d}: kvm:"
    if fmt == "trace-cmd":
        return f"{comm:>16}-{pid:<6} [{cpu:03d}] {sec:>5}.{usec:06d}: "
    if fmt == "ftrace-old":
        return f"{'qemu-kvm':>16}-{pid:<6} [{cpu:03d}] d... {sec:>5}.{usec:06d}: "
    return f"{comm:>16}-{pid:<6} [{cpu:03d}] d.... {sec:>5}.{usec:06d}: "


def iter_lines(n_lines: int, fmt: str = "ftrace", vcpus: int = 4) -> Iterator[str]:
    """`n_lines` newline-terminated lines in layout `fmt` (see FORMATS)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    old = fmt == "ftrace-old"
    ts = 1_000_000_000  # us
    emitted = 0
    cycle = 0
    if fmt == "ftrace":
        yield "# tracer: nop\n"
        emitted += 1
    elif fmt == "trace-cmd":
        yield f"cpus={vcpus}\n"
        emitted += 1
    while emitted < n_lines:
        vcpu = cycle % vcpus
        deadline = 0x2540BE40000 + cycle * 1_000_003
        for event, payload in _payloads(vcpu, deadline, old):
            if emitted >= n_lines:
                return
            ts += 3
            pad = " " * max(1, 16 - len(event) - 1) if fmt == "trace-cmd" else " "
            yield f"{_header(fmt, vcpu, vcpu + 1, ts)}{event}:{pad}{payload}\n"
            emitted += 1
        cycle += 1


def write_trace(path: str | os.PathLike[str], n_lines: int, fmt: str = "ftrace") -> int:
    """Write a synthetic trace; returns its size in bytes."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(iter_lines(n_lines, fmt))
    return os.path.getsize(path)
