"""Synthetic KVM traces in the real tools' layouts, for benchmarks and scale tests.

Why: import speed and memory must be measured on traces of any size without
shipping large files. The pattern mimics the seed's TCP_RR: per vCPU a cycle of
IPI (ICR write), TSC-deadline writes, HLT, external interrupt, preemption timer
and the timer interrupt, with kvm_entry between exits.
"""

from __future__ import annotations

import heapq
import os
import random
from collections.abc import Callable, Iterator

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


def _tcp_rr_vcpu(
    v: int, vcpus: int, cycles: int, period_us: int, tick_us: int, tsc: Callable[[int], int],
    jitter: Callable[[], int],
) -> list[tuple[int, int, str, str]]:
    """One vCPU's events (us, seq, event, payload) of `iter_tcp_rr`."""
    events: list[tuple[int, int, str, str]] = []
    peer = (v + 1) % vcpus

    def add(us: int, event: str, payload: str) -> None:
        events.append((us, len(events), event, payload))

    def exit_(us: int, reason: str) -> None:
        add(us, "kvm_exit", f"vcpu {v} reason {reason} rip {_RIP}{_NEW_INFO}")

    def write(us: int, msr: int, value: int) -> None:
        exit_(us, "MSR_WRITE")
        add(us, "kvm_msr", f"msr_write {msr:x} = 0x{value:x}")
        add(us, "kvm_entry", f"vcpu {v}, rip {_RIP}")

    t = 5_000_000 + v * (period_us // max(vcpus, 1))
    for _ in range(cycles):
        tick = (t // tick_us + 1) * tick_us
        add(t, "kvm_apic_accept_irq", f"apicid {v:x} vec 253 (Fixed|edge)")
        add(t + 1, "kvm_entry", f"vcpu {v}, rip {_RIP}")
        write(t + 2, 0x6E0, tsc(tick) + jitter())
        write(t + 4, 0x6E0, tsc(tick) + jitter())
        if t + 4 < tick <= t + 12:  # the tick fires while the vCPU is busy
            exit_(tick, "PREEMPTION_TIMER")
            add(tick, "kvm_apic_accept_irq", f"apicid {v:x} vec 236 (Fixed|edge)")
            add(tick, "kvm_entry", f"vcpu {v}, rip {_RIP}")
            write(tick, 0x6E0, tsc(tick + tick_us) + jitter())
            tick += tick_us
        write(t + 10, 0x830, (peer << 32) | 0xFD)
        write(t + 12, 0x6E0, tsc(tick + 5 * tick_us))
        exit_(t + 13, "HLT")
        t += period_us
    return events


def _tagged(
    v: int, events: list[tuple[int, int, str, str]]
) -> Iterator[tuple[int, int, int, str, str]]:
    for us, seq, event, payload in events:
        yield us, v, seq, event, payload


def iter_tcp_rr(
    cycles: int,
    vcpus: int = 2,
    tsc_khz: int = 2_000_000,
    tsc_offset: int = 7_000_000_000_000,
    period_us: int = 30,
    tick_us: int = 4_000,
    jitter_steps: int = 8,
    seed: int = 1,
) -> Iterator[str]:
    """A time-consistent ftrace of the seed's TCP_RR pattern, for what-if tests.

    Per vCPU and transaction (every `period_us`): woken by an IPI, the guest leaves
    idle and restarts the tick twice (tick_nohz_irq_enter, tick_nohz_idle_exit:
    the next tick boundary plus rounding jitter), sends the peer an IPI (ICR write),
    stops the tick on idle entry (a later deadline) and halts: 3 TSC-deadline
    writes per halt. A tick boundary inside the busy window fires the armed
    deadline (preemption-timer exit, vector 0xec) and the guest programs the next
    tick. Guest TSC = ns * tsc_khz / 10^6 + tsc_offset, times in whole us.
    """
    rng = random.Random(seed)

    def tsc(us: int) -> int:
        return us * 1000 * tsc_khz // 1_000_000 + tsc_offset

    def jitter() -> int:
        return 8 * rng.randrange(jitter_steps) if jitter_steps else 0

    per_vcpu = [
        _tcp_rr_vcpu(v, vcpus, cycles, period_us, tick_us, tsc, jitter) for v in range(vcpus)
    ]
    merged = heapq.merge(*(_tagged(v, events) for v, events in enumerate(per_vcpu)))
    yield "# tracer: nop\n"
    for us, v, _s, event, payload in merged:
        yield f"{_header('ftrace', v, v + 1, us)}{event}: {payload}\n"
