"""Text tables of imported traces, in the seed's layout (DESIGN.md section 1).

Why the seed's layout: users compare their recording against the RFC's table, so
rows are the seed's reasons with `count (share%)`, and the msr-write sub-reasons
are shares of msr-write, exactly as the seed printed them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..taxonomy import EXIT_ORDER, MSR_SUB_ORDER

LABEL_WIDTH = 31


def _cell(n: int, whole: int) -> str:
    share = f"{100.0 * n / whole:.0f}%" if whole else "0%"
    return f"{n:,} ({share})"


def exit_table(titles: Sequence[str], columns: Sequence[dict[str, object]]) -> list[str]:
    """Rows of an exit table with one column per `exits` object (DESIGN.md section 4)."""
    widths = []
    cells: list[list[str]] = []
    for exits in columns:
        by_reason: dict[str, int] = exits["by_reason"]  # type: ignore[assignment]
        msr: dict[str, int] = exits["msr_write"]  # type: ignore[assignment]
        total: int = exits["total"]  # type: ignore[assignment]
        msr_total = by_reason.get("msr-write", 0)
        col = [f"{total:,}"]
        col += [_cell(by_reason.get(name, 0), total) for name in EXIT_ORDER]
        col += [_cell(msr.get(name, 0), msr_total) for name in MSR_SUB_ORDER]
        cells.append(col)
    labels = ["total", *EXIT_ORDER, *(f"msr-write: {name}" for name in MSR_SUB_ORDER)]
    for title, col in zip(titles, cells, strict=True):
        widths.append(max(len(title), *(len(c) for c in col)))
    head = f"{'VM exits':<{LABEL_WIDTH}}" + "".join(
        f"  {title:>{w}}" for title, w in zip(titles, widths, strict=True)
    )
    out = [head, "-" * len(head)]
    for i, label in enumerate(labels):
        out.append(
            f"{label:<{LABEL_WIDTH}}"
            + "".join(f"  {col[i]:>{w}}" for col, w in zip(cells, widths, strict=True))
        )
    return out


def format_trace_table(result: object) -> str:
    """The `lazytsc trace FILE` text: exit table, timer counts, line accounting, warnings.

    `result` is a TraceResult (or anything with a `summary()` of the same shape).
    """
    summary: dict = result.summary()  # type: ignore[attr-defined]
    out = [f"trace: {getattr(result, 'path', '?')} ({summary['format']})", ""]
    out += exit_table(["recorded"], [summary["exits"]])
    timer = summary["timer"]
    out += [
        "",
        f"tsc-deadline writes (MSR 0x6e0): {timer['msr_writes']:,}",
        f"timer interrupts (vector 0xec):  {timer['interrupts']:,}"
        f"  [{summary['timer_irq_source']}]",
    ]
    per_vcpu: dict = summary["per_vcpu"]
    if len(per_vcpu) > 1:
        out.append("")
        out.append(f"{'vCPU':<8} {'exits':>12} {'msr-write':>12} {'tsc-deadline':>13}"
                   f" {'timer irqs':>11}")
        for key, entry in per_vcpu.items():
            out.append(
                f"{key:<8} {entry['total']:>12,} {entry['by_reason']['msr-write']:>12,}"
                f" {entry['msr_write']['tsc-deadline']:>13,} {entry['timer_interrupts']:>11,}"
            )
    unknown = summary["unknown_events"]
    out += [
        "",
        f"lines {summary['lines']:,}: parsed {summary['parsed']:,}, skipped"
        f" {summary['skipped']:,}, ignored {summary['ignored']:,}, other tracepoints"
        f" {sum(unknown.values()):,}",
    ]
    if unknown:
        out.append("other tracepoints: " + ", ".join(f"{k} {v:,}" for k, v in unknown.items()))
    for example in summary["skipped_examples"]:
        out.append(f"skipped: {example}")
    for warning in summary["warnings"]:
        out.append(f"warning: {warning}")
    return "\n".join(out)
