"""The compiled (mypyc) engine and the pure-Python one are the same engine.

Same scenario + seed => byte-identical event log (DESIGN.md section 7), whichever build
runs: a child process per build (LAZYTSC_ENGINE=pure / =compiled) runs every built-in
scenario in both modes and a checkpoint round trip (save_state, pickle, restore_state,
run on) and a debugger session's far jumps; the two builds must report the same digests.
The rest of the suite runs on whichever build this process has (`make test`: pure).

When no compiled build is current, the fixture builds one (packaging/compile_engine.py:
a no-op when up to date); it skips, saying why, only without a C compiler, Python's headers or mypyc.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lazytsc import engine_build
from lazytsc.resources import builtin_scenarios
from lazytsc_testkit import LONG_BUILTINS

ROOT = Path(__file__).resolve().parents[1]
COMPILE = ROOT / "packaging" / "compile_engine.py"

# Every built-in but the long runs (tcp_rr_full is tcp_rr's model, longer), at most 20 ms each.
CAP_NS = 20_000_000
NAMES = sorted(set(builtin_scenarios()) - LONG_BUILTINS)

RUNS = """
import json, pickle, sys
from lazytsc import engine_build
from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import load_scenario

def scenario(name, cap):
    sc = load_scenario(builtin_scenario(name))
    sc.run.duration_ns = min(sc.run.duration_ns, cap)
    return sc

out = {"kind": engine_build.engine_kind()}
for name in sys.argv[2:]:
    sc = scenario(name, int(sys.argv[1]))
    for mode in ("classic", "lazy"):
        e = Engine(sc, mode)
        e.run()
        out[f"{name}/{mode}"] = [len(e.log), e.log.digest()]

# a checkpoint of the engine's classes, through pickle, replays the uninterrupted run
sc = scenario("tcp_rr", 5_000_000)
ref = Engine(sc, "lazy")
ref.run()
e = Engine(sc, "lazy")
e.run(max_events=2_000)
state = e.save_state()
e.run(max_events=3_000)
e.restore_state(pickle.loads(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)))
restored_len = len(e.log)
e.run()
out["checkpoint"] = [restored_len == state.log_len, e.log.digest() == ref.log.digest(), ref.log.digest()]

# a session: far jumps both ways and a step back land where asked, the log stays the run's
s = Session(sc, "lazy")
s.run(breakpoints=[])
total, digest = s.total, s.log.digest()
s.goto(total // 3)
s.step_back()
back = s.position
s.goto(total - 2)
far = s.position
s.goto(total)
out["session"] = [total, back == total // 3 - 1, far == total - 2, s.log.digest() == digest, digest]
print(json.dumps(out))
"""


def run_build(kind: str, names: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", RUNS, str(CAP_NS), *names],
        env={**os.environ, engine_build.ENV: kind},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _toolchain_missing() -> str:
    """Why no compiled engine can be built here ("" when it can): compile_engine's check."""
    spec = importlib.util.spec_from_file_location("_compile_engine", COMPILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.missing_toolchain()


@pytest.fixture(scope="module")
def compiled_build() -> None:
    """A current compiled build: the one present, else built now; skip only if none can be."""
    usable, why = engine_build.compiled_build_state()
    if usable:
        return
    missing = _toolchain_missing()
    if missing:
        pytest.skip(f"compiled engine not testable: {missing}")
    proc = subprocess.run([sys.executable, str(COMPILE)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"compiling the engine failed ({why}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    usable, why = engine_build.compiled_build_state()
    assert usable, why


def test_compiled_and_pure_engines_log_byte_identical_events(compiled_build):
    pure = run_build("pure", NAMES)
    compiled = run_build("compiled", NAMES)
    assert pure.pop("kind") == "pure" and compiled.pop("kind") == "compiled"
    assert len(pure) == 2 * len(NAMES) + 2
    for key, value in pure.items():
        assert compiled[key] == value, key
    assert compiled["checkpoint"][:2] == [True, True]  # restored at its length, replayed the same
    assert compiled["session"][1:4] == [True, True, True]


def test_engine_choice_is_reported_and_can_be_forced_pure():
    code = "import lazytsc.engine_build as b; print(b.engine_kind()); print(b.describe())"
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, engine_build.ENV: "pure"}, capture_output=True, text=True)
    kind, line = proc.stdout.split("\n", 1)
    assert kind == "pure" and line.startswith("engine: pure Python")
    bad = subprocess.run([sys.executable, "-c", "import lazytsc"], env={**os.environ, engine_build.ENV: "fast"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "expected 'pure' or 'compiled'" in bad.stderr


def test_version_names_the_engine():
    out = subprocess.run([sys.executable, "-m", "lazytsc", "--version"], capture_output=True, text=True).stdout
    assert out.startswith("lazytsc ") and engine_build.describe() in out


def test_stale_build_is_detected_from_the_sources(compiled_build, monkeypatch):
    """An extension built from other sources would run old code: the stamp must match."""
    assert engine_build.compiled_build_state() == (True, "")
    monkeypatch.setattr(engine_build, "source_digest", lambda: "0" * 64)
    usable, why = engine_build.compiled_build_state()
    assert not usable and "out of date" in why


def _explore(kind: str, out: Path) -> dict:
    lazytsc = Path(sys.executable).with_name("lazytsc")
    proc = subprocess.run(
        [str(lazytsc), "explore", "--variant", "v2", "--setup", "hv", "--depth", "3", "--jobs", "1", "--json", "-o", str(out)],
        env={**os.environ, engine_build.ENV: kind},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    tasks = []
    for task in report["tasks"]:
        task = {k: v for k, v in task.items() if k not in ("seconds", "rate")}  # timings
        task["findings"] = [{k: v for k, v in f.items() if k != "file"} for f in task["findings"]]
        tasks.append(task)
    return {"summary": report["summary"], "tasks": tasks}


def test_explore_finds_the_same_with_both_builds(compiled_build, tmp_path):
    """The explorer fingerprints engine state by its fields; a compiled class has no
    __slots__ to read them from, and the search must not depend on the build."""
    pure = _explore("pure", tmp_path / "pure")
    compiled = _explore("compiled", tmp_path / "compiled")
    assert compiled == pure
    assert any(t["findings"] for t in pure["tasks"])
