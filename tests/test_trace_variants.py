"""Unit tests (synthetic lines) for the text variants no published real file showed:
each line is built to the layout the named tool or kernel prints (see the comments)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lazytsc.traces import import_trace

EXIT_512 = ("info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000"
            " error_code 0x00000000")


def imported(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "t.txt"
    path.write_text(text)
    s = import_trace(path).summary()
    unknown = sum(s["unknown_events"].values())
    assert s["lines"] == s["parsed"] + s["skipped"] + s["ignored"] + unknown
    return s


def test_lines_that_start_at_the_timestamp(tmp_path: Path) -> None:
    """`trace-cmd report` excerpts pasted from the time column on."""
    s = imported(tmp_path, "6204.951632: kvm_entry:            vcpu 1, rip 0xffffffff81000000\n"
                           "6204.951640: kvm_exit:             reason HLT rip 0xffffffff81000002 info 0 0\n")
    assert s["exits"]["by_reason"]["halt"] == 1 and s["skipped"] == 0
    assert list(s["per_vcpu"]) == ["1"]


def test_perf_script_without_tid_and_cpu(tmp_path: Path) -> None:
    """`perf script -F comm,time,event,trace`: `COMM SECS.USECS: kvm:kvm_exit: ...`."""
    s = imported(tmp_path, f"preempt_test 20677.199579: kvm:kvm_exit: vcpu 2 reason MSR_WRITE rip 0x1 {EXIT_512}\n"
                           "preempt_test 20677.199580: kvm:kvm_msr: msr_write 6e0 = 0x1234\n")
    assert s["exits"]["msr_write"]["tsc-deadline"] == 1
    assert s["format"] == "perf-script" and list(s["per_vcpu"]) == ["2"]


def test_x86_tsc_clock_counts(tmp_path: Path) -> None:
    """trace_clock x86-tsc prints raw TSC counts, sometimes right after `[CPU]`."""
    s = imported(tmp_path, " qemu-system-x86-533825 [005]303280081900681: kvm_entry             vcpu 0 rip 0x1\n"
                           " qemu-system-x86-533825 [005]303280081909057: kvm_exit             reason HLT rip 0x1 info 0 0\n")
    assert s["exits"]["by_reason"]["halt"] == 1
    assert s["time_unit"] == "clock counts" and s["sim_time_ns"] == 8376


def test_kvm_exit_without_rip_or_info_and_with_extra_fields(tmp_path: Path) -> None:
    s = imported(tmp_path,
                 "  CPU 23/KVM-9 [001] d.... 10.000001: kvm_exit: vcpu 23 reason DR_ACCESS info1 0x0000000000000001\n"
                 "  CPU 3/KVM-7 [002] d.... 10.000002: kvm_exit: vcpu 3 reason HLT rip 0x1 info 0 0 intr 0\n"
                 "  CPU 3/KVM-7 [002] d.... 10.000003: kvm_exit: vcpu 3 reason VMCALL\n")
    assert s["skipped"] == 0
    assert s["raw_reasons"]["DR_ACCESS"] == {"count": 1, "reason": "other"}
    assert s["exits"]["by_reason"]["halt"] == 1
    assert s["other_reasons"] == {"DR_ACCESS": 1, "VMCALL": 1}


def test_lower_case_vmx_and_amd_exit_names(tmp_path: Path) -> None:
    """Old kernels print lower-case VMX names; libtraceevent prints AMD `EXIT_*`."""
    s = imported(tmp_path,
                 "  qemu-1 [000] d... 1.000001: kvm_exit: reason external_interrupt rip 0x1 info 0 0\n"
                 "  qemu-1 [000] d... 1.000002: kvm_exit: reason msr_write rip 0x1 info 0 0\n"
                 "  qemu-1 [000] d... 1.000003: kvm_exit: reason EXIT_NPF rip 0x1 info 6 1ab000\n"
                 "  qemu-1 [000] d... 1.000004: kvm_exit: reason EXIT_MSR rip 0x1 info 1 0\n"
                 "  qemu-1 [000] d... 1.000005: kvm_exit: reason EXIT_INTR rip 0x1 info 0 0\n")
    by = s["exits"]["by_reason"]
    assert (by["intr"], by["msr-write"], by["ept-violation"]) == (2, 2, 1)


def test_vcpu_from_qemu_thread_name(tmp_path: Path) -> None:
    s = imported(tmp_path, "       CPU 5/KVM-2137779 [010] d.... 798115.331413: kvm_exit: reason HLT rip 0x1 info 0 0\n")
    assert list(s["per_vcpu"]) == ["5"]


def test_kvm_msr_only_file_has_a_format(tmp_path: Path) -> None:
    s = imported(tmp_path, "       CPU 5/KVM-2137779 [010] d.... 798115.331413: kvm_msr: msr_write 6e0 = 0x81cba98c958c9\n"
                           "       CPU 5/KVM-2137779 [010] d.... 798115.331415: kvm_msr: msr_write 6e0 = 0x81cb9d4a503f2\n")
    assert s["format"] != "unknown"
    assert s["timer"]["msr_writes"] == 2 and s["per_vcpu"]["5"]["tsc_deadline_writes"] == 2
    assert any("no kvm_exit lines" in w and "not recorded" in w for w in s["warnings"])


def test_custom_events_are_other_tracepoints_not_garbled(tmp_path: Path) -> None:
    s = imported(tmp_path, "  qemu-1 [000] d... 1.000001: <hack>: whatever the hack printed\n"
                           "  qemu-1 [000] d... 1.000002: kvm_exit: reason HLT rip 0x1 info 0 0\n")
    assert s["unknown_events"] == {"<hack>": 1} and s["skipped"] == 0


def test_unreadable_kvm_exit_lines_are_not_reported_as_missing(tmp_path: Path) -> None:
    s = imported(tmp_path, "  qemu-1 [000] d... 1.000001: kvm_exit: vcpu x reason HLT\n"
                           "  qemu-1 [000] d... 1.000002: kvm_entry: vcpu 0\n")
    assert any("could not be read" in w for w in s["warnings"])
    assert not any("not recorded" in w for w in s["warnings"])


@pytest.mark.parametrize("layout", ["perf 3.x", "current"])
def test_perf_kvm_stat_layouts_and_vmcall_row(tmp_path: Path, layout: str) -> None:
    """perf 3.x printed no Min/Max columns; a VMCALL row is counted (as `other`), never lost;
    perf's `unknown kvm exit code` messages become warnings."""
    if layout == "perf 3.x":
        header = "             VM-EXIT    Samples  Samples%     Time%         Avg time\n"
        rows = ("           MSR_WRITE       9167    90.00%     0.04%      3.00us ( +-  41.94% )\n"
                "              VMCALL       1019    10.00%     0.01%      2.43us ( +-  17.90% )\n")
    else:
        header = "             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time\n"
        rows = ("           MSR_WRITE       9167    90.00%     0.04%      0.45us   9554.94us      3.00us ( +-  41.94% )\n"
                "              VMCALL       1019    10.00%     0.01%      0.37us   1175.48us      2.43us ( +-  17.90% )\n")
    text = ("unknown kvm exit code:81 on VMX\n\nAnalyze events for all VMs, all VCPUs:\n\n" + header + "\n" + rows
            + "\nTotal Samples:10186, Total events handled time:68281638.61us.\n")
    s = imported(tmp_path, text)
    assert s["exits"]["total"] == 10186
    assert s["other_reasons"] == {"VMCALL": 1019}
    assert s["raw_reasons"]["VMCALL"]["count"] == 1019
    assert any("unknown kvm exit code:81" in w for w in s["warnings"])
