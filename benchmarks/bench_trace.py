"""Trace import speed: lines per second on a generated ftrace of the TCP_RR exit mix.

The trace is written once to a temporary file (the same layout `trace-cmd`/ftrace
print, see lazytsc.traces.synth) and imported the way `lazytsc trace` does, so
the figure includes reading and decoding the file. Best of a few repeats, since a
shared machine's noise only ever slows a run down.
"""

from __future__ import annotations

import os
import tempfile
import time

from lazytsc.traces import import_trace
from lazytsc.traces.synth import write_trace

Row = tuple[str, float, str, str]


def _best_rate(path: str, lines: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = import_trace(path)
        elapsed = time.perf_counter() - start
        if result.summary()["lines"] != lines:
            raise AssertionError("the benchmark trace did not import completely")
        best = max(best, lines / elapsed)
    return best


def run(smoke: bool = False) -> list[Row]:
    """Rows (figure, value, unit, target) for `python -m benchmarks`."""
    lines = 20_000 if smoke else 1_000_000
    repeats = 1 if smoke else 3
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, label in (("ftrace", "ftrace"), ("perf-script", "perf script")):
            if smoke and fmt != "ftrace":
                continue
            path = os.path.join(tmp, f"{fmt}.txt")
            size = write_trace(path, lines, fmt)
            rate = _best_rate(path, lines, repeats)
            rows.append(
                (
                    f"trace import lines/s ({label}, {lines:,} lines, {size / lines:.0f} B/line)",
                    rate,
                    "lines/s",
                    ">= 500,000 lines/s",
                )
            )
    return rows


if __name__ == "__main__":
    for figure, value, unit, target in run():
        print(f"{figure}: {value:,.0f} {unit} (target {target})")
