"""Hypothesis strategies for hostile input: scenario text (structure-aware), TOML values, conditions.

Structure-aware means the inputs are mostly *almost valid*: built-in scenarios with a
few lines or values mutated, and scenarios generated from the field specs with values
just inside, at and beyond every range. Random bytes alone rarely get past the TOML
parser; these reach the validator, the condition checker and the engine.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hypothesis import strategies as st
from lazytsc.config import HOST_SPECS, VCPU_SPECS
from lazytsc.debugger import CONDITION_NAMES
from lazytsc.scenario import BOOKMARK_SPECS, BREAKPOINT_SPECS, EXPECT_SPECS, TOP_SPECS
from lazytsc.script import OPS
from lazytsc.taxonomy import EXIT_NAMES, KIND_NAMES
from lazytsc.tomledit import toml_string
from lazytsc.workloads import WORKLOADS

REPO = Path(__file__).resolve().parents[2]
BUILTIN_PATHS = sorted((REPO / "resources" / "scenarios").glob("*.toml"))
BUILTIN_TEXTS = [p.read_text(encoding="utf-8") for p in BUILTIN_PATHS]

# ---- TOML values --------------------------------------------------------------------------------
EDGE_INTS = [0, 1, -1, 7, 63, 64, 1000, 2**31, 2**32, 2**52, 2**53 + 1, 2**60, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30]
ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2**70), 2**70), st.integers(0, 10_000))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 0.5, 1e308, 1.7976931348623157e308, 5e-324]))
NASTY_CHARS = "\x00\x01\x07\x08\t\n\r\x1b\x7f\u0085\u2028\u202e\ufeff\"'\\#=[]{}., "
strings = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=NASTY_CHARS + "abcXYZ019", max_size=20),
    st.sampled_from(["", "250us", "1.5ms", "2s", "10 parsecs", "-3us", "1.25ns", "9" * 30 + "s", "kick", "halt", "lazy", "v3", "%2000000000d", "armed == 0"]),
)
DURATION_TEXTS = ["0", "1", "250us", '"250us"', '"1.5ms"', '"2s"', '"3600s"', '"3601s"', '"1h"', '"0.5ns"', '"-1us"', '"9999999999999999999999s"', "3600000000000", "3600000000001", "-5", "1.5", "true", '""']


@cache
def toml_scalar() -> st.SearchStrategy[str]:
    """TOML text of one scalar value (possibly out of any range)."""
    return st.one_of(
        ints.map(str),
        ints.map(lambda i: hex(i) if i >= 0 else str(i)),
        floats.map(lambda f: "nan" if f != f else ("inf" if f == float("inf") else "-inf" if f == float("-inf") else repr(f))),
        strings.map(toml_string),
        st.booleans().map(lambda b: "true" if b else "false"),
        st.sampled_from(["1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27 07:32:00.999999-07:00", "'literal'", "'''multi\nline'''", '"""multi\nline"""']),
        st.sampled_from(DURATION_TEXTS),
    )


@cache
def toml_value(max_leaves: int = 6) -> st.SearchStrategy[str]:
    """TOML text of a value: scalars, arrays and inline tables, sometimes nested deeply."""
    nested = st.recursive(
        toml_scalar(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.lists(st.tuples(st.sampled_from(["a", "b", "at", "op", "kind"]), inner), max_size=3, unique_by=lambda kv: kv[0]).map(
                lambda kvs: "{" + ", ".join(f"{k} = {v}" for k, v in kvs) + "}"
            ),
        ),
        max_leaves=max_leaves,
    )
    deep = st.tuples(st.integers(1, 700), st.sampled_from(["[", "{a = "])).map(
        lambda d: ("[" * d[0] + "]" * d[0]) if d[1] == "[" else ("{a = " * d[0] + "1" + " }" * d[0])
    )
    return st.one_of(*[nested] * 9, deep)


# ---- scenarios generated from the specs -----------------------------------------------------------
@cache
def _spec_value(spec, valid: bool) -> st.SearchStrategy[str]:
    """A value for one Spec: `valid` ones within its range (bounds included), else anything."""
    options: list[st.SearchStrategy[str]] = []
    if spec.kind in ("int", "duration"):
        lo = spec.min if spec.min is not None else 0
        hi = spec.max if spec.max is not None else 2**63 - 1
        options.append(st.integers(int(lo), int(hi)).map(str))
        options.append(st.sampled_from([str(int(lo)), str(int(hi))]))
        if not valid:
            options.append(st.sampled_from([str(int(lo) - 1), str(int(hi) + 1)]))
            if spec.kind == "duration":
                options.append(st.sampled_from(DURATION_TEXTS))
    elif spec.kind == "float":
        options.append(st.floats(-1e6, 1e6, allow_nan=False).map(repr))
    elif spec.kind == "bool":
        options.append(st.sampled_from(["true", "false"]))
    elif spec.kind == "choice":
        options.append(st.sampled_from([toml_string(c) for c in spec.choices] or ['""']))
    else:
        options.append(strings.map(toml_string))
    return st.one_of(*options) if valid else st.one_of(*options, toml_value(3))


_JUNK_KEY = st.one_of(
    st.just([]), st.just([]), st.just([]), st.just([]), st.just([]),
    st.tuples(st.sampled_from(["bogus", "tsc_khz", "at", "op", "Format", "kind"]), toml_value(2)).map(lambda kv: [f"{kv[0]} = {kv[1]}"]),
)  # fmt: skip


@st.composite
def _table(draw, specs, valid: bool, max_keys: int = 4) -> list[str]:
    """`key = value` lines for a few of `specs` (unless `valid`, now and then a key that is not one)."""
    by_name = {s.name: s for s in specs}
    names = draw(st.lists(st.sampled_from(sorted(by_name)), max_size=max_keys, unique=True))
    return [f"{n} = {draw(_spec_value(by_name[n], valid))}" for n in names] + ([] if valid else draw(_JUNK_KEY))


_SCRIPT_FIELD_VALUES = {
    "duration": st.sampled_from(DURATION_TEXTS + ['"10us"', '"100us"', "100000"]),
    "int": st.one_of(st.sampled_from([str(i) for i in EDGE_INTS]), st.integers(0, 2**40).map(str)),
    "bool": st.sampled_from(["true", "false", "1"]),
    "str": strings.map(toml_string),
    "reg": st.sampled_from(['"lvtt"', '"tmict"', '"tdcr"', '"spiv"', '"tmcct"', "3"]),
    "rreg": st.sampled_from(['"lvtt"', '"tmcct"', '"armed"', '"pending"', '"pv_msr"', '"tsc_deadline"', '"nope"']),
    "steps": st.sampled_from(['["lapic", "tsc"]', '["tsc", "tsc_deadline", "pv_msr"]', "[]", '["nope"]', '"lapic"', '["lapic", "lapic"]']),
}
_ANY_FIELD_VALUE = st.one_of(*_SCRIPT_FIELD_VALUES.values())


@st.composite
def script_entry(draw, at_ns: int, valid: bool) -> list[str]:
    op = draw(st.sampled_from(sorted(OPS) if valid else [*sorted(OPS), "nope"]))
    at_forms = [str(at_ns), f'"{at_ns}ns"'] if valid else [str(at_ns), "-1", "[]"]
    lines = ["[[script]]", f"at = {draw(st.sampled_from(at_forms))}"]
    lines.append(f"op = {toml_string(op) if valid else draw(st.sampled_from([toml_string(op), '[]', '{}', '3']))}")
    fields = OPS[op][0] if op in OPS else {}
    for name in draw(st.lists(st.sampled_from(sorted(fields) or ["value"]), max_size=4, unique=True)):
        kind = fields.get(name, "int")
        lines.append(f"{name} = {draw(_SCRIPT_FIELD_VALUES.get(kind, _ANY_FIELD_VALUE))}")
    if draw(st.booleans()):
        lines.append(f"vcpu = {draw(st.sampled_from(['0'] if valid else ['0', '1', '3', '64', '-1', 'true']))}")
    return lines


@st.composite
def generated_scenario(draw) -> str:
    """A whole scenario built from the field specs (TOP, defaults, host, vcpu, workload, script, ...).

    Half of them use only in-range values (they mostly validate and then run); the other
    half mix in anything at all.
    """
    valid = draw(st.booleans())
    out = ["format = 1" if valid else draw(st.sampled_from(["format = 1", "format = 2", "", 'format = "1"']))]
    top = [s for s in TOP_SPECS if s.name not in ("format", "vcpus", "duration")]
    out += draw(_table(top, valid, max_keys=4))
    out.append(f"duration = {draw(st.sampled_from(['1000', '250000', chr(34) + '2ms' + chr(34), chr(34) + '20ms' + chr(34)]))}")
    nvcpus = draw(st.sampled_from([1, 1, 2, 4] if valid else [1, 2, 64, 65, 0]))
    out.append(f"vcpus = {nvcpus}")
    if draw(st.booleans()):
        out += ["", "[defaults]", *draw(_table(VCPU_SPECS, valid))]
    if draw(st.booleans()):
        out += ["", "[host]", *draw(_table(HOST_SPECS, valid))]
    for _ in range(draw(st.integers(0, 2))):
        vid = draw(st.sampled_from([str(i) for i in range(nvcpus)] if valid else ["0", "1", "63", "64", "-1"]))
        out += ["", "[[vcpu]]", f"id = {vid}", *draw(_table(VCPU_SPECS, valid, 2))]
    if draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(sorted(WORKLOADS)))
        params = [s for s in WORKLOADS[kind].PARAMS if not s.name.endswith("_vcpu")] if valid else WORKLOADS[kind].PARAMS
        if not (valid and kind == "tcp_rr" and nvcpus < 2):
            out += ["", "[workload]", f"kind = {toml_string(kind)}", *draw(_table(params, valid, 3))]
    at = 0
    for _ in range(draw(st.integers(0, 6))):
        at += draw(st.sampled_from([0, 1, 1000, 10_000, 100_000]))
        out += ["", *draw(script_entry(at, valid))]
    for _ in range(draw(st.integers(0, 2))):
        entry = draw(_table([s for s in BREAKPOINT_SPECS if s.name not in ("kind", "exit", "vcpu")] if valid else BREAKPOINT_SPECS, valid, 3))
        entry.append(f"condition = {toml_string(draw(condition_tree().map(render) if valid else condition_text()))}")
        out += ["", "[[breakpoint]]", *entry]
    for _ in range(draw(st.integers(0, 2))):
        out += ["", "[[bookmark]]", f"name = {draw(strings.map(toml_string))}", *draw(_table(BOOKMARK_SPECS[1:], valid, 3))]
    for _ in range(draw(st.integers(0, 2))):
        what = draw(st.sampled_from(["timer.spurious", "exits.total", "kinds.kick", "events"]))
        out += ["", "[[expect]]", f"what = {toml_string(what)}", "min = 0", *draw(_table([s for s in EXPECT_SPECS if s.name not in ("what", "min", "of")], valid, 3))]
    return "\n".join(out) + "\n"


# ---- mutations of valid scenarios -------------------------------------------------------------------
KEY_NAMES = ["op", "at", "kind", "bogus", "vcpu", "name", '"q"', "a.b", "script", "bookmark", '"\\u001b[2J"']
KEY_LINE_VALUES = ["[]", "{}", "[[]]", '"', "nan", "inf", str(2**64), "9" * 400, "0x" + "f" * 20, "true", '"\\u0000"', "1979-05-27"]


@st.composite
def mutated_builtin(draw) -> str:
    """A built-in scenario with 1-4 structure-aware edits (values, keys, headers, lines)."""
    lines = draw(st.sampled_from(BUILTIN_TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        how = draw(st.sampled_from(["value", "value", "value", "key", "header", "delete", "duplicate", "insert", "truncate", "swap", "text"]))
        if how == "value" and "=" in line:
            key = line.split("=", 1)[0]
            lines[i] = f"{key}= {draw(st.one_of(toml_value(), st.sampled_from(KEY_LINE_VALUES)))}"
        elif how == "key" and "=" in line:
            rest = line.split("=", 1)[1]
            new_key = draw(st.sampled_from(KEY_NAMES))
            lines[i] = f"{new_key} ={rest}"
        elif how == "header":
            lines[i] = draw(st.sampled_from(["[[script]]", "[[breakpoint]]", "[[bookmark]]", "[[expect]]", "[host]", "[defaults]", "[workload]", "[[vcpu]]", "[script]", "[[host]]", "[format]", "[a.b.c]", "[[", "]]"]))
        elif how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, line)
        elif how == "insert":
            lines.insert(i, draw(st.sampled_from(["[[script]]", 'at = "1us"', 'op = "hlt"', "vcpus = 64", 'condition = "armed =="', "# comment", '"""', "'''", "x = [", "}"])))
        elif how == "truncate":
            lines[i] = line[: draw(st.integers(0, len(line)))]
        elif how == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = draw(st.text(max_size=40))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


# ---- conditions ---------------------------------------------------------------------------------------
NAMES = sorted(CONDITION_NAMES)
NEAR_MISSES = ["armd", "pendng", "Kind", "nowns", "vcpus", "__class__", "eval", "x"]
STRING_LITERALS = [f"'{k}'" for k in list(KIND_NAMES.values())[:8]] + [f"'{e}'" for e in list(EXIT_NAMES.values())[:4]] + [
    "'%2000000000d'", "'%c'", "''", '"kick"', "'kik'", "'tsc-deadline'", "'one-shot'"
]
TOKENS = [
    *NAMES, *NEAR_MISSES, *STRING_LITERALS,
    "0", "1", "-1", "0x10000", "0b101", "1_000", "08", "0x_", str(2**64), str(2**64 - 1), "9" * 30,
    "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "//", "%", "&", "|",
    "and", "or", "not", "true", "false", "(", ")", "(", ")",
    "=", "**", "[", "]", "{", "}", ".", ",", ";", "lambda", "`", "@", "~", "^", "<<",
]  # fmt: skip


def condition_tokens() -> st.SearchStrategy[str]:
    """Token soup from the language's own alphabet (and some characters outside it)."""
    return st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25).map(" ".join)


@st.composite
def condition_tree(draw, depth: int = 0):
    """A well-formed expression as a tree: ("name", n) / ("num", v) / ("str", s) / (op, a[, b])."""
    if depth > 5 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(
            st.sampled_from(NAMES).map(lambda n: ("name", n)),
            st.sampled_from([0, 1, 2, 5, 0x10000, 2**63 - 1, -(2**63), 2**64 - 1]).map(lambda v: ("num", v)),
            st.sampled_from([s[1:-1] for s in STRING_LITERALS if s[0] == "'"]).map(lambda s: ("str", s)),
        ))  # fmt: skip
    op = draw(st.sampled_from(["+", "-", "*", "//", "%", "&", "|", "==", "!=", "<", "<=", ">", ">=", "and", "or", "not", "neg"]))
    if op in ("not", "neg"):
        return (op, draw(condition_tree(depth + 1)))
    return (op, draw(condition_tree(depth + 1)), draw(condition_tree(depth + 1)))


def render(tree) -> str:
    """Fully parenthesised text of a tree (so the parse is unambiguous)."""
    kind = tree[0]
    if kind == "name":
        return tree[1]
    if kind == "num":
        return str(tree[1]) if tree[1] >= 0 else f"(-{-tree[1]})"
    if kind == "str":
        return f"'{tree[1]}'"
    if kind == "not":
        return f"(not {render(tree[1])})"
    if kind == "neg":
        return f"(-{render(tree[1])})"
    return f"({render(tree[1])} {kind} {render(tree[2])})"


def condition_text() -> st.SearchStrategy[str]:
    deep = st.tuples(st.integers(1, 200), st.sampled_from(["(", "not ", "- "])).map(
        lambda d: d[1] * d[0] + "armed == 0" + (")" * d[0] if d[1] == "(" else "")
    )
    chain = st.integers(1, 1200).map(lambda n: " or ".join(f"armed == {i}" for i in range(n)))
    return st.one_of(condition_tokens(), condition_tree().map(render), condition_tree().map(render), deep, chain, st.text(max_size=30))


def env_values() -> st.SearchStrategy[dict]:
    """An environment for a condition: mostly typed like the debugger's, sometimes not."""
    value = st.one_of(
        st.integers(-(2**63), 2**64),
        st.sampled_from([0, 1, 2**63 - 1]),
        st.sampled_from(list(KIND_NAMES.values()) + list(EXIT_NAMES.values()) + ["", "one-shot", "tsc-deadline"]),
        st.none(),
        st.floats(allow_nan=True),
    )
    return st.dictionaries(st.sampled_from(NAMES), value, max_size=len(NAMES))
