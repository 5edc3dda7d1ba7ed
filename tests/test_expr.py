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


# ---- the typed schema the debugger uses -----------------------------------------------------
from lazytsc.debugger import CONDITION_NAMES  # noqa: E402
from lazytsc.expr import INT, MAX_DEPTH, MAX_TOKENS, enum_type  # noqa: E402


def typed(text: str) -> Condition:
    return Condition(text, CONDITION_NAMES)


@pytest.mark.parametrize(
    "text",
    [
        "kind == 'kick' and armed == 0",
        "exit == 'halt' or exit == ''",
        "sub != 'tsc-deadline'",
        "mode == 'tsc-deadline'",
        "'kick' == kind",
        "kind == kind",
        "masked and armed",  # integers as truth values
        "not (armed > 0)",
        "(lvtt & 0x10000) != 0",
        "-a < b and a // 3 == b % 7",
    ],
)
def test_typed_conditions_accepted(text):
    typed(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'%2000000000d' % 1 == 0", "`%` needs integers, not the string '%2000000000d'"),
        ("kind * 1000000000 == 0", "`*` needs integers, not `kind`"),
        ("'%c' % -1 == 0", "`%` needs integers"),
        ("kind + 'x' == kind", "`+` needs integers"),
        ("kind < 'kick'", "`<` needs integers"),
        ("kind == 3", "`==` compares `kind`"),
        ("armed == 'kick'", "`==` compares `armed` (int) with the string 'kick'"),
        ("kind == exit", "`==` compares"),
        ("kind == 'kik'", "'kik' is not an event kind name (did you mean `kick`?)"),
        ("exit == 'hlt'", "'hlt' is not an exit reason name (did you mean `halt`?)"),
        ("not kind", "`not` needs a comparison or an integer, not `kind`"),
        ("kind", "a condition must be a comparison, not `kind`"),
        ("'kick'", "a condition must be a comparison"),
        ("(armed > 0) + 1 == 2", "`+` needs integers, not a comparison"),
        ("armd == 0", "unknown name 'armd' (did you mean `armed`?)"),
        ("1 < 2 < 3", "comparisons cannot be chained"),
        ("armed == not pending", "unexpected 'not'"),
        ("armed == 0x1_0000_0000_0000_0000", "number too large"),
    ],
)
def test_typed_conditions_rejected_at_parse_time(text, message):
    with pytest.raises(ExprError) as info:
        typed(text)
    assert message in str(info.value)


def test_unknown_name_far_from_everything_lists_the_names():
    with pytest.raises(ExprError) as info:
        typed("zzzzzz == 1")
    assert "known: a, armed" in str(info.value)


def test_typed_evaluation():
    c = typed("kind == 'kick' and exit == '' and armed > 3")
    assert c({"kind": "kick", "exit": "", "armed": 4}) is True
    assert c({"kind": "clear", "exit": "", "armed": 4}) is False


def test_custom_schema():
    schema = {"n": INT, "colour": enum_type(["red", "green"], "colour")}
    assert Condition("colour == 'red' and n > 1", schema)({"colour": "red", "n": 2})
    with pytest.raises(ExprError, match="did you mean `green`"):
        Condition("colour == 'gren'", schema)


# ---- size, depth and run-time safety (reproducers) ---------------------------------------------
def nested_parens(n: int) -> str:
    return "(" * n + "armed == 0" + ")" * n


@pytest.mark.parametrize(
    "text",
    [
        nested_parens(90),
        "not " * 1000 + "armed == 0",
        "- " * 1000 + "armed == 0",
        " or ".join(f"armed == {i}" for i in range(1000)),
        "armed == 0 and " * 600 + "armed == 0",
        "(" * 100_000,
        "a" * 100_000 + " == 1",
    ],
    ids=["90-parens", "1000-not", "1000-neg", "or-chain-1000", "and-chain-600", "100k-open", "100k-name"],
)
def test_huge_or_deep_conditions_are_clean_parse_errors(text):
    with pytest.raises(ExprError) as info:
        typed(text)
    assert "too" in str(info.value)


def test_the_largest_accepted_conditions_evaluate_without_recursion():
    """At the bounds, parsing and evaluation are loops: they work with almost no stack left."""
    import inspect
    import sys

    deep = nested_parens(MAX_DEPTH)
    unary = "not " * (MAX_DEPTH - 1) + "armed == 0"  # odd count: true when armed != 0
    terms = (MAX_TOKENS - 1) // 4 + 1
    chain = " or ".join(f"armed == {i}" for i in range(terms))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 40)
    try:
        assert Condition(deep, CONDITION_NAMES)({"armed": 0}) is True
        assert Condition(unary, CONDITION_NAMES)({"armed": 1}) is True
        assert Condition(chain, CONDITION_NAMES)({"armed": terms - 1}) is True
        assert Condition(chain, CONDITION_NAMES)({"armed": terms}) is False
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("a // b == 0", {"a": 1, "b": 0}),
        ("a > 0", {}),  # missing name
        ("a > 0", {"a": "text"}),  # wrong type at run time
        ("a + 1 > 0", {"a": None}),
        ("not a", {"a": [1, 2]}),
        ("a == 1 or b // 0 == 1", {"a": 0, "b": 1}),
    ],
)
def test_evaluation_never_raises(text, env):
    assert Condition(text, ["a", "b"])(env) is False


def test_big_products_are_exact_and_bounded():
    """Values grow only with the expression, which is bounded: 1 << 63 multiplied 8 times."""
    assert Condition("a * a * a * a * a * a * a * a == b", ["a", "b"])({"a": 1 << 63, "b": 1 << 504}) is True


def test_short_circuit_like_python():
    assert Condition("a == 1 or a // 0 == 1", ["a"])({"a": 1}) is True
    assert Condition("a == 0 and a // 0 == 1", ["a"])({"a": 1}) is False
