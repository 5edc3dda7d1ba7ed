"""Every way a trace reaches the importer: standard input, gzip/xz/zstd, trace.dat, and
hostile files (corrupt archives, absurd timestamps, a gigantic line, FIFOs): a clean
result or one error line with exit status 2, never a traceback, a hang or a blow-up."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest
import zstandard
from lazytsc.cli import main as cli_main
from lazytsc.traces import TraceError, import_trace

TRACES = Path(__file__).parent / "data" / "traces"
REPORT = TRACES / "tracedat" / "kvm_vmx_lts_x86tsc_hip24_2024.report.txt.gz"
DAT = TRACES / "tracedat" / "kvm_vmx_lts_x86tsc_hip24_2024.dat"
KEYS = ("exits", "timer", "per_vcpu", "lines", "parsed", "skipped", "tracepoints", "unknown_events")


def report_text() -> bytes:
    return gzip.decompress(REPORT.read_bytes())


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("lazytsc: error: ")
    return err[0]


@pytest.mark.parametrize("codec", ["gzip", "xz", "zstd", "plain"])
def test_compressed_traces_read_like_the_plain_text(tmp_path: Path, codec: str) -> None:
    raw = report_text()
    blob = {"gzip": gzip.compress, "xz": lzma.compress,
            "zstd": zstandard.ZstdCompressor().compress, "plain": bytes}[codec](raw)
    path = tmp_path / "trace.bin"  # the name says nothing: the content decides
    path.write_bytes(blob)
    plain = tmp_path / "plain.txt"
    plain.write_bytes(raw)
    a, b = import_trace(path).summary(), import_trace(plain).summary()
    for key in KEYS:
        assert a[key] == b[key], key
    assert a["compressed"] == (None if codec == "plain" else codec)


def test_a_compressed_trace_dat_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "trace.dat.xz"
    path.write_bytes(lzma.compress(DAT.read_bytes()))
    assert import_trace(path).summary()["exits"] == import_trace(DAT).summary()["exits"]


@pytest.mark.parametrize("what", ["text", "gzip", "trace.dat"])
def test_standard_input_streams(what: str) -> None:
    """`trace-cmd report | lazytsc trace -` (and a gzip or trace.dat on stdin)."""
    data = {"text": report_text(), "gzip": REPORT.read_bytes(), "trace.dat": DAT.read_bytes()}[what]
    out = subprocess.run([sys.executable, "-m", "lazytsc", "trace", "-", "--json"], input=data,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    got = json.loads(out.stdout)
    want = import_trace(DAT if what == "trace.dat" else REPORT).summary()
    for key in KEYS:
        assert got[key] == want[key], key


def test_corrupt_gzip_data_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = bytearray(gzip.compress(report_text()))
    outcomes = set()
    for k in range(40):
        damaged = bytearray(blob)
        pos = 20 + (k * 7919) % (len(blob) - 40)
        damaged[pos : pos + 3] = bytes(b ^ 0x5A for b in damaged[pos : pos + 3])
        path = tmp_path / f"bad{k}.gz"
        path.write_bytes(bytes(damaged))
        status = cli_main(["trace", str(path), "--json"])
        captured = capsys.readouterr()
        outcomes.add(status)
        if status == 2:
            err = captured.err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"lazytsc: error: {path}"), err
            assert "gzip: expected valid compressed data" in err[0]
        else:
            assert status == 0
    assert 2 in outcomes


def test_truncated_gzip_keeps_what_was_read_with_a_warning(tmp_path: Path) -> None:
    blob = gzip.compress(report_text())
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    summary = import_trace(path).summary()
    assert any("ends early" in w for w in summary["warnings"])
    assert 0 < summary["lines"] < 7792


@pytest.mark.parametrize(
    "ts, why",
    [
        ("99999999999.000000", "below 2^63 ns"),  # 10^20 ns
        ("9223372036.854775808", "below 2^63 ns"),  # 2^63 ns exactly
        ("1" * 4400 + ".000001", "at most 19 digits"),
        ("1" * 30, "at most 19 digits"),
    ],
)
def test_absurd_timestamps_skip_the_line(tmp_path: Path, ts: str, why: str) -> None:
    path = tmp_path / "ts.txt"
    good = " qemu-system-x86-1 [000] 1.000000: kvm_entry             vcpu 0 rip 0x1\n"
    path.write_text(good + f" qemu-system-x86-1 [000] {ts}: kvm_exit             reason HLT rip 0x1 info 0 0\n")
    summary = import_trace(path).summary()
    assert summary["skipped"] == 1 and summary["parsed"] == 1
    assert why in summary["skipped_examples"][0]


def test_one_enormous_line_in_a_small_gzip_is_skipped_unread(tmp_path: Path) -> None:
    """A few-hundred-KB gzip holding a 256 MiB line: the line is counted as skipped and
    never held in memory (the real case was 2 GiB: MemoryError after 32 s)."""
    path = tmp_path / "bomb.gz"
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(z.compress(b" qemu-system-x86-1 [000] 1.000000: kvm_entry             vcpu 0 rip 0x1\n"))
        block = b"A" * (1 << 20)
        for _ in range(256):
            fh.write(z.compress(block))
        fh.write(z.compress(b"\n qemu-system-x86-1 [000] 1.000002: kvm_exit             reason HLT rip 0x1 info 0 0\n"))
        fh.write(z.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        summary = import_trace(path).summary()
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
    assert summary["lines"] == 3 and summary["skipped"] == 1 and summary["parsed"] == 2
    assert summary["exits"]["by_reason"]["halt"] == 1
    assert "longer" in summary["skipped_examples"][0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = one_error_line(capsys, ["trace", str(fifo)])
    assert "expected a regular file" in line
    with pytest.raises(TraceError):
        import_trace(tmp_path)  # a directory


@pytest.mark.parametrize("value", ["99999999999999999999", "0", "-5", "abc", "1" * 5000])
def test_bad_tsc_khz_is_one_error_line(capsys: pytest.CaptureFixture[str], value: str) -> None:
    line = one_error_line(capsys, ["trace", str(REPORT), "--what-if", "lazy", "--tsc-khz", value])
    assert "--tsc-khz: expected the guest TSC frequency in kHz" in line
    assert len(line) < 300


def test_file_names_are_quoted_in_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil\x1b[31mname\nx.txt"
    path.write_bytes(b"")
    line = one_error_line(capsys, ["trace", str(path)])
    assert "\x1b" not in line and "\\x1b" in line
