"""Every benchmark runs in a tiny size so it cannot rot (no speed assertions: CI never fails on speed)."""

import importlib
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.mark.parametrize("name", ["bench_engine", "bench_trace", "bench_gui"])
def test_benchmark_smoke(name):
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"benchmarks.{name}":
            pytest.skip(f"{name} not present")
        raise
    rows = module.run(smoke=True)
    assert rows, "a benchmark must report at least one figure"
    for figure, value, unit, target in rows:
        assert isinstance(figure, str) and figure
        assert isinstance(value, int | float) and value == value  # not NaN
        assert isinstance(unit, str) and isinstance(target, str)


def test_engine_benchmark_reports_the_issue_figures():
    from benchmarks import bench_engine

    figures = {row[0] for row in bench_engine.run(smoke=True)}
    assert any("full logging" in f for f in figures)
    assert any("bare loop" in f for f in figures)
    assert any("bytes" in f or "memory" in f for f in figures)
    assert any("step back" in f for f in figures)
