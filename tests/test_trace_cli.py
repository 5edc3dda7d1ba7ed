"""`lazytsc trace FILE [--json] [--what-if lazy]` and its errors (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lazytsc.taxonomy import EXIT_ORDER, MSR_SUB_ORDER
from lazytsc.traces import cli as trace_cli
from lazytsc.traces.synth import iter_tcp_rr

DATA = Path(__file__).parent / "data" / "traces"


def lazytsc(argv: list[str]) -> int:
    """The project's console script if it wires `trace`, else this package's standalone entry."""
    try:
        from lazytsc.cli import build_parser, main
    except ImportError:  # pragma: no cover - the lead's CLI not there yet
        return trace_cli.main(argv[1:])
    parser = build_parser()
    if "trace" not in parser._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        return trace_cli.main(argv[1:])
    return main(argv)


def test_json_has_the_run_shape_plus_trace_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert lazytsc(["trace", str(DATA / "ftrace_intel.txt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["exits"]) == {"total", "by_reason", "msr_write"}
    assert list(out["exits"]["by_reason"]) == list(EXIT_ORDER)
    assert list(out["exits"]["msr_write"]) == list(MSR_SUB_ORDER)
    assert set(out["timer"]) == {"deadline_requests", "msr_writes", "msr_writes_skipped",
                                 "interrupts", "spurious", "late", "lost"}
    for key in ("events", "sim_time_ns", "per_vcpu", "lines", "parsed", "skipped",
                "unknown_events", "warnings", "format"):
        assert key in out, key
    assert out["format"] == "ftrace"
    assert out["per_vcpu"]["0"]["by_reason"]["msr-write"] == 5


def test_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert lazytsc(["trace", str(DATA / "perf_kvm_stat.txt")]) == 0
    out = capsys.readouterr().out
    assert "VM exits" in out and "recorded" in out
    assert "10,046,340 (80%)" in out  # msr-write of the seed's classic column
    assert "lines 17:" in out
    assert "warning: perf kvm stat does not print MSR numbers" in out


def test_what_if_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rr.txt"
    path.write_text("".join(iter_tcp_rr(300)))
    assert lazytsc(["trace", str(path), "--what-if", "lazy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    what = out["what_if"]
    assert what["tsc_deadline_exits_saved"] > 0
    assert what["resulting"]["exits"]["total"] < out["exits"]["total"]
    assert abs(what["calibration"]["tsc_khz"] - 2_000_000) < 100  # few ticks: a short fit
    assert lazytsc(["trace", str(path), "--what-if", "lazy", "--variant", "v3"]) == 0
    text = capsys.readouterr().out
    assert "lazy (what-if)" in text and "tsc-deadline exits saved" in text and "v3" in text


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: None, ": file: expected a readable trace file"),
        (lambda p: p.write_bytes(bytes(range(256)) * 50), ":1: content: expected text lines"),
        (lambda p: p.write_text(""), ":1: content: expected trace lines, the file is empty"),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4), ": gzip: expected"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, expected: str
) -> None:
    path = tmp_path / "input.txt"
    make(path)
    assert lazytsc(["trace", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"lazytsc: error: {path}")
    assert expected in err[0]


def test_standalone_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_cli.main([str(DATA / "tracecmd_report.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "trace-cmd"
    assert trace_cli.main([str(DATA / "missing.txt")]) == 2
    assert "lazytsc: error:" in capsys.readouterr().err
