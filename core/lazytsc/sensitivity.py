"""Sensitivity tables for docs/model.md: how each published figure moves with each parameter.

    python -m lazytsc.sensitivity [--scenario tcp_rr --scenario tcp_rr_v3] [--seeds 4]
        [--duration 50ms] [--param KEY=V1,V2,...] [--detail] [--jobs N]
        [-o FILE | --update docs/model.md]

For every scenario (by default the built-in `tcp_rr`, protocol V2, and `tcp_rr_v3`) and
every calibrated parameter, the scenario is swept over a few values around its current
one (all other parameters as the scenario has them), each point over several seeds, in
both driver modes. Counts are pooled over the seeds before a cut or ratio is taken.
Each table row is one figure of the published tables (DESIGN.md section 1), with the
published value, the model's value at the scenario's own settings, its spread over the
seeds, and its value at each swept parameter value. Everything is computed by this
module: the Markdown is generated, never typed. `--update FILE` rewrites only the text
between `<!-- sensitivity:begin -->` and `<!-- sensitivity:end -->` in FILE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .docblock import emit
from .scenario import Scenario, ScenarioError, load_scenario, resolve_scenario_path
from .sweep import Setting, build_points, current_value, parse_setting
from .sweep_run import Figures, ProgressLine, make_tasks, run_tasks

BEGIN = "<!-- sensitivity:begin -->"
END = "<!-- sensitivity:end -->"
MODES = ("classic", "lazy")

# The published measurements (netperf TCP_RR on loopback), as DESIGN.md section 1 quotes them:
# V2 = the seed's table (patch 3/4 of the V2 series); V3 = the V3 cover letter (host 6.5-rc1).
PUBLISHED: dict[str, dict[str, dict[str, int]]] = {
    "v2": {
        "classic": {
            "exits.total": 12_617_503, "exits.by_reason.intr": 37_023, "exits.by_reason.halt": 2_503_932,
            "exits.by_reason.msr-write": 10_046_340, "exits.by_reason.preemption-timer": 29_518,
            "exits.msr_write.apic-icr": 2_533_498, "exits.msr_write.tsc-deadline": 7_512_945,
        },
        "lazy": {
            "exits.total": 5_815_737, "exits.by_reason.intr": 33_002, "exits.by_reason.halt": 2_780_683,
            "exits.by_reason.msr-write": 2_966_824, "exits.by_reason.preemption-timer": 34_800,
            "exits.msr_write.apic-icr": 2_781_235, "exits.msr_write.tsc-deadline": 185_629,
        },
    },
    "v3": {
        "classic": {
            "exits.total": 10_485_133, "exits.by_reason.halt": 2_082_894, "exits.msr_write.tsc-deadline": 6_208_273,
            "exits.msr_write.apic-icr": 2_115_802, "timer.interrupts": 44_003,
        },
        "lazy": {
            "exits.total": 6_177_331, "exits.by_reason.halt": 2_958_096, "exits.msr_write.tsc-deadline": 171_364,
            "exits.msr_write.apic-icr": 2_969_154, "timer.interrupts": 55_059,
        },
    },
}
PUBLISHED_NAME = {"v2": "the seed's table (V2)", "v3": "V3's measurement"}

Counts = dict[str, dict[str, float]]  # mode -> figure -> count


@dataclass(frozen=True)
class Figure:
    """One row: a number computed from the classic and lazy counts; None where undefined."""

    label: str
    kind: str  # "cut" | "ratio" | "share"
    compute: Callable[[Counts], float | None]


def _get(counts: Counts, mode: str, name: str) -> float | None:
    return counts.get(mode, {}).get(name)


def _cut(name: str) -> Callable[[Counts], float | None]:
    def compute(c: Counts) -> float | None:
        lazy, classic = _get(c, "lazy", name), _get(c, "classic", name)
        return None if lazy is None or not classic else 1.0 - lazy / classic

    return compute


def _ratio(name: str) -> Callable[[Counts], float | None]:
    def compute(c: Counts) -> float | None:
        lazy, classic = _get(c, "lazy", name), _get(c, "classic", name)
        return None if lazy is None or not classic else lazy / classic

    return compute


def _share(mode: str, part: str, whole: str) -> Callable[[Counts], float | None]:
    def compute(c: Counts) -> float | None:
        p, w = _get(c, mode, part), _get(c, mode, whole)
        return None if p is None or not w else p / w

    return compute


FIGURES: tuple[Figure, ...] = (
    Figure("total exits cut", "cut", _cut("exits.total")),
    Figure("msr-write exits cut", "cut", _cut("exits.by_reason.msr-write")),
    Figure("tsc-deadline writes cut", "cut", _cut("exits.msr_write.tsc-deadline")),
    Figure("halt exits ratio", "ratio", _ratio("exits.by_reason.halt")),
    Figure("apic-icr writes ratio", "ratio", _ratio("exits.msr_write.apic-icr")),
    Figure("guest timer interrupts ratio", "ratio", _ratio("timer.interrupts")),
    Figure("classic: msr-write share of exits", "share", _share("classic", "exits.by_reason.msr-write", "exits.total")),
    Figure("classic: halt share of exits", "share", _share("classic", "exits.by_reason.halt", "exits.total")),
    Figure("classic: tsc-deadline share of msr-write", "share",
           _share("classic", "exits.msr_write.tsc-deadline", "exits.by_reason.msr-write")),
    Figure("lazy: halt share of exits", "share", _share("lazy", "exits.by_reason.halt", "exits.total")),
    Figure("lazy: msr-write share of exits", "share", _share("lazy", "exits.by_reason.msr-write", "exits.total")),
    Figure("lazy: apic-icr share of msr-write", "share",
           _share("lazy", "exits.msr_write.apic-icr", "exits.by_reason.msr-write")),
    Figure("lazy: spurious share of timer interrupts", "share", _share("lazy", "timer.spurious", "timer.interrupts")),
    Figure("transactions ratio", "ratio", _ratio("workload.transactions")),
)


def host_expiry_figures(names: Sequence[str]) -> list[Figure]:
    """Ratios of the host-side timer figures, for whichever the engine's summary reports."""
    return [
        Figure(f"{n.removeprefix('timer.')} ratio", "ratio", _ratio(n))
        for n in names
        if n.startswith("timer.") and ("host" in n or "expir" in n)
    ]


@dataclass(frozen=True)
class Parameter:
    """A calibrated parameter and how to pick the values around the scenario's own."""

    label: str
    key: str
    scales: tuple[float, ...] = (0.5, 2.0)  # multiples of the current value
    values: tuple[int, ...] = ()  # or fixed values (the current one is always added)


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("reprogram jitter", "defaults.reprogram_jitter_cycles", scales=(0.0, 2.0, 4.0)),
    Parameter("exit cost", "host.exit_cost_ns", scales=(0.5, 2.0, 4.0)),  # 4x: V3's host (tcp_rr_evidence.V3_HOST)
    Parameter("wake-up latency", "host.wakeup_latency_ns"),
    Parameter("HZ", "workload.hz", scales=(), values=(100, 250, 1000)),
    Parameter("client send", "workload.client_send_ns"),
    Parameter("server processing", "workload.server_proc_ns"),
    Parameter("client receive", "workload.client_recv_ns"),
    Parameter("after the send", "workload.post_send_ns"),
    Parameter("wake-up IPI", "workload.wake_ipi_ns"),
)


def parameter_values(scenario: Scenario, param: Parameter) -> tuple[list[int], int]:
    """Sorted distinct values to sweep (always including the current one) and the current one."""
    base = current_value(scenario, param.key)
    if not isinstance(base, int) or isinstance(base, bool):
        raise ScenarioError("--param", 0, param.key, "an integer setting the scenario has (defaults, host or workload)")
    chosen = set(param.values) | {int(round(base * s)) for s in param.scales} | {base}
    return sorted(chosen), base


@dataclass
class Block:
    """One sweep over seeds: a scenario's baseline (key "") or one parameter's other values."""

    scenario: Scenario
    label: str
    key: str
    values: list[int]  # every value shown (the baseline's value included)
    base: int
    first_task: int = 0


def plan(scenarios: Sequence[Scenario], params: Sequence[Parameter]) -> list[tuple[Block, list[Block]]]:
    """Per scenario: its baseline block and one block per parameter."""
    out = []
    for scenario in scenarios:
        baseline = Block(scenario, "model", "", [0], 0)
        blocks = []
        for param in params:
            values, base = parameter_values(scenario, param)
            blocks.append(Block(scenario, param.label, param.key, values, base))
        out.append((baseline, blocks))
    return out


def _swept(block: Block) -> list[int]:
    """The values this block runs itself: the baseline's value comes from the baseline block."""
    return [v for v in block.values if v != block.base] if block.key else []


def _settings(block: Block, seeds: int, duration: str) -> list[Setting]:
    out = [parse_setting(f"{block.key}={','.join(str(v) for v in _swept(block))}")] if block.key else []
    out.append(parse_setting(f"seed=1..{seeds}"))
    if duration:
        out.append(parse_setting(f"duration={duration}"))
    return out


def run_blocks(groups: list[tuple[Block, list[Block]]], seeds: int, duration: str, jobs: int | None,
               progress=None) -> list[Figures]:
    """Every block's tasks in one pool, so small blocks still use every core."""
    tasks: list[Any] = []
    for baseline, blocks in groups:
        for block in [baseline, *blocks]:
            if block.key and not _swept(block):
                continue
            points = build_points(block.scenario.text, block.scenario.path, _settings(block, seeds, duration))
            block.first_task = len(tasks)
            tasks += [type(t)(len(tasks) + i, t.point, t.mode, t.scenario) for i, t in enumerate(make_tasks(points, MODES))]
    return run_tasks(tasks, jobs=jobs, progress=progress)


def pooled(runs: list[Figures], baseline: Block, block: Block, value: int, seeds: int,
           only_seed: int | None = None) -> Counts:
    """Counts at one parameter value summed over the seeds (or one seed's counts)."""
    if not block.key or value == block.base:
        block, index = baseline, 0
    else:
        index = _swept(block).index(value)
    out: Counts = {m: {} for m in MODES}
    for s in range(seeds):
        if only_seed is not None and s != only_seed:
            continue
        point = index * seeds + s
        for j, mode in enumerate(MODES):
            for name, v in runs[block.first_task + point * len(MODES) + j].items():
                out[mode][name] = out[mode].get(name, 0) + v
    return out


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind in ("cut", "share"):
        return f"{100 * value:.1f}%"
    return f"{value:.2f}"


def _fmt_value(value: int, key: str) -> str:
    if key.endswith("_ns"):
        return f"{value // 1000}us" if value % 1000 == 0 and value else f"{value}ns"
    return str(value)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def render(groups: list[tuple[Block, list[Block]]], runs: list[Figures], seeds: int, duration: str,
           detail: bool = False) -> str:
    plural = "s" if seeds != 1 else ""
    lines = [
        BEGIN,
        "<!-- Generated by `python -m lazytsc.sensitivity`; do not edit by hand. -->",
        "",
        f"Each point: {seeds} seed{plural} (1..{seeds}) x {duration or 'the scenario duration'}, both drivers, "
        "counts pooled over the seeds. *model*: the scenario as shipped; *seeds*: the range of that value over "
        "single seeds (what noise alone moves). Each parameter column gives the figure at each swept value, "
        "the scenario's own value in bold. Cuts are 1 - lazy/classic, ratios lazy/classic, shares of one mode's counts.",
    ]
    for baseline, blocks in groups:
        scenario = baseline.scenario
        variant = scenario.run.variant
        base_counts = pooled(runs, baseline, baseline, 0, seeds)
        names = sorted(set(base_counts["lazy"]) | set(base_counts["classic"]))
        figures = list(FIGURES) + host_expiry_figures(names)
        published = PUBLISHED.get(variant, {})
        title = PUBLISHED_NAME.get(variant, "no published table")
        lines += ["", f"#### `{_stem(scenario)}` (protocol {variant}) against {title}", ""]
        head = ["figure", "published", "model", "seeds"]
        for b in blocks:
            shown = " · ".join(f"**{_fmt_value(v, b.key)}**" if v == b.base else _fmt_value(v, b.key) for v in b.values)
            head.append(f"{b.label} (`{b.key.split('.')[-1]}` {shown})")
        rows = []
        for fig in figures:
            singles = [fig.compute(pooled(runs, baseline, baseline, 0, seeds, only_seed=s)) for s in range(seeds)]
            singles = [v for v in singles if v is not None]
            spread = f"{_fmt(min(singles), fig.kind)} – {_fmt(max(singles), fig.kind)}" if singles else "—"
            row = [fig.label, _fmt(fig.compute(published) if published else None, fig.kind),
                   _fmt(fig.compute(base_counts), fig.kind), spread]
            for b in blocks:
                cells = []
                for v in b.values:
                    text = _fmt(fig.compute(pooled(runs, baseline, b, v, seeds)), fig.kind)
                    cells.append(f"**{text}**" if v == b.base else text)
                row.append(" · ".join(cells))
            rows.append(row)
        lines += _table(head, rows)
        if detail:
            lines += _detail(baseline, blocks, runs, seeds)
    lines += ["", END]
    return "\n".join(lines) + "\n"


DETAIL_COUNTS = ("exits.total", "exits.by_reason.halt", "exits.msr_write.tsc-deadline", "exits.msr_write.apic-icr",
                 "timer.interrupts", "timer.spurious", "workload.transactions")


def _detail(baseline: Block, blocks: list[Block], runs: list[Figures], seeds: int) -> list[str]:
    """Per parameter: the pooled counts behind its column, per mode and value."""
    out = []
    for b in blocks:
        out += ["", f"{b.label} (`{b.key}`), counts summed over {seeds} seed{'s' if seeds != 1 else ''}:", ""]
        head = ["count"] + [f"{m} @ {_fmt_value(v, b.key)}" for v in b.values for m in MODES]
        rows = []
        for name in DETAIL_COUNTS:
            cells = []
            for v in b.values:
                counts = pooled(runs, baseline, b, v, seeds)
                cells += [f"{int(counts[m][name]):,}" if name in counts[m] else "—" for m in MODES]
            rows.append([f"`{name}`", *cells])
        out += _table(head, rows)
    return out


def _stem(scenario: Scenario) -> str:
    from pathlib import Path

    return Path(scenario.path).stem if scenario.path else scenario.name



def parse_params(args: Sequence[str]) -> list[Parameter]:
    """The default parameters, with `KEY=V1,V2` replacing one's values or adding a new one."""
    params = {p.key: p for p in PARAMETERS}
    for text in args:
        setting = parse_setting(text)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in setting.values):
            raise ScenarioError(f"--param {text}", 0, setting.key, "integer values (durations in ns)")
        label = params[setting.key].label if setting.key in params else setting.key
        params[setting.key] = Parameter(label, setting.key, scales=(), values=tuple(setting.values))
    return list(params.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lazytsc.sensitivity", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", help="scenario file or built-in name (default: tcp_rr, tcp_rr_v3)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per point (default 4)")
    parser.add_argument("--duration", default="", help="simulated time per run (default: the scenario's)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2", help="sweep these values of KEY")
    parser.add_argument("--only", action="append", default=[], metavar="KEY", help="sweep only these parameter keys")
    parser.add_argument("--detail", action="store_true", help="add the pooled counts behind every row")
    parser.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", help="write the Markdown to FILE (default: stdout)")
    out.add_argument("--update", metavar="FILE", help="replace the marked block of FILE (e.g. docs/model.md)")
    args = parser.parse_args(argv)
    try:
        if args.seeds < 1:
            raise ScenarioError("--seeds", 0, "", f"at least 1 seed (got {args.seeds})")
        scenarios = [load_scenario(resolve_scenario_path(n)) for n in (args.scenario or ["tcp_rr", "tcp_rr_v3"])]
        params = [p for p in parse_params(args.param) if not args.only or p.key in args.only]
        groups = plan(scenarios, params)
        progress = ProgressLine()
        try:
            runs = run_blocks(groups, args.seeds, args.duration, args.jobs, progress)
        finally:
            progress.finish()
        markdown = render(groups, runs, args.seeds, args.duration, args.detail)
        emit(markdown, args.update, args.output, BEGIN, END)
    except (ScenarioError, OSError) as exc:
        print(f"lazytsc: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
