"""Parameter sweeps: one scenario run at every point of a cartesian product of settings.

A setting is `key=v1,v2,...` where the key names a scenario field the way the file
spells it (`host.exit_cost_ns`, `defaults.reprogram_jitter_cycles`, `workload.hz`,
`vcpu.1.timer_backend`, `seed`). Each value is read as a TOML value (a bare word that
is not TOML, like `v3` or `2us`, is a string), written into the scenario's parsed TOML
tree, and the tree goes through the scenario validator: a swept value is parsed and
checked exactly as if it had been typed into the file. Bad keys and values raise a
ScenarioError whose location is the `--set` argument, so the CLI prints the usual
one line `lazytsc: error: --set KEY=VALUE: field: what was expected`.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from .config import HOST_SPECS, VCPU_SPECS, Spec
from .scenario import TOP_SPECS, Scenario, ScenarioError, check_scenario_data
from .units import parse_duration

MAX_POINTS = 100_000
TOP_KEYS = ("seed", "duration", "variant", "vcpus")
TABLE_SECTIONS = ("defaults", "host", "workload")
ARRAY_SECTIONS = ("vcpu", "script")
KEY_FORMS = "seed, duration, variant, vcpus, defaults.FIELD, host.FIELD, workload.PARAM, vcpu.N.FIELD or script.N.FIELD"
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")


@dataclass(frozen=True)
class Setting:
    """One `--set`: a scenario key path and the values it takes, in the order given."""

    key: str
    path: tuple[str | int, ...]
    values: tuple[Any, ...]
    source: str  # the argument as typed, for error locations

    def where(self, value: Any) -> str:
        return f"--set {self.key}={_value_text(value)}"


@dataclass(frozen=True)
class Point:
    """One validated point of a sweep: the settings' canonical values and its scenario."""

    index: int
    values: tuple[tuple[str, Any], ...]  # (key, canonical value: durations in ns)
    scenario: Scenario

    def describe(self) -> str:
        return ", ".join(f"{k}={_value_text(v)}" for k, v in self.values)


def parse_setting(text: str) -> Setting:
    """`key=v1,v2,...` (integers also as an inclusive range `a..b`) -> Setting."""
    where = f"--set {text}"
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(where, 0, "", "KEY=VALUE[,VALUE...] (e.g. host.exit_cost_ns=300,600)")
    path = _key_path(key, where)
    values: list[Any] = []
    for part in rest.split(","):
        if not part.strip():
            raise ScenarioError(where, 0, key, "a value between every pair of commas")
        values.extend(_expand(part, where, key))
    seen: set[str] = set()
    for value in values:
        token = repr((type(value).__name__, value))
        if token in seen:
            raise ScenarioError(where, 0, key, f"distinct values ({_value_text(value)} is given twice)")
        seen.add(token)
    return Setting(key, path, tuple(values), text)


def _key_path(key: str, where: str) -> tuple[str | int, ...]:
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in TOP_KEYS:
        return (parts[0],)
    if len(parts) == 1 and parts[0] == "mode":
        raise ScenarioError(where, 0, key, "a scenario setting (sweep both drivers with --mode both)")
    if len(parts) == 2 and parts[0] in TABLE_SECTIONS and parts[1]:
        return (parts[0], parts[1])
    if len(parts) == 3 and parts[0] in ARRAY_SECTIONS and parts[2]:
        if not parts[1].isdigit():
            raise ScenarioError(where, 0, key, f"an index after {parts[0]}. (e.g. {parts[0]}.0.{parts[2]})")
        return (parts[0], int(parts[1]), parts[2])
    raise ScenarioError(where, 0, key, f"a scenario setting: {KEY_FORMS}")


def _expand(part: str, where: str, key: str) -> list[Any]:
    ranged = _RANGE.match(part)
    if ranged:
        lo, hi = int(ranged.group(1)), int(ranged.group(2))
        if hi < lo:
            raise ScenarioError(where, 0, key, f"a range low..high with low <= high (got {part.strip()})")
        if hi - lo + 1 > MAX_POINTS:
            raise ScenarioError(where, 0, key, f"at most {MAX_POINTS} values (got {hi - lo + 1})")
        return list(range(lo, hi + 1))
    return [toml_value(part)]


def toml_value(text: str) -> Any:
    """Read one command-line value as TOML would; a bare word that is not TOML stays a string."""
    stripped = text.strip()
    try:
        parsed = tomllib.loads(f"v = {stripped}")
    except tomllib.TOMLDecodeError:
        return stripped
    if set(parsed) != {"v"}:  # e.g. a value with a newline defining more keys
        return stripped
    return parsed["v"]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def count_points(settings: list[Setting]) -> int:
    return math.prod(len(s.values) for s in settings) if settings else 1


def build_points(text: str, filename: str, settings: list[Setting]) -> list[Point]:
    """Validate every point of the product (first setting varies slowest) before anything runs."""
    keys = [s.key for s in settings]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ScenarioError(f"--set {settings[i].source}", 0, key, "each key in one --set only")
    total = count_points(settings)
    if total > MAX_POINTS:
        raise ScenarioError("--set", 0, "", f"at most {MAX_POINTS} points in one sweep (got {total})")
    base = tomllib.loads(text)  # the caller has validated the file itself
    points = []
    for index, combo in enumerate(itertools.product(*(s.values for s in settings))):
        data = copy.deepcopy(base)
        written = [_apply(data, s, value) for s, value in zip(settings, combo, strict=True)]
        scenario, errors = check_scenario_data(data, filename, text)
        if errors:
            raise _attribute(errors, settings, combo, written)
        assert scenario is not None
        values = tuple(
            (s.key, _canonical(data, path, value)) for s, path, value in zip(settings, written, combo, strict=True)
        )
        points.append(Point(index, values, scenario))
    return points


def _apply(data: dict, setting: Setting, value: Any) -> tuple[str | int, ...]:
    """Write one value into the TOML tree; returns the validator's path of what was written."""
    path = setting.path
    where = setting.where(value)
    if len(path) == 1:
        data[path[0]] = value
        return path
    section = path[0]
    if len(path) == 2:
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ScenarioError(where, 0, section, f"a [{section}] table in the scenario")
        table[path[1]] = value
        return path
    index, name = path[1], path[2]
    array = data.setdefault(section, [])
    if not isinstance(array, list) or not all(isinstance(t, dict) for t in array):
        raise ScenarioError(where, 0, section, f"[[{section}]] tables in the scenario")
    if section == "vcpu":  # addressed by id, as [[vcpu]] `id = N` (default: the table's position)
        for position, table in enumerate(array):
            if table.get("id", position) == index:
                table[name] = value
                return (section, position, name)
        array.append({"id": index, name: value})
        return (section, len(array) - 1, name)
    if index >= len(array):
        have = f"entries 0 to {len(array) - 1}" if array else "no entries"
        raise ScenarioError(where, 0, f"{section}.{index}", f"an existing [[{section}]] entry (the scenario has {have})")
    array[index][name] = value
    return (section, index, name)


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _attribute(
    errors: list[ScenarioError], settings: list[Setting], combo: tuple, written: list[tuple]
) -> ScenarioError:
    """The first error a `--set` caused, located at that `--set`; else the first, with its point."""
    for exc in errors:
        for setting, value, path in zip(settings, combo, written, strict=True):
            dotted = _dotted(path)
            entry = _dotted(path[:2]) if len(path) == 3 else dotted  # the [[vcpu]]/[[script]] table written
            if exc.field == dotted:
                return ScenarioError(setting.where(value), 0, setting.key, exc.expected)
            if exc.field.startswith(entry + ".") or exc.field.startswith(dotted + "["):
                field_name = f"{setting.path[0]}.{setting.path[1]}" + exc.field[len(entry):] if len(path) == 3 else exc.field
                return ScenarioError(setting.where(value), 0, field_name, exc.expected)
    exc = errors[0]
    point = ", ".join(f"{s.key}={_value_text(v)}" for s, v in zip(settings, combo, strict=True))
    return ScenarioError(exc.file, exc.line, exc.field, f"{exc.expected} (at the sweep point {point})")


def _spec_of(data: dict, path: tuple[str | int, ...]) -> Spec | None:
    name = path[-1]
    if len(path) == 1:
        specs: tuple[Spec, ...] = TOP_SPECS
    elif path[0] == "host":
        specs = HOST_SPECS
    elif path[0] in ("defaults", "vcpu"):
        specs = VCPU_SPECS
    elif path[0] == "workload":
        from .workloads import WORKLOADS

        kind = data.get("workload", {}).get("kind")
        specs = WORKLOADS[kind].PARAMS if kind in WORKLOADS else ()
    else:
        from .script import COMMON_FIELDS, OPS

        entry = data["script"][path[1]]
        kinds = {**COMMON_FIELDS, **OPS[entry["op"]][0]} if entry.get("op") in OPS else {}
        return Spec(str(name), "duration", 0, "") if kinds.get(name) == "duration" else None
    return next((s for s in specs if s.name == name), None)


def _canonical(data: dict, path: tuple[str | int, ...], value: Any) -> Any:
    """The value as the engine sees it: durations in ns, everything else as written."""
    spec = _spec_of(data, path)
    if spec is not None and spec.kind == "duration":
        return parse_duration(value)
    return value


def known_keys(scenario: Scenario, max_vcpus: int = 8) -> list[str]:
    """Every key a sweep of this scenario can name (vCPU keys for the first `max_vcpus`)."""
    keys = list(TOP_KEYS)
    keys += [f"defaults.{s.name}" for s in VCPU_SPECS] + [f"host.{s.name}" for s in HOST_SPECS]
    if scenario.workload is not None:
        from .workloads import WORKLOADS

        keys += [f"workload.{s.name}" for s in WORKLOADS[scenario.workload[0]].PARAMS]
    for i in range(min(len(scenario.run.vcpus), max_vcpus)):
        keys += [f"vcpu.{i}.{s.name}" for s in VCPU_SPECS]
    return keys


def current_value(scenario: Scenario, key: str) -> Any:
    """The value the scenario runs with for `key` (its file's, else the default); None if unknown."""
    run = scenario.run
    top = {"seed": run.seed, "duration": run.duration_ns, "variant": run.variant, "vcpus": len(run.vcpus)}
    if key in top:
        return top[key]
    parts = key.split(".")
    if len(parts) == 2 and parts[0] == "defaults":
        return getattr(run.vcpus[0], parts[1], None)
    if len(parts) == 2 and parts[0] == "host":
        return getattr(run.host, parts[1], None)
    if len(parts) == 2 and parts[0] == "workload" and scenario.workload is not None:
        from .workloads import WORKLOADS

        kind, params = scenario.workload
        if parts[1] in params:
            return params[parts[1]]
        return next((s.default for s in WORKLOADS[kind].PARAMS if s.name == parts[1]), None)
    if len(parts) == 3 and parts[0] == "vcpu" and parts[1].isdigit() and int(parts[1]) < len(run.vcpus):
        return getattr(run.vcpus[int(parts[1])], parts[2], None)
    return None
