"""`lazytsc`: the headless CLI over the engine (DESIGN.md section 4). Never imports Qt.

    lazytsc run SCENARIO [--mode classic|lazy|both] [--json]
    lazytsc check SCENARIO...
    lazytsc trace FILE [--json] [--what-if lazy]
    lazytsc list
    lazytsc events SCENARIO [--mode M] [--format csv|json] [-o FILE]
    lazytsc sweep SCENARIO --set key=v1,v2,... [--mode M] [--jobs N] [--json|--csv]
    lazytsc explore [--variant v2|v3|both] [--depth N] [--vcpus 1|2] [--time-limit S] [--json]

Bad input exits 2 with one line `lazytsc: error: FILE:LINE: field: what was expected`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .scenario import Scenario, ScenarioError, load_scenario, resolve_scenario_path


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise CliError(message)


def _load(name: str) -> Scenario:
    return load_scenario(resolve_scenario_path(name))


def _modes(scenario: Scenario, requested: str | None) -> tuple[str, ...]:
    mode = requested or scenario.mode
    return ("classic", "lazy") if mode == "both" else (mode,)


def run_modes(scenario: Scenario, modes: Sequence[str]) -> dict[str, Any]:
    """Run the scenario once per mode; returns {mode: finished Engine}."""
    from .engine import Engine

    engines = {}
    for mode in modes:
        engine = Engine(scenario, mode)
        engine.run()
        engines[mode] = engine
    return engines


def cmd_run(args: argparse.Namespace) -> int:
    from .accounting import format_seed_table

    scenario = _load(args.scenario)
    engines = run_modes(scenario, _modes(scenario, args.mode))
    summaries = {mode: e.summary() for mode, e in engines.items()}
    if args.json:
        if len(summaries) == 1:
            print(json.dumps(next(iter(summaries.values())), sort_keys=False))
        else:
            print(json.dumps(summaries))
        return 0
    print(f"{scenario.name}  ({scenario.run.variant}, {len(scenario.run.vcpus)} vCPU, seed {scenario.run.seed})")
    print(format_seed_table(summaries))
    for mode, e in engines.items():
        if e.workload is not None:
            extra = ", ".join(f"{k} {v:,}" for k, v in e.workload.report().items())
            print(f"{mode}: {extra}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .expect import evaluate, run_results

    failures = 0
    total = 0
    for name in args.scenarios:
        scenario = _load(name)
        engines = run_modes(scenario, scenario.modes)
        per_mode = {mode: run_results(e) for mode, e in engines.items()}
        for outcome in evaluate(scenario, per_mode):
            total += 1
            if not outcome.ok:
                failures += 1
                label = outcome.expectation.describe()
                if outcome.mode not in ("both",) and not outcome.expectation.mode:
                    label = f"{outcome.mode}.{label}"
                print(f"{scenario.path}: {label}: expected {outcome.expected}, got {outcome.got}")
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def cmd_list(_args: argparse.Namespace) -> int:
    from .resources import builtin_scenarios

    for name, path in builtin_scenarios().items():
        scenario = load_scenario(path)
        print(f"{name:24} {scenario.name}")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from .export import write_events

    scenario = _load(args.scenario)
    mode = args.mode or ("lazy" if scenario.mode == "both" else scenario.mode)
    engine = run_modes(scenario, [mode])[mode]
    if args.format == "perfetto":  # binary protobuf: a file, or a non-terminal stdout
        from .perfetto import export_perfetto, write_perfetto

        title = f"{scenario.name} ({mode})"
        if args.output:
            export_perfetto(engine.log, args.output, title=title)
        elif sys.stdout.isatty():
            raise CliError("--format perfetto: expected -o FILE (the trace is binary)")
        else:
            write_perfetto(engine.log, sys.stdout.buffer, title=title)
        return 0
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        write_events(engine.log, out, args.format)
    finally:
        if args.output:
            out.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lazytsc", description="Timeline debugger engine for KVM lazy TSC-deadline (headless).")
    parser.add_argument("--version", action="version", version=f"lazytsc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("run", help="run a scenario to the end and print its exit table")
    p.add_argument("scenario", help="scenario file, or a built-in name (see `lazytsc list`)")
    p.add_argument("--mode", choices=("classic", "lazy", "both"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check", help="evaluate the [[expect]] blocks of scenarios")
    p.add_argument("scenarios", nargs="+")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("list", help="list the built-in scenarios")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("events", help="export a run's event log")
    p.add_argument("scenario")
    p.add_argument("--mode", choices=("classic", "lazy"))
    p.add_argument("--format", choices=("csv", "json", "perfetto"), default="csv",
                   help="perfetto: a trace ui.perfetto.dev opens")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_events)
    from .sweep_cli import add_sweep_parser

    add_sweep_parser(sub)
    from .explore.cli import add_explore_parser

    add_explore_parser(sub)
    try:
        from .traces.cli import add_trace_parser, run_trace
    except ImportError:
        pass
    else:
        p = add_trace_parser(sub)
        p.set_defaults(func=run_trace)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except (CliError, ScenarioError) as exc:
        print(f"lazytsc: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a trace importer or other input error with a message
        name = type(exc).__name__
        if name in ("TraceError",):
            print(f"lazytsc: error: {exc}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
