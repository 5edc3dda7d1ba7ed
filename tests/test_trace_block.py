"""The block path (textblock + textcolumns: numpy over a chunk of lines) reads a trace
exactly as the per-line loop does: same summary, same event log and source lines, same
per-vCPU series the what-if replays. Checked on the real corpus, on synthetic layouts, on
hand-written edge cases, and on mutated real lines with tiny chunks (so bulk runs and
single lines alternate and every carried state crosses chunk boundaries)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lazytsc.traces import import_trace, importer, source, textcolumns
from lazytsc.traces.synth import FORMATS, write_trace

DATA = Path(__file__).parent / "data" / "traces"
REPORTS = ("kvm_vmx_analysis_hip24_2024", "kvm_vmx_lts_x86tsc_hip24_2024", "nokvm_sched_hip24_2024")


def _state(path: Path, keep: bool) -> dict[str, object]:
    """Everything an import produces that a caller can see."""
    result = import_trace(path, keep_events=keep)
    acc = result.acc
    out: dict[str, object] = {"summary": result.summary()}
    for name in ("deadline_t", "deadline_v", "accept_t", "accept_k", "inj_t", "inj_k"):
        out[name] = [(k, list(v)) for k, v in getattr(acc, name).items()]
    out["halts"] = [(k, list(v)) for k, v in acc.halts.items()]
    out["lapic"] = list(acc.lapic_writes)
    out["dicts"] = [list(d.items()) for d in (acc.raw_reasons, acc.other_reasons, acc.unknown_events,
                                              acc.vcpus, acc.thread_entry_vcpu, acc.vcpu_alias)]
    out["misc"] = [acc.isa, acc.nonmonotonic, acc.first_ns, acc.min_ns, acc.max_ns, dict(acc.styles)]
    if keep:
        log = result.to_eventlog()
        out["log"] = log.digest()
        out["lines"] = result.source_lines().tolist()
        out["notes"] = list(result.note_names)
    return out


def _both(path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool = True) -> tuple[dict, dict, int]:
    """(per-line import, block-path import, lines the block path read)."""
    monkeypatch.setattr(importer, "BLOCK_PATH", False)
    reference = _state(path, keep)
    monkeypatch.setattr(importer, "BLOCK_PATH", True)
    bulk = _state(path, keep)
    return reference, bulk, import_trace(path).acc.bulk_lines


def _same(a: dict, b: dict) -> None:
    for key in a:
        if key == "summary":
            for field in a[key]:
                assert a[key][field] == b[key][field], field
        else:
            assert a[key] == b[key], key


def _corpus() -> list[Path]:
    files = sorted(DATA.glob("*.txt")) + sorted((DATA / "real").glob("*.txt"))
    return files


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_block_path_reads_the_real_and_hand_written_files_as_the_per_line_loop(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, bulk, _ = _both(path, monkeypatch)
    _same(reference, bulk)


@pytest.mark.parametrize("name", REPORTS)
def test_block_path_reads_trace_cmd_reports_of_real_recordings_in_bulk(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `trace-cmd report` text of the real recordings (tens of thousands of lines):
    identical results, and nearly every line read by the block path (the test would
    notice the block path switching itself off)."""
    path = tmp_path / f"{name}.txt"
    path.write_bytes(gzip.decompress((DATA / "tracedat" / f"{name}.report.txt.gz").read_bytes()))
    for keep in (True, False):
        reference, bulk, in_bulk = _both(path, monkeypatch, keep)
        _same(reference, bulk)
    lines = reference["summary"]["lines"]
    assert in_bulk > 0.98 * lines, (in_bulk, lines)


@pytest.mark.parametrize("fmt", FORMATS)
def test_block_path_reads_every_synthetic_layout(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / f"{fmt}.txt"
    write_trace(path, 20_000, fmt)
    reference, bulk, in_bulk = _both(path, monkeypatch)
    _same(reference, bulk)
    assert in_bulk > 0.99 * 20_000


# Hand-written lines for what the block path must leave to the per-line loop or read
# exactly like it (each file repeats a line mix so that bulk runs form).
_HEAD = " qemu-system-x86-1234 [001] 100.000001: "
_EDGE_CASES = {
    "nanoseconds": ["qemu-system-x86-1234 [001] 100.000000001: kvm_exit: vcpu 0 reason HLT rip 0x1 info 0 0",
                    "qemu-system-x86-1234 [001] 100.000000201: kvm_entry: vcpu 0, rip 0x1"],
    "fraction_widths": [_HEAD.replace("100.000001", ts) + "kvm_exit             reason HLT rip 0x1 info 0 0"
                        for ts in ("1.5", "12345678.1", "123.1234567", "9999999999.12345678", "12345678901.123456",
                                   "1.", ".1234567", "1.2.3456", "9223372036.854775807", "9223372036.854775808")],
    "tabs_and_cr": [_HEAD + "kvm_exit\treason HLT rip 0x1 info 0 0", _HEAD + "kvm_entry vcpu 0 rip 0x1\r"],
    "non_ascii_thread": [" qemu-système-1234 [001] 100.000001: kvm_exit             reason HLT rip 0x1 info 0 0",
                         " qemu-système-1234 [001] 100.000002: kvm_entry             vcpu 0 rip 0x1"],
    "bracket_in_comm": [" kworker [x]-1 [001] 100.000001: kvm_exit             reason HLT rip 0x1 info 0 0",
                        "[002] 100.000003: kvm_exit             reason HLT rip 0x1 info 0 0",
                        "   [003] 100.000004: kvm_entry             vcpu 2 rip 0x1",
                        " a b c d e f-9 [001] 100.000005: kvm_exit             reason HLT rip 0x1 info 0 0"],
    "long_fields": [" " + "q" * 40 + "-1 [001] 100.000001: kvm_exit             reason HLT rip 0x1 info 0 0",
                    _HEAD + "kvm_exit             reason " + "R" * 40 + " rip 0x1 info 0 0",
                    _HEAD + "kvm_apic_accept_irq  apicid 0 vec 236 (Fixed|edge)" + " " * 50,
                    _HEAD + "kvm_msr              msr_write 6e0 = 0x" + "f" * 17,
                    _HEAD + "kvm_msr              msr_write 6e0 = 0xffffffffffffffff",
                    _HEAD + "kvm_msr              msr_write 0x6e0 = 0x10",
                    _HEAD + "a_very_long_custom_event_name_past_32: x"],
    "amd_msr": [_HEAD + "kvm_exit             reason msr rip 0x1 info 1 0",
                _HEAD + "kvm_exit             reason EXIT_MSR rip 0x1 info 0 0",
                _HEAD + "kvm_exit             reason msr rip 0x1 info 0x1 0",
                _HEAD + "kvm_exit             reason msr rip 0x1 info 0X1 0",
                _HEAD + "kvm_exit             reason msr rip 0x1 info zz 0",
                _HEAD + "kvm_msr              msr_write 6e0 = 0x5"],
    "numeric_reasons": [_HEAD + "kvm_exit             reason 32 rip 0x1 info 0 0",
                        _HEAD + "kvm_exit             reason 0x7c rip 0x1 info 1 0",
                        _HEAD + "kvm_exit             reason hlt rip 0x1 info 0 0",
                        _HEAD + "kvm_exit             reason 12 rip 0x1 info 0 0"],
    "vcpu_fields": [_HEAD + "kvm_exit: vcpu 32767 reason HLT rip 0x1 info 0 0",
                    _HEAD + "kvm_exit: vcpu 32768 reason HLT rip 0x1 info 0 0",
                    _HEAD + "kvm_exit: vcpu +1 reason HLT rip 0x1 info 0 0",
                    _HEAD + "kvm_entry: vcpu 7,",
                    _HEAD + "kvm_entry: vcpu , rip 0x1",
                    _HEAD + "kvm_entry: vcpu 3 rip",
                    _HEAD + "kvm_apic_accept_irq: apicid 8000 vec 236 (Fixed|edge)",
                    _HEAD + "kvm_hv_timer_state: vcpu_id 1 hv_timer 0"],
    "double_spaces": [_HEAD + "kvm_exit:  reason HLT rip 0x1 info 0 0",
                      _HEAD + "kvm_exit: reason  HLT rip 0x1 info 0 0",
                      _HEAD + "kvm_exit: reason HLT rip 0x1 info 0 0   ",
                      " qemu-1234 [001]  100.000009: kvm_entry: vcpu 0"],
    "threads_and_provisional": [" a-1 [001] 100.000001: kvm_exit             reason HLT rip 0x1 info 0 0",
                                " b-2 [001] 100.000002: kvm_msr              msr_write 6e0 = 0x5",
                                " CPU 3/KVM-3 [001] 100.000003: kvm_exit             reason MSR_WRITE rip 0x1 info 0 0",
                                " CPU 3/KVM-3 [001] 100.000004: kvm_msr              msr_write 6e0 = 0x6",
                                " a-1 [001] 100.000005: kvm_entry             vcpu 1 rip 0x1",
                                " a-1 [001] 100.000006: kvm_entry             vcpu 2 rip 0x1",
                                " CPU 3/KVM-3 [001] 100.000007: kvm_entry             vcpu 9 rip 0x1"],
    "perf_and_flags": ["qemu-system-x86 1234 [001] 100.000001: kvm:kvm_exit: reason HLT rip 0x1 info 0 0",
                       "qemu-system-x86 1234 [001] 100.000002: kvm:kvm_entry: vcpu 0, rip 0x1",
                       "  qemu-1234  [001] d..1 100.000003: kvm_exit: reason HLT rip 0x1 info 0 0",
                       "  qemu-1234  [001] d..1 100.000004: kvm_entry: vcpu 0",
                       "  qemu-1234  [001] ] x 100.000005: kvm_exit: reason HLT rip 0x1 info 0 0"],
    "reordered_time": [_HEAD.replace("100.000001", "100.000009") + "kvm_exit: reason HLT rip 0x1 info 0 0",
                       _HEAD.replace("100.000001", "100.000002") + "kvm_entry: vcpu 0",
                       _HEAD.replace("100.000001", "099.000002") + "kvm_apic_accept_irq: apicid 0 vec 236 (Fixed|edge)",
                       _HEAD.replace("100.000001", "100.000003") + "kvm_msr: msr_write 6e0 = 0x5 (#GP)",
                       _HEAD.replace("100.000001", "100.000004") + "kvm_msr: msr_read 6e0 = 0x5",
                       _HEAD.replace("100.000001", "100.000005") + "kvm_inj_virq: irq 236",
                       _HEAD.replace("100.000001", "100.000006") + "kvm_inj_virq: Soft/INTn 0xec",
                       _HEAD.replace("100.000001", "100.000007") + "kvm_apic: apic_write APIC_TMICT = 0x10",
                       _HEAD.replace("100.000001", "100.000008") + "kvm_apic: apic_read APIC_LVTT = 0x10",
                       _HEAD.replace("100.000001", "100.000009") + "kvm_eoi: apicid 0 vector 236",
                       _HEAD.replace("100.000001", "100.000010") + "kvm_apic_ipi: dst 1 vec 251 (Fixed|physical|assert|edge|dst)"],
}


@pytest.mark.parametrize("case", sorted(_EDGE_CASES))
@pytest.mark.parametrize("chunk", [64, 1 << 19])
def test_block_path_edge_cases(case: str, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthetic lines (unit test): the block path reads or leaves them exactly like the
    per-line loop, in runs long enough to be read in bulk and in chunks of a few lines."""
    lines = _EDGE_CASES[case]
    path = tmp_path / f"{case}.txt"
    path.write_bytes("".join("\n".join(lines) + "\n" for _ in range(60)).encode("utf-8"))
    monkeypatch.setattr(source, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(textcolumns, "MIN_RUN", 1)
    reference, bulk, _ = _both(path, monkeypatch)
    _same(reference, bulk)


def _real_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted((DATA / "real").glob("*.txt")):
        lines += path.read_text(encoding="utf-8").splitlines()
    for name in REPORTS[:2]:
        text = gzip.decompress((DATA / "tracedat" / f"{name}.report.txt.gz").read_bytes()).decode()
        lines += text.splitlines()[:3000:7]
    return lines


REAL = _real_lines()


@st.composite
def _texts(draw) -> bytes:
    """Runs of real lines, some cut, spliced, wrapped, duplicated or swapped."""
    n = draw(st.integers(1, 120))
    start = draw(st.integers(0, len(REAL) - 1))
    out = []
    for k in range(n):
        line = REAL[(start + k) % len(REAL)]
        op = draw(st.sampled_from(["keep"] * 6 + ["cut", "splice", "wrap", "dup", "other"]))
        i = draw(st.integers(0, len(line)))
        if op == "cut":
            line = line[:i]
        elif op == "splice":
            other = draw(st.sampled_from(REAL))
            line = line[:i] + other[draw(st.integers(0, len(other))):]
        elif op == "wrap":
            line = line[:i] + "\n" + line[i:]
        elif op == "dup":
            line = line + "\n" + line
        elif op == "other":
            line = draw(st.sampled_from(REAL))
        out.append(line)
    return ("\n".join(out) + "\n").encode("utf-8")


@settings(max_examples=2000 if os.environ.get("LAZYTSC_FUZZ_SIZE") == "large" else 120, deadline=None,
          derandomize=os.environ.get("LAZYTSC_FUZZ_SIZE") != "large", database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=_texts(), chunk=st.sampled_from([80, 700, 4096]))
def test_block_path_equals_per_line_loop_on_mutated_real_lines(
    data: bytes, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mutated.txt"
    path.write_bytes(data)
    monkeypatch.setattr(source, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(textcolumns, "MIN_RUN", 1)
    monkeypatch.setattr(textcolumns, "MAX_LINES_PER_BLOCK", 1 << 20)
    reference, bulk, _ = _both(path, monkeypatch)
    _same(reference, bulk)
