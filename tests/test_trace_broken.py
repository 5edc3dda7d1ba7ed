"""Broken input: garbled lines are counted and explained, never fatal; bad files are a
TraceError with `FILE:LINE: field: what was expected`."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from lazytsc.traces import TraceError, import_trace

DATA = Path(__file__).parent / "data" / "traces"

# One independent grammar (grep -E) of a complete, well-formed ftrace event line.
FT_HEAD = r"^ +[^ ].*-[0-9]+ +\[[0-9]{3}\] [a-zA-Z.]{4,5} +[0-9]+\.[0-9]{6}: "
FULL_EXIT = (
    FT_HEAD + r"kvm_exit: vcpu [0-9]+ reason [A-Za-z_]+ rip 0x[0-9a-f]+ info1 0x[0-9a-f]{16}"
    r" info2 0x[0-9a-f]{16} intr_info 0x[0-9a-f]{8} error_code 0x[0-9a-f]{8}$"
)
# kvm_exit without info fields (old kernels, edited traces): a layout the importer reads
SHORT_EXIT = FT_HEAD + r"kvm_exit: vcpu [0-9]+ reason [A-Za-z_]+ rip 0x[0-9a-f]+$"
FULL_MSR = FT_HEAD + r"kvm_msr: msr_(write|read) [0-9a-f]+ = 0x[0-9a-f]+( \(#GP\))?$"
FULL_ENTRY = FT_HEAD + r"kvm_entry: vcpu [0-9]+, rip 0x[0-9a-f]+$"
FULL_ACCEPT = FT_HEAD + r"kvm_apic_accept_irq: apicid [0-9a-f]+ vec [0-9]+ \(\w+\|(edge|level)\)$"
FULL_INJ = FT_HEAD + r"kvm_inj_virq: (irq [0-9]+|IRQ 0x[0-9a-f]+)$"
FULL_HVT = FT_HEAD + r"kvm_hv_timer_state: vcpu_id [0-9a-f]+ hv_timer [0-9a-f]+$"
FULL_ANY = "|".join(
    f"({p})" for p in (FULL_EXIT, SHORT_EXIT, FULL_MSR, FULL_ENTRY, FULL_ACCEPT, FULL_INJ, FULL_HVT)
)

needs_grep = pytest.mark.skipif(not shutil.which("grep"), reason="needs grep")


def grep_c(pattern: str, path: Path) -> int:
    out = subprocess.run(["grep", "-cE", pattern, str(path)], capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    return int(out.stdout.strip() or 0)


def lines_of(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def check_accounting(summary: dict) -> None:
    unknown = sum(summary["unknown_events"].values())
    assert summary["lines"] == summary["parsed"] + summary["skipped"] + summary["ignored"] + unknown


@needs_grep
@pytest.mark.parametrize("name", ["broken_truncated.txt", "broken_fields.txt"])
def test_garbled_lines_are_skipped_and_counted(name: str) -> None:
    path = DATA / name
    summary = import_trace(path).summary()
    check_accounting(summary)
    assert summary["lines"] == lines_of(path)
    comments = grep_c(r"^#", path)
    assert summary["parsed"] == grep_c(FULL_ANY, path)
    assert summary["skipped"] == summary["lines"] - summary["parsed"] - comments
    assert summary["exits"]["total"] == grep_c(f"({FULL_EXIT})|({SHORT_EXIT})", path)
    assert summary["timer"]["msr_writes"] == grep_c(FULL_MSR.replace("[0-9a-f]+ =", "6e0 ="), path)
    # the first few reasons are kept as FILE:LINE: field: expected ...
    assert 0 < len(summary["skipped_examples"]) <= 10
    for example in summary["skipped_examples"]:
        file, line, rest = example.split(":", 2)
        assert file == str(path) and line.isdigit() and ": " in rest


def test_truncated_examples_name_the_field() -> None:
    summary = import_trace(DATA / "broken_truncated.txt").summary()
    text = "\n".join(summary["skipped_examples"])
    # line 7 stops after `rip`: a kvm_exit without info fields is a valid (edited or old)
    # layout, so it is read; fields printed with a fixed width must have it
    assert ":7:" not in text
    assert ":9: kvm_exit: error_code: expected 0x and 8 hex digits" in text
    assert ":11: header:" in text
    assert ":13: kvm_msr: value: expected a 0x-prefixed hex number, got end of line" in text
    assert ":20: kvm_exit: info1: expected 0x and 16 hex digits" in text  # the last line is cut
    # the msr-write exit whose kvm_msr was cut counts as sub-reason `other`
    assert summary["exits"]["msr_write"]["other"] == 1
    assert any("no following kvm_msr" in w for w in summary["warnings"])


def test_wrong_field_types_name_the_field() -> None:
    summary = import_trace(DATA / "broken_fields.txt").summary()
    text = "\n".join(summary["skipped_examples"])
    assert ":2: kvm_exit: vcpu: expected a decimal number, got 'x'" in text
    assert ":3: kvm_msr: value: expected a 0x-prefixed hex number, got '0xZZ40be4c5a8'" in text
    assert ":5: timestamp: expected SECONDS.FRACTION digits, got '1000.00a120'" in text
    assert ":6: kvm_entry: vcpu: expected a decimal number, got '-1,'" in text
    assert ":7: kvm_exit: reason: expected `reason`" in text
    assert ":8: kvm_apic_accept_irq: vec: expected a decimal number, got 'two'" in text
    assert ":9: kvm_inj_virq: vector:" in text
    assert ":10: kvm_msr: value: expected a 0x-prefixed hex number" in text
    assert summary["skipped"] == 10  # line 11, 12 are examples 9 and 10
    assert summary["exits"]["total"] == 1
    assert summary["timer"]["interrupts"] == 1


@needs_grep
def test_mixed_formats_are_all_read() -> None:
    path = DATA / "broken_mixed.txt"
    summary = import_trace(path).summary()
    check_accounting(summary)
    assert summary["format"] == "mixed"
    assert any("several tools" in w for w in summary["warnings"])
    assert summary["exits"]["total"] == grep_c(r"kvm(:kvm)?_exit: ", path)
    assert summary["timer"]["msr_writes"] == grep_c(r"msr_write 6e0 = 0x", path)
    assert summary["unknown_events"] == {"sched_switch": 1}
    # the pasted perf kvm stat row and the stray text
    assert summary["skipped"] == 2
    assert sorted(summary["per_vcpu"]) == ["0", "1"]


def test_reordered_timestamps_are_counted_and_sorted() -> None:
    result = import_trace(DATA / "broken_reordered.txt")
    summary = result.summary()
    check_accounting(summary)
    assert summary["skipped"] == 0
    assert result.acc.nonmonotonic == 3
    assert any("3 lines have a timestamp earlier" in w for w in summary["warnings"])
    # times relative to the earliest line (999.999990), span to the latest (1000.000402)
    assert summary["sim_time_ns"] == 412_000
    t, values = result.deadline_writes(0)
    assert list(t) == sorted(t)
    assert len(t) == 3
    t1, v1 = result.deadline_writes(1)
    assert list(t1) == [101_000]  # 1000.000091 - 999.999990
    assert list(v1) == [0x2540BE40000]
    log = result.to_eventlog()
    times = log.column("time")
    assert (times[1:] >= times[:-1]).all() and times[0] >= 0


@pytest.mark.parametrize("name", ["trace.txt", "trace.gz", "trace"])
def test_gzip_detected_by_magic_bytes(tmp_path: Path, name: str) -> None:
    plain = import_trace(DATA / "ftrace_intel.txt").summary()
    path = tmp_path / name
    path.write_bytes(gzip.compress((DATA / "ftrace_intel.txt").read_bytes()))
    summary = import_trace(path).summary()
    assert summary["compressed"] == "gzip"
    for key in ("exits", "timer", "per_vcpu", "lines", "parsed", "skipped", "format"):
        assert summary[key] == plain[key], key


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    from lazytsc.traces.synth import iter_lines

    text = "".join(iter_lines(20_000)).encode()
    blob = gzip.compress(text)
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    summary = import_trace(path).summary()
    assert any("ends early" in w for w in summary["warnings"])
    assert 0 < summary["lines"] < 20_000
    assert summary["exits"]["total"] > 0
    check_accounting(summary)


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(TraceError) as err:
        import_trace(path)
    assert str(err.value).startswith(f"{path}: file: expected a readable trace file")


def test_directory_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError):
        import_trace(tmp_path)


@pytest.mark.parametrize(
    "blob, expected",
    [
        (bytes(range(256)) * 40, "got binary data"),
        (b"PERFILE2" + b"\x00" * 100, "perf script"),
        (gzip.compress(bytes(range(256)) * 40), "got binary data"),
    ],
)
def test_binary_files_are_trace_errors(tmp_path: Path, blob: bytes, expected: str) -> None:
    path = tmp_path / "bin.dat"
    path.write_bytes(blob)
    with pytest.raises(TraceError) as err:
        import_trace(path)
    assert str(err.value).startswith(f"{path}:1: content: expected ")
    assert expected in str(err.value)


def test_truncated_tracedat_names_the_part_that_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "cut.dat"
    path.write_bytes(b"\x17\x08\x44tracing6\x00\x00\x08" + b"\x00" * 100)
    with pytest.raises(TraceError) as err:
        import_trace(path)
    assert str(err.value).startswith(f"{path}: trace.dat: ")
    assert "expected" in str(err.value)


def test_random_bytes_are_a_trace_error(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    path = tmp_path / "noise"
    path.write_bytes(bytes(rng.randrange(256) for _ in range(5000)))
    with pytest.raises(TraceError):
        import_trace(path)


def test_empty_file_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(TraceError) as err:
        import_trace(path)
    assert str(err.value) == f"{path}:1: content: expected trace lines, the file is empty"


@pytest.mark.parametrize("text", ["# tracer: nop\n#\n", "hello\nworld\n"])
def test_text_without_any_event_is_imported_with_everything_counted(tmp_path: Path, text: str) -> None:
    """A fragment with no line the importer recognises is not refused: every line is
    counted (ignored or skipped with its reason) and a warning says nothing was found."""
    path = tmp_path / "nothing.txt"
    path.write_text(text)
    summary = import_trace(path).summary()
    check_accounting(summary)
    assert summary["lines"] == text.count("\n")
    assert summary["exits"]["total"] == 0
    assert any("no KVM event" in w for w in summary["warnings"]) or summary["skipped"] == 0


def test_only_unknown_tracepoints_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "sched.txt"
    path.write_text(
        "          <idle>-0     [000] d..2.   100.000001: sched_switch: prev_comm=swapper\n"
    )
    summary = import_trace(path).summary()
    assert summary["unknown_events"] == {"sched_switch": 1}
    assert summary["exits"]["total"] == 0


def test_undecodable_bytes_in_a_line_are_skipped_not_fatal(tmp_path: Path) -> None:
    good = (DATA / "ftrace_intel.txt").read_bytes()
    path = tmp_path / "bad-utf8.txt"
    path.write_bytes(good + b"       CPU 0/KVM-2345    [001] d.... 1000.0009\xff\xfe: kvm_exit: x\n")
    summary = import_trace(path).summary()
    assert summary["skipped"] == 1
    check_accounting(summary)


def test_many_distinct_unknown_events_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    with open(path, "w") as f:
        for i in range(400):
            f.write(f"  x-1  [000] d..1. 1.{i:06d}: event_{i}: payload\n")
    summary = import_trace(path).summary()
    assert len(summary["unknown_events"]) == 257
    assert summary["unknown_events"]["(other)"] == 400 - 256


def test_raw_clock_and_nanosecond_timestamps(tmp_path: Path) -> None:
    """x86-tsc/counter clocks print integers (taken as ns, with a warning); --ns prints 9 digits."""
    raw = tmp_path / "tsc.txt"
    raw.write_text(
        "  CPU 0/KVM-1  [000] d.... 123456789: kvm_exit: vcpu 0 reason HLT rip 0x1 info1"
        " 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000\n"
        "  CPU 0/KVM-1  [000] d.... 123457789: kvm_entry: vcpu 0, rip 0x1\n"
    )
    summary = import_trace(raw).summary()
    assert summary["sim_time_ns"] == 1000
    assert any("have no fraction" in w for w in summary["warnings"])
    ns = tmp_path / "ns.txt"
    ns.write_text(
        "  CPU 0/KVM  1 [000]  5.000000001: kvm:kvm_entry: vcpu 0, rip 0x1\n"
        "  CPU 0/KVM  1 [000]  5.000000123: kvm:kvm_exit: reason HLT rip 0x1 info 0 0\n"
    )
    summary = import_trace(ns).summary()
    assert summary["sim_time_ns"] == 122
    assert summary["exits"]["by_reason"]["halt"] == 1
