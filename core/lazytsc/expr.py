"""A small expression language for breakpoint conditions (no `eval`, ever).

    armed == 0 and pending > now
    kind == 'kick' and b == 1
    (lvtt & 0x10000) != 0 or vcpu == 1

Grammar (lowest precedence first): `or`, `and`, `not`, comparisons
(== != < <= > >=), `|`, `&`, `+ -`, `* / // %`, unary `-`, atoms (integers in
decimal/hex/binary with `_`, 'strings' or "strings", names, parentheses).
`true`/`false` are 1/0. Names are checked against a known set when parsing, so a
typo is an error at the breakpoint's line, not a silent False at run time.
Parsing compiles to nested closures; evaluation looks names up in a mapping.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Evaluator = Callable[[Mapping[str, Any]], Any]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op>==|!=|<=|>=|//|[<>()+\-*/%&|]))"
)
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.floordiv,
    "//": operator.floordiv,
    "%": operator.mod,
    "&": operator.and_,
    "|": operator.or_,
}
_KEYWORDS = {"and", "or", "not", "true", "false"}


class ExprError(ValueError):
    """A condition that does not parse; `column` is 1-based within the expression."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.column = column


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExprError(f"unexpected character {text[pos:].strip()[0]!r}", pos + 1)
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "kw"
        tokens.append((kind, value, start + 1))
        pos = match.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str, names: frozenset[str] | None) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.names = names
        self.used: set[str] = set()
        self.fn: Evaluator = lambda env: None

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: str) -> bool:
        tok = self.peek()
        if tok[0] == kind and tok[1] == value:
            self.i += 1
            return True
        return False

    def parse(self) -> Evaluator:
        node = self.or_expr()
        kind, value, col = self.peek()
        if kind != "end":
            raise ExprError(f"unexpected {value!r}", col)
        return node

    def or_expr(self) -> Evaluator:
        left = self.and_expr()
        while self.accept("kw", "or"):
            right = self.and_expr()
            left = (lambda a, b: lambda env: bool(a(env)) or bool(b(env)))(left, right)
        return left

    def and_expr(self) -> Evaluator:
        left = self.not_expr()
        while self.accept("kw", "and"):
            right = self.not_expr()
            left = (lambda a, b: lambda env: bool(a(env)) and bool(b(env)))(left, right)
        return left

    def not_expr(self) -> Evaluator:
        if self.accept("kw", "not"):
            inner = self.not_expr()
            return lambda env: not inner(env)
        return self.comparison()

    def comparison(self) -> Evaluator:
        left = self.binary(0)
        kind, value, _col = self.peek()
        if kind == "op" and value in _COMPARE:
            self.take()
            fn = _COMPARE[value]
            right = self.binary(0)
            return lambda env: fn(left(env), right(env))
        return left

    _LEVELS = (("|",), ("&",), ("+", "-"), ("*", "/", "//", "%"))

    def binary(self, level: int) -> Evaluator:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            kind, value, _col = self.peek()
            if kind == "op" and value in self._LEVELS[level]:
                self.take()
                right = self.binary(level + 1)
                left = (lambda fn, a, b: lambda env: fn(a(env), b(env)))(_ARITH[value], left, right)
            else:
                return left

    def unary(self) -> Evaluator:
        if self.accept("op", "-"):
            inner = self.unary()
            return lambda env: -inner(env)
        return self.atom()

    def atom(self) -> Evaluator:
        kind, value, col = self.take()
        if kind == "num":
            try:
                number = int(value, 0)
            except ValueError:
                raise ExprError(f"malformed number {value!r}", col) from None
            return lambda env: number
        if kind == "str":
            text = value[1:-1]
            return lambda env: text
        if kind == "kw" and value in ("true", "false"):
            flag = 1 if value == "true" else 0
            return lambda env: flag
        if kind == "name":
            if self.names is not None and value not in self.names:
                raise ExprError(f"unknown name {value!r} (known: {', '.join(sorted(self.names))})", col)
            self.used.add(value)
            return lambda env: env[value]
        if kind == "op" and value == "(":
            inner = self.or_expr()
            if not self.accept("op", ")"):
                raise ExprError("missing ')'", self.peek()[2])
            return inner
        if kind == "end":
            raise ExprError("expression ends too early", col)
        raise ExprError(f"unexpected {value!r}", col)


MAX_CHARS = 1000
MAX_DEPTH = 32  # nested parentheses: the parser recurses once per level


def _parse_bounded(text: str, names: frozenset[str] | None) -> _Parser:
    """Parse with the size bounds every expression in a file gets (no RecursionError escapes)."""
    if len(text) > MAX_CHARS:
        raise ExprError(f"at most {MAX_CHARS} characters (got {len(text)})", MAX_CHARS + 1)
    depth = 0
    for col, ch in enumerate(text, start=1):
        depth += (ch == "(") - (ch == ")")
        if depth > MAX_DEPTH:
            raise ExprError(f"at most {MAX_DEPTH} nested parentheses", col)
    parser = _Parser(text, names)
    try:
        parser.fn = parser.parse()
    except RecursionError:
        raise ExprError("nested too deeply", 1) from None
    return parser


class Condition:
    """A parsed condition: call it with a mapping of names to values."""

    __slots__ = ("text", "_fn", "names")

    def __init__(self, text: str, known_names: Iterable[str] | None = None) -> None:
        parser = _parse_bounded(text, frozenset(known_names) if known_names is not None else None)
        self._fn = parser.fn
        self.text = text
        self.names = frozenset(parser.used)

    def __call__(self, env: Mapping[str, Any]) -> bool:
        try:
            return bool(self._fn(env))
        except (TypeError, ZeroDivisionError):
            return False  # comparing a string to a number, or x / 0: not a hit

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


class Expression:
    """A parsed arithmetic expression: call it with a mapping of names to numbers.

    The same grammar as a Condition, but the call returns the value itself (integer
    arithmetic: `/` floors, as the C code the conformance cases translate does).
    Names are looked up in the mapping when called; a ZeroDivisionError propagates.
    """

    __slots__ = ("text", "_fn", "names")

    def __init__(self, text: str, known_roots: Iterable[str] | None = None) -> None:
        parser = _parse_bounded(text, None)
        self._fn = parser.fn
        self.text = text
        self.names = frozenset(parser.used)
        if known_roots is not None:
            roots = frozenset(known_roots)
            for name in sorted(self.names):
                if name.split(".")[0] not in roots:
                    col = text.find(name) + 1
                    raise ExprError(f"unknown name {name!r} (a path starting with one of: {', '.join(sorted(roots))})", col)

    def __call__(self, env: Mapping[str, Any]) -> Any:
        return self._fn(env)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
