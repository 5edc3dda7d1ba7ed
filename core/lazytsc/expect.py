"""Evaluate a scenario's `[[expect]]` blocks against its runs (`lazytsc check`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .scenario import Expectation, Scenario
from .taxonomy import KIND_NAMES


class ExpectError(LookupError):
    """A `what`/`of` path that names nothing in the run's results."""


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    mode: str
    ok: bool
    expected: str
    got: str


def run_results(engine: Any) -> dict[str, Any]:
    """Everything an expectation may name, for one finished engine run."""
    from .snapshot import take_snapshot

    results = engine.summary()
    results["reads"] = dict(engine.reads)
    kinds = engine.log.column("kind")
    counts = np.bincount(kinds.astype(np.int64), minlength=len(KIND_NAMES)) if len(kinds) else [0] * len(KIND_NAMES)
    results["kinds"] = {name: int(counts[code]) for code, name in KIND_NAMES.items()}
    results["workload"] = engine.workload.report() if engine.workload else {}
    results["faults"] = dict(engine.script.faults)
    results["irq"] = interrupts_taken(engine)
    snap = take_snapshot(engine)
    results["final"] = {f"vcpu{v.vcpu}": {name: getattr(v, name) for name in v.__slots__} for v in snap.vcpus}
    return results


def interrupts_taken(engine: Any) -> dict[str, Any]:
    """Interrupts the guest took, from the log: counts, order and times per vector.

    `irq.count.0xec` (every vCPU), `irq.vcpu0.count.0xec`, `irq.vcpu0.order` (the vectors
    in the order taken), `irq.vcpu0.0xec.0.ns` / `.tsc` (the first one's time), and
    `irq.count.total`. Vectors are keyed in hex (`0xec`) and decimal (`236`).
    """
    from .taxonomy import LOCAL_TIMER_VECTOR, Kind

    log = engine.log
    kind = log.column("kind")
    mask = (kind == Kind.GUEST_TIMER_IRQ) | (kind == Kind.GUEST_IPI) | (kind == Kind.GUEST_IRQ)
    rows = np.nonzero(mask)[0]
    out: dict[str, Any] = {"count": {"total": int(rows.size)}}
    per: dict[int, dict[str, Any]] = {v: {"count": {"total": 0}, "order": []} for v in range(engine.nvcpus)}
    times, vcpus, kinds, a = log.column("time"), log.column("vcpu"), log.column("kind"), log.column("a")
    for i in rows:
        vid = int(vcpus[i])
        vector = LOCAL_TIMER_VECTOR if kinds[i] == Kind.GUEST_TIMER_IRQ else int(a[i])
        t = int(times[i])
        entry = per.setdefault(vid, {"count": {"total": 0}, "order": []})
        entry["order"].append(vector)
        entry["count"]["total"] += 1
        for key in (f"{vector:#x}", str(vector)):
            out["count"][key] = out["count"].get(key, 0) + 1
            entry["count"][key] = entry["count"].get(key, 0) + 1
            seq = entry.setdefault(key, {})
            seq[str(len(seq))] = {"ns": t, "tsc": engine.clock.tsc(vid, t)}
    for vid, entry in per.items():
        out[f"vcpu{vid}"] = entry
    return out


def _node(results: dict[str, Any], path: str) -> Any:
    node: Any = results
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ExpectError(f"no value at {path!r}")
    return node


def lookup(results: dict[str, Any], path: str) -> float:
    node = _node(results, path)
    if isinstance(node, bool):
        return int(node)
    if not isinstance(node, int | float):
        raise ExpectError(f"{path!r} is not a number")
    return node


def lookup_sequence(results: dict[str, Any], path: str) -> list[int]:
    node = _node(results, path)
    if not isinstance(node, list):
        raise ExpectError(f"{path!r} is not a list")
    return node


def _value(exp: Expectation, per_mode: dict[str, dict], mode: str) -> float:
    if exp.what.startswith("reduction."):
        path = exp.what[len("reduction."):]
        if "classic" not in per_mode or "lazy" not in per_mode:
            raise ExpectError("reduction.* needs both classic and lazy runs (mode = \"both\")")
        base = lookup(per_mode["classic"], path)
        return 1.0 - lookup(per_mode["lazy"], path) / base if base else 0.0
    if exp.expr is not None:
        value = _evaluate_expr(exp, per_mode[mode])
    else:
        value = lookup(per_mode[mode], exp.what)
    if exp.minus:
        value -= lookup(per_mode[mode], exp.minus)
    if exp.of:
        whole = lookup(per_mode[mode], exp.of)
        value = value / whole if whole else 0.0
    return value


class _Paths(Mapping):
    """Result paths as the names of an expectation's `expr`."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results

    def __getitem__(self, name: str) -> float:
        return lookup(self.results, name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _evaluate_expr(exp: Expectation, results: dict[str, Any]) -> float:
    assert exp.expr is not None
    try:
        value = exp.expr(_Paths(results))
    except ZeroDivisionError:
        raise ExpectError(f"{exp.expr.text!r} divides by zero") from None
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, int | float):
        raise ExpectError(f"{exp.expr.text!r} is not a number")
    return value


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and not x.is_integer():
        return f"{x:.4g}"
    return f"{int(x)}"


def evaluate(scenario: Scenario, per_mode: dict[str, dict]) -> list[Outcome]:
    """Check every expectation in every mode it applies to."""
    out: list[Outcome] = []
    for exp in scenario.expects:
        modes = ["both"] if exp.what.startswith("reduction.") else ([exp.mode] if exp.mode else list(per_mode))
        for mode in modes:
            if mode != "both" and mode not in per_mode:
                out.append(Outcome(exp, mode, False, f"a {mode} run", f"the scenario runs only {', '.join(per_mode)}"))
                continue
            if exp.sequence is not None:
                want = list(exp.sequence)
                try:
                    got_seq = lookup_sequence(per_mode[mode], exp.what)
                except ExpectError as err:
                    out.append(Outcome(exp, mode, False, str(want), str(err)))
                    continue
                out.append(Outcome(exp, mode, got_seq == want, str(want), str(got_seq)))
                continue
            parts = []
            if exp.equals is not None:
                tol = max(exp.tolerance, abs(exp.equals) * exp.rel_tolerance)
                parts.append(f"{_fmt(exp.equals)}" + (f" ± {_fmt(tol)}" if tol else ""))
            if exp.min is not None:
                parts.append(f">= {_fmt(exp.min)}")
            if exp.max is not None:
                parts.append(f"<= {_fmt(exp.max)}")
            expected = " and ".join(parts)
            try:
                got = _value(exp, per_mode, mode)
            except ExpectError as err:
                out.append(Outcome(exp, mode, False, expected, str(err)))
                continue
            ok = True
            if exp.equals is not None:
                tol = max(exp.tolerance, abs(exp.equals) * exp.rel_tolerance)
                ok = abs(got - exp.equals) <= tol
            if exp.min is not None and got < exp.min:
                ok = False
            if exp.max is not None and got > exp.max:
                ok = False
            out.append(Outcome(exp, mode, ok, expected, _fmt(got)))
    return out
