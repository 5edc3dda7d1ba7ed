"""The native trace.dat reader against `trace-cmd report` on real recordings.

The reference texts in tests/data/traces/tracedat were printed by trace-cmd 3.1.6 from
the same files (see the README there): every event must come out in the same order, on
the same CPU, from the same task, at the same time (trace-cmd prints microseconds,
rounded) and with the same field values as the report prints.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from lazytsc.traces import TraceError, import_trace
from lazytsc.traces.binary import _raw_reason
from lazytsc.traces.tracedat import TraceDat, TraceDatError
from lazytsc.traces.tracedat.writer import parts_of, write_v6, write_v7

DATA = Path(__file__).parent / "data" / "traces" / "tracedat"
FILES = ["kvm_vmx_analysis_hip24_2024", "kvm_vmx_lts_x86tsc_hip24_2024", "nokvm_sched_hip24_2024"]
REPORT_LINE = re.compile(
    r"^\s*(?P<comm>.*)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<s>\d+)\.(?P<us>\d{6}): (?P<name>\S+)\s*(?P<payload>.*)$"
)


def report(base: str) -> list[re.Match[str]]:
    with gzip.open(DATA / f"{base}.report.txt.gz", "rt", encoding="utf-8") as fh:
        return [m for m in map(REPORT_LINE.match, fh) if m]


@pytest.fixture(scope="module", params=FILES)
def pair(request) -> tuple[TraceDat, list[re.Match[str]]]:
    return TraceDat.open(DATA / f"{request.param}.dat"), report(request.param)


def test_every_event_agrees_with_trace_cmd_report(pair) -> None:
    td, rows = pair
    rec = td.records()
    assert len(rec["ts"]) == len(rows)
    us = (td.to_ns(rec["ts"], rec["cpu"]) + 500) // 1000  # trace-cmd prints rounded us
    names = [td.formats[int(i)].name for i in rec["id"]]
    comms = td.comms()
    for i, m in enumerate(rows):
        want = (int(m["s"]) * 1_000_000 + int(m["us"]), int(m["cpu"]), int(m["pid"]), m["name"],
                m["comm"].strip())
        got = (int(us[i]), int(rec["cpu"][i]), int(rec["pid"][i]), names[i], comms[i])
        assert got == want, (i, m.group(0))


def _payloads(td: TraceDat, rows, name: str) -> tuple[dict[str, np.ndarray], list[str]]:
    ev = td.events(name)
    return ev, [rows[i]["payload"] for i in ev["index"].tolist()]


def test_kvm_fields_agree_with_trace_cmd_report(pair) -> None:
    """Binary fields decoded in bulk print as trace-cmd prints them (libtraceevent's kvm
    plugin for kvm_exit/kvm_entry, the kernel's TP_printk for the others)."""
    td, rows = pair
    checked = 0
    ev, texts = _payloads(td, rows, "kvm_exit")
    for k, text in enumerate(texts):
        raw = _raw_reason(td, int(ev["exit_reason"][k]), int(ev["isa"][k]))
        want = f"reason {raw} rip 0x{int(ev['guest_rip'][k]):x} info {int(ev['info1'][k]):x} {int(ev['info2'][k]):x}"
        assert text == want
        checked += 1
    ev, texts = _payloads(td, rows, "kvm_entry")
    for k, text in enumerate(texts):
        assert text == f"vcpu {int(ev['vcpu_id'][k])} rip 0x{int(ev['rip'][k]):x}"
        checked += 1
    ev, texts = _payloads(td, rows, "kvm_hv_timer_state")
    for k, text in enumerate(texts):
        assert text == f"vcpu_id {int(ev['vcpu_id'][k]):x} hv_timer {int(ev['hv_timer_in_use'][k]):x}"
        checked += 1
    ev, texts = _payloads(td, rows, "kvm_apic_accept_irq")
    for k, text in enumerate(texts):
        assert text.startswith(f"apicid {int(ev['apicid'][k]):x} vec {int(ev['vec'][k])} (")
        checked += 1
    ev, texts = _payloads(td, rows, "kvm_apic")
    for k, text in enumerate(texts):
        rw = "write" if ev["rw"][k] else "read"
        assert text.startswith(f"apic_{rw} ") and text.endswith(f" = 0x{int(ev['val'][k]):x}")
        checked += 1
    ev, texts = _payloads(td, rows, "kvm_eoi")
    for k, text in enumerate(texts):
        assert text == f"apicid {int(ev['apicid'][k]):x} vector {int(ev['vector'][k])}"
    if td.format("kvm_exit") is not None and len(td.events("kvm_exit")["ts"]):
        assert checked > 1000


@pytest.mark.parametrize("base", FILES[:2])
def test_import_of_the_dat_equals_import_of_its_report(base: str) -> None:
    """The binary path and the text path count the same recording the same way."""
    a = import_trace(DATA / f"{base}.dat").summary()
    b = import_trace(DATA / f"{base}.report.txt.gz").summary()
    for key in ("exits", "timer", "per_vcpu", "lines", "parsed", "skipped", "tracepoints",
                "unknown_events", "raw_reasons", "other_reasons"):
        assert a[key] == b[key], key
    assert a["format"].startswith("trace.dat (v7, zlib")
    assert a["exits"]["total"] == sum(1 for m in report(base) if m["name"] == "kvm_exit")


def test_x86_tsc_clock_is_reported_as_raw_counts() -> None:
    summary = import_trace(DATA / "kvm_vmx_lts_x86tsc_hip24_2024.dat").summary()
    assert summary["time_unit"] == "clock counts"
    assert any("x86-tsc" in w for w in summary["warnings"])
    assert import_trace(DATA / "kvm_vmx_analysis_hip24_2024.dat").summary()["time_unit"] == "ns"


@pytest.mark.parametrize("layout", ["v6", "none", "zlib", "zstd"])
def test_every_layout_reads_the_same_events(layout: str) -> None:
    """Version 6, and version 7 uncompressed, zlib and zstd: the same events."""
    td = TraceDat.open(DATA / "kvm_vmx_lts_x86tsc_hip24_2024.dat")
    parts = parts_of(td)
    blob = write_v6(parts) if layout == "v6" else write_v7(parts, layout)
    other = TraceDat(blob, layout)
    assert other.version == (6 if layout == "v6" else 7)
    assert other.compression == ("none" if layout == "v6" else layout)
    assert other.clock == "x86-tsc"
    a, b = td.records(), other.records()
    for key in ("ts", "cpu", "id", "pid", "size"):
        assert np.array_equal(a[key], b[key]), key
    for field in ("exit_reason", "info1", "guest_rip"):
        assert np.array_equal(td.events("kvm_exit")[field], other.events("kvm_exit")[field])


def test_truncated_and_corrupt_files_are_clean_errors(tmp_path: Path) -> None:
    blob = (DATA / "kvm_vmx_lts_x86tsc_hip24_2024.dat").read_bytes()
    for cut in (5, 40, 1000, len(blob) // 2, len(blob) - 100):
        path = tmp_path / f"cut{cut}.dat"
        path.write_bytes(blob[:cut])
        try:
            import_trace(path)
        except TraceError as exc:
            assert str(exc).startswith(f"{path}:")
    rng = np.random.default_rng(3)
    for k in range(30):
        damaged = bytearray(blob)
        for pos in rng.integers(10, len(blob), size=4).tolist():
            damaged[pos] ^= 0xFF
        path = tmp_path / f"flip{k}.dat"
        path.write_bytes(bytes(damaged))
        try:
            summary = import_trace(path).summary()
        except TraceError as exc:
            assert str(exc).startswith(f"{path}: trace.dat: ")
        else:
            assert summary["lines"] >= 0


def test_reader_api_on_bad_input() -> None:
    with pytest.raises(TraceDatError):
        TraceDat(b"not a trace.dat at all")
    with pytest.raises(TraceDatError, match="version: expected 6 or 7"):
        TraceDat(b"\x17\x08\x44tracing9\x00\x00\x08\x00\x10\x00\x00")
