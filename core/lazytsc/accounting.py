"""Exit and timer accounting over an event log (vectorised, any prefix).

The same function answers `lazytsc run --json`, the GUI's exit table at the
cursor (a prefix of the log), and per-event attribution (a subset of rows).
"""

from __future__ import annotations

import numpy as np

from .eventlog import EventLog
from .taxonomy import EXIT_NAMES, EXIT_ORDER, MSR_SUB_NAMES, MSR_SUB_ORDER, Exit, Kind

# The seed's table: rows always shown (the others only when non-zero), then the timer rows.
ALWAYS_REASONS = ("intr", "halt", "msr-write", "preemption-timer")
ALWAYS_SUBS = ("apic-icr", "tsc-deadline")
TIMER_ROWS = (
    "deadline_requests",
    "msr_writes",
    "msr_writes_skipped",
    "interrupts",
    "interrupts_useful",
    "spurious",
    "late",
    "lost",
    "host_expiries",
    "host_timer_fires",
)
_EXIT_CODE = {name: code for code, name in EXIT_NAMES.items()}
_SUB_CODE = {name: code for code, name in MSR_SUB_NAMES.items()}


def exit_table(exit_col: np.ndarray, sub_col: np.ndarray) -> dict:
    """{"total", "by_reason": {...}, "msr_write": {...}} from exit/sub columns."""
    exits = exit_col[exit_col >= 0]
    by = np.bincount(exits.astype(np.int64), minlength=len(EXIT_NAMES)) if exits.size else np.zeros(len(EXIT_NAMES), dtype=np.int64)
    subs = sub_col[(exit_col == Exit.MSR_WRITE) & (sub_col >= 0)]
    sb = np.bincount(subs.astype(np.int64), minlength=len(MSR_SUB_NAMES)) if subs.size else np.zeros(len(MSR_SUB_NAMES), dtype=np.int64)
    return {
        "total": int(exits.size),
        "by_reason": {name: int(by[_EXIT_CODE[name]]) for name in EXIT_ORDER},
        "msr_write": {name: int(sb[_SUB_CODE[name]]) for name in MSR_SUB_ORDER},
    }


def summarize(log: EventLog, upto: int | None = None) -> dict:
    """DESIGN.md section 4's object (without `mode`) for events [0, upto)."""
    n = len(log) if upto is None else min(upto, len(log))
    kind = log.column("kind")[:n]
    exit_col = log.column("exit")[:n]
    sub_col = log.column("sub")[:n]
    time = log.column("time")[:n]
    counts = np.bincount(kind.astype(np.int64), minlength=len(Kind)) if n else np.zeros(len(Kind), dtype=np.int64)
    table = exit_table(exit_col, sub_col)
    return summary_from_counts(counts, table, int(n), int(time[-1]) if n else 0)


def summary_from_counts(counts: np.ndarray, table: dict, events: int, sim_time_ns: int) -> dict:
    """The summary object from per-kind counts and the exit table: one definition of every
    figure, shared by `summarize` and incremental counters (the GUI's prefix index)."""
    return {
        "events": events,
        "sim_time_ns": sim_time_ns,
        "exits": table,
        "timer": {
            "deadline_requests": int(counts[Kind.DEADLINE_REQUEST]),
            "msr_writes": table["msr_write"]["tsc-deadline"],
            "msr_writes_skipped": int(counts[Kind.DEADLINE_SKIP]),
            "interrupts": int(counts[Kind.GUEST_TIMER_IRQ]),
            "interrupts_useful": int(counts[Kind.GUEST_TIMER_IRQ] - counts[Kind.HAZ_SPURIOUS]),
            "spurious": int(counts[Kind.HAZ_SPURIOUS]),
            "late": int(counts[Kind.HAZ_LATE]),
            "lost": int(counts[Kind.HAZ_LOST]),
            # the host-side cost: every expiry KVM handles (apic_timer_expired), of which
            # host timer firings (hrtimer callbacks and preemption-timer exits)
            "host_expiries": int(counts[Kind.TIMER_EXPIRED] + counts[Kind.TIMER_COALESCED]),
            "host_timer_fires": int(counts[Kind.TIMER_FIRE]),
            "expiries_dropped": int(counts[Kind.TIMER_DROPPED]),
        },
        "hazards": {
            "spurious": int(counts[Kind.HAZ_SPURIOUS]),
            "late": int(counts[Kind.HAZ_LATE]),
            "lost": int(counts[Kind.HAZ_LOST]),
            "stale_pending": int(counts[Kind.HAZ_STALE_PENDING]),
            "equal_skip": int(counts[Kind.HAZ_EQUAL_SKIP]),
            "stale_armed": int(counts[Kind.HAZ_STALE_ARMED]),
            "sw_kick_delayed": int(counts[Kind.HAZ_SW_KICK_DELAYED]),
        },
    }


def caused_by(log: EventLog, index: int, max_depth: int = 64) -> np.ndarray:
    """Indices of the event and every event it caused (transitively, via `parent`).

    Children always come after their parent, so each level is one vectorised pass
    over the rows after `index`.
    """
    parent = log.column("parent")[index + 1 :]
    found = [np.array([index])]
    frontier = found[0]
    for _ in range(max_depth):
        kids = np.nonzero(np.isin(parent, frontier))[0] + index + 1
        if kids.size == 0:
            break
        found.append(kids)
        frontier = kids
    return np.unique(np.concatenate(found))


def percent(part: int, whole: int) -> str:
    return f"{(100.0 * part / whole):.0f}%" if whole else "0%"


def format_seed_table(results: dict[str, dict]) -> str:
    """The seed's table layout: one column per mode, counts and % (msr-write subs of msr-write)."""
    modes = list(results)
    rows: list[tuple[str, list[str]]] = []
    rows.append(("total", [f"{results[m]['exits']['total']:,}" for m in modes]))
    for reason in EXIT_ORDER:
        values = [results[m]["exits"]["by_reason"][reason] for m in modes]
        if reason not in ALWAYS_REASONS and not any(values):
            continue
        rows.append(
            (reason, [f"{results[m]['exits']['by_reason'][reason]:,} ({percent(results[m]['exits']['by_reason'][reason], results[m]['exits']['total'])})" for m in modes])
        )
    for sub in MSR_SUB_ORDER:
        values = [results[m]["exits"]["msr_write"][sub] for m in modes]
        if sub not in ALWAYS_SUBS and not any(values):
            continue
        rows.append(
            (
                f"msr-write: {sub}",
                [f"{results[m]['exits']['msr_write'][sub]:,} ({percent(results[m]['exits']['msr_write'][sub], results[m]['exits']['by_reason']['msr-write'])})" for m in modes],
            )
        )
    rows.append(("", ["" for _ in modes]))
    for key in TIMER_ROWS:
        # a recorded trace has no host-side timer figures: "n/a", never a made-up 0
        cells = [f"{results[m]['timer'][key]:,}" if key in results[m]["timer"] else "n/a" for m in modes]
        if any(cell != "n/a" for cell in cells):
            rows.append((f"timer: {key}", cells))
    width0 = max(len("VM exits"), *(len(r[0]) for r in rows))
    widths = [max(len(m), *(len(r[1][i]) for r in rows)) for i, m in enumerate(modes)]
    lines = ["  ".join(["VM exits".ljust(width0)] + [m.rjust(w) for m, w in zip(modes, widths, strict=True)])]
    lines.append("  ".join(["-" * width0] + ["-" * w for w in widths]))
    for label, cells in rows:
        lines.append("  ".join([label.ljust(width0)] + [c.rjust(w) for c, w in zip(cells, widths, strict=True)]).rstrip())
    return "\n".join(lines)
