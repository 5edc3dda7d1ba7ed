"""Fuzz breakpoint conditions: parse-time errors or a boolean, never an exception, never a hang.

Token soup from the language's alphabet, random well-formed trees (checked against a
reference evaluator written here, recursively, the obvious way), deep nesting and long
chains. Evaluation is run on the raw evaluator (`lazytsc.expr._run`), not through the
`Condition.__call__` safety net, so an internal exception would be seen.
"""

from __future__ import annotations

from fuzz_strategies import condition_text, condition_tokens, condition_tree, env_values, render
from hypothesis import given
from hypothesis import strategies as st
from lazytsc.debugger import CONDITION_NAMES
from lazytsc.expr import MAX_LENGTH, Condition, ExprError, _run
from lazytsc.taxonomy import EXIT_NAMES, KIND_NAMES
from lazytsc_fuzzkit import fuzz_settings, record, watchdog

AREA = "conditions"


def parse(text: str) -> Condition | None:
    try:
        with watchdog(area=AREA):
            cond = Condition(text, CONDITION_NAMES)
    except ExprError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 2_000 + MAX_LENGTH
        assert exc.column >= 1
        record(AREA, "clean error")
        return None
    except Exception:
        record(AREA, "traceback")
        raise
    return cond


def evaluate(cond: Condition, env: dict) -> bool:
    try:
        with watchdog(area=AREA):
            result = _run(cond._code, env)
    except Exception:
        record(AREA, "traceback")
        raise
    assert result is True or result is False
    assert cond(env) is result
    return result


@fuzz_settings(AREA, small=200)
@given(condition_tokens(), env_values())
def test_token_soup(text, env):
    cond = parse(text)
    if cond is not None:
        evaluate(cond, env)
        record(AREA, "accepted")


@fuzz_settings(AREA, small=150)
@given(condition_text(), env_values())
def test_any_condition_text(text, env):
    cond = parse(text)
    if cond is not None:
        evaluate(cond, env)
        record(AREA, "accepted")


# ---- differential: our iterative evaluator against a plain recursive one ---------------------------
class _Miss(Exception):
    """The reference's `not a hit`: x / 0, or a value of the wrong type."""


def reference(tree, env):
    kind = tree[0]
    if kind == "name":
        return env[tree[1]]
    if kind in ("num", "str"):
        return tree[1]
    if kind == "not":
        return not _truth(reference(tree[1], env))
    if kind == "neg":
        return -_int(reference(tree[1], env))
    if kind == "and":
        return _truth(reference(tree[1], env)) and _truth(reference(tree[2], env))
    if kind == "or":
        return _truth(reference(tree[1], env)) or _truth(reference(tree[2], env))
    a, b = reference(tree[1], env), reference(tree[2], env)
    if kind == "==":
        return a == b
    if kind == "!=":
        return a != b
    a, b = _int(a), _int(b)
    if kind in ("//", "%") and b == 0:
        raise _Miss
    return {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else 0, "%": a % b if b else 0, "&": a & b, "|": a | b,
            "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[kind]  # fmt: skip


def _int(x):
    if not isinstance(x, int):
        raise _Miss
    return x


def _truth(x):
    return _int(x) != 0


_VALUES = {
    name: st.sampled_from(sorted(ftype.values)) if ftype.kind == "enum" else st.one_of(st.integers(-(2**63), 2**64 - 1), st.sampled_from([0, 1, 2, 5]))
    for name, ftype in CONDITION_NAMES.items()
}


def names_in(tree) -> set[str]:
    if tree[0] == "name":
        return {tree[1]}
    return set().union(*(names_in(t) for t in tree[1:] if isinstance(t, tuple)))


@fuzz_settings(AREA, small=100)
@given(condition_tree(), st.data())
def test_trees_agree_with_a_reference_evaluator(tree, data):
    cond = parse(render(tree))
    if cond is None:
        return
    env = {name: data.draw(_VALUES[name], label=name) for name in sorted(names_in(tree))}
    try:
        expected = _truth(reference(tree, env))
    except _Miss:
        expected = False
    assert evaluate(cond, env) is expected
    record(AREA, "accepted")


def test_enum_names_used_by_the_strategies_are_real():
    assert {"kick", "spurious"} <= set(KIND_NAMES.values()) and "halt" in EXIT_NAMES.values()
