"""Every benchmark runs in a tiny size so it cannot rot (no speed assertions: CI never fails on speed).

Each runs in its own process, as `make bench` does: the GUI benchmark owns a
QApplication, which must not outlive into this test process's teardown.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["bench_engine", "bench_session", "bench_trace", "bench_gui", "bench_sweep"])
def test_benchmark_smoke(name):
    if not (ROOT / "benchmarks" / f"{name}.py").exists():
        pytest.skip(f"{name} not present")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", name],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = [line for line in proc.stdout.splitlines() if " target " in line]
    assert figures, proc.stdout


def test_engine_benchmark_reports_the_issue_figures():
    from benchmarks import bench_engine

    figures = {row[0] for row in bench_engine.run(smoke=True)}
    assert any("full logging" in f for f in figures)
    assert any("bare loop" in f for f in figures)
    assert any("bytes" in f or "memory" in f for f in figures)
    assert any("step back" in f for f in figures)
