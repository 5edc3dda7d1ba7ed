"""`lazytsc`: the headless CLI over the engine (DESIGN.md section 4). Never imports Qt.

    lazytsc run SCENARIO [--mode classic|lazy|both] [--json] [--max-events N]
    lazytsc check SCENARIO... [--max-events N]
    lazytsc trace FILE [--json] [--what-if lazy]
    lazytsc list
    lazytsc events SCENARIO [--mode M] [--format csv|json] [-o FILE] [--max-events N]
    lazytsc sweep SCENARIO --set key=v1,v2,... [--mode M] [--jobs N] [--json|--csv]
    lazytsc explore [--variant v2|v3|both] [--depth N] [--vcpus 1|2] [--time-limit S] [--json]

Bad input exits 2 with one line `lazytsc: error: FILE:LINE: field: what was expected`
(file names and values with control characters escaped). Runs stop at an event limit
(`--max-events`, default 10,000,000) and show progress on stderr when it is a terminal.
`-o FILE` is written atomically; output into a closed pipe (`| head`) ends quietly.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .quoting import escape_controls, quote_path
from .runner import (
    DEFAULT_MAX_EVENTS,
    RunLimitExceeded,
    RunProgress,
    TerminalProgress,
    event_limit,
    run_to_end,
)
from .scenario import Scenario, ScenarioError, load_scenario, resolve_scenario_path

EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process killed by SIGPIPE


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


def run_modes(
    scenario: Scenario,
    modes: Sequence[str],
    max_events: int | None = DEFAULT_MAX_EVENTS,
    progress: Callable[[RunProgress], None] | None = None,
) -> dict[str, Any]:
    """Run the scenario once per mode; returns {mode: finished Engine}.

    Raises CliError naming the scenario when a run passes `max_events` (None/0: no limit).
    """
    from .engine import Engine

    engines = {}
    for mode in modes:
        engine = Engine(scenario, mode)
        try:
            run_to_end(engine, scenario.run.duration_ns, max_events, progress, mode)
        except RunLimitExceeded as exc:
            raise CliError(f"{quote_path(scenario.path or scenario.name)}: {exc}") from None
        finally:
            clear = getattr(progress, "clear", None)
            if clear is not None:
                clear()
        engines[mode] = engine
    return engines


def _progress(label: str = "") -> TerminalProgress | None:
    return TerminalProgress.for_stderr(label)


def _non_negative(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"an event count (got {text!r})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a count >= 0 (got {text!r})")
    return value


def _add_limit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-events",
        type=_non_negative,
        default=None,
        metavar="N",
        help=f"stop a run that logs more than N events (default {DEFAULT_MAX_EVENTS:,}, about 400 MB; 0: no limit); "
        "a scenario's max_events raises the default for its runs",
    )


def check_output_path(path: str) -> None:
    """Refuse an output path that cannot be written, before a long run rather than after."""
    from .atomic import resolve_target

    name = quote_path(path)
    try:
        target = resolve_target(path)
        if target.is_dir():
            raise CliError(f"{name}: a file name for the output (this is a directory)")
        parent = target.parent
        if not parent.is_dir():
            raise CliError(f"{name}: an output file in an existing directory ({quote_path(parent)} does not exist)")
        if not os.path.lexists(target) and not os.access(parent, os.W_OK | os.X_OK):
            raise CliError(f"{name}: a writable output file (cannot create files in {quote_path(parent)})")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CliError(f"{name}: a writable output file ({reason})") from None


def cmd_run(args: argparse.Namespace) -> int:
    from . import parallel_modes as pm
    from .accounting import format_seed_table

    scenario = _load(args.scenario)
    modes = _modes(scenario, args.mode)
    if pm.use_parallel(scenario, modes, args.jobs):  # long runs: one process per mode
        try:
            results = pm.run_parallel(scenario, modes, event_limit(args.max_events, scenario.max_events), pm.ModesProgress(modes))
        except pm.ModeRunError as exc:
            raise CliError(f"{quote_path(scenario.path or scenario.name)}: {exc}") from None
        summaries = {mode: r.summary for mode, r in results.items()}
        reports = {mode: r.report for mode, r in results.items()}
    else:
        engines = run_modes(scenario, modes, event_limit(args.max_events, scenario.max_events), _progress())
        summaries = {mode: e.summary() for mode, e in engines.items()}
        reports = {mode: e.workload.report() if e.workload is not None else None for mode, e in engines.items()}
    if args.json:
        if len(summaries) == 1:
            print(json.dumps(next(iter(summaries.values())), sort_keys=False))
        else:
            print(json.dumps(summaries))
        return 0
    print(f"{escape_controls(scenario.name)}  ({scenario.run.variant}, {len(scenario.run.vcpus)} vCPU, seed {scenario.run.seed})")
    print(format_seed_table(summaries))
    workload = scenario.workload[0] if scenario.workload else None
    if len(summaries) > 1 and pm.at_published_scale(summaries, workload, scenario.run.variant):
        print(f"\nAt the published scale, beside {'the seed' if scenario.run.variant == 'v2' else 'V3'}'s own counts:")
        print(pm.format_vs_published(summaries, scenario.run.variant))
    for mode, report in reports.items():
        if report is not None:
            extra = ", ".join(f"{k} {v:,}" for k, v in report.items())
            print(f"{mode}: {extra}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .expect import evaluate, run_results

    failures = 0
    total = 0
    for name in args.scenarios:
        scenario = _load(name)
        engines = run_modes(scenario, scenario.modes, event_limit(args.max_events, scenario.max_events), _progress(scenario.name))
        per_mode = {mode: run_results(e) for mode, e in engines.items()}
        for outcome in evaluate(scenario, per_mode):
            total += 1
            if not outcome.ok:
                failures += 1
                label = outcome.expectation.describe()
                if outcome.mode not in ("both",) and not outcome.expectation.mode:
                    label = f"{outcome.mode}.{label}"
                # names come from the file: escaped, so a scenario cannot drive the terminal
                print(f"{quote_path(scenario.path)}: {escape_controls(label)}: expected {outcome.expected}, got {outcome.got}")
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def cmd_list(_args: argparse.Namespace) -> int:
    from .resources import builtin_scenarios

    for name, path in builtin_scenarios().items():
        scenario = load_scenario(path)
        print(f"{name:24} {escape_controls(scenario.name)}")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from .export import write_events

    if args.output:
        check_output_path(args.output)
    scenario = _load(args.scenario)
    mode = args.mode or ("lazy" if scenario.mode == "both" else scenario.mode)
    engine = run_modes(scenario, [mode], event_limit(args.max_events, scenario.max_events), _progress())[mode]
    if args.format == "perfetto":  # binary protobuf: a file, or a non-terminal stdout
        from .perfetto import write_perfetto

        title = f"{scenario.name} ({mode})"
        if args.output:
            return _write_output(args.output, lambda out: write_perfetto(engine.log, out, title=title), binary=True)
        if sys.stdout.isatty():
            raise CliError("--format perfetto: expected -o FILE (the trace is binary)")
        sys.stdout.flush()
        write_perfetto(engine.log, sys.stdout.buffer, title=title)
        return 0
    if not args.output:
        write_events(engine.log, sys.stdout, args.format)
        return 0
    return _write_output(args.output, lambda out: write_events(engine.log, out, args.format))


def _write_output(path: str, write: Callable[[Any], Any], binary: bool = False) -> int:
    """Write an output file atomically (lazytsc.atomic); a failure leaves the old file as it was."""
    from .atomic import atomic_open

    try:
        with atomic_open(path, newline=None if binary else "", binary=binary) as out:
            write(out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(f"{quote_path(path)}: a writable output file ({reason}; the file was not changed)") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lazytsc", description="Timeline debugger engine for KVM lazy TSC-deadline (headless).")
    from .engine_build import describe

    parser.add_argument("--version", action="version", version=f"lazytsc {__version__} ({describe()})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("run", help="run a scenario to the end and print its exit table")
    p.add_argument("scenario", help="scenario file, or a built-in name (see `lazytsc list`)")
    p.add_argument("--mode", choices=("classic", "lazy", "both"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--jobs", type=int, help="processes for --mode both (default: 2 for runs of >= 1 s simulated)")
    _add_limit(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check", help="evaluate the [[expect]] blocks of scenarios")
    p.add_argument("scenarios", nargs="+")
    _add_limit(p)
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("list", help="list the built-in scenarios")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("events", help="export a run's event log")
    p.add_argument("scenario")
    p.add_argument("--mode", choices=("classic", "lazy"))
    p.add_argument("--format", choices=("csv", "json", "perfetto"), default="csv",
                   help="perfetto: a trace ui.perfetto.dev opens")
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    _add_limit(p)
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


def _error(message: str) -> int:
    print(f"lazytsc: error: {escape_controls(message)}", file=sys.stderr)
    return 2


def _stdout_closed() -> int:
    """The reader of our stdout went away (`| head`): stop quietly, like a tool killed by SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return _stdout_closed()
        if getattr(exc, "filename", None) is None and exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG):
            return _error(f"<stdout>: writable output ({exc.strerror})")
        raise
    except (CliError, ScenarioError) as exc:
        return _error(str(exc))
    except Exception as exc:  # a trace importer or other input error with a message
        name = type(exc).__name__
        if name in ("TraceError",):
            return _error(str(exc))
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
