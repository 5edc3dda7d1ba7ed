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
