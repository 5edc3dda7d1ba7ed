"""Fuzz the scenario loader: any text gives a Scenario or one-line ScenarioErrors with a line.

Never another exception, never a hang; an accepted scenario round-trips through the
structural editor byte for byte (a lost line would be a data loss) and runs a little
way in both modes without an exception.
"""

from __future__ import annotations

from fuzz_strategies import (
    BUILTIN_PATHS,
    BUILTIN_TEXTS,
    generated_scenario,
    mutated_builtin,
    toml_value,
)
from hypothesis import given
from hypothesis import strategies as st
from lazytsc.engine import Engine
from lazytsc.scenario import ScenarioError, check_scenario, with_bookmarks, with_breakpoints
from lazytsc_fuzzkit import fuzz_settings, record, watchdog

AREA = "scenarios"
ENGINE = "engine runs"
NAME = "fuzz.toml"


def lost_lines(before: str, after: str) -> list[str]:
    """Lines of `before` missing from `after` (in order)."""
    rest = iter(after.splitlines())
    return [line for line in before.splitlines() if not any(line == other for other in rest)]


def assert_clean(text: str, run: bool = False) -> None:
    try:
        with watchdog(area=AREA):
            scenario, errors = check_scenario(text, NAME)
    except Exception:
        record(AREA, "traceback")
        raise
    assert (scenario is None) == bool(errors)
    for err in errors:
        assert isinstance(err, ScenarioError)
        line = str(err)
        assert line.startswith(NAME + ":"), line
        assert "\n" not in line and "\x1b" not in line, line
        assert err.line >= 1, f"no line number: {line}"
    if scenario is None:
        record(AREA, "clean error")
        return
    body = text[1:] if text.startswith("\ufeff") else text
    with watchdog(area=AREA):
        rewritten = [with_bookmarks(body, scenario.bookmarks), with_breakpoints(body, scenario.breakpoints)]
    for out in rewritten:
        if out != body:
            if lost_lines(body, out):
                record(AREA, "data loss")
            raise AssertionError(f"rewriting unchanged bookmarks/breakpoints changed the text:\n{out!r}")
    if run:
        with watchdog(area=AREA):
            for mode in scenario.modes:
                engine = Engine(scenario, mode)
                try:
                    engine.run(until_ns=min(scenario.run.duration_ns, 2_000_000), max_events=20_000)
                except Exception:  # e.g. the RecursionError of a recursive event path
                    record(ENGINE, "traceback")
                    raise
                record(ENGINE, "accepted")
    record(AREA, "accepted")


@fuzz_settings(AREA, small=120)
@given(st.text(max_size=400))
def test_random_text(text):
    assert_clean(text)


@fuzz_settings(AREA, small=150)
@given(mutated_builtin())
def test_mutated_builtin_scenarios(text):
    assert_clean(text, run=True)


@fuzz_settings(AREA, small=60)
@given(generated_scenario())
def test_scenarios_generated_from_the_specs(text):
    assert_clean(text, run=True)


@fuzz_settings(AREA, small=80)
@given(st.sampled_from(["format = 1\nname = ", "format = 1\n[host]\nexit_cost_ns = ", "format = 1\n[[script]]\nat = 1\nop = "]), toml_value())
def test_any_value_anywhere(prefix, value):
    assert_clean(prefix + value + "\n")


def test_builtin_scenarios_are_valid():
    assert len(BUILTIN_TEXTS) >= 4
    for path, text in zip(BUILTIN_PATHS, BUILTIN_TEXTS, strict=True):
        scenario, errors = check_scenario(text, str(path))
        assert not errors, errors
        assert scenario is not None and scenario.name
