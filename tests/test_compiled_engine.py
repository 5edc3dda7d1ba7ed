"""The compiled (mypyc) engine and the pure-Python one are the same engine.

Same scenario + seed => byte-identical event log (DESIGN.md section 7), whichever build
runs: the digests of the pure-Python modules (a subprocess with LAZYTSC_ENGINE=pure)
must equal those of this process's engine on every built-in scenario in both modes, and
checkpoints of compiled classes must clone, pickle and replay. Skipped (with the reason)
when no compiled build is present; `make test` builds one when a C compiler exists.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
from lazytsc import engine_build
from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario, builtin_scenarios
from lazytsc.scenario import load_scenario

COMPILED = engine_build.engine_kind() == "compiled"
needs_compiled = pytest.mark.skipif(not COMPILED, reason=f"compiled engine not running ({engine_build.describe()})")

# Every built-in but the long runs (tcp_rr_full is tcp_rr's model, longer), at most 20 ms each.
CAP_NS = 20_000_000
NAMES = sorted(n for n in builtin_scenarios() if n != "tcp_rr_full")

DIGESTS = """
import json, sys
from lazytsc import engine_build
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import load_scenario
out = {"kind": engine_build.engine_kind()}
for name in sys.argv[2:]:
    sc = load_scenario(builtin_scenario(name))
    sc.run.duration_ns = min(sc.run.duration_ns, int(sys.argv[1]))
    for mode in ("classic", "lazy"):
        e = Engine(sc, mode)
        e.run()
        out[f"{name}/{mode}"] = [len(e.log), e.log.digest()]
print(json.dumps(out))
"""


def digests(env: dict[str, str] | None, names: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", DIGESTS, str(CAP_NS), *names],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@needs_compiled
def test_compiled_and_pure_logs_are_byte_identical_on_every_builtin():
    pure = digests({engine_build.ENV: "pure"}, NAMES)
    compiled = digests({engine_build.ENV: "compiled"}, NAMES)
    assert pure.pop("kind") == "pure" and compiled.pop("kind") == "compiled"
    assert len(pure) == 2 * len(NAMES)
    for key, value in pure.items():
        assert compiled[key] == value, key


@needs_compiled
def test_compiled_checkpoints_clone_pickle_and_replay_identically():
    """save_state/restore_state on compiled classes: restoring a checkpoint (also one that
    went through pickle) and running on gives the log of the uninterrupted run."""
    sc = load_scenario(builtin_scenario("tcp_rr"))
    sc.run.duration_ns = 5_000_000
    ref = Engine(sc, "lazy")
    ref.run()
    e = Engine(sc, "lazy")
    e.run(max_events=2_000)
    state = e.save_state()
    e.run(max_events=3_000)
    e.restore_state(pickle.loads(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)))
    assert len(e.log) == state.log_len
    e.run()
    assert e.log.digest() == ref.log.digest()


@needs_compiled
def test_session_far_goto_and_step_back_on_the_compiled_engine():
    sc = load_scenario(builtin_scenario("tcp_rr"))
    sc.run.duration_ns = 5_000_000
    s = Session(sc, "lazy")
    s.run(breakpoints=[])
    total, digest = s.total, s.log.digest()
    s.goto(total // 3)
    s.step_back()
    s.goto(total - 2)
    assert s.position == total - 2
    s.goto(total)
    assert s.log.digest() == digest


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


def test_stale_build_is_detected_from_the_sources(monkeypatch):
    """An extension built from other sources would run old code: the stamp must match."""
    if not engine_build.built_extensions():
        pytest.skip("no compiled build to check")
    monkeypatch.setattr(engine_build, "source_digest", lambda: "0" * 64)
    usable, why = engine_build.compiled_build_state()
    assert not usable and "out of date" in why
