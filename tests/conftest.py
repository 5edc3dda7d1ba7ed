"""Shared helpers for the engine, scenario, CLI and debugger tests.

Test modules import them as `lazytsc_testkit` (this module registers itself under that
name): `from conftest import ...` would break as soon as a subdirectory (tests/gui) has
its own conftest.py, because pytest then rebinds the bare module name `conftest`.

Scenarios are written inline as TOML (the same language users write) and built with
`lazytsc.scenario.parse_scenario`. Time: the default guest TSC runs at 2 GHz
(`tsc_khz = 2000000`), so a TSC value is `2 * ns`; `tsc(ns)` spells that out.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from lazytsc.engine import Engine
from lazytsc.engine_build import engine_kind
from lazytsc.eventlog import Event
from lazytsc.scenario import Scenario, parse_scenario
from lazytsc.taxonomy import KIND_BY_NAME

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "resources" / "scenarios"
BAD_SCENARIOS = Path(__file__).resolve().parent / "data" / "bad_scenarios"
LAZYTSC = REPO / ".venv" / "bin" / "lazytsc"

# Built-ins that run for minutes (tcp_rr_full: tcp_rr at the seed's scale, ~10^8 events):
# suites that run every built-in take the others; tests/test_parallel_modes.py covers it.
LONG_BUILTINS = frozenset({"tcp_rr_full"})
QUICK_BUILTINS = sorted(p for p in SCENARIOS.glob("*.toml") if p.stem not in LONG_BUILTINS)

TSC_KHZ = 2_000_000  # VcpuConfig default

# CI profile for every property test in this directory: reproducible, no wall-clock
# deadline (CI machines are slow and shared), a bounded number of examples.
settings.register_profile(
    "lazytsc",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("lazytsc")


def tsc(ns: int, khz: int = TSC_KHZ) -> int:
    """Guest TSC at `ns` (TSC offset 0): what Vcpu.tsc computes."""
    return ns * khz // 1_000_000


def scenario(body: str, name: str = "test.toml") -> Scenario:
    """A Scenario from TOML text; `format = 1` is prepended when the text lacks it."""
    if not re.search(r"(?m)^\s*format\s*=", body):
        body = "format = 1\n" + body
    return parse_scenario(body, name)


def run(body: str | Scenario, mode: str = "lazy", until_ns: int | None = None) -> Engine:
    """Run a scenario (TOML text or Scenario) in one mode to the end (or `until_ns`)."""
    sc = body if isinstance(body, Scenario) else scenario(body)
    engine = Engine(sc, mode)
    engine.run(until_ns=until_ns)
    return engine


def events(engine: Engine, kind: str | None = None, vcpu: int | None = None) -> list[Event]:
    """Events of the log, optionally of one kind (taxonomy name) and/or one vCPU."""
    code = KIND_BY_NAME[kind] if kind else None
    return [
        ev
        for ev in engine.log
        if (code is None or ev.kind == code) and (vcpu is None or ev.vcpu == vcpu)
    ]


def times(engine: Engine, kind: str, vcpu: int | None = None) -> list[int]:
    return [ev.time for ev in events(engine, kind, vcpu)]


def script(*ops: dict) -> str:
    """`[[script]]` tables from dicts (strings quoted, ints as hex when large)."""
    out = []
    for op in ops:
        out.append("\n[[script]]")
        for key, value in op.items():
            if isinstance(value, bool):
                out.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, str):
                out.append(f'{key} = "{value}"')
            else:
                out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`pure_engine` tests replace engine methods to instrument them: a compiled class's
    methods cannot be replaced, so they run on the pure-Python engine (`make test` runs it).

    The compiled-vs-pure tests run last: `make test` compiles the engine beside the suite,
    and they wait for that build."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_compiled_engine.py"))
    if engine_kind() != "compiled":
        return
    skip = pytest.mark.skip(reason="instruments engine internals: runs on the pure-Python engine (LAZYTSC_ENGINE=pure, as make test runs)")
    for item in items:
        if item.get_closest_marker("pure_engine"):
            item.add_marker(skip)


sys.modules["lazytsc_testkit"] = sys.modules[__name__]
