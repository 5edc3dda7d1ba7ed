"""Breakpoint conditions: our own small typed language (no `eval`, ever).

    armed == 0 and pending > now
    kind == 'kick' and b == 1
    (lvtt & 0x10000) != 0 or vcpu == 1

Grammar (lowest precedence first): `or`, `and`, `not`, comparisons
(== != < <= > >=, not chained), `|`, `&`, `+ -`, `* / // %`, unary `-`, atoms
(integers in decimal/hex/binary with `_`, 'strings' or "strings", names, parentheses).
`true`/`false` are 1/0; `/` is integer division like `//`.

A condition comes from a scenario file someone else may have written, so it is
checked completely when it is parsed, against a typed schema of the names it may use
(`Condition(text, {"armed": INT, "kind": enum_type(KIND_NAMES)})`):

* names must exist ("did you mean `armed`?"); strings may only be compared (== !=)
  with a name of an enumerated type, and must be one of its values; arithmetic and
  ordering take integers only (no `'%2000000000d' % 1`, no `kind * 1000000000`);
* size and nesting are bounded (MAX_LENGTH characters, MAX_TOKENS tokens,
  MAX_DEPTH levels of parentheses and unary operators); integer literals fit 64 bits;
* parsing is iterative (shunting-yard) and compiles to a flat program that a loop
  runs on a value stack: no recursion, memory bounded by the program's length.

Evaluation never raises: a division by zero, a missing name or a value of the wrong
type at run time makes the condition false (not a hit).
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 2_000  # characters
MAX_TOKENS = 400
MAX_DEPTH = 32  # nested parentheses plus chained unary `not` / `-`
MAX_LITERAL = (1 << 64) - 1


@dataclass(frozen=True)
class FieldType:
    """The type of a name a condition may use: an integer, or one of a set of names."""

    kind: str  # "int", "enum" or "any" (untyped: checked at run time only)
    values: frozenset[str] = frozenset()
    label: str = ""  # what a value is called in messages: "event kind"

    def __repr__(self) -> str:
        return f"FieldType({self.kind}{', ' + self.label if self.label else ''})"


INT = FieldType("int")
ANY = FieldType("any")


def enum_type(values: Iterable[str], label: str = "value") -> FieldType:
    """A name holding one of `values` (compared to 'string' literals with == and !=)."""
    return FieldType("enum", frozenset(values), label)


Schema = Mapping[str, FieldType]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|//|[<>()+\-*/%&|]))"
)
# An expectation's `expr` names result paths: `reads.t1`, `irq.vcpu0.0xec.0.tsc`.
_TOKEN_DOTTED = re.compile(_TOKEN.pattern.replace("[A-Za-z_][A-Za-z0-9_]*", "[A-Za-z_][A-Za-z0-9_.]*"))
_KEYWORDS = {"and", "or", "not", "true", "false"}
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_ARITH = ("+", "-", "*", "/", "//", "%", "&", "|")
# binary precedence; unary `not` is 3 and unary `-` is 9
_PREC = {"or": 1, "and": 2, **{op: 4 for op in _COMPARE}, "|": 5, "&": 6, "+": 7, "-": 7, "*": 8, "/": 8, "//": 8, "%": 8}
_UNARY_PREC = {"not": 3, "neg": 9}


class ExprError(ValueError):
    """A condition that does not parse or type-check; `column` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean `armed`?)' for a near miss, '' when nothing is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _tokenize(text: str, token: re.Pattern[str] = _TOKEN) -> list[tuple[str, str, int]]:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"condition too long: {len(text):,} characters (at most {MAX_LENGTH:,})", MAX_LENGTH + 1)
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = token.match(text, pos)
        if not match or match.end() == pos:
            bad = text[pos:].lstrip()[0]
            column = len(text) - len(text[pos:].lstrip()) + 1
            raise ExprError(f"unexpected character {bad!r}", column)
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "kw"
        tokens.append((kind, value, start + 1))
        if len(tokens) > MAX_TOKENS:
            raise ExprError(f"condition too long: more than {MAX_TOKENS} tokens", start + 1)
        pos = match.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


# ---- the syntax tree (flat: nodes refer to children by index) ---------------------------
@dataclass
class _Node:
    op: str  # "num", "str", "name", "not", "neg", or a binary operator
    col: int
    value: Any = None
    kids: tuple[int, ...] = ()
    parens: bool = False
    type: str = ""  # after checking: "int", "bool", "str", "enum" or "any"
    enum: FieldType | None = None


class _Parser:
    """Shunting-yard: operands and operators on explicit stacks, no recursion."""

    def __init__(self, text: str, token: re.Pattern[str] = _TOKEN, max_literal: int = MAX_LITERAL) -> None:
        self.tokens = _tokenize(text, token)
        self.nodes: list[_Node] = []
        self.max_literal = max_literal

    def _reduce(self, operands: list[int], op: tuple[str, int]) -> None:
        name, col = op
        if name in _UNARY_PREC:
            if not operands:
                raise ExprError("expression ends too early", col)
            kid = operands.pop()
            self.nodes.append(_Node(name, col, kids=(kid,)))
        else:
            if len(operands) < 2:
                raise ExprError("expression ends too early", col)
            right = operands.pop()
            left = operands.pop()
            self.nodes.append(_Node(name, col, kids=(left, right)))
        operands.append(len(self.nodes) - 1)

    def parse(self) -> int:
        operands: list[int] = []
        ops: list[tuple[str, int]] = []  # operator or "(" with its column
        expect_operand = True
        depth = 0  # open parentheses + pending unary operators
        prev = ""  # previous token value, to place `not` correctly
        for kind, value, col in self.tokens:
            if expect_operand:
                if kind == "kw" and value == "not" or kind == "op" and value == "-":
                    if value == "not" and prev not in ("", "(", "and", "or", "not"):
                        raise ExprError("unexpected 'not' (put it before a comparison, or use parentheses)", col)
                    ops.append(("not" if value == "not" else "neg", col))
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise ExprError(f"nested too deeply (more than {MAX_DEPTH} levels of parentheses and not/-)", col)
                elif kind == "op" and value == "(":
                    ops.append(("(", col))
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise ExprError(f"nested too deeply (more than {MAX_DEPTH} levels of parentheses and not/-)", col)
                elif kind in ("num", "str", "name") or kind == "kw" and value in ("true", "false"):
                    operands.append(self._atom(kind, value, col))
                    expect_operand = False
                elif kind == "end":
                    raise ExprError("expression ends too early", col)
                else:
                    raise ExprError(f"unexpected {value!r}", col)
            else:
                if kind == "end":
                    break
                if kind == "op" and value == ")":
                    while ops and ops[-1][0] != "(":
                        self._pop_op(operands, ops)
                    if not ops:
                        raise ExprError("unexpected ')'", col)
                    ops.pop()
                    depth = self._depth(ops)
                    self.nodes[operands[-1]].parens = True
                    prev = ")"
                    continue
                binary = value if (kind == "op" and value in _PREC) or (kind == "kw" and value in ("and", "or")) else ""
                if not binary:
                    raise ExprError(f"unexpected {value!r}", col)
                prec = _PREC[binary]
                while ops and ops[-1][0] != "(":
                    top = ops[-1][0]
                    top_prec = _UNARY_PREC.get(top, _PREC.get(top, 0))
                    if top_prec > prec or (top_prec == prec and top not in _UNARY_PREC):
                        if top_prec == prec == _PREC["=="]:
                            raise ExprError("comparisons cannot be chained (use `and`)", col)
                        self._pop_op(operands, ops)
                    else:
                        break
                ops.append((binary, col))
                depth = self._depth(ops)
                expect_operand = True
            prev = value
        while ops:
            if ops[-1][0] == "(":
                raise ExprError("missing ')'", self.tokens[-1][2])
            self._pop_op(operands, ops)
        if len(operands) != 1:  # pragma: no cover - the loop above guarantees one
            raise ExprError("malformed expression", 1)
        return operands[0]

    @staticmethod
    def _depth(ops: list[tuple[str, int]]) -> int:
        return sum(1 for name, _ in ops if name == "(" or name in _UNARY_PREC)

    def _pop_op(self, operands: list[int], ops: list[tuple[str, int]]) -> None:
        self._reduce(operands, ops.pop())

    def _atom(self, kind: str, value: str, col: int) -> int:
        if kind == "num":
            try:
                number = int(value, 0)
            except ValueError:
                raise ExprError(f"malformed number {value!r}", col) from None
            if number > self.max_literal:
                raise ExprError(f"number too large (at most {self.max_literal:#x})", col)
            node = _Node("num", col, number)
        elif kind == "str":
            node = _Node("str", col, value[1:-1])
        elif kind == "kw":
            node = _Node("num", col, 1 if value == "true" else 0)
        else:
            node = _Node("name", col, value)
        self.nodes.append(node)
        return len(self.nodes) - 1


# ---- type checking ----------------------------------------------------------------------
def _check(nodes: list[_Node], schema: Schema | None) -> set[str]:
    """Give every node a type, bottom-up (children come before parents in `nodes`)."""
    used: set[str] = set()
    for node in nodes:
        op = node.op
        if op == "num":
            node.type = "int"
        elif op == "str":
            node.type = "str"
        elif op == "name":
            name = node.value
            if schema is None:
                node.type = "any"
            elif name not in schema:
                hint = suggest(name, schema)
                known = "" if hint else f" (known: {', '.join(sorted(schema))})"
                raise ExprError(f"unknown name {name!r}{hint}{known}", node.col)
            else:
                ftype = schema[name]
                node.type = "enum" if ftype.kind == "enum" else ftype.kind
                node.enum = ftype if ftype.kind == "enum" else None
            used.add(name)
        elif op == "neg":
            _need_int(nodes[node.kids[0]], "-", node.col)
            node.type = "int"
        elif op == "not":
            _need_truth(nodes[node.kids[0]], "not", node.col)
            node.type = "bool"
        elif op in ("and", "or"):
            for kid in node.kids:
                _need_truth(nodes[kid], op, node.col)
            node.type = "bool"
        elif op in _ARITH:
            for kid in node.kids:
                _need_int(nodes[kid], op, node.col)
            node.type = "int"
        elif op in ("<", "<=", ">", ">="):
            for kid in node.kids:
                _need_int(nodes[kid], op, node.col)
            node.type = "bool"
        elif op in ("==", "!="):
            _check_equality(nodes[node.kids[0]], nodes[node.kids[1]], op, node.col)
            node.type = "bool"
        else:  # pragma: no cover - the parser makes no other nodes
            raise ExprError(f"unknown operator {op!r}", node.col)
    return used


def _describe(node: _Node) -> str:
    if node.op == "str":
        return f"the string {node.value!r}"
    if node.op == "name":
        return f"`{node.value}` ({'one of the ' + node.enum.label + ' names' if node.enum else node.type})"
    return {"bool": "a comparison", "int": "an integer", "str": "a string"}.get(node.type, "a value")


def _need_int(node: _Node, op: str, col: int) -> None:
    if node.type not in ("int", "any"):
        raise ExprError(f"`{op}` needs integers, not {_describe(node)}", col)


def _need_truth(node: _Node, op: str, col: int) -> None:
    if node.type not in ("int", "bool", "any"):
        raise ExprError(f"`{op}` needs a comparison or an integer, not {_describe(node)}", col)


def _check_equality(left: _Node, right: _Node, op: str, col: int) -> None:
    kinds = {left.type, right.type}
    if "any" in kinds or left.type == right.type and left.type in ("int", "bool", "str"):
        return
    if left.type == "enum" and right.type == "enum":
        if left.enum != right.enum:
            raise ExprError(f"`{op}` compares {_describe(left)} with {_describe(right)}", col)
        return
    if kinds == {"enum", "str"}:
        name, literal = (left, right) if left.type == "enum" else (right, left)
        assert name.enum is not None
        if literal.value not in name.enum.values:
            hint = suggest(literal.value, name.enum.values)
            shown = "" if hint else f" (one of: {', '.join(repr(v) for v in sorted(name.enum.values) if v)})"
            label = name.enum.label
            article = "an" if label[:1] in "aeiou" else "a"
            raise ExprError(f"{literal.value!r} is not {article} {label} name{hint}{shown}", literal.col)
        return
    raise ExprError(f"`{op}` compares {_describe(left)} with {_describe(right)}", col)


# ---- compiling to a flat program and running it ------------------------------------------
# Opcodes. INT2 takes two integers (arithmetic without division, ordering), DIV2 two
# integers and a non-zero divisor, EQ2 any two values; LOAD_CMP fuses the common
# `name OP constant` into one step.
_CONST, _LOAD, _NEG, _NOT, _INT2, _DIV2, _EQ2, _AND_JUMP, _OR_JUMP, _BOOL, _LOAD_CMP = range(11)
_INTS = (int, bool)
_VALUES = (int, bool, str)
_FUNCS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv,
    "//": operator.floordiv, "%": operator.mod, "&": operator.and_, "|": operator.or_,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def _compile(nodes: list[_Node], root: int) -> list[tuple[int, Any, Any, Any]]:
    """Post-order walk with an explicit stack; `and`/`or` short-circuit with jumps."""
    code: list[tuple[int, Any, Any, Any]] = []
    stack: list[tuple[int, int, int]] = [(root, 0, -1)]  # (node, stage, jump to patch)
    while stack:
        index, stage, jump_at = stack.pop()
        node = nodes[index]
        op = node.op
        if op in ("num", "str"):
            code.append((_CONST, node.value, None, None))
        elif op == "name":
            code.append((_LOAD, node.value, None, None))
        elif op in ("and", "or"):
            if stage == 0:
                stack.append((index, 1, -1))
                stack.append((node.kids[0], 0, -1))
            elif stage == 1:
                code.append((_AND_JUMP if op == "and" else _OR_JUMP, -1, None, None))
                stack.append((index, 2, len(code) - 1))
                stack.append((node.kids[1], 0, -1))
            else:
                code.append((_BOOL, None, None, None))
                code[jump_at] = (code[jump_at][0], len(code), None, None)
        elif stage == 0:
            left, right = (nodes[k] for k in node.kids) if len(node.kids) == 2 else (None, None)
            if op in _COMPARE and left is not None and left.op == "name" and right is not None and right.op in ("num", "str"):
                code.append((_LOAD_CMP, left.value, _FUNCS[op], (right.value, op in ("==", "!="))))
                continue
            stack.append((index, 2, -1))
            for kid in reversed(node.kids):
                stack.append((kid, 0, -1))
        elif op == "neg":
            code.append((_NEG, None, None, None))
        elif op == "not":
            code.append((_NOT, None, None, None))
        elif op in ("==", "!="):
            code.append((_EQ2, _FUNCS[op], None, None))
        elif op in ("/", "//", "%"):
            code.append((_DIV2, _FUNCS[op], None, None))
        else:
            code.append((_INT2, _FUNCS[op], None, None))
    return code


def _run(code: list[tuple[int, Any, Any, Any]], env: Mapping[str, Any]) -> bool:
    """Run a compiled condition; a run-time problem makes it false."""
    stack: list[Any] = []
    push = stack.append
    pop = stack.pop
    get = env.get
    pc = 0
    end = len(code)
    while pc < end:
        opcode, arg, fn, extra = code[pc]
        pc += 1
        if opcode == _LOAD_CMP:
            value = get(arg)
            if extra[1]:
                if value.__class__ not in _VALUES:
                    return False
            elif value.__class__ not in _INTS:
                return False
            push(fn(value, extra[0]))
        elif opcode == _LOAD:
            value = get(arg)
            if value.__class__ not in _VALUES:
                return False
            push(value)
        elif opcode == _CONST:
            push(arg)
        elif opcode == _AND_JUMP or opcode == _OR_JUMP:
            value = stack[-1]
            if value.__class__ not in _INTS:
                return False
            if bool(value) is (opcode == _OR_JUMP):
                stack[-1] = bool(value)
                pc = arg
            else:
                pop()
        elif opcode == _BOOL:
            value = stack[-1]
            if value.__class__ not in _INTS:
                return False
            stack[-1] = bool(value)
        elif opcode == _EQ2:
            b = pop()
            stack[-1] = arg(stack[-1], b)
        elif opcode == _INT2:
            b = pop()
            a = stack[-1]
            if a.__class__ not in _INTS or b.__class__ not in _INTS:
                return False
            stack[-1] = arg(a, b)
        elif opcode == _DIV2:
            b = pop()
            a = stack[-1]
            if a.__class__ not in _INTS or b.__class__ not in _INTS or not b:
                return False
            stack[-1] = arg(a, b)
        elif opcode == _NEG:
            a = stack[-1]
            if a.__class__ not in _INTS:
                return False
            stack[-1] = -a
        else:  # _NOT
            a = stack[-1]
            if a.__class__ not in _INTS:
                return False
            stack[-1] = not a
    value = stack[-1]
    return value.__class__ in _INTS and bool(value)


class Condition:
    """A parsed, type-checked condition: call it with a mapping of names to values."""

    __slots__ = ("text", "names", "_code")

    def __init__(self, text: str, schema: Schema | Iterable[str] | None = None) -> None:
        if not isinstance(text, str):
            raise ExprError(f"a condition is text, not {type(text).__name__}", 1)
        if schema is not None and not isinstance(schema, Mapping):
            schema = {name: ANY for name in schema}
        parser = _Parser(text)
        root = parser.parse()
        nodes = parser.nodes
        used = _check(nodes, schema)
        top = nodes[root]
        if top.type in ("str", "enum"):
            raise ExprError(f"a condition must be a comparison, not {_describe(top)}", top.col)
        self.text = text
        self.names = frozenset(used)
        self._code = _compile(nodes, root)

    def __call__(self, env: Mapping[str, Any]) -> bool:
        """True when the condition holds; False for a miss or any run-time problem."""
        try:
            return _run(self._code, env)
        except Exception:  # noqa: BLE001 - a condition never stops the debugger
            return False

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


MAX_BITMAP = (1 << 256) - 1  # an expression may compare a 256-bit APIC register bitmap (IRR, ISR)


class Expression:
    """An integer expression over result paths: an expectation's `expr`.

    The same grammar, bounds and iterative parser as a Condition, with dotted names
    (`reads.t2 - reads.t1`, `irq.vcpu0.0xec.0.tsc`) whose first part must be one of
    `known_roots`, integer literals up to 256 bits, and no strings. Calling it returns the
    value (`/` floors like the C code the conformance cases translate); a missing name
    raises whatever the mapping raises, a division by zero ZeroDivisionError.
    """

    __slots__ = ("text", "names", "_nodes", "_root")

    def __init__(self, text: str, known_roots: Iterable[str] | None = None) -> None:
        if not isinstance(text, str):
            raise ExprError(f"an expression is text, not {type(text).__name__}", 1)
        parser = _Parser(text, _TOKEN_DOTTED, MAX_BITMAP)
        root = parser.parse()
        nodes = parser.nodes
        for node in nodes:
            if node.op == "str":
                raise ExprError("an expression computes with numbers, not strings", node.col)
        used = _check(nodes, None)
        if known_roots is not None:
            roots = frozenset(known_roots)
            for node in nodes:
                if node.op == "name" and node.value.split(".")[0] not in roots:
                    raise ExprError(f"unknown name {node.value!r} (a path starting with one of: {', '.join(sorted(roots))})", node.col)
        self.text = text
        self.names = frozenset(used)
        self._nodes = nodes
        self._root = root

    def __call__(self, env: Mapping[str, Any]) -> Any:
        """Evaluate bottom-up (children precede parents in the node list): no recursion."""
        values: list[Any] = [0] * len(self._nodes)
        for i, node in enumerate(self._nodes):
            op = node.op
            if op == "num":
                value = node.value
            elif op == "name":
                value = env[node.value]
            elif op == "neg":
                value = -values[node.kids[0]]
            elif op == "not":
                value = int(not values[node.kids[0]])
            elif op == "and":
                value = int(bool(values[node.kids[0]]) and bool(values[node.kids[1]]))
            elif op == "or":
                value = int(bool(values[node.kids[0]]) or bool(values[node.kids[1]]))
            else:
                value = _FUNCS[op](values[node.kids[0]], values[node.kids[1]])
            values[i] = value
        result = values[self._root]
        return int(result) if isinstance(result, bool) else result

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
