"""Scenario files: TOML (`format = 1`), strictly validated, saved atomically.

Every error names the file, the line and the field, and says what was expected:
`tcp_rr.toml:12: script[3].at: times in order (>= 250us of script[2])`.
Unknown keys are errors. Nothing in a scenario is ever executed: breakpoint
conditions go through lazytsc.expr, never `eval`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .config import HOST_SPECS, VCPU_SPECS, HostConfig, RunConfig, Spec, VcpuConfig
from .expr import Condition, ExprError
from .script import (
    COMMON_FIELDS,
    OPS,
    READABLE_REGS,
    RESTORE_STEP_NAMES,
    SHORTHANDS,
    WRITABLE_REGS,
    ScriptOp,
)
from .taxonomy import EXIT_BY_NAME, KIND_BY_NAME
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
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.expected}" if self.field else f"{where}: {self.expected}"


@dataclass(frozen=True)
class BreakpointSpec:
    kind: str = ""
    exit: str = ""
    vcpu: int | None = None
    condition: str = ""
    enabled: bool = True
    name: str = ""


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

    def describe(self) -> str:
        label = self.name or self.what + (f" / {self.of}" if self.of else "")
        return f"{self.mode}.{label}" if self.mode and not self.name else label


@dataclass
class Scenario:
    """A validated scenario: what to run and what to check."""

    name: str = "untitled"
    description: str = ""
    explain: str = ""
    mode: str = "both"
    run: RunConfig = field(default_factory=RunConfig)
    workload: tuple[str, dict[str, Any]] | None = None
    script: list[ScriptOp] = field(default_factory=list)
    breakpoints: list[BreakpointSpec] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)
    expects: list[Expectation] = field(default_factory=list)
    path: str = ""
    text: str = ""

    @property
    def modes(self) -> tuple[str, ...]:
        return ("classic", "lazy") if self.mode == "both" else (self.mode,)


# ---- locating keys in the TOML text --------------------------------------------------------
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")
_INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+)\s*=")


def locate_keys(text: str) -> dict[tuple, int]:
    """Map key paths like ("script", 3, "at") to 1-based line numbers (best effort).

    tomllib gives values but no positions; a line scan that follows table headers,
    array-of-table indices and `key =` lines is enough for error messages.
    """
    where: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    table: tuple = ()
    in_multiline: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(line)
        if header and not _KEYLINE.match(line):
            names = tuple(part.strip().strip("\"'") for part in header.group(2).split("."))
            if header.group(1) == "[[":
                index = counts.get(names, 0)
                counts[names] = index + 1
                table = names + (index,)
            else:
                table = names
            where.setdefault(table, lineno)
            continue
        key = _KEYLINE.match(line)
        if key:
            path = table + tuple(p.strip().strip("\"'") for p in key.group(1).split("."))
            where.setdefault(path, lineno)
            rest = line[key.end():]
            if rest.strip().startswith("{"):
                for inner in _INLINE_KEY.finditer(rest):
                    where.setdefault(path + (inner.group(1),), lineno)
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return where


class _Checker:
    """Validates the parsed TOML tree, collecting errors with their lines."""

    def __init__(self, filename: str, text: str) -> None:
        self.file = filename
        self.where = locate_keys(text)
        self.errors: list[ScenarioError] = []

    def line(self, path: tuple) -> int:
        for end in range(len(path), 0, -1):
            found = self.where.get(path[:end])
            if found:
                return found
        return 0

    def error(self, path: tuple, expected: str) -> None:
        self.errors.append(ScenarioError(self.file, self.line(path), _dotted(path), expected))

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
            value = raw
        elif kind == "bool":
            if not isinstance(raw, bool):
                self.error(path, f"true or false (got {_type_name(raw)})")
                return None
            return raw
        elif kind == "choice":
            if raw not in spec.choices:
                self.error(path, f"one of {', '.join(repr(c) for c in spec.choices)} (got {raw!r})")
                return None
            return raw
        elif kind == "str":
            if not isinstance(raw, str):
                self.error(path, f"a string (got {_type_name(raw)})")
                return None
            return raw
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
    return type(value).__name__


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
)
TABLE_KEYS = {"defaults", "vcpu", "host", "workload", "script", "breakpoint", "bookmark", "expect"}

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


def check_scenario(text: str, filename: str = "<scenario>") -> tuple[Scenario | None, list[ScenarioError]]:
    """Validate a scenario text; returns (scenario or None, every error found)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        return None, [ScenarioError(filename, int(match.group(1)) if match else 0, "", f"valid TOML ({msg})")]
    return check_scenario_data(data, filename, text)


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
    text = text or ""
    if not isinstance(data, dict):
        return None, [ScenarioError(filename, 0, "", f"a TOML table at the top level (got {_type_name(data)})")]
    c = _Checker(filename, text)
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
    if kind not in WORKLOADS:
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
        c.error(("vcpus",), "at least 2 vCPUs for workload tcp_rr")
    return kind, params


_SCRIPT_KIND_SPECS = {
    "duration": lambda name: Spec(name, "duration", 0, "", 0, MAX_DURATION_NS),
    "int": lambda name: Spec(name, "int", 0, "", 0, I64_MAX),
    "bool": lambda name: Spec(name, "bool", False, ""),
    "str": lambda name: Spec(name, "str", "", ""),
    "reg": lambda name: Spec(name, "choice", "", "", choices=tuple(WRITABLE_REGS)),
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
        if op not in OPS:
            c.error(path + ("op",), f"one of {', '.join(OPS)} (got {op!r})")
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
                if at < last_at:
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


_EXPECT_ROOTS = ("events", "sim_time_ns", "exits", "timer", "hazards", "kinds", "reads", "final", "workload", "reduction")


def _check_expects(c: _Checker, raw: Any) -> list[Expectation]:
    out = []
    for i, entry in enumerate(_array(c, "expect", raw)):
        path = ("expect", i)
        values = c.table(path, entry, EXPECT_SPECS)
        if not isinstance(entry, dict):
            continue
        what = values.get("what", "")
        if not what:
            c.error(path, "a `what` path naming the checked value")
            continue
        if what.split(".")[0] not in _EXPECT_ROOTS:
            c.error(path + ("what",), f"a path starting with one of {', '.join(_EXPECT_ROOTS)} (got {what!r})")
            continue
        if not any(k in values for k in ("equals", "min", "max")):
            c.error(path, "at least one of equals, min, max")
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
            )
        )
    return out


# ---- files --------------------------------------------------------------------------------
def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read and validate a scenario file; ScenarioError names file, line and field."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(p), 0, "", f"a readable scenario file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(str(p), line, "", "UTF-8 text (this looks like a binary file)") from None
    return parse_scenario(text, str(p))


def resolve_scenario_path(name: str) -> Path:
    """A path, or the name of a built-in scenario (`tcp_rr`)."""
    p = Path(name)
    if p.exists() or p.suffix == ".toml" or os.sep in name:
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


_BOOKMARK_BLOCK = re.compile(r"(?ms)^\[\[bookmark\]\]\s*\n(?:(?!^\[).*\n?)*")


def with_bookmarks(text: str, bookmarks: list[Bookmark]) -> str:
    """Replace the `[[bookmark]]` blocks of a scenario text, keeping everything else as written."""
    body = _BOOKMARK_BLOCK.sub("", text).rstrip() + "\n"
    for bm in bookmarks:
        body += f'\n[[bookmark]]\nname = {_toml_str(bm.name)}\n'
        if bm.event is not None:
            body += f"event = {bm.event}\n"
        body += f"at = {bm.at}\n"
        if bm.note:
            body += f"note = {_toml_str(bm.note)}\n"
    return body


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
