"""Event log and exit table exports (CSV, JSON, Markdown), shared by the CLI and the GUI."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from .eventlog import EventLog
from .taxonomy import EXIT_NAMES, KIND_FIELDS, KIND_NAMES, MSR_SUB_NAMES

EVENT_HEADER = ("index", "time_ns", "vcpu", "kind", "exit", "sub", "a_name", "a", "b_name", "b", "parent")


def event_rows(log: EventLog, start: int = 0, stop: int | None = None):
    cols = log.columns()
    stop = len(log) if stop is None else stop
    for i in range(start, stop):
        kind = int(cols["kind"][i])
        exit_code = int(cols["exit"][i])
        sub = int(cols["sub"][i])
        a_name, b_name = KIND_FIELDS.get(kind, ("a", "b"))
        yield (
            i,
            int(cols["time"][i]),
            int(cols["vcpu"][i]),
            KIND_NAMES.get(kind, str(kind)),
            EXIT_NAMES.get(exit_code, "") if exit_code >= 0 else "",
            MSR_SUB_NAMES.get(sub, "") if sub >= 0 else "",
            a_name,
            int(cols["a"][i]),
            b_name,
            int(cols["b"][i]),
            int(cols["parent"][i]),
        )


def write_events(log: EventLog, out: TextIO, fmt: str = "csv") -> None:
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(EVENT_HEADER)
        writer.writerows(event_rows(log))
    elif fmt == "json":
        out.write("[\n")
        first = True
        for row in event_rows(log):
            out.write(("" if first else ",\n") + json.dumps(dict(zip(EVENT_HEADER, row, strict=True))))
            first = False
        out.write("\n]\n")
    else:
        raise ValueError(f"unknown format {fmt!r}")


def exit_table_rows(summaries: dict[str, dict]) -> list[list[str]]:
    """Rows [label, count per mode...] of the exit table (reasons, then msr-write subs)."""
    modes = list(summaries)
    first = summaries[modes[0]]["exits"]
    rows = [["total"] + [str(summaries[m]["exits"]["total"]) for m in modes]]
    for reason in first["by_reason"]:
        rows.append([reason] + [str(summaries[m]["exits"]["by_reason"][reason]) for m in modes])
    for sub in first["msr_write"]:
        rows.append([f"msr-write: {sub}"] + [str(summaries[m]["exits"]["msr_write"][sub]) for m in modes])
    return rows


def write_exit_table(summaries: dict[str, dict], out: TextIO, fmt: str = "csv") -> None:
    modes = list(summaries)
    rows = exit_table_rows(summaries)
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(["VM exits", *modes])
        writer.writerows(rows)
    elif fmt == "markdown":
        out.write("| VM exits | " + " | ".join(modes) + " |\n")
        out.write("|---|" + "---:|" * len(modes) + "\n")
        for row in rows:
            out.write("| " + " | ".join(row) + " |\n")
    else:
        raise ValueError(f"unknown format {fmt!r}")
