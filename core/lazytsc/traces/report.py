"""Text tables of imported traces, in the seed's layout (DESIGN.md section 1).

Why the seed's layout: users compare their recording against the RFC's table, so
rows are the seed's reasons with `count (share%)`, and the msr-write sub-reasons
are shares of msr-write, exactly as the seed printed them. The table itself is
`lazytsc.accounting.format_seed_table`, the one `lazytsc run` prints, so a
recording and a simulated run read the same.
"""

from __future__ import annotations

from ..accounting import format_seed_table


def format_trace_table(result: object) -> str:
    """The `lazytsc trace FILE` text: exit table, timer counts, line accounting, warnings.

    `result` is a TraceResult (or anything with a `summary()` of the same shape).
    """
    summary: dict = result.summary()  # type: ignore[attr-defined]
    out = [f"trace: {getattr(result, 'path', '?')} ({summary['format']})", ""]
    out.append(format_seed_table({"recorded": summary}))
    if summary["timer_irq_source"] != "none":
        out.append(f"(timer interrupts counted from {summary['timer_irq_source']})")
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
    raw = summary.get("raw_reasons") or {}
    if raw:
        out.append("")
        out.append(f"{'exit reason as recorded':<32} {'exits':>12}  seed reason")
        for name, row in raw.items():
            out.append(f"{name[:32]:<32} {row['count']:>12,}  {row['reason']}")
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
