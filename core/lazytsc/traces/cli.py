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

MIN_TSC_KHZ, MAX_TSC_KHZ = 1_000, 10_000_000  # VcpuConfig.tsc_khz's range (1 MHz .. 10 GHz)


def _tsc_khz(text: str | None) -> int | None:
    """--tsc-khz, checked here (not by argparse) so a bad value is one error line."""
    if text is None:
        return None
    try:
        value = int(str(text).replace("_", ""), 0) if len(str(text)) <= 32 else None
    except ValueError:
        value = None
    if value is None or not MIN_TSC_KHZ <= value <= MAX_TSC_KHZ:
        shown = str(text) if len(str(text)) <= 32 else str(text)[:32] + "..."
        raise TraceError(
            f"--tsc-khz: expected the guest TSC frequency in kHz, an integer from {MIN_TSC_KHZ:,}"
            f" to {MAX_TSC_KHZ:,} (e.g. 2000000 for 2 GHz), got {shown!r}"
        )
    return value


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
        help="import a recorded KVM trace (trace.dat, ftrace, trace-cmd report, perf script,"
        " perf kvm stat; plain, gzip, xz or zstd; `-` for stdin) and print its exit table",
        description="Import a recorded KVM trace and account its VM exits like `lazytsc run`.",
    )
    p.add_argument(
        "file",
        help="trace file: text (ftrace, trace-cmd report, perf script, perf kvm stat), or a"
        " binary trace.dat; plain, gzip, xz or zstd (detected by content); `-` reads standard"
        " input (trace-cmd report | lazytsc trace -)",
    )
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
        dest="tsc_khz",
        help="guest TSC frequency in kHz for the what-if (default: inferred from the trace where"
        " it can be; required when it cannot)",
    )
    p.add_argument("--perfetto", metavar="OUT", help="also write the trace as a Perfetto trace"
                   " (open it in ui.perfetto.dev)")
    p.add_argument("--variant", choices=("v2", "v3"), default="v2",
                   help="protocol variant of the what-if replay (default v2, the seed)")
    p.add_argument("--max-requests", type=_positive_int, dest="max_requests",
                   help="replay at most this many deadline writes (default 250000)")
    p.set_defaults(func=run_trace)
    return p


def run_trace(args: argparse.Namespace) -> int:
    """Run `lazytsc trace`; returns the exit status (TraceError propagates to the caller)."""
    tsc_khz = _tsc_khz(getattr(args, "tsc_khz", None))
    perfetto_out = getattr(args, "perfetto", None)
    result = import_trace(args.file, keep_events=bool(perfetto_out))
    if perfetto_out:
        from ..perfetto import export_perfetto

        try:
            export_perfetto(result.to_eventlog(), perfetto_out, title=f"trace {result.path}",
                            note_names=result.note_names)
        except OSError as exc:
            raise TraceError(f"{perfetto_out}: --perfetto: expected a writable file"
                             f" ({exc.strerror or exc})") from None
    what = None
    if getattr(args, "what_if", None):
        from .whatif import MAX_REQUESTS, what_if

        what = what_if(
            result,
            args.what_if,
            tsc_khz=tsc_khz,
            require_rate=True,
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
