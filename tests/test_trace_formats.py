"""Importer counts on hand-written traces of every supported layout, checked against what
`grep -c` and `awk` count on the same files (an independent reading of the text)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lazytsc.taxonomy import EXIT_ORDER, MSR_SUB_ORDER
from lazytsc.traces import TraceLine, import_trace, parse_line

DATA = Path(__file__).parent / "data" / "traces"

pytestmark = pytest.mark.skipif(
    not (shutil.which("grep") and shutil.which("awk")), reason="needs grep and awk"
)


def grep_c(pattern: str, path: Path) -> int:
    """`grep -cE pattern path` (0 when nothing matches)."""
    out = subprocess.run(["grep", "-cE", pattern, str(path)], capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    return int(out.stdout.strip() or 0)


def awk(program: str, path: Path) -> str:
    files = [str(path), str(path)] if "NR == FNR" in program else [str(path)]
    out = subprocess.run(["awk", program, *files], capture_output=True, text=True, check=True)
    return out.stdout


def awk_lines(path: Path) -> int:
    """Lines as awk counts them (a last line without newline counts too)."""
    return int(awk("END { print NR }", path))


# awk: exits per vCPU from the `vcpu N` field, else the last kvm_entry of the same thread
# (the text before " [CPU]": COMM-PID for ftrace, COMM TID for perf script), else the
# thread's first kvm_entry later in the file (first pass over the file).
AWK_PER_VCPU = r"""
NR == FNR {
    t = substr($0, 1, index($0, " [") - 1); gsub(/^ +| +$/, "", t)
    if ($0 ~ /kvm_entry:/ && !(t in first))
        for (i = 1; i < NF; i++) if ($i == "vcpu") { v = $(i + 1); sub(",", "", v); first[t] = v; break }
    next
}
{ t = substr($0, 1, index($0, " [") - 1); gsub(/^ +| +$/, "", t) }
/kvm_entry:/ { for (i = 1; i < NF; i++) if ($i == "vcpu") { sub(",", "", $(i + 1)); last[t] = $(i + 1); break } }
/kvm_exit:/ {
    v = "";
    for (i = 1; i < NF; i++) if ($i == "vcpu") { v = $(i + 1); break }
    if (v == "") v = (t in last) ? last[t] : ((t in first) ? first[t] : "unknown");
    n[v]++
}
END { for (k in n) print k, n[k] }
"""

EXIT = r"kvm_exit: +"
# (file, {reason or "sub:" + sub-reason: grep -E pattern counting it})
CASES = {
    "ftrace_intel.txt": {
        "total": EXIT,
        "intr": EXIT + r".*reason EXTERNAL_INTERRUPT ",
        "cpuid": EXIT + r".*reason CPUID ",
        "halt": EXIT + r".*reason HLT ",
        "msr-write": EXIT + r".*reason MSR_WRITE ",
        "ept-misconfig": EXIT + r".*reason EPT_MISCONFIG ",
        "preemption-timer": EXIT + r".*reason PREEMPTION_TIMER ",
        "other": EXIT + r".*reason IO_INSTRUCTION ",
        "sub:tsc-deadline": r"kvm_msr: msr_write 6e0 = ",
        "sub:apic-icr": r"kvm_msr: msr_write 830 = ",
        "sub:apic-eoi": r"kvm_msr: msr_write 80b = ",
    },
    "trace_pipe_old.txt": {
        "total": EXIT,
        "intr": EXIT + r"reason EXTERNAL_INTERRUPT ",
        "halt": EXIT + r"reason (HLT|0xc|12) ",
        "msr-write": EXIT + r"reason (MSR_WRITE|32|0x20) ",
        "msr-read": EXIT + r"reason MSR_READ ",
        "pause": EXIT + r"reason PAUSE_INSTRUCTION ",
        "sub:tsc-deadline": r"kvm_msr: msr_write 6e0 = ",
        "sub:apic-icr": r"kvm_msr: msr_write 830 = ",
    },
    "tracecmd_report.txt": {
        "total": EXIT,
        "halt": EXIT + r".*reason HLT ",
        "msr-write": EXIT + r".*reason MSR_WRITE ",
        "ept-violation": EXIT + r".*reason EPT_VIOLATION ",
        "sub:tsc-deadline": r"kvm_msr: +msr_write 6e0 = ",
        "sub:apic-icr": r"kvm_msr: +msr_write 830 = ",
        "sub:apic-eoi": r"kvm_msr: +msr_write 80b = ",
        "sub:pv-lazy-tscdeadline": r"kvm_msr: +msr_write 4b564d09 = ",
    },
    "perf_script_new.txt": {
        "total": r"kvm:kvm_exit: ",
        "cpuid": r"kvm:kvm_exit: .*reason CPUID ",
        "halt": r"kvm:kvm_exit: .*reason HLT ",
        "msr-write": r"kvm:kvm_exit: .*reason MSR_WRITE ",
        "preemption-timer": r"kvm:kvm_exit: .*reason PREEMPTION_TIMER ",
        "sub:tsc-deadline": r"kvm:kvm_msr: msr_write 6e0 = ",
    },
    "perf_script_old.txt": {
        "total": r"kvm:kvm_exit: ",
        "intr": r"kvm:kvm_exit: .*reason EXTERNAL_INTERRUPT ",
        "halt": r"kvm:kvm_exit: .*reason HLT ",
        "msr-write": r"kvm:kvm_exit: .*reason MSR_WRITE ",
        "sub:tsc-deadline": r"kvm:kvm_msr: msr_write 6e0 = ",
        "sub:apic-icr": r"kvm:kvm_msr: msr_write 830 = ",
    },
    "ftrace_amd.txt": {
        "total": EXIT,
        "intr": EXIT + r".*reason interrupt ",
        "cpuid": EXIT + r".*reason cpuid ",
        "halt": EXIT + r".*reason (hlt|idle-halt) ",
        "msr-write": EXIT + r".*reason (msr|0x7c) rip \S+ info1 0x0*1 ",
        "msr-read": EXIT + r".*reason (msr|0x7c) rip \S+ info1 0x0+ ",
        "pause": EXIT + r".*reason pause ",
        "ept-violation": EXIT + r".*reason npf ",
        "other": EXIT + r".*reason (vintr|UD excp) ",
        "sub:tsc-deadline": r"kvm_msr: msr_write 6e0 = ",
        "sub:apic-icr": r"kvm_msr: msr_write 830 = ",
    },
}
FORMATS = {
    "ftrace_intel.txt": "ftrace",
    "trace_pipe_old.txt": "ftrace",
    "tracecmd_report.txt": "trace-cmd",
    "perf_script_new.txt": "perf-script",
    "perf_script_old.txt": "perf-script",
    "ftrace_amd.txt": "ftrace",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_exit_counts_equal_grep(name: str) -> None:
    path = DATA / name
    summary = import_trace(path).summary()
    exits = summary["exits"]
    patterns = CASES[name]
    assert exits["total"] == grep_c(patterns["total"], path)
    for reason in EXIT_ORDER:
        want = grep_c(patterns[reason], path) if reason in patterns else 0
        assert exits["by_reason"][reason] == want, reason
    for sub in MSR_SUB_ORDER:
        key = "sub:" + sub
        want = grep_c(patterns[key], path) if key in patterns else 0
        assert exits["msr_write"][sub] == want, sub
    # every msr-write exit of these files is followed by its kvm_msr line
    assert sum(exits["msr_write"].values()) == exits["by_reason"]["msr-write"]
    assert exits["total"] == sum(exits["by_reason"].values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_deadline_writes_and_interrupts_equal_grep(name: str) -> None:
    path = DATA / name
    summary = import_trace(path).summary()
    timer = summary["timer"]
    writes = grep_c(r"kvm_msr: +msr_write 6e0 = 0x[0-9a-f]+$", path)
    assert timer["msr_writes"] == timer["deadline_requests"] == writes
    assert timer["msr_writes_skipped"] == timer["spurious"] == timer["late"] == 0
    accepts = grep_c(r"kvm_apic_accept_irq: +apicid [0-9a-f]+ vec 236 \(\w+\|(edge|level)\)$", path)
    injects = grep_c(r"kvm_inj_virq: +(irq 236|IRQ 0xec)$", path)
    has_accept = grep_c(r"kvm_apic_accept_irq:", path) > 0
    assert timer["interrupts"] == (accepts if has_accept else injects)


@pytest.mark.parametrize("name", sorted(CASES))
def test_per_vcpu_exits_equal_awk(name: str) -> None:
    path = DATA / name
    summary = import_trace(path).summary()
    want = {}
    for line in awk(AWK_PER_VCPU, path).split("\n"):
        if line.strip():
            key, count = line.split()
            want[key] = int(count)
    got = {key: entry["total"] for key, entry in summary["per_vcpu"].items() if entry["total"]}
    assert got == want


@pytest.mark.parametrize("name", sorted(CASES))
def test_line_accounting(name: str) -> None:
    path = DATA / name
    summary = import_trace(path).summary()
    assert summary["lines"] == awk_lines(path)
    unknown = sum(summary["unknown_events"].values())
    assert summary["lines"] == summary["parsed"] + summary["skipped"] + summary["ignored"] + unknown
    assert summary["skipped"] == 0
    comments = grep_c(r"^(#|$|cpus=|version = |CPU [0-9]+ is empty|CPU:[0-9]+ \[)", path)
    assert summary["ignored"] == comments
    assert summary["format"] == FORMATS[name]


def test_unknown_events_counted_by_name() -> None:
    summary = import_trace(DATA / "ftrace_intel.txt").summary()
    assert summary["unknown_events"] == {"kvm_fpu": 1, "kvm_pio": 1}
    assert summary["other_reasons"] == {"IO_INSTRUCTION": 1}
    summary = import_trace(DATA / "perf_script_new.txt").summary()
    assert summary["unknown_events"] == {"kvm_cpuid": 1}


def test_vcpu_from_thread_entry_and_unknown(tmp_path: Path) -> None:
    """Old kvm_exit has no vcpu field: the thread's last kvm_entry names it, else the
    thread's first kvm_entry later on (a vCPU thread only runs its own vCPU), else `unknown`."""
    summary = import_trace(DATA / "trace_pipe_old.txt").summary()
    assert "unknown" not in summary["per_vcpu"]
    assert summary["per_vcpu"]["0"]["total"] == 5
    lone = tmp_path / "lone.txt"
    lone.write_text(
        "  qemu-kvm-77  [003] d... 10.000001: kvm_exit: reason HLT rip 0x1 info 0 0\n"
        "  qemu-kvm-78  [004] d... 10.000002: kvm_entry: vcpu 1\n"
    )
    lone_summary = import_trace(lone).summary()
    assert lone_summary["per_vcpu"]["unknown"]["total"] == 1
    assert any("could not be attributed" in w for w in lone_summary["warnings"])
    # the coalesced timer interrupt is not an interrupt
    assert summary["timer"]["interrupts"] == 1
    assert any("coalesced" in w for w in summary["warnings"])


def test_amd_msr_exit_needs_info1() -> None:
    summary = import_trace(DATA / "ftrace_amd.txt").summary()
    assert summary["exits"]["by_reason"]["msr-read"] == 1
    assert summary["other_reasons"] == {"UD excp": 1, "vintr": 1}


def test_trace_cmd_dropped_events_and_gp_fault() -> None:
    result = import_trace(DATA / "tracecmd_report.txt")
    summary = result.summary()
    assert any("lost 12 events" in w for w in summary["warnings"])
    assert result.acc.msr_faults == 1
    assert summary["tracepoints"]["kvm_hv_timer_state"] == 2
    assert summary["timer_irq_source"] == "kvm_apic_accept_irq"


@pytest.mark.parametrize("name", sorted(CASES))
def test_parse_line_agrees_with_importer(name: str) -> None:
    """The one-line parser (full regex grammar) reads the same events as the fast path."""
    path = DATA / name
    summary = import_trace(path).summary()
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines(keepends=True):
        parsed = parse_line(line)
        if isinstance(parsed, TraceLine):
            counts[parsed.event] = counts.get(parsed.event, 0) + 1
        else:
            assert parsed is None, parsed
    known = {k: v for k, v in counts.items() if k not in summary["unknown_events"]}
    assert known == summary["tracepoints"]


def test_parse_line_fields() -> None:
    line = (
        "       CPU 0/KVM-2345    [001] d.... 1000.000106: kvm_msr: msr_write 6e0 ="
        " 0x2540be4c5a8\n"
    )
    parsed = parse_line(line)
    assert isinstance(parsed, TraceLine)
    assert parsed.time_ns == 1000_000_106_000
    assert parsed.cpu == 1
    assert parsed.thread == "CPU 0/KVM-2345"
    assert parsed.fields == {"write": True, "msr": 0x6E0, "value": 0x2540BE4C5A8, "gp": False}
    perf = parse_line(
        "CPU 0/KVM  2345 [001]  3001.000105123: kvm:kvm_exit: reason HLT rip 0xffff info 0 0\n"
    )
    assert isinstance(perf, TraceLine)
    assert perf.style == "perf-script"
    assert perf.time_ns == 3001_000_105_123
    assert perf.fields["reason"] == "HLT"
    assert parse_line("# tracer: nop\n") is None
    assert "header" in str(parse_line("not a trace line\n"))
