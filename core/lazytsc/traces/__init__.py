"""Importers for real KVM traces (ftrace, trace-cmd, perf script, perf kvm stat).

Public API:
    import_trace(path, keep_events=False) -> TraceResult
    TraceResult.summary() / .to_eventlog() / .deadline_writes(vcpu) / .timer_interrupts(vcpu)
    format_trace_table(result) -> str
    TraceError (bad input files; message `FILE:LINE: field: what was expected`)
    parse_line(line) -> TraceLine | str | None (one line, for inspectors and tests)
"""

from .errors import TraceError
from .importer import TraceResult, import_trace
from .lines import TraceLine, parse_line
from .report import format_trace_table

__all__ = [
    "TraceError",
    "TraceLine",
    "TraceResult",
    "format_trace_table",
    "import_trace",
    "parse_line",
]
