"""Import streams: bounded memory on a 200k-line trace, and the fast path agrees with the
full regex grammar on every layout (no timing assertions)."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest
from lazytsc.traces import import_trace, importer
from lazytsc.traces.synth import FORMATS, write_trace

LINES = 200_000


def test_200k_lines_import_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    write_trace(path, LINES, "ftrace")
    # what the file's lines would cost as Python objects (strings alone)
    with open(path, encoding="utf-8") as f:
        as_objects = sum(sys.getsizeof(line) for line in f)
    tracemalloc.start()
    try:
        result = import_trace(path)
        summary = result.summary()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["lines"] == LINES
    assert summary["skipped"] == 0
    assert summary["exits"]["total"] > LINES // 4
    # a few MB of buffers and per-vCPU arrays, against ~40 MB of line objects
    assert peak < as_objects / 8, (peak, as_objects)
    assert peak < 12 * 1024 * 1024, peak


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_path_equals_regex_grammar(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"{fmt}.txt"
    write_trace(path, 5_000, fmt)
    fast = import_trace(path, keep_events=True)
    # an empty dispatch table sends every line down the slow path (full regex)
    monkeypatch.setattr(importer, "DISPATCH", {})
    slow = import_trace(path, keep_events=True)
    a, b = fast.summary(), slow.summary()
    for key in ("exits", "timer", "per_vcpu", "lines", "parsed", "skipped", "ignored",
                "unknown_events", "tracepoints", "format", "sim_time_ns", "warnings"):
        assert a[key] == b[key], key
    assert fast.to_eventlog().digest() == slow.to_eventlog().digest()


@pytest.mark.parametrize("name", ["ftrace_intel.txt", "broken_truncated.txt", "broken_fields.txt",
                                  "broken_mixed.txt", "perf_script_old.txt", "ftrace_amd.txt"])
def test_fast_path_equals_regex_grammar_on_hand_written_files(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path(__file__).parent / "data" / "traces" / name
    a = import_trace(path).summary()
    monkeypatch.setattr(importer, "DISPATCH", {})
    b = import_trace(path).summary()
    for key in ("exits", "timer", "per_vcpu", "parsed", "skipped", "unknown_events",
                "skipped_examples", "format", "warnings", "sim_time_ns"):
        assert a[key] == b[key], key
