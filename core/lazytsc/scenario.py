"""Scenario files: TOML (`format = 1`), strictly validated, saved atomically.

Every error names the file, the line and the field, and says what was expected:
`tcp_rr.toml:12: script[3].at: times in order (>= 250us of script[2])`.
Unknown keys are errors. Nothing in a scenario is ever executed: breakpoint
conditions go through lazytsc.expr, never `eval`.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tomledit, tomlscan
from .atomic import atomic_write_text
from .config import HOST_SPECS, VCPU_SPECS, HostConfig, RunConfig, Spec, VcpuConfig
from .expr import Condition, ExprError, Expression
from .quoting import escape_controls, quote_path
from .safeio import RefusedFile, read_scenario_bytes
from .script import (
    COMMON_FIELDS,
    LAPIC_FIELDS,
    OPS,
    READABLE_REGS,
    RESTORE_STEP_NAMES,
    SHORTHANDS,
    WRITABLE_REGS,
    ScriptOp,
)
from .taxonomy import EXIT_BY_NAME, KIND_BY_NAME
from .tomledit import TomlEditError  # noqa: F401 - re-exported for callers of with_*
from .units import parse_duration

FORMAT = 1
MODES = ("classic", "lazy", "both")
VARIANTS = ("v2", "v3")
MAX_VCPUS = 64
U64_MAX = (1 << 64) - 1
I64_MAX = (1 << 63) - 1  # event log values are int64
MAX_DURATION_NS = 3_600_000_000_000  # one hour of simulated time


class ScenarioError(ValueError):
    """One problem in a scenario: where it is and what was expected."""

    def __init__(self, file: str, line: int, field_name: str, expected: str) -> None:
        self.file = file
        self.line = line
        self.field = field_name
        self.expected = expected
        super().__init__(str(self))

    def __str__(self) -> str:
        # names and values come from the file: escape them so the message stays one line
        # and cannot drive the terminal (newlines, ANSI escapes in file names or keys)
        name = quote_path(self.file)
        where = f"{name}:{self.line}" if self.line else name
        expected = escape_controls(self.expected)
        return f"{where}: {escape_controls(self.field)}: {expected}" if self.field else f"{where}: {expected}"


@dataclass(frozen=True)
class BreakpointSpec:
    kind: str = ""
    exit: str = ""
    vcpu: int | None = None
    condition: str = ""
    enabled: bool = True
    name: str = ""


@dataclass(frozen=True)
class HandlerSpec:
    """A guest interrupt handler of a script program: what it does when `vector` arrives."""

    vector: int
    vcpu: int | None = None
    eoi: bool = True
    eoi_limit: int = -1  # EOI only for the first N deliveries (-1: always)
    line: int = 0


@dataclass(frozen=True)
class Bookmark:
    name: str
    at: int = 0
    event: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Expectation:
    what: str
    mode: str = ""
    of: str = ""
    equals: float | None = None
    min: float | None = None
    max: float | None = None
    tolerance: float = 0.0
    rel_tolerance: float = 0.0
    name: str = ""
    line: int = 0
    minus: str = ""
    sequence: tuple[int, ...] | None = None
    expr: Expression | None = None

    def describe(self) -> str:
        label = self.name or (self.expr.text if self.expr else self.what) + (f" / {self.of}" if self.of else "")
        return f"{self.mode}.{label}" if self.mode and not self.name else label


@dataclass
class Scenario:
    """A validated scenario: what to run and what to check."""

    name: str = "untitled"
    description: str = ""
    explain: str = ""
    mode: str = "both"
    max_events: int = 0  # events a run is known to log (0: none declared)
    run: RunConfig = field(default_factory=RunConfig)
    workload: tuple[str, dict[str, Any]] | None = None
    script: list[ScriptOp] = field(default_factory=list)
    breakpoints: list[BreakpointSpec] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)
    expects: list[Expectation] = field(default_factory=list)
    handlers: list[HandlerSpec] = field(default_factory=list)
    path: str = ""
    text: str = ""

    @property
    def modes(self) -> tuple[str, ...]:
        return ("classic", "lazy") if self.mode == "both" else (self.mode,)


# ---- locating keys in the TOML text --------------------------------------------------------
def locate_keys(text: str) -> dict[tuple, int]:
    """Map key paths like ("script", 3, "at") to 1-based line numbers.

    tomllib gives values but no positions; lazytsc.tomlscan follows the TOML lexical
    rules (multi-line strings and arrays, inline tables, array-of-tables indices).
    """
    return tomlscan.locate(text)


class _Checker:
    """Validates the parsed TOML tree, collecting errors with their lines."""

    def __init__(self, filename: str, positions: dict[tuple, int]) -> None:
        self.file = filename
        self.where = positions
        self.errors: list[ScenarioError] = []

    def line(self, path: tuple) -> int:
        """The line of `path`, else of its nearest written parent, else 1 (the root table)."""
        for end in range(len(path), 0, -1):
            found = self.where.get(path[:end])
            if found:
                return found
        return 1 if self.where else 0

    def error(self, path: tuple, expected: str, at: tuple | None = None) -> None:
        """Record an error about `path`, shown at the line of `at` when `path` is not written."""
        line = self.where.get(path) or (self.line(at) if at is not None else self.line(path))
        self.errors.append(ScenarioError(self.file, line, _dotted(path), expected))

    def unknown_keys(self, path: tuple, table: dict, allowed: set[str] | dict) -> None:
        for key in table:
            if key not in allowed:
                choices = ", ".join(sorted(allowed))
                self.error(path + (key,), f"unknown key (expected one of: {choices})")

    def value(self, path: tuple, raw: Any, spec: Spec) -> Any:
        """Check one value against its Spec; returns the converted value or None."""
        kind = spec.kind
        if kind == "duration":
            try:
                value = parse_duration(raw)
            except ValueError as exc:
                self.error(path, str(exc))
                return None
        elif kind == "int":
            if not isinstance(raw, int) or isinstance(raw, bool):
                self.error(path, f"an integer (got {_type_name(raw)})")
                return None
            value = raw
        elif kind == "float":
            if not isinstance(raw, int | float) or isinstance(raw, bool):
                self.error(path, f"a number (got {_type_name(raw)})")
                return None
            try:
                finite = math.isfinite(float(raw))
            except OverflowError:
                finite = False
            if not finite:
                self.error(path, f"a finite number of magnitude below 1.8e308 (got {_short_repr(raw)})")
                return None
            value = raw
        elif kind == "bool":
            if not isinstance(raw, bool):
                self.error(path, f"true or false (got {_type_name(raw)})")
                return None
            return raw
        elif kind == "choice":
            if not isinstance(raw, str) or raw not in spec.choices:
                self.error(path, f"one of {', '.join(repr(c) for c in spec.choices)} (got {raw!r})")
                return None
            return raw
        elif kind == "str":
            if not isinstance(raw, str):
                self.error(path, f"a string (got {_type_name(raw)})")
                return None
            return raw
        elif kind == "ints":
            if not isinstance(raw, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
                self.error(path, f"an array of integers (got {_type_name(raw)})")
                return None
            return tuple(raw)
        elif kind == "steps":
            if not isinstance(raw, list) or not all(isinstance(x, str) and x in spec.choices for x in raw) or len(set(raw)) != len(raw):
                self.error(path, f"a list of distinct steps from {', '.join(repr(c) for c in spec.choices)} (got {raw!r})")
                return None
            return tuple(raw)
        else:  # pragma: no cover - specs are ours
            raise AssertionError(kind)
        if spec.min is not None and value < spec.min:
            self.error(path, f"a value >= {spec.min} (got {raw!r})")
            return None
        if spec.max is not None and value > spec.max:
            self.error(path, f"a value <= {spec.max} (got {raw!r})")
            return None
        return value

    def table(self, path: tuple, raw: Any, specs: tuple[Spec, ...], extra: set[str] = frozenset()) -> dict:
        """Check a table against specs; returns {name: value} for the valid keys."""
        if not isinstance(raw, dict):
            self.error(path, f"a table (got {_type_name(raw)})")
            return {}
        by_name = {s.name: s for s in specs}
        self.unknown_keys(path, raw, set(by_name) | set(extra))
        out = {}
        for key, value in raw.items():
            if key in by_name:
                checked = self.value(path + (key,), value, by_name[key])
                if checked is not None:
                    out[key] = checked
        return out


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 30 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return "a date/time"
    return type(value).__name__


def _short_repr(value: Any, limit: int = 40) -> str:
    """repr() cut to `limit` characters: a 4,000-digit integer does not fill the message."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 4000 else f"an integer of {value.bit_length()} bits"
    return text if len(text) <= limit else text[: limit - 3] + "..."


TOP_SPECS: tuple[Spec, ...] = (
    Spec("format", "int", FORMAT, "File format version; must be 1.", 1, 1),
    Spec("name", "str", "untitled", "Short name shown in titles and reports."),
    Spec("description", "str", "", "One paragraph: what the scenario shows."),
    Spec("explain", "str", "", "Teaching text (Markdown) shown beside the timeline."),
    Spec("seed", "int", 1, "Seed of every random choice (same seed: byte-identical event log).", 0, U64_MAX),
    Spec("duration", "duration", 10_000_000, "Simulated time to run.", 1, MAX_DURATION_NS),
    Spec("mode", "choice", "both", "Which guest driver(s) `run`/`check` use by default.", choices=MODES),
    Spec("variant", "choice", "v2", "Protocol revision: `v2` (the seed) or `v3`.", choices=VARIANTS),
    Spec("vcpus", "int", 1, "Number of vCPUs.", 1, MAX_VCPUS),
    Spec(
        "max_events",
        "int",
        0,
        "Events one run of this scenario is known to log: the CLI's event limit (`--max-events`, default 10,000,000) "
        "is raised to it for this scenario unless `--max-events` is given (0: the default limit).",
        0,
        I64_MAX,
    ),
)
TABLE_KEYS = {"defaults", "vcpu", "host", "workload", "script", "breakpoint", "bookmark", "expect", "handler"}

HANDLER_SPECS: tuple[Spec, ...] = (
    Spec("vector", "int", 0, "Interrupt vector the handler serves (0-255).", 0, 255),
    Spec("vcpu", "int", -1, "Only on this vCPU (default: every vCPU).", 0, MAX_VCPUS - 1),
    Spec("eoi", "bool", True, "Write EOI before returning (false: the vector stays in service, PPR stays raised)."),
    Spec("eoi_limit", "int", -1, "EOI only for the first N deliveries (then withhold it).", 0, I64_MAX),
)

BREAKPOINT_SPECS: tuple[Spec, ...] = (
    Spec("name", "str", "", "Label shown in the breakpoints panel."),
    Spec("kind", "str", "", "Stop on events of this kind (see the event kinds list)."),
    Spec("exit", "str", "", "Stop on events that cause an exit with this reason."),
    Spec("vcpu", "int", -1, "Only events of this vCPU.", 0, MAX_VCPUS - 1),
    Spec("condition", "str", "", "Expression over named fields, e.g. `armed == 0 and pending > now`."),
    Spec("enabled", "bool", True, "Disabled breakpoints are kept but never stop."),
)
BOOKMARK_SPECS: tuple[Spec, ...] = (
    Spec("name", "str", "", "Label on the timeline."),
    Spec("at", "duration", 0, "Simulated time of the bookmark."),
    Spec("event", "int", -1, "Or: index of the event it marks.", 0, U64_MAX),
    Spec("note", "str", "", "Free text."),
)
EXPECT_SPECS: tuple[Spec, ...] = (
    Spec("name", "str", "", "How the expectation is printed when it fails."),
    Spec(
        "what",
        "str",
        "",
        "Path of the checked value: a key path in `lazytsc run --json` output (`exits.by_reason.halt`, "
        "`exits.msr_write.tsc-deadline`, `timer.spurious`, `hazards.stale_pending`), `kinds.KIND` (events of a kind), "
        "`reads.LABEL` (a script read), `final.vcpuN.FIELD` (state at the end), `workload.transactions`, or `reduction.PATH` "
        "(1 - lazy/classic, needs both modes).",
    ),
    Spec("mode", "choice", "", "Check only this mode's run (default: every mode the scenario runs).", choices=("classic", "lazy", "")),
    Spec("of", "str", "", "Divide by this path's value (e.g. `exits.total`): checks a share."),
    Spec("minus", "str", "", "Subtract this path's value first (e.g. `reads.t1`): checks a difference."),
    Spec("sequence", "ints", None, "Expected list of integers, compared element by element (e.g. `irq.vcpu0.order`)."),
    Spec(
        "expr",
        "str",
        "",
        "Instead of `what`: integer arithmetic over result paths, e.g. `(reads.t2 - reads.t1) * 1000 / (reads.t4 - reads.t3)` "
        "or `reads.lvr & 0xff`: + - * / % and the bitwise and/or operators; `/` floors like C's integer division. "
        "A path containing `-` can only be checked with `what`.",
    ),
    Spec("equals", "float", None, "Expected value."),
    Spec("min", "float", None, "Lowest accepted value."),
    Spec("max", "float", None, "Highest accepted value."),
    Spec("tolerance", "float", 0.0, "Absolute tolerance for `equals`.", 0),
    Spec("rel_tolerance", "float", 0.0, "Relative tolerance for `equals` (0.05 = 5%).", 0),
)


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """Parse and validate; raises the first ScenarioError (see `check_scenario` for all)."""
    scenario, errors = check_scenario(text, filename)
    if errors:
        raise errors[0]
    assert scenario is not None
    return scenario


# Arrays and inline tables nested deeper than this are refused before tomllib sees
# them (it recurses, and fails with RecursionError from about 400 levels).
MAX_TOML_DEPTH = 64


def check_scenario(text: str, filename: str = "<scenario>") -> tuple[Scenario | None, list[ScenarioError]]:
    """Validate a scenario text; returns (scenario or None, every error found)."""
    body = text[1:] if text.startswith("\ufeff") else text  # a byte-order mark some editors write
    info = tomlscan.scan(body, keep_statements=False)
    if info.max_depth > MAX_TOML_DEPTH:
        field_name = _dotted(info.deepest_path)
        expected = f"values nested at most {MAX_TOML_DEPTH} levels deep (arrays and inline tables)"
        return None, [ScenarioError(filename, info.deepest_line, field_name, expected)]
    if info.long_scalars:
        line, path = info.long_scalars[0]
        expected = f"a number of at most {tomlscan.LONG_SCALAR:,} characters (an int64 has 19 digits)"
        return None, [ScenarioError(filename, line, _dotted(path), expected)]
    try:
        data = tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        return None, [_toml_syntax_error(filename, str(exc), tomlscan.scan(body))]
    except RecursionError:  # pragma: no cover - the depth check above comes first
        return None, [ScenarioError(filename, info.deepest_line, "", "values nested less deeply")]
    return _check_data(data, filename, text, info.positions)


def _toml_syntax_error(filename: str, message: str, info: tomlscan.Scan) -> ScenarioError:
    """tomllib's message, with the line where the broken construct starts and its key."""
    at = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    line, path = info.where_broken(int(at.group(1)) if at else None)
    detail = f"{reason} at column {at.group(2)}" if at and line == int(at.group(1)) else reason
    if not at:
        detail += " at the end of the file"
    return ScenarioError(filename, line, _dotted(path) if path else "", f"valid TOML ({detail})")


def scenario_from_data(data: dict[str, Any], filename: str = "<scenario>", text: str | None = None) -> Scenario:
    """A Scenario from an already-parsed TOML tree (e.g. with `--set key=value` overrides applied).

    `text`, when given, is the TOML the tree came from: errors then carry line numbers
    and the Scenario keeps it. Raises the first ScenarioError.
    """
    scenario, errors = check_scenario_data(data, filename, text)
    if errors:
        raise errors[0]
    assert scenario is not None
    return scenario


def check_scenario_data(
    data: dict[str, Any], filename: str = "<scenario>", text: str | None = None
) -> tuple[Scenario | None, list[ScenarioError]]:
    """Validate a parsed TOML tree; returns (scenario or None, every error found)."""
    return _check_data(data, filename, text or "", tomlscan.locate(text) if text else {})


def _check_data(
    data: Any, filename: str, text: str, positions: dict[tuple, int]
) -> tuple[Scenario | None, list[ScenarioError]]:
    if not isinstance(data, dict):
        return None, [ScenarioError(filename, 0, "", f"a TOML table at the top level (got {_type_name(data)})")]
    c = _Checker(filename, positions)
    top_names = {s.name for s in TOP_SPECS}
    c.unknown_keys((), data, top_names | TABLE_KEYS)
    top = {}
    for spec in TOP_SPECS:
        if spec.name in data:
            checked = c.value((spec.name,), data[spec.name], spec)
            if checked is not None:
                top[spec.name] = checked
    if "format" not in data:
        c.errors.append(ScenarioError(filename, 1, "format", "`format = 1` (the file format version)"))
    nvcpus = top.get("vcpus", 1)
    defaults = c.table(("defaults",), data.get("defaults", {}), VCPU_SPECS)
    vcpu_cfgs = [VcpuConfig(**defaults) for _ in range(nvcpus)]
    raw_vcpus = data.get("vcpu", [])
    if not isinstance(raw_vcpus, list):
        c.error(("vcpu",), "an array of tables: [[vcpu]]")
        raw_vcpus = []
    if "vcpus" not in data and raw_vcpus:
        ids = [t.get("id") for t in raw_vcpus if isinstance(t, dict) and isinstance(t.get("id"), int)]
        nvcpus = max(ids, default=-1) + 1 if ids else len(raw_vcpus)
        nvcpus = min(max(nvcpus, 1), MAX_VCPUS)  # ids beyond the range are reported below
        vcpu_cfgs = [VcpuConfig(**defaults) for _ in range(max(1, nvcpus))]
    for i, raw in enumerate(raw_vcpus):
        path = ("vcpu", i)
        values = c.table(path, raw, VCPU_SPECS, extra={"id"})
        vid = raw.get("id", i) if isinstance(raw, dict) else i
        if not isinstance(vid, int) or isinstance(vid, bool) or not 0 <= vid < len(vcpu_cfgs):
            c.error(path + ("id",), f"a vCPU index from 0 to {len(vcpu_cfgs) - 1}")
            continue
        merged = {**vars(vcpu_cfgs[vid]), **values}
        vcpu_cfgs[vid] = VcpuConfig(**merged)
    host = HostConfig(**c.table(("host",), data.get("host", {}), HOST_SPECS))
    run = RunConfig(
        vcpus=vcpu_cfgs,
        host=host,
        variant=top.get("variant", "v2"),
        seed=top.get("seed", 1),
        duration_ns=top.get("duration", 10_000_000),
    )
    scenario = Scenario(
        name=top.get("name", Path(filename).stem if filename else "untitled"),
        description=top.get("description", ""),
        explain=top.get("explain", ""),
        mode=top.get("mode", "both"),
        max_events=top.get("max_events", 0),
        run=run,
        path=filename,
        text=text,
    )
    if "workload" in data:
        scenario.workload = _check_workload(c, data["workload"], len(vcpu_cfgs))
    scenario.script = _check_script(c, data.get("script", []), len(vcpu_cfgs))
    scenario.breakpoints = _check_breakpoints(c, data.get("breakpoint", []), len(vcpu_cfgs))
    scenario.bookmarks = _check_bookmarks(c, data.get("bookmark", []))
    scenario.expects = _check_expects(c, data.get("expect", []))
    scenario.handlers = _check_handlers(c, data.get("handler", []), len(vcpu_cfgs))
    return (None if c.errors else scenario), c.errors


def _array(c: _Checker, name: str, raw: Any) -> list:
    if not isinstance(raw, list):
        c.error((name,), f"an array of tables: [[{name}]]")
        return []
    return raw


def _check_workload(c: _Checker, raw: Any, nvcpus: int) -> tuple[str, dict[str, Any]] | None:
    from .workloads import WORKLOADS

    if not isinstance(raw, dict):
        c.error(("workload",), "a table [workload] with `kind`")
        return None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in WORKLOADS:
        c.error(("workload", "kind"), f"one of {', '.join(repr(k) for k in WORKLOADS)} (got {kind!r})")
        return None
    cls = WORKLOADS[kind]
    params = c.table(("workload",), raw, cls.PARAMS, extra={"kind"})
    for key in ("client_vcpu", "server_vcpu"):
        if key in [s.name for s in cls.PARAMS]:
            value = params.get(key, next(s.default for s in cls.PARAMS if s.name == key))
            if value >= nvcpus:
                c.error(("workload", key), f"a vCPU index below vcpus = {nvcpus} (got {value})")
    if kind == "tcp_rr" and nvcpus < 2:
        c.error(("vcpus",), "at least 2 vCPUs for workload tcp_rr", at=("workload", "kind"))
    return kind, params


_SCRIPT_KIND_SPECS = {
    "duration": lambda name: Spec(name, "duration", 0, "", 0, MAX_DURATION_NS),
    "int": lambda name: Spec(name, "int", 0, "", 0, I64_MAX),
    "bool": lambda name: Spec(name, "bool", False, ""),
    "str": lambda name: Spec(name, "str", "", ""),
    "reg": lambda name: Spec(name, "choice", "", "", choices=(*WRITABLE_REGS, "cr8")),
    "rreg": lambda name: Spec(name, "choice", "", "", choices=READABLE_REGS),
    "steps": lambda name: _steps_spec(name),
}
def _steps_spec(name: str) -> Spec:
    return Spec(name, "steps", (), "", choices=RESTORE_STEP_NAMES)


def _check_script(c: _Checker, raw: Any, nvcpus: int) -> list[ScriptOp]:
    """Every error of every entry (not only an entry's first), times quoted as written."""
    ops: list[ScriptOp] = []
    last_at = 0
    last_index = -1
    last_text: Any = 0
    for i, entry in enumerate(_array(c, "script", raw)):
        path = ("script", i)
        if not isinstance(entry, dict):
            c.error(path, "a table with `at` and `op`")
            continue
        op = entry.get("op")
        if not isinstance(op, str) or op not in OPS:
            got = "missing" if op is None else f"got {_short_repr(op)}" if isinstance(op, str) else f"got {_type_name(op)}"
            c.error(path + ("op",), f"one of {', '.join(OPS)} ({got})")
            continue
        op_fields, _doc, needed = OPS[op]
        c.unknown_keys(path, entry, set(COMMON_FIELDS) | set(op_fields))
        valid = True
        at = last_at
        if "at" not in entry:
            c.error(path, "an `at` time for the operation")
            valid = False
        else:
            try:
                at = parse_duration(entry["at"])
            except ValueError as exc:
                c.error(path + ("at",), str(exc))
                valid = False
            else:
                if at > MAX_DURATION_NS:
                    c.error(path + ("at",), f"a time of at most {MAX_DURATION_NS} ns (one hour)")
                    valid = False
                elif at < last_at:
                    c.error(path + ("at",), f"times in order: a time >= {last_text!r} (script[{last_index}].at), got {entry['at']!r}")
                    valid = False
                else:
                    last_at, last_index, last_text = at, i, entry["at"]
        vcpu = entry.get("vcpu", 0)
        if not isinstance(vcpu, int) or isinstance(vcpu, bool) or not 0 <= vcpu < nvcpus:
            c.error(path + ("vcpu",), f"a vCPU index from 0 to {nvcpus - 1} (got {vcpu!r})")
            valid = False
        args: dict[str, Any] = {}
        ok = valid
        for name, kind in op_fields.items():
            if name in entry:
                value = c.value(path + (name,), entry[name], _SCRIPT_KIND_SPECS[kind](name))
                if value is None:
                    ok = False
                else:
                    args[name] = value
        present = [n for n in needed if n in entry]
        if needed and isinstance(needed, list) and len(present) != len(needed):
            missing = [n for n in needed if n not in entry]
            c.error(path, f"op {op!r} needs {' and '.join(repr(m) for m in missing)}")
            ok = False
        elif needed and isinstance(needed, tuple) and len(present) != 1:
            c.error(path, f"op {op!r} needs exactly one of {', '.join(repr(n) for n in needed)}")
            ok = False
        if op == "ipi" and isinstance(args.get("dest"), int) and args["dest"] >= nvcpus:
            c.error(path + ("dest",), f"a vCPU index below vcpus = {nvcpus}")
            ok = False
        if op in ("vmm_set_lapic", "vmm_get_lapic") and args.get("field") not in LAPIC_FIELDS:
            c.error(path + ("field",), f"one of {', '.join(LAPIC_FIELDS)}")
            ok = False
        if op == "vmm_enable_cap" and args.get("cap") != "apic_bus_cycles_ns":
            c.error(path + ("cap",), "'apic_bus_cycles_ns'")
            ok = False
        if op == "ipi" and "shorthand" in args and args["shorthand"] not in SHORTHANDS:
            c.error(path + ("shorthand",), f"one of {', '.join(repr(k) for k in SHORTHANDS)}")
            ok = False
        for name in ("label", "note"):
            if name in entry and not isinstance(entry[name], str):
                c.error(path + (name,), "a string")
                ok = False
        if ok:
            ops.append(
                ScriptOp(at, vcpu, op, args, entry.get("label", ""), entry.get("note", ""), c.line(path))
            )
    return ops


def _check_breakpoints(c: _Checker, raw: Any, nvcpus: int) -> list[BreakpointSpec]:
    from .debugger import CONDITION_NAMES

    out = []
    for i, entry in enumerate(_array(c, "breakpoint", raw)):
        path = ("breakpoint", i)
        values = c.table(path, entry, BREAKPOINT_SPECS)
        if not isinstance(entry, dict):
            continue
        kind = values.get("kind", "")
        if kind and kind not in KIND_BY_NAME:
            c.error(path + ("kind",), f"an event kind (one of {', '.join(sorted(KIND_BY_NAME))})")
            continue
        exit_name = values.get("exit", "")
        if exit_name and exit_name not in EXIT_BY_NAME:
            c.error(path + ("exit",), f"an exit reason (one of {', '.join(EXIT_BY_NAME)})")
            continue
        vcpu = values.get("vcpu")
        if vcpu is not None and vcpu >= nvcpus:
            c.error(path + ("vcpu",), f"a vCPU index below vcpus = {nvcpus}")
            continue
        condition = values.get("condition", "")
        if condition:
            try:
                Condition(condition, CONDITION_NAMES)
            except ExprError as exc:
                c.error(path + ("condition",), f"a valid condition: {exc}")
                continue
        if not (kind or exit_name or condition or vcpu is not None):
            c.error(path, "at least one of kind, exit, vcpu, condition")
            continue
        out.append(BreakpointSpec(kind, exit_name, vcpu, condition, values.get("enabled", True), values.get("name", "")))
    return out


def _check_handlers(c: _Checker, raw: Any, nvcpus: int) -> list[HandlerSpec]:
    out = []
    for i, entry in enumerate(_array(c, "handler", raw)):
        path = ("handler", i)
        values = c.table(path, entry, HANDLER_SPECS)
        if not isinstance(entry, dict):
            continue
        if "vector" not in values:
            c.error(path, "a `vector` for the handler")
            continue
        vcpu = values.get("vcpu")
        if vcpu is not None and vcpu >= nvcpus:
            c.error(path + ("vcpu",), f"a vCPU index below vcpus = {nvcpus}")
            continue
        out.append(HandlerSpec(values["vector"], vcpu, values.get("eoi", True), values.get("eoi_limit", -1), c.line(path)))
    return out


def _check_bookmarks(c: _Checker, raw: Any) -> list[Bookmark]:
    out = []
    for i, entry in enumerate(_array(c, "bookmark", raw)):
        path = ("bookmark", i)
        values = c.table(path, entry, BOOKMARK_SPECS)
        if not isinstance(entry, dict):
            continue
        if "name" not in values:
            c.error(path, "a `name` for the bookmark")
            continue
        out.append(Bookmark(values["name"], values.get("at", 0), values.get("event"), values.get("note", "")))
    return out


_EXPECT_ROOTS = ("events", "sim_time_ns", "exits", "timer", "hazards", "kinds", "reads", "faults", "irq", "final", "workload", "reduction")


def _check_expects(c: _Checker, raw: Any) -> list[Expectation]:
    out = []
    for i, entry in enumerate(_array(c, "expect", raw)):
        path = ("expect", i)
        values = c.table(path, entry, EXPECT_SPECS)
        if not isinstance(entry, dict):
            continue
        what = values.get("what", "")
        expr = None
        if "expr" in values:
            if what:
                c.error(path + ("expr",), "either `what` or `expr`, not both")
                continue
            if values.get("sequence") is not None:
                c.error(path + ("expr",), "a number (`sequence` needs a `what` path)")
                continue
            try:
                expr = Expression(values["expr"], [r for r in _EXPECT_ROOTS if r != "reduction"])
            except ExprError as exc:
                c.error(path + ("expr",), f"a valid expression: {exc}")
                continue
        elif not what:
            c.error(path, "a `what` path naming the checked value")
            continue
        elif what.split(".")[0] not in _EXPECT_ROOTS:
            c.error(path + ("what",), f"a path starting with one of {', '.join(_EXPECT_ROOTS)} (got {what!r})")
            continue
        if not any(k in values for k in ("equals", "min", "max", "sequence")):
            c.error(path, "at least one of equals, min, max, sequence")
            continue
        out.append(
            Expectation(
                what=what,
                mode=values.get("mode", ""),
                of=values.get("of", ""),
                equals=values.get("equals"),
                min=values.get("min"),
                max=values.get("max"),
                tolerance=values.get("tolerance", 0.0),
                rel_tolerance=values.get("rel_tolerance", 0.0),
                name=values.get("name", ""),
                line=c.line(path),
                minus=values.get("minus", ""),
                sequence=values.get("sequence"),
                expr=expr,
            )
        )
    return out


# ---- files --------------------------------------------------------------------------------
def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read and validate a scenario file; ScenarioError names file, line and field."""
    p = Path(path)
    return parse_scenario(read_scenario_text(p), str(p))


def read_scenario_text(path: str | os.PathLike) -> str:
    """A scenario file's text: a regular file within the size limit, in UTF-8.

    Raises ScenarioError naming the file (and for bad UTF-8 the line, column and key).
    """
    name = os.fspath(path)
    try:
        raw = read_scenario_bytes(path)
    except RefusedFile as exc:
        raise ScenarioError(name, 0, "", exc.reason) from None
    except ValueError as exc:  # a NUL byte in the name
        raise ScenarioError(name, 0, "", f"a file name without NUL bytes ({exc})") from None
    except OSError as exc:
        raise ScenarioError(name, 0, "", f"a readable scenario file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(name, raw, exc) from None
    return text[1:] if text.startswith("\ufeff") else text  # TOML has no byte-order mark


def _utf8_error(name: str, raw: bytes, exc: UnicodeDecodeError) -> ScenarioError:
    line = raw[: exc.start].count(b"\n") + 1
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
    byte = raw[exc.start]
    binary = b"\x00" in raw[:4096]
    hint = "; this looks like a binary file" if binary else ""
    # the key on that line, when the text around it can be followed
    path = tomlscan.scan(raw.decode("utf-8", "replace")).where_broken(line)[1]
    return ScenarioError(name, line, _dotted(path) if path else "", f"UTF-8 text (byte 0x{byte:02x} at column {column}{hint})")


def resolve_scenario_path(name: str) -> Path:
    """A path, or the name of a built-in scenario (`tcp_rr`)."""
    p = Path(name)
    try:
        exists = os.path.lexists(p)
    except (OSError, ValueError):  # an odd name (NUL byte): the loader reports it
        exists = True
    if exists or p.suffix == ".toml" or os.sep in name:
        return p
    from .resources import builtin_scenarios

    found = builtin_scenarios()
    if name in found:
        return found[name]
    return p


def save_scenario_text(path: str | os.PathLike, text: str, validate: bool = True) -> Scenario | None:
    """Validate (unless asked not to), then save atomically. Raises ScenarioError, writes nothing."""
    scenario = parse_scenario(text, str(path)) if validate else None
    atomic_write_text(path, text)
    return scenario


BOOKMARK_KEYS = ("name", "at", "event", "note")
BREAKPOINT_KEYS = ("name", "kind", "exit", "vcpu", "condition", "enabled")


def with_bookmarks(text: str, bookmarks: Sequence[Bookmark]) -> str:
    """The scenario text with its `[[bookmark]]` tables replaced by `bookmarks`.

    Everything else stays byte for byte (lazytsc.tomledit); unchanged bookmarks keep
    their text and comments. Raises TomlEditError when `text` is not valid TOML.
    """
    entries = [{"name": b.name, "at": b.at, "event": b.event, "note": b.note} for b in bookmarks]
    return tomledit.replace_array(
        text, "bookmark", entries, BOOKMARK_KEYS, defaults={"at": 0, "note": ""}, normalize={"at": parse_duration}
    )


def with_breakpoints(text: str, breakpoints: Sequence[BreakpointSpec]) -> str:
    """The scenario text with its `[[breakpoint]]` tables replaced by `breakpoints`.

    Same guarantees as `with_bookmarks`: only changed breakpoints are rewritten.
    """
    entries = [
        {"name": b.name, "kind": b.kind, "exit": b.exit, "vcpu": b.vcpu, "condition": b.condition, "enabled": b.enabled}
        for b in breakpoints
    ]
    defaults = {"name": "", "kind": "", "exit": "", "condition": "", "enabled": True}
    return tomledit.replace_array(text, "breakpoint", entries, BREAKPOINT_KEYS, defaults=defaults)
