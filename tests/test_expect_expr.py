"""`[[expect]] expr`: integer arithmetic over result paths, as the peer suites' C code computes.

The conformance cases check what the peers compute (a ratio of two measured intervals,
a masked register field), so an expectation may be an expression instead of one path.
"""

from __future__ import annotations

import pytest
from lazytsc.cli import run_modes
from lazytsc.expect import evaluate, run_results
from lazytsc.scenario import ScenarioError, parse_scenario

BASE = """
format = 1
mode = "classic"
duration = "1ms"
[defaults]
boot = "reset"
[[script]]
at = 0
op = "read"
reg = "lvr"
label = "lvr"
[[script]]
at = 0
op = "read"
reg = "tsc"
label = "t1"
[[script]]
at = 0
op = "spin"
for = "10us"
[[script]]
at = 0
op = "read"
reg = "tsc"
label = "t2"
"""


def outcomes(expects: str) -> list:
    scenario = parse_scenario(BASE + expects, "expr.toml")
    per_mode = {mode: run_results(e) for mode, e in run_modes(scenario, scenario.modes).items()}
    return evaluate(scenario, per_mode)


def test_a_256_bit_register_bitmap_compares_exactly() -> None:
    """An APIC IRR/ISR bitmap is 256 bits: `reads.x == <256-bit literal>` is exact (1 or 0)."""
    result = outcomes(f'[[expect]]\nexpr = "reads.lvr * {1 << 232:#x} == {0x50014 << 232:#x}"\nequals = 1\n')
    assert [o.ok for o in result] == [True], [(o.expected, o.got) for o in result]


def test_masked_register_field_and_floor_division() -> None:
    """kvm_apic_set_version(): LVR bits 15:0 are 0x0014; (t2 - t1) / 2 floors like C."""
    result = outcomes(
        """
[[expect]]
expr = "reads.lvr & 0xffff"
equals = 0x14
[[expect]]
expr = "(reads.t2 - reads.t1) / 3"
equals = 6666
"""
    )
    assert [o.ok for o in result] == [True, True], [(o.expected, o.got) for o in result]


def test_a_failing_expression_reports_its_value() -> None:
    (outcome,) = outcomes('[[expect]]\nexpr = "reads.lvr & 0xff"\nequals = 0x15\n')
    assert not outcome.ok
    assert outcome.got == "20"
    assert outcome.expectation.describe() == "reads.lvr & 0xff"


def test_division_by_zero_is_a_failure_not_a_crash() -> None:
    (outcome,) = outcomes('[[expect]]\nexpr = "reads.t2 / (reads.t1 - reads.t1)"\nmin = 0\n')
    assert not outcome.ok
    assert "divides by zero" in outcome.got


def test_unknown_path_is_a_failure_at_run_time() -> None:
    (outcome,) = outcomes('[[expect]]\nexpr = "reads.nope + 1"\nmin = 0\n')
    assert not outcome.ok
    assert "no value at 'reads.nope'" in outcome.got


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('expr = "bogus.x + 1"\nmin = 0', "unknown name 'bogus.x'"),
        ('expr = "reads.t1 +"\nmin = 0', "expression ends too early"),
        ('expr = "reads.t1"\nwhat = "reads.t2"\nmin = 0', "either `what` or `expr`"),
        ('expr = "' + "(" * 40 + "1" + ")" * 40 + '"\nmin = 0', "nested too deeply"),
        ('expr = "' + "-" * 990 + '1"\nmin = 0', "expr: a valid expression"),
        ('expr = "reads.t1 == \'x\'"\nmin = 0', "not strings"),
        ('expr = "reads.t1 + 0x1' + "0" * 70 + '"\nmin = 0', "number too large"),
    ],
)
def test_bad_expressions_name_the_line(body: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE + "[[expect]]\n" + body + "\n", "expr.toml")
    err = info.value
    assert err.line == BASE.count("\n") + 2
    assert message in str(err)
