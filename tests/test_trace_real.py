"""Real tool output published on mailing lists and blogs (tests/data/traces/real, sources
in its README): each file imports without error and counts what a reader of the text
counts. The expected numbers below were read off the excerpts by hand (the comments say
which lines), not taken from the importer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lazytsc.taxonomy import Exit
from lazytsc.traces import import_trace

REAL = Path(__file__).parent / "data" / "traces" / "real"


def check_lines(summary: dict, path: Path) -> None:
    unknown = sum(summary["unknown_events"].values())
    assert summary["lines"] == summary["parsed"] + summary["skipped"] + summary["ignored"] + unknown
    assert summary["lines"] == len(path.read_bytes().splitlines())


def by_reason(summary: dict) -> dict[str, int]:
    return {k: v for k, v in summary["exits"]["by_reason"].items() if v}


def test_every_real_file_has_a_source_in_the_readme() -> None:
    readme = (REAL / "README.md").read_text()
    files = sorted(p.name for p in REAL.glob("*.txt"))
    assert len(files) >= 8
    for name in files:
        assert f"`{name}`" in readme, name
        row = next(line for line in readme.splitlines() if f"`{name}`" in line)
        assert "https://" in row, name


def test_body_only_amd_lines_with_wrapped_payloads() -> None:
    """`trace-cmd report` pasted from the event name on: EXIT_RSM, EXIT_NPF (its `info`
    values wrapped onto the next line) and EXIT_EXCP_GP; the kvm_entry lines give vCPU 0."""
    path = REAL / "lore_svm_smm_body_only_amd.txt"
    s = import_trace(path).summary()
    check_lines(s, path)
    assert by_reason(s) == {"ept-violation": 1, "other": 2}
    assert s["raw_reasons"] == {
        "EXIT_EXCP_GP": {"count": 1, "reason": "other"},
        "EXIT_NPF": {"count": 1, "reason": "ept-violation"},
        "EXIT_RSM": {"count": 1, "reason": "other"},
    }
    assert list(s["per_vcpu"]) == ["0"]
    assert s["tracepoints"] == {"kvm_entry": 2, "kvm_exit": 3}
    assert s["unknown_events"] == {
        "kvm_emulate_insn": 2, "kvm_inj_exception": 1, "kvm_nested_intercepts": 1,
        "kvm_nested_vmexit": 1, "kvm_nested_vmexit_inject": 1, "kvm_nested_vmrun": 1,
        "kvm_page_fault": 1, "kvm_smm_transition": 1,
    }
    assert s["skipped"] == 0  # the 7 indented continuation lines are joined, not garbled
    assert any("no timestamp" in w for w in s["warnings"])


def test_amd_exit_msr_is_a_read_by_info1_and_prose_is_skipped() -> None:
    """Two EXIT_MSR exits with `info 0 0` (EXITINFO1 0 = RDMSR, and kvm_msr says
    msr_read) and four EXIT_EXCP_GP; `and so on.` and the sentence between the two
    excerpts are not trace lines."""
    path = REAL / "lore_svm_exit_msr_gp.txt"
    s = import_trace(path).summary()
    check_lines(s, path)
    assert by_reason(s) == {"msr-read": 2, "other": 4}
    assert s["other_reasons"] == {"EXIT_EXCP_GP": 4}
    assert {k: v["total"] for k, v in s["per_vcpu"].items()} == {"0": 6}
    assert s["skipped"] == 2
    assert s["unknown_events"] == {"kvm_emulate_insn": 2, "kvm_fpu": 1, "kvm_inj_exception": 5,
                                   "kvm_userspace_exit": 1}


def test_io_instruction_exits_are_kept_as_raw_reasons() -> None:
    path = REAL / "lore_vmx_nested_io_instruction.txt"
    s = import_trace(path).summary()
    check_lines(s, path)
    assert by_reason(s) == {"other": 2}
    assert s["raw_reasons"] == {"IO_INSTRUCTION": {"count": 2, "reason": "other"}}
    assert {k: v["total"] for k, v in s["per_vcpu"].items()} == {"3": 2}  # kvm_entry: vcpu 3
    assert s["unknown_events"]["kvm_nested_vmexit"] == 3


def test_mail_wrapped_lines_are_joined() -> None:
    """`kvm_exit: reason` / `EPT_VIOLATION rip 0xfff0 info 784 0`: one exit, vCPU 0 (the
    same task's kvm_entry before it); the three wrapped tails of other events are joined."""
    path = REAL / "lore_mail_wrapped_ept_violation.txt"
    s = import_trace(path).summary()
    check_lines(s, path)
    assert by_reason(s) == {"ept-violation": 1}
    assert {k: v["total"] for k, v in s["per_vcpu"].items()} == {"0": 1}
    assert s["skipped"] == 0
    assert s["unknown_events"] == {"kvm_fpu": 4, "kvm_page_fault": 1, "kvm_userspace_exit": 2}


@pytest.mark.parametrize("keep", [True, False])
def test_a_joined_wrapped_line_is_recorded_at_its_first_line(keep: bool) -> None:
    """The wrapped kvm_exit starts on line 7 (`... kvm_exit:             reason`) and ends on
    line 8 (`EPT_VIOLATION rip 0xfff0 info 784 0`): its event, which the GUI shows the
    source line of, is at line 7, where the event begins, not at its continuation."""
    path = REAL / "lore_mail_wrapped_ept_violation.txt"
    assert path.read_text().splitlines()[6].rstrip().endswith("kvm_exit:             reason")
    result = import_trace(path, keep_events=keep)
    log = result.to_eventlog()
    exits = np.flatnonzero(log.column("exit") == int(Exit.EPT_VIOLATION))
    assert len(exits) == 1
    assert result.source_lines()[exits[0]] == 7


@pytest.mark.parametrize("name", ["lore_perf_kvm_stat_msr.txt", "lore_perf_kvm_stat_msr_quoted_wrapped.txt"])
def test_perf_kvm_stat_msr_table_counts_tsc_deadline_writes(name: str) -> None:
    """`0x6e0:W 67007` is the TSC-deadline write count; `0x830:W 1186` ICR writes,
    `0x3b:R 66` reads; quoted (`> > `) and wrapped rows (no closing `)`) read the same."""
    path = REAL / name
    s = import_trace(path).summary()
    check_lines(s, path)
    assert s["format"] == "perf-kvm-stat"
    assert s["timer"]["msr_writes"] == 67_007
    assert s["exits"]["msr_write"]["tsc-deadline"] == 67_007
    assert s["exits"]["msr_write"]["apic-icr"] == 1_186
    assert s["exits"]["by_reason"]["msr-read"] == 66
    assert s["exits"]["total"] == 68_259  # the table's Total Samples
    assert s["skipped"] == 0
    assert not any("rows sum to" in w for w in s["warnings"])


def test_arm64_exits_are_not_x86_exits() -> None:
    path = REAL / "lore_arm64_kvm_exit_wrapped.txt"
    s = import_trace(path).summary()
    check_lines(s, path)
    assert s["exits"]["total"] == 0
    assert s["unknown_events"] == {"kvm_entry (arm64)": 7, "kvm_exit (arm64)": 8}
    assert any("not x86 exits" in w for w in s["warnings"])
    assert not any("no kvm_exit lines" in w for w in s["warnings"])
    assert s["skipped"] == 0


def test_perf_kvm_stat_vmexit_rows_outside_the_taxonomy_are_other_not_dropped() -> None:
    path = REAL / "blog_perf_kvm_stat_vmexit.txt"
    s = import_trace(path).summary()
    check_lines(s, path)
    assert by_reason(s) == {"msr-write": 9167, "intr": 5877, "preemption-timer": 5728, "halt": 2232,
                            "cpuid": 2160, "pause": 390, "ept-misconfig": 303, "other": 41}
    assert s["exits"]["total"] == 25_898  # Total Samples
    assert s["other_reasons"] == {"EOI_INDUCED": 37, "EXCEPTION_NMI": 4}
    assert s["raw_reasons"]["EOI_INDUCED"] == {"count": 37, "reason": "other"}
    assert len(s["raw_reasons"]) == 9
