"""A real trace.dat opened through File > Open trace, drawn, and exported for Perfetto."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import wait_idle

REPO = Path(__file__).resolve().parents[2]
DAT = REPO / "tests" / "data" / "traces" / "tracedat" / "kvm_vmx_analysis_hip24_2024.dat"


def test_trace_dat_opens_and_exports_to_perfetto(make_window, qtbot, tmp_path):
    pb = pytest.importorskip("perfetto.protos.perfetto.trace.perfetto_trace_pb2")
    win = make_window()
    with qtbot.waitSignal(win.controller.documentChanged, timeout=30_000):
        win.open_path(str(DAT))
    wait_idle(qtbot, win)
    doc = win.controller.doc
    assert doc.kind == "trace"
    assert doc.summary["exits"]["total"] == 9005  # the kvm_exit events of trace-cmd report
    assert win.timeline.data.n_events == len(doc.log)
    win.grab().save(str(tmp_path / "trace_dat.png"))
    out = tmp_path / "out.pftrace"
    win.export_to("perfetto", str(out), wait=True)
    wait_idle(qtbot, win)
    trace = pb.Trace()
    trace.ParseFromString(out.read_bytes())
    begins = [p for p in trace.packet if p.HasField("track_event")
              and p.track_event.type == pb.TrackEvent.TYPE_SLICE_BEGIN]
    assert len(begins) == 9005
