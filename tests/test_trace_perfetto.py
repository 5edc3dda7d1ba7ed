"""Perfetto export: the file decodes with Perfetto's own generated protobuf classes
(`perfetto` package, protos/perfetto/trace/perfetto_trace.proto) and holds what the
event log holds: one slice per exit on its vCPU's track, counters of the deadline MSR and,
in lazy runs, of `pending` and `armed`."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lazytsc.cli import main as cli_main
from lazytsc.engine import Engine
from lazytsc.perfetto import write_perfetto
from lazytsc.resources import builtin_scenarios
from lazytsc.scenario import load_scenario
from lazytsc.traces import import_trace

pb = pytest.importorskip("perfetto.protos.perfetto.trace.perfetto_trace_pb2")
DAT = Path(__file__).parent / "data" / "traces" / "tracedat" / "kvm_vmx_analysis_hip24_2024.dat"


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def decode(blob: bytes):
    trace = pb.Trace()
    trace.ParseFromString(blob)
    return trace


def tracks_of(trace) -> dict[int, str]:
    return {p.track_descriptor.uuid: p.track_descriptor.name for p in trace.packet
            if p.HasField("track_descriptor")}


def check_slices_nest(trace) -> Counter:
    """Per track, every SLICE_BEGIN has its SLICE_END, in time order; returns slice names."""
    open_at: dict[int, int] = {}
    names: Counter = Counter()
    # trace processor orders packets by timestamp, keeping file order for equal ones
    events = sorted((p.timestamp, i, p) for i, p in enumerate(trace.packet) if p.HasField("track_event"))
    for ts, _i, p in events:
        te = p.track_event
        if te.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
            assert te.track_uuid not in open_at
            open_at[te.track_uuid] = ts
            names[te.name] += 1
        elif te.type == pb.TrackEvent.TYPE_SLICE_END:
            assert open_at.pop(te.track_uuid) <= ts
    assert not open_at
    return names


def test_simulated_lazy_run_exports_exits_and_counters() -> None:
    engine = Engine(load_scenario(builtin_scenarios()["tcp_rr"]), "lazy")
    engine.run()
    buf = io.BytesIO()
    write_perfetto(engine.log, buf, title="tcp_rr (lazy)")
    trace = decode(buf.getvalue())
    tracks = tracks_of(trace)
    assert "vCPU 0 exits" in tracks.values() and "vCPU 1 armed" in tracks.values()
    names = check_slices_nest(trace)
    summary = engine.summary()
    assert sum(names.values()) == summary["exits"]["total"]
    assert names["msr-write: tsc-deadline"] == summary["exits"]["msr_write"]["tsc-deadline"]
    assert names["halt"] == summary["exits"]["by_reason"]["halt"]
    counters = Counter(tracks[p.track_event.track_uuid] for p in trace.packet
                       if p.HasField("track_event") and p.track_event.type == pb.TrackEvent.TYPE_COUNTER)
    assert counters["vCPU 0 pending"] > 0 and counters["vCPU 0 armed"] > 0
    assert counters["vCPU 0 TSC-deadline MSR"] + counters["vCPU 1 TSC-deadline MSR"] == summary["timer"]["msr_writes"]


def test_imported_trace_exports_raw_reasons(tmp_path: Path) -> None:
    result = import_trace(DAT, keep_events=True)
    buf = io.BytesIO()
    write_perfetto(result.to_eventlog(), buf, note_names=result.note_names)
    names = check_slices_nest(decode(buf.getvalue()))
    summary = result.summary()
    assert sum(names.values()) == summary["exits"]["total"]
    assert names["other: APIC_WRITE"] == summary["raw_reasons"]["APIC_WRITE"]["count"]
    assert names["halt"] == summary["exits"]["by_reason"]["halt"]


def test_cli_writes_perfetto_files(tmp_path: Path) -> None:
    out = tmp_path / "run.pftrace"
    assert cli_main(["events", "seed_overwrite", "--format", "perfetto", "-o", str(out)]) == 0
    trace = decode(out.read_bytes())
    assert any(p.HasField("track_event") for p in trace.packet)
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()  # a new file gets the umask's mode
    out2 = tmp_path / "trace.pftrace"
    assert cli_main(["trace", str(DAT), "--perfetto", str(out2)]) == 0
    assert check_slices_nest(decode(out2.read_bytes()))["halt"] > 0
    times = [p.timestamp for p in decode(out2.read_bytes()).packet if p.HasField("track_event")]
    assert min(times) >= 0 and np.all(np.diff(np.array(times)) >= -10**12)


def test_export_through_a_symlink_keeps_the_link_and_the_mode(tmp_path: Path) -> None:
    """Saving over a linked file writes the file the link names; the link stays a link,
    and the target keeps its mode (lazytsc.atomic, like every other save)."""
    import os

    from lazytsc.perfetto import export_perfetto

    real = tmp_path / "real.pftrace"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.pftrace"
    link.symlink_to(real)
    e = Engine(load_scenario(builtin_scenarios()["periodic_tick"]), "lazy")
    e.run()
    assert export_perfetto(e.log, link) > 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.stat().st_mode & 0o777 == 0o640
    assert real.read_bytes() != b"old" and decode(real.read_bytes()).packet
