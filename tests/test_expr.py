"""The breakpoint-condition language (lazytsc.expr): our own parser, never `eval`."""

from __future__ import annotations

import builtins

import pytest
from lazytsc.expr import Condition, ExprError

NAMES = {"armed", "pending", "now", "kind", "lvtt", "vcpu", "a", "b"}


def ev(text: str, **env) -> bool:
    return Condition(text, NAMES)(env)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("armed == 0 and pending > now", dict(armed=0, pending=5, now=4), True),
        ("armed == 0 and pending > now", dict(armed=0, pending=4, now=4), False),
        ("armed == 0 and pending > now", dict(armed=1, pending=5, now=4), False),
        # arithmetic binds tighter than comparison, * tighter than +
        ("1 + 2 * 3 == 7", {}, True),
        ("(1 + 2) * 3 == 9", {}, True),
        ("10 - 2 - 3 == 5", {}, True),  # left associative
        ("7 // 2 == 3 and 7 / 2 == 3 and 7 % 3 == 1", {}, True),  # integer division
        ("-2 * 3 == -6", {}, True),
        # & binds tighter than |, and both tighter than comparisons
        ("1 | 2 & 0 == 1", {}, True),
        ("lvtt & 0x10000 != 0", dict(lvtt=0x500EC), True),
        ("lvtt & 0x10000 != 0", dict(lvtt=0x400EC), False),
        # `and` binds tighter than `or`; `not` tighter than `and`
        ("1 == 1 or 1 == 0 and 1 == 0", {}, True),
        ("(1 == 1 or 1 == 0) and 1 == 0", {}, False),
        ("not armed == 0 and 1 == 1", dict(armed=3), True),
        ("not (armed == 3 and 1 == 1)", dict(armed=3), False),
        # literals
        ("a == 0x1F and b == 0b101 and now == 1_000", dict(a=31, b=5, now=1000), True),
        ("a == 0XFF_FF", dict(a=0xFFFF), True),
        ("kind == 'kick'", dict(kind="kick"), True),
        ('kind == "kick"', dict(kind="spurious"), False),
        ("kind != 'kick'", dict(kind="spurious"), True),
        ("true and not false", {}, True),
        ("vcpu == 1", dict(vcpu=1), True),
        # comparisons of a string with a number, or x / 0: not a hit, no exception
        ("kind > 3", dict(kind="kick"), False),
        ("a / 0 == 1", dict(a=1), False),
        ("a % 0 == 0", dict(a=1), False),
    ],
)
def test_evaluates(text, env, expected):
    assert ev(text, **env) is expected


@pytest.mark.parametrize(
    "text",
    [
        "armd == 0",  # unknown name
        "armed ==",  # ends too early
        "armed == and pending",
        "(armed == 0",  # missing ')'
        "armed == 0)",
        "armed = 0",  # assignment is not a comparison
        "1 < 2 < 3",  # no chained comparisons
        "armed == 0 &&  pending",
        "",
        "   ",
        "armed == 0 ; 1",
        "armed.real == 0",
        "lambda: 1",
    ],
)
def test_rejects_at_parse_time(text):
    with pytest.raises(ExprError):
        Condition(text, NAMES)


def test_error_reports_the_column():
    with pytest.raises(ExprError) as info:
        Condition("armed == 0 and pendng > now", NAMES)
    assert info.value.column == 16
    assert "pendng" in str(info.value)


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os')",
        "__import__('os').system('touch /tmp/lazytsc-pwned')",
        "open('/etc/passwd')",
        "eval('1')",
        "().__class__",
        "armed.__class__",
        "[x for x in ()]",
        "{}",
        "`id`",
    ],
)
def test_hostile_strings_are_parse_errors_and_nothing_runs(hostile, monkeypatch):
    def forbidden(*_a, **_k):
        raise AssertionError("the evaluator must never call eval/exec/__import__/open")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    with pytest.raises(ExprError):
        Condition(hostile, NAMES)
    if any(c in hostile for c in "()[]{}`"):
        with pytest.raises(ExprError):
            Condition(hostile)  # even with no name list: calls and brackets do not parse


def test_names_used_are_recorded():
    c = Condition("armed == 0 and (pending > now or kind == 'kick')", NAMES)
    assert c.names == frozenset({"armed", "pending", "now", "kind"})
    assert c.text.startswith("armed")


def test_no_name_check_without_a_name_list():
    c = Condition("anything == 2")
    assert c({"anything": 2}) is True


@pytest.mark.parametrize("text", ["(" * 40 + "1" + ")" * 40, "-" * 990 + "1", "1 + " * 300 + "1"])
def test_deep_or_long_conditions_are_parse_errors_not_crashes(text):
    """Files never crash the parser: nesting and length are bounded (ExprError, not RecursionError)."""
    with pytest.raises(ExprError):
        Condition(text)
