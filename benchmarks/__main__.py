"""Run every benchmark and print one line per figure with its target beside it."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time

MODULES = ("bench_engine", "bench_session", "bench_trace", "bench_gui", "bench_sweep")


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (what the test suite runs)")
    parser.add_argument("only", nargs="*", help="benchmark modules to run (default: all)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    print(machine_line())
    failures = 0
    for name in args.only or MODULES:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ImportError as exc:
            print(f"{name}: not available ({exc})")
            failures += 1
            continue
        start = time.perf_counter()
        for figure, value, unit, target in module.run(smoke=args.smoke):
            shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
            print(f"{figure:<58} {shown:>14} {unit:<10} target {target}")
        print(f"  ({name} took {time.perf_counter() - start:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
