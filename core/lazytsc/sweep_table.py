"""A finished sweep as rows: every figure per point and mode, lazy/classic cuts and ratios.

Three renderings of the same rows: a terminal table of the key figures, and JSON and
CSV with every figure. Floats are rounded once here, so the bytes depend only on the
runs' results, never on the worker count or completion order.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .sweep import Point
from .sweep_run import Figures

FORMAT = 1
DIGITS = 6

# Key figures of the terminal table: (label, figure, lazy-vs-classic column: "cut" | "ratio" | "").
KEY_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("exits", "exits.total", "cut"),
    ("halt", "exits.by_reason.halt", "ratio"),
    ("msr-write", "exits.by_reason.msr-write", "cut"),
    ("tsc-deadline", "exits.msr_write.tsc-deadline", "cut"),
    ("apic-icr", "exits.msr_write.apic-icr", "ratio"),
    ("timer irqs", "timer.interrupts", "ratio"),
    ("spurious", "timer.spurious", ""),
    ("transactions", "workload.transactions", "ratio"),
)
_HOST_EXPIRY_WORDS = ("host", "expir")  # host-side timer figures, named by the engine's summary


def ratio(lazy: float, classic: float) -> float | None:
    """lazy / classic, or None when classic is 0 (no ratio to give)."""
    return round(lazy / classic, DIGITS) if classic else None


def cut(lazy: float, classic: float) -> float | None:
    """1 - lazy / classic: the share of the classic count that lazy mode saves."""
    return round(1.0 - lazy / classic, DIGITS) if classic else None


@dataclass(frozen=True)
class Series:
    """One plotted line: a figure over the values of one swept setting."""

    label: str
    xs: list[float]
    ys: list[float | None]
    group: int = 0  # which combination of the other settings
    show: str = ""  # the mode, "ratio" or "cut"


@dataclass
class SweepResult:
    """Points (in product order) with their figures per mode."""

    scenario: str
    file: str
    keys: list[str]
    modes: tuple[str, ...]
    points: list[Point]
    figures: list[dict[str, Figures]] = field(default_factory=list)

    @classmethod
    def from_runs(cls, scenario: str, file: str, keys: list[str], modes: Sequence[str],
                  points: list[Point], runs: list[Figures]) -> SweepResult:
        """Regroup the task results (point-major, then mode) into one dict per point."""
        modes = tuple(modes)
        grouped = [
            {mode: runs[i * len(modes) + j] for j, mode in enumerate(modes)} for i in range(len(points))
        ]
        return cls(scenario, file, keys, modes, points, grouped)

    @property
    def both(self) -> bool:
        return "classic" in self.modes and "lazy" in self.modes

    def figure_names(self) -> list[str]:
        """Every figure any run reported, in the order the engine reports them."""
        names: dict[str, None] = {}
        for per_mode in self.figures:
            for figures in per_mode.values():
                names.update(dict.fromkeys(figures))
        return list(names)

    def value(self, index: int, column: str) -> Any:
        """One cell: a setting key, `MODE.FIGURE`, `ratio.FIGURE` or `cut.FIGURE`."""
        point = self.points[index]
        settings = dict(point.values)
        if column in settings:
            return settings[column]
        head, _, figure = column.partition(".")
        per_mode = self.figures[index]
        if head in per_mode:
            return per_mode[head].get(figure)
        if head in ("ratio", "cut") and self.both:
            lazy, classic = per_mode["lazy"].get(figure), per_mode["classic"].get(figure)
            if lazy is None or classic is None:
                return None
            return ratio(lazy, classic) if head == "ratio" else cut(lazy, classic)
        raise KeyError(column)

    def columns(self) -> list[str]:
        """Every column of the CSV: settings, then each mode's figures, then ratios and cuts."""
        names = self.figure_names()
        cols = list(self.keys)
        for mode in self.modes:
            cols += [f"{mode}.{n}" for n in names]
        if self.both:
            cols += [f"ratio.{n}" for n in names] + [f"cut.{n}" for n in names]
        return cols

    def shows(self) -> list[str]:
        """What a plot can show of a figure: each mode, both modes, and with both their ratio and cut."""
        return [*self.modes, "both", "ratio", "cut"] if self.both else list(self.modes)

    def x_axis(self, key: str) -> tuple[list[Any], list[float], list[str] | None]:
        """Distinct values of `key` in sweep order, their x positions, and tick labels if not numeric."""
        values = _unique(dict(p.values)[key] for p in self.points)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            return values, [float(v) for v in values], None
        return values, [float(i) for i in range(len(values))], [_setting_cell(v) for v in values]

    def series(self, figure: str, show: str, x_key: str, pool_seeds: bool = False) -> list[Series]:
        """Lines of `figure` against `x_key`: one per combination of the other settings (and per
        mode when showing both). With `pool_seeds` the seeds' counts are summed first."""
        values, xs, _labels = self.x_axis(x_key)
        others = [k for k in self.keys if k != x_key and not (pool_seeds and k == "seed")]
        groups: dict[tuple, dict[int, list[int]]] = {}
        for i, point in enumerate(self.points):
            settings = dict(point.values)
            group = tuple((k, settings[k]) for k in others)
            at = next(j for j, v in enumerate(values) if type(v) is type(settings[x_key]) and v == settings[x_key])
            groups.setdefault(group, {}).setdefault(at, []).append(i)
        modes = list(self.modes) if show == "both" else [show]
        varied = {k for k in others if len(_unique(dict(p.values)[k] for p in self.points)) > 1}
        tails = [k.rsplit(".", 1)[-1] for k in varied]
        short = {k: k.rsplit(".", 1)[-1] if tails.count(k.rsplit(".", 1)[-1]) == 1 else k for k in varied}
        out = []
        for g, (group, by_x) in enumerate(groups.items()):
            name = ", ".join(f"{short[k]}={_setting_cell(v)}" for k, v in group if k in varied)
            for mode in modes:
                ys = [self._pooled(by_x.get(j, []), figure, mode) for j in range(len(values))]
                suffix = {"ratio": "lazy / classic", "cut": "1 - lazy / classic"}.get(mode, mode)
                label = f"{name} · {suffix}" if name else suffix
                out.append(Series(label, xs, ys, g, mode))
        return out

    def _pooled(self, rows: list[int], figure: str, show: str) -> float | None:
        if not rows:
            return None

        def total(mode: str) -> float | None:
            got = [self.figures[i][mode].get(figure) for i in rows]
            return None if any(v is None for v in got) else sum(got)  # type: ignore[arg-type]

        if show in ("ratio", "cut"):
            lazy, classic = total("lazy"), total("classic")
            if lazy is None or classic is None:
                return None
            return ratio(lazy, classic) if show == "ratio" else cut(lazy, classic)
        return total(show)

    def to_json(self) -> str:
        names = self.figure_names()
        settings = [{"key": k, "values": _unique(dict(p.values)[k] for p in self.points)} for k in self.keys]
        rows = []
        for i, point in enumerate(self.points):
            row: dict[str, Any] = {"index": point.index, "settings": dict(point.values)}
            for mode in self.modes:
                row[mode] = {n: self.figures[i][mode].get(n) for n in names}
            if self.both:
                row["ratio"] = {n: self.value(i, f"ratio.{n}") for n in names}
                row["cut"] = {n: self.value(i, f"cut.{n}") for n in names}
            rows.append(row)
        doc = {
            "format": FORMAT,
            "scenario": self.scenario,
            "file": self.file,
            "settings": settings,
            "modes": list(self.modes),
            "figures": names,
            "points": rows,
        }
        return json.dumps(doc, indent=1) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        cols = self.columns()
        writer.writerow(cols)
        for i in range(len(self.points)):
            writer.writerow([_csv_cell(self.value(i, c)) for c in cols])
        return out.getvalue()

    def text_columns(self) -> list[tuple[str, str, str]]:
        """(figure label, sub-label, column) of the terminal table."""
        names = self.figure_names()
        chosen = [(label, fig, derived) for label, fig, derived in KEY_FIGURES if fig in names]
        chosen += [
            (n.removeprefix("timer."), n, "ratio")
            for n in names
            if n.startswith("timer.") and any(w in n for w in _HOST_EXPIRY_WORDS)
        ]
        out: list[tuple[str, str, str]] = []
        for label, fig, derived in chosen:
            if not self.both:
                out.append((label, "", f"{self.modes[0]}.{fig}"))
                continue
            if derived == "cut" and label != "exits":
                out.append((label, "cut", f"cut.{fig}"))
                continue
            if label in ("exits", "timer irqs") or not derived:
                out += [(label, "classic", f"classic.{fig}"), (label, "lazy", f"lazy.{fig}")]
            if derived:
                out.append((label, derived, f"{derived}.{fig}"))
        return out

    def to_text(self) -> str:
        cols = self.text_columns()
        head1 = list(self.keys) + [c[0] for c in cols]
        head2 = [""] * len(self.keys) + [c[1] for c in cols]
        for j in range(len(head1) - 1, len(self.keys), -1):  # a label heads the first of its columns
            if head1[j] == head1[j - 1]:
                head1[j] = ""
        body = [
            [_setting_cell(v) for _k, v in p.values] + [_text_cell(self.value(i, c[2]), c[1]) for c in cols]
            for i, p in enumerate(self.points)
        ]
        grid = [head1, head2] if any(head2) else [head1]
        widths = [max(len(row[j]) for row in grid + body) for j in range(len(head1))]
        plural = "s" if len(self.points) != 1 else ""
        lines = [f"{self.scenario}: {len(self.points)} point{plural} x {'/'.join(self.modes)}"]
        lines += [_join(row, widths, len(self.keys)) for row in grid]
        lines.append("  ".join("-" * w for w in widths))
        lines += [_join(row, widths, len(self.keys)) for row in body]
        return "\n".join(line.rstrip() for line in lines) + "\n"


def _join(cells: list[str], widths: list[int], nkeys: int) -> str:
    """Settings left-aligned, figures right-aligned."""
    return "  ".join(
        c.ljust(w) if j < nkeys else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _unique(values: Any) -> list[Any]:
    seen: dict[str, Any] = {}
    for v in values:
        seen.setdefault(repr((type(v).__name__, v)), v)
    return list(seen.values())


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _setting_cell(value: Any) -> str:
    """A setting's value as it would be typed back into `--set`."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _text_cell(value: Any, sub: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if sub == "cut" and isinstance(value, float):
        return f"{100 * value:.1f}%"
    if sub == "ratio" and isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
