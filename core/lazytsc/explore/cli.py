"""`lazytsc explore`: bounded exhaustive search of the protocol, minimal counterexamples.

    lazytsc explore [--variant v2|v3|both] [--depth N] [--vcpus 1|2] [--alphabet FILE]
                    [--time-limit S] [--setup NAME,...] [--jobs N] [-o DIR] [--json]

Prints one line per invariant and variant (where it fails, with the shortest shrunk
counterexample, or how deep it holds), then the counterexample files. Exit status 0
when every invariant holds, 1 when something was found, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import TextIO

from ..cli import CliError
from ..statusline import StatusLine
from .alphabet import DEFAULT_LETTERS, load_alphabet
from .run import Options, Report, explore
from .setups import DEFAULT_SETUPS, SETUPS

DEFAULT_DEPTH = 5
DEPTH_WITH_LIMIT = 12  # with --time-limit and no --depth: as deep as the time allows


def add_explore_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explore",
        help="exhaustive bounded search of the lazy TSC-deadline protocol for lost timers and hangs",
        description="Enumerate guest programs of up to --depth letters (deadlines relative to armed/pending, "
        "LVTT mask/mode, PV disable/enable, HLT, IPI, INIT, migration, TSC writes) under each host setup, "
        "check the invariants after every engine action, and write a minimal counterexample scenario for "
        "every violated one.",
    )
    p.add_argument("--variant", choices=("v2", "v3", "both"), default="both")
    p.add_argument("--depth", type=_positive("a depth >= 1"), help=f"letters per program (default {DEFAULT_DEPTH}; with --time-limit: as deep as it gets)")
    p.add_argument("--vcpus", type=int, choices=(1, 2), default=1)
    p.add_argument("--alphabet", metavar="FILE", help="TOML file choosing letters and their parameters")
    p.add_argument("--time-limit", type=_seconds, metavar="S", help="stop searching after S seconds (the depth reached is reported)")
    p.add_argument("--setup", metavar="NAME,...", help=f"host setups to search (default {','.join(DEFAULT_SETUPS)})")
    p.add_argument("--jobs", type=_positive("a number of worker processes >= 1"), metavar="N", help="worker processes (default: one per core)")
    p.add_argument("-o", "--output", metavar="DIR", default="explore-out", help="directory for counterexample scenarios (default explore-out)")
    p.add_argument("--json", action="store_true", help="print the whole report as one JSON object")
    p.set_defaults(func=cmd_explore)
    return p


def _positive(what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what} (got {text!r})")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value > 7 * 86400:
        raise argparse.ArgumentTypeError(f"seconds > 0 (got {text!r})")
    return value


def options_from_args(args: argparse.Namespace, argv: list[str] | None = None) -> Options:
    variants = ("v2", "v3") if args.variant == "both" else (args.variant,)
    setups = DEFAULT_SETUPS
    if args.setup:
        setups = tuple(x.strip() for x in args.setup.split(",") if x.strip())
        bad = [x for x in setups if x not in SETUPS]
        if bad or not setups:
            raise CliError(f"--setup: host setups among {', '.join(SETUPS)} (got {bad[0] if bad else args.setup!r})")
    letters, params = DEFAULT_LETTERS, {}
    if args.alphabet:
        alphabet = load_alphabet(args.alphabet)
        letters, params = alphabet.names, alphabet.params
    depth = args.depth or (DEPTH_WITH_LIMIT if args.time_limit else DEFAULT_DEPTH)
    command = "lazytsc explore " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[2:]))
    return Options(variants, setups, args.vcpus, depth, tuple(letters), params, args.time_limit, args.jobs, args.output, command.strip())


class ProgressLine:
    """`explore: depth 4/5  812 k states  4,100 letters/s  0:42` on a terminal; nothing elsewhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.line = StatusLine(stream)

    def __call__(self, status: dict) -> None:
        if not self.line.enabled:
            return
        tasks = status["tasks"].values()
        states = sum(t.get("states", 0) for t in tasks)
        rate = sum(t.get("rate", 0.0) for t in tasks if not t.get("finished"))
        depth = min((t.get("depth", 0) for t in tasks), default=0)
        self.line.show(f"explore: {status['done']}/{status['total']} searches, depth {depth}, {states:,} states, {rate:,.0f} letters/s, {int(status['seconds'])} s")

    def finish(self) -> None:
        self.line.clear()


def format_report(report: Report) -> str:
    lines = list(report.summary_lines())
    lines.append("")
    lines.append(f"{'variant':7} {'setup':10} {'depth':>5} {'states':>10} {'letters':>10} {'letters/s':>9} {'s':>7}  findings")
    for t in report.tasks:
        partial = f" (+{t.partial_states:,} at depth {t.depth_done + 1}, incomplete)" if t.partial_states else ""
        lines.append(
            f"{t.variant:7} {t.setup:10} {t.depth_done:>5} {t.states:>10,} {t.transitions:>10,} {t.rate:>9,.0f} {t.seconds:>7.1f}  {len(t.findings)}{partial}"
        )
    files = [f for f in report.findings if f.file]
    if files:
        lines.append("")
        lines.append("counterexamples (open with lazytsc-gui FILE; lazytsc check FILE):")
        for f in files:
            mark = "" if f.verified else f"  [NOT VERIFIED: {f.problem}]"
            lines.append(f"  {f.file}  {f.title}: {' '.join(f.program)}{mark}")
    lines.append("")
    lines.append(f"{len(report.findings)} findings in {report.seconds:.1f} s")
    return "\n".join(lines) + "\n"


def cmd_explore(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    progress = ProgressLine()
    start = time.monotonic()
    try:
        report = explore(opts, progress)
    except KeyboardInterrupt:
        progress.finish()
        return 130
    finally:
        progress.finish()
    del start
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        sys.stdout.write(format_report(report))
    return 1 if report.findings else 0
