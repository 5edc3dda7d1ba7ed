"""Fuzz the trace importer with real trace lines, mutated.

Strategy: lines taken from the real corpus (tests/data/traces/real and the trace-cmd
reports of real trace.dat files) are cut, spliced, wrapped, quoted, padded with huge
numbers or stray bytes, and optionally gzip-compressed (whole or cut off); trace.dat
files re-packed from a real recording get bytes flipped and ranges cut. Every input
must import cleanly or fail with one TraceError (never another exception), quickly,
with its line accounting adding up.

Size: LAZYTSC_FUZZ_SIZE=small (default, CI: a few hundred inputs) or large (>= 3,000
inputs per strategy, on demand).
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lazytsc.traces import TraceError, import_trace
from lazytsc.traces.tracedat import TraceDat
from lazytsc.traces.tracedat.writer import parts_of, write_v7

SIZE = os.environ.get("LAZYTSC_FUZZ_SIZE", "small")
EXAMPLES = 3000 if SIZE == "large" else 150
DAT_EXAMPLES = 3000 if SIZE == "large" else 60
MAX_SECONDS = 10.0  # per input: anything slower is a hang for a 100-line file
DATA = Path(__file__).resolve().parents[1] / "data" / "traces"


def _real_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted((DATA / "real").glob("*.txt")):
        lines += path.read_text(encoding="utf-8").splitlines()
    for name in ("kvm_vmx_analysis_hip24_2024", "kvm_vmx_lts_x86tsc_hip24_2024"):
        text = gzip.decompress((DATA / "tracedat" / f"{name}.report.txt.gz").read_bytes()).decode()
        lines += text.splitlines()[:400:3]
    return lines


REAL = _real_lines()
PROFILE = settings(max_examples=EXAMPLES, deadline=None, derandomize=SIZE != "large", database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _mutate(draw, line: str) -> str:
    op = draw(st.sampled_from(["keep", "cut", "splice", "number", "bytes", "wrap", "quote",
                               "dup", "drop", "long"]))
    if op == "keep" or not line:
        return line
    i = draw(st.integers(0, len(line)))
    if op == "cut":
        return line[:i]
    if op == "splice":
        other = draw(st.sampled_from(REAL))
        return line[:i] + other[draw(st.integers(0, len(other))):]
    if op == "number":
        digits = draw(st.sampled_from(["9" * 20, "1" * 4400, "18446744073709551616", "-1", "0x" + "f" * 40,
                                       "9223372036.854775808", "00000000000000000000001.5"]))
        return line[:i] + digits + line[i:]
    if op == "bytes":
        junk = draw(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                                   blacklist_categories=("Cs",)), max_size=8))
        return line[:i] + junk + line[i:]
    if op == "wrap":
        return line[:i] + "\n" + line[i:]
    if op == "quote":
        return draw(st.sampled_from(["> ", "> > ", ">>", " >\t"])) + line
    if op == "dup":
        return line[:i] + line[i:] + line[i:]
    if op == "drop":
        tokens = line.split(" ")
        k = draw(st.integers(0, max(0, len(tokens) - 1)))
        return " ".join(tokens[:k] + tokens[k + 1:])
    return line[:i] + "x" * draw(st.sampled_from([1000, 70_000])) + line[i:]


@st.composite
def trace_texts(draw) -> bytes:
    n = draw(st.integers(1, 60))
    start = draw(st.integers(0, len(REAL) - 1))
    base = [REAL[(start + k) % len(REAL)] for k in range(n)]
    text = "\n".join(_mutate(draw, line) for line in base)
    if draw(st.booleans()):
        text += "\n"
    data = text.encode("utf-8", "surrogatepass")
    wrap = draw(st.sampled_from(["plain", "plain", "gzip", "cut-gzip", "crlf"]))
    if wrap == "gzip":
        data = gzip.compress(data)
    elif wrap == "cut-gzip":
        blob = gzip.compress(data)
        data = blob[: draw(st.integers(0, len(blob)))]
    elif wrap == "crlf":
        data = data.replace(b"\n", b"\r\n")
    return data


def _check(path: Path) -> None:
    start = time.perf_counter()
    try:
        summary = import_trace(path).summary()
    except TraceError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path)), message
        return
    finally:
        assert time.perf_counter() - start < MAX_SECONDS
    unknown = sum(summary["unknown_events"].values())
    assert summary["lines"] == summary["parsed"] + summary["skipped"] + summary["ignored"] + unknown
    exits = summary["exits"]
    assert exits["total"] == sum(exits["by_reason"].values())
    assert sum(v["total"] for v in summary["per_vcpu"].values()) == exits["total"]
    assert sum(v["count"] for v in summary["raw_reasons"].values()) >= 0
    for example in summary["skipped_examples"]:
        assert "\n" not in example


@PROFILE
@given(data=trace_texts())
def test_mutated_real_trace_text_never_crashes(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "trace.txt"
    path.write_bytes(data)
    _check(path)


_DAT: bytes | None = None


def _small_dat() -> bytes:
    """A real recording re-packed small: its kvm formats and its first pages."""
    global _DAT
    if _DAT is None:
        td = TraceDat.open(DATA / "tracedat" / "kvm_vmx_lts_x86tsc_hip24_2024.dat")
        parts = parts_of(td)
        parts.event_formats = [(s, t) for s, t in parts.event_formats if s == "kvm"]
        parts.cpus = {cpu: data[: 3 * parts.page_size] for cpu, data in parts.cpus.items()}
        _DAT = write_v7(parts, "zlib")
    return _DAT


@settings(max_examples=DAT_EXAMPLES, deadline=None, derandomize=SIZE != "large", database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10**9)))
def test_damaged_trace_dat_never_crashes(tmp_path_factory, flips, cut) -> None:
    blob = bytearray(_small_dat())
    for pos, mask in flips:
        blob[pos % len(blob)] ^= mask
    if cut is not None:
        blob = blob[: cut % (len(blob) + 1)]
    path = tmp_path_factory.mktemp("fuzzdat") / "trace.dat"
    path.write_bytes(bytes(blob))
    if blob:
        _check(path)
