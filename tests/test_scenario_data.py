"""`scenario_from_data`: a Scenario from an already-parsed TOML tree (sweep `--set` overrides)."""

from __future__ import annotations

import tomllib

import pytest
from lazytsc.scenario import ScenarioError, check_scenario_data, parse_scenario, scenario_from_data
from lazytsc_testkit import SCENARIOS


def test_same_scenario_as_parsing_the_text():
    text = (SCENARIOS / "tcp_rr.toml").read_text(encoding="utf-8")
    from_text = parse_scenario(text, "tcp_rr.toml")
    from_data = scenario_from_data(tomllib.loads(text), "tcp_rr.toml", text)
    assert from_data == from_text


def test_overridden_value_is_validated_and_used():
    data = tomllib.loads((SCENARIOS / "seed_overwrite.toml").read_text(encoding="utf-8"))
    data["duration"] = "1ms"
    assert scenario_from_data(data, "x.toml").run.duration_ns == 1_000_000
    data["duration"] = "5 parsecs"
    with pytest.raises(ScenarioError) as info:
        scenario_from_data(data, "x.toml")
    assert info.value.field == "duration"
    assert info.value.line == 0  # no text given: no positions


def test_errors_carry_lines_when_the_text_is_given():
    text = 'format = 1\nduration = "1ms"\nvcpus = 0\n'
    scenario, errors = check_scenario_data(tomllib.loads(text), "v.toml", text)
    assert scenario is None
    assert str(errors[0]) == "v.toml:3: vcpus: a value >= 1 (got 0)"


def test_a_tree_that_is_not_a_table_is_an_error():
    scenario, errors = check_scenario_data([1, 2], "odd.toml")  # type: ignore[arg-type]
    assert scenario is None and "a TOML table" in str(errors[0])
