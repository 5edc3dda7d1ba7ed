"""Fuzz the scenario loader: any text gives a Scenario or ScenarioErrors, never another exception."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lazytsc.scenario import ScenarioError, check_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "resources" / "scenarios").glob("*.toml"))
TEXTS = [p.read_text(encoding="utf-8") for p in SCENARIOS]


def _assert_clean(text: str) -> None:
    scenario, errors = check_scenario(text, "fuzz.toml")
    assert (scenario is None) == bool(errors)
    for err in errors:
        assert isinstance(err, ScenarioError)
        line = str(err)
        assert line.startswith("fuzz.toml"), line
        assert "\n" not in line


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text_never_crashes(text):
    _assert_clean(text)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEXTS), st.data())
def test_mutated_builtin_scenarios_never_crash(text, data):
    lines = text.splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    replacement = data.draw(
        st.one_of(
            st.just(""),
            st.text(max_size=40),
            st.sampled_from(
                [
                    "at = -1",
                    'at = "5 parsecs"',
                    "vcpu = 99",
                    "op = 3",
                    "delta = true",
                    "value = 1.5",
                    "[[script]]",
                    "[host]",
                    "duration = 0",
                    'condition = "armed =="',
                    'kind = "nope"',
                    "reg = \"tmcct\"",
                    "seed = -4",
                ]
            ),
        )
    )
    lines[index] = replacement
    _assert_clean("\n".join(lines))


def test_builtin_scenarios_are_valid():
    assert len(TEXTS) >= 4
    for path, text in zip(SCENARIOS, TEXTS, strict=True):
        scenario, errors = check_scenario(text, str(path))
        assert not errors, errors
        assert scenario is not None and scenario.name
