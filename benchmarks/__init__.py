"""Benchmarks with targets (issue 5). Run all: `make bench` (python -m benchmarks).

Each module exposes `run(smoke: bool = False) -> list[Row]` where a Row is
(figure, measured value, unit, target text). `smoke=True` runs tiny sizes so the
test suite can keep every benchmark from rotting; CI never fails on speed.
"""
