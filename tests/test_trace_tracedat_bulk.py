"""The bulk trace.dat decoder on layouts the real recordings do not show by themselves.

Each case re-packs a real recording (tests/data/traces/tracedat, sources in the README
there) with the writer, changed in one respect, and checks the reader against a plain
per-event rule stated in the test: trace-cmd's merge order when a CPU's clock goes
back, the zlib fallback beside ISA-L, and AMD MSR exits read from `info1`.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np
import pytest
from lazytsc.traces import import_trace
from lazytsc.traces.tracedat import TraceDat, container
from lazytsc.traces.tracedat.writer import parts_of, write_v7

DATA = Path(__file__).parent / "data" / "traces" / "tracedat"
ANALYSIS = DATA / "kvm_vmx_analysis_hip24_2024.dat"


def _per_cpu_file_order(td: TraceDat) -> dict[int, list[tuple[int, int]]]:
    """(ts, payload position) of each CPU's events in the order its pages hold them."""
    rec = td.records()
    out: dict[int, list[tuple[int, int]]] = {}
    for cpu in np.unique(rec["cpu"]).tolist():
        sel = np.flatnonzero(rec["cpu"] == cpu)
        sel = sel[np.argsort(rec["pos"][sel], kind="stable")]
        out[cpu] = list(zip(rec["ts"][sel].tolist(), rec["pos"][sel].tolist(), strict=True))
    return out


def _trace_cmd_merge(streams: dict[int, list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """trace-input.c tracecmd_read_next_data: take the CPU whose next event has the
    smallest timestamp (a strict `<` over CPUs in ascending order: ties go to the lower
    CPU), one event at a time; each CPU's events come in its own file order."""
    heads = [(events[0][0], cpu, 0) for cpu, events in streams.items() if events]
    heapq.heapify(heads)
    out = []
    while heads:
        _ts, cpu, i = heapq.heappop(heads)
        out.append((cpu, streams[cpu][i][1]))
        if i + 1 < len(streams[cpu]):
            heapq.heappush(heads, (streams[cpu][i + 1][0], cpu, i + 1))
    return out


def test_merge_follows_trace_cmd_when_a_cpus_clock_goes_back() -> None:
    """One CPU's pages stored in reverse order (its timestamps go back at every page):
    the events still come out in trace-cmd's merge order, and each CPU's events in the
    order its pages are stored (the reader never reorders a CPU's own events)."""
    td = TraceDat.open(ANALYSIS)
    parts = parts_of(td)
    busiest = max(parts.cpus, key=lambda c: len(parts.cpus[c]))
    pages = np.frombuffer(parts.cpus[busiest], dtype=np.uint8).reshape(-1, parts.page_size)
    assert len(pages) > 2
    parts.cpus[busiest] = pages[::-1].tobytes()
    other = TraceDat(write_v7(parts, "zlib"), "reversed")
    rec = other.records()
    streams = _per_cpu_file_order(other)
    ts = np.array([t for t, _p in streams[busiest]], dtype=np.int64)
    assert (np.diff(ts) < 0).any(), "the re-packed CPU's clock must go back somewhere"
    got = list(zip(rec["cpu"].tolist(), rec["pos"].tolist(), strict=True))
    assert got == _trace_cmd_merge(streams)
    # the same events as the original, only in another order
    assert sorted(td.records()["ts"].tolist()) == sorted(rec["ts"].tolist())


def test_zlib_fallback_reads_what_isal_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the isal package the stdlib's zlib inflates the sections: same events."""
    fast = TraceDat.open(ANALYSIS)
    monkeypatch.setattr(container, "_isal_decompress", None)
    slow = TraceDat.open(ANALYSIS)
    for key in ("ts", "cpu", "id", "pid", "pos", "size"):
        assert np.array_equal(fast.records()[key], slow.records()[key]), key
    assert np.array_equal(fast.events("kvm_exit")["info1"], slow.events("kvm_exit")["info1"])


def test_amd_msr_exits_are_read_or_write_by_info1(tmp_path: Path) -> None:
    """svm.c msr_interception: an SVM_EXIT_MSR (0x7c) exit is a WRMSR when EXITINFO1 is
    1 and an RDMSR when it is 0. Every kvm_exit of a real recording re-written as an
    AMD (isa 2) MSR exit, info1 alternating: msr-write and msr-read counts follow info1."""
    td = TraceDat.open(ANALYSIS)
    parts = parts_of(td)
    fmt = td.format("kvm_exit")
    assert fmt is not None
    ev = td.events("kvm_exit")
    cpus = sorted(parts.cpus)
    data = {c: bytearray(parts.cpus[c]) for c in cpus}
    starts = np.cumsum([0] + [len(data[c]) for c in cpus])
    assert all(len(data[c]) % parts.page_size == 0 for c in cpus)
    pos = td.records()["pos"][ev["index"]]
    info1 = np.arange(len(pos)) % 3 == 0  # writes: every third exit
    for p, w in zip(pos.tolist(), info1.tolist(), strict=True):
        k = int(np.searchsorted(starts, p, side="right")) - 1
        buf, at = data[cpus[k]], p - int(starts[k])
        for name, value in (("isa", 2), ("exit_reason", 0x7C), ("info1", int(w))):
            f = fmt.fields[name]
            buf[at + f.offset : at + f.offset + f.size] = value.to_bytes(f.size, "little")
    parts.cpus = {c: bytes(data[c]) for c in cpus}
    path = tmp_path / "svm_msr.dat"
    path.write_bytes(write_v7(parts, "zlib"))
    by_reason = import_trace(path).summary()["exits"]["by_reason"]
    assert by_reason["msr-write"] == int(info1.sum())
    assert by_reason["msr-read"] == len(pos) - int(info1.sum())
