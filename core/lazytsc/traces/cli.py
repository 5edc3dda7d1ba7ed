"""`lazytsc trace FILE [--json] [--what-if lazy]`: import a recorded KVM trace.

The lead's `lazytsc.cli` adds this subcommand with `add_trace_parser` and calls
`run_trace`; bad input raises `TraceError`, which that layer prints as
`lazytsc: error: FILE:LINE: field: what was expected` with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import TraceError
from .importer import import_trace
from .report import format_trace_table


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_trace_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `trace` subcommand to an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "trace",
        help="import a recorded KVM trace (ftrace, trace-cmd report, perf script,"
        " perf kvm stat; plain or gzip) and print its exit table",
        description="Import a recorded KVM trace and account its VM exits like `lazytsc run`.",
    )
    p.add_argument("file", help="trace text file (gzip is detected by its magic bytes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--what-if",
        choices=("lazy",),
        dest="what_if",
        help="replay the recorded MSR 0x6e0 writes through the lazy guest driver and host"
        " model and compare",
    )
    p.add_argument(
        "--tsc-khz",
        type=_positive_int,
        dest="tsc_khz",
        help="guest TSC frequency for the what-if (default: fitted from timer interrupts)",
    )
    p.add_argument("--variant", choices=("v2", "v3"), default="v2",
                   help="protocol variant of the what-if replay (default v2, the seed)")
    p.add_argument("--max-requests", type=_positive_int, dest="max_requests",
                   help="replay at most this many deadline writes (default 250000)")
    p.set_defaults(func=run_trace)
    return p


def run_trace(args: argparse.Namespace) -> int:
    """Run `lazytsc trace`; returns the exit status (TraceError propagates to the caller)."""
    result = import_trace(args.file)
    what = None
    if getattr(args, "what_if", None):
        from .whatif import MAX_REQUESTS, what_if

        what = what_if(
            result,
            args.what_if,
            tsc_khz=getattr(args, "tsc_khz", None),
            variant=getattr(args, "variant", "v2") or "v2",
            max_requests=getattr(args, "max_requests", None) or MAX_REQUESTS,
        )
    if getattr(args, "json", False):
        out = result.summary()
        if what is not None:
            out["what_if"] = what.as_dict()
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(format_trace_table(result))
    if what is not None:
        from .whatif import format_what_if

        print()
        print(format_what_if(what))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m lazytsc.traces.cli FILE`), same errors as `lazytsc`."""
    parser = argparse.ArgumentParser(prog="lazytsc trace")
    sub = parser.add_subparsers(dest="command", required=True)
    add_trace_parser(sub)
    args = parser.parse_args(["trace", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_trace(args)
    except TraceError as exc:
        print(f"lazytsc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
