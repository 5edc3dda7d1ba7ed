"""`lazytsc sweep`: a scenario run over the cartesian product of `--set` settings.

    lazytsc sweep SCENARIO --set key=v1,v2,... [--set ...] [--mode classic|lazy|both]
                  [--jobs N] [--json|--csv] [-o FILE] [--dask ADDRESS]

Every point is validated before anything runs; a bad key or value exits 2 with one line
`lazytsc: error: --set KEY=VALUE: field: what was expected`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .cli import CliError
from .scenario import Scenario, load_scenario, resolve_scenario_path
from .sweep import Setting, build_points, parse_setting
from .sweep_run import ProgressFn, ProgressLine, SweepSetupError, make_tasks, run_tasks
from .sweep_table import SweepResult


def add_sweep_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sweep",
        help="run a scenario over the cartesian product of settings",
        description="Run SCENARIO at every combination of the --set values; one row per point.",
    )
    p.add_argument("scenario", help="scenario file, or a built-in name (see `lazytsc list`)")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a scenario field and its values (integers also as a range a..b): seed, duration, variant, "
        "vcpus, defaults.FIELD, host.FIELD, workload.PARAM, vcpu.N.FIELD, script.N.FIELD",
    )
    p.add_argument("--mode", choices=("classic", "lazy", "both"), help="driver(s) to run (default: the scenario's)")
    p.add_argument("--jobs", type=_jobs, metavar="N", help="worker processes (default: one per core)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="every figure of every point as JSON")
    fmt.add_argument("--csv", action="store_true", help="every figure of every point as CSV")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--dask", metavar="ADDRESS", help="run the points on this Dask scheduler (needs lazytsc[dask])")
    p.set_defaults(func=cmd_sweep)
    return p


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a number of worker processes >= 1 (got {text!r})")
    return value


def run_sweep(
    scenario: Scenario,
    settings: Sequence[Setting],
    modes: Sequence[str],
    label: str = "",
    jobs: int | None = None,
    dask_address: str | None = None,
    progress: ProgressFn | None = None,
    cancel=None,
) -> SweepResult:
    """Validate every point, run them all, and collect the rows (shared with the GUI)."""
    points = build_points(scenario.text, scenario.path, list(settings))
    tasks = make_tasks(points, modes)
    runs = run_tasks(tasks, jobs=jobs, dask_address=dask_address, progress=progress, cancel=cancel)
    return SweepResult.from_runs(scenario.name, label or scenario.path, [s.key for s in settings], modes, points, runs)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_text

    settings = [parse_setting(text) for text in args.settings]
    scenario = load_scenario(resolve_scenario_path(args.scenario))
    mode = args.mode or scenario.mode
    modes = ("classic", "lazy") if mode == "both" else (mode,)
    progress = ProgressLine()
    try:
        result = run_sweep(scenario, settings, modes, args.scenario, args.jobs, args.dask, progress)
    except SweepSetupError as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.finish()
    text = result.to_json() if args.json else result.to_csv() if args.csv else result.to_text()
    if args.output:
        try:
            atomic_write_text(args.output, text)
        except OSError as exc:
            raise CliError(f"{args.output}: a writable file ({exc.strerror or exc})") from None
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `| head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
            return 141
    return 0
