"""Exports: events (CSV, JSON), the exit table (CSV, Markdown), the timeline (PNG, SVG).

The data exports are plain functions (no Qt) so they can run in the worker
thread; every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
from lazytsc.atomic import atomic_open
from lazytsc.eventlog import EventLog
from lazytsc.taxonomy import EXIT_NAMES, KIND_FIELDS, KIND_NAMES, MSR_SUB_NAMES

from .exits_panel import get_path, share, table_rows

CSV_HEADER = ["index", "time_ns", "vcpu", "kind", "exit", "sub", "a_name", "a", "b_name", "b", "parent"]
CHUNK = 50_000


def _lookup(names: dict[int, str], size: int, offset: int = 0) -> np.ndarray:
    table = np.empty(size, dtype=object)
    table[:] = ""
    for code, name in names.items():
        if 0 <= code + offset < size:
            table[code + offset] = name
    return table


_KIND = _lookup(KIND_NAMES, 256)
_EXIT = _lookup({k: v for k, v in EXIT_NAMES.items()}, 128, offset=1)  # code -1 -> ""
_SUB = _lookup({k: v for k, v in MSR_SUB_NAMES.items()}, 128, offset=1)
_A_NAME = _lookup({k: v[0] for k, v in KIND_FIELDS.items()}, 256)
_B_NAME = _lookup({k: v[1] for k, v in KIND_FIELDS.items()}, 256)


def _chunks(log: EventLog, rows: np.ndarray | None):
    n = len(log) if rows is None else len(rows)
    cols = {name: log.column(name) for name in ("time", "vcpu", "kind", "exit", "sub", "a", "b", "parent")}
    for start in range(0, n, CHUNK):
        sel = np.arange(start, min(n, start + CHUNK)) if rows is None else rows[start : start + CHUNK]
        kind = cols["kind"][sel].astype(np.int64)
        exit_code = cols["exit"][sel].astype(np.int64)
        sub = cols["sub"][sel].astype(np.int64)
        yield {
            "index": sel.tolist(),
            "time_ns": cols["time"][sel].tolist(),
            "vcpu": cols["vcpu"][sel].tolist(),
            "kind": _KIND[kind].tolist(),
            "exit": _EXIT[exit_code + 1].tolist(),
            "sub": np.where(exit_code >= 0, _SUB[sub + 1], "").tolist(),
            "a_name": _A_NAME[kind].tolist(),
            "a": cols["a"][sel].tolist(),
            "b_name": _B_NAME[kind].tolist(),
            "b": cols["b"][sel].tolist(),
            "parent": cols["parent"][sel].tolist(),
        }


def export_events_csv(log: EventLog, path: str | os.PathLike, rows: np.ndarray | None = None, job=None) -> int:
    """One row per event: index, time_ns, vcpu, kind, exit, sub, a_name, a, b_name, b, parent."""
    n = 0
    total = len(log) if rows is None else len(rows)
    with atomic_open(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_HEADER)
        for chunk in _chunks(log, rows):
            w.writerows(zip(*(chunk[k] for k in CSV_HEADER), strict=True))
            n += len(chunk["index"])
            if job is not None:
                job.check()
                job.report(n / max(1, total), f"{n:,} events written")
    return n


def export_events_json(log: EventLog, path: str | os.PathLike, rows: np.ndarray | None = None, meta: dict | None = None, job=None) -> int:
    """`{"format": "lazytsc-events", "version": 1, ..., "events": [{...}, ...]}` (null for no exit/parent)."""
    n = 0
    total = len(log) if rows is None else len(rows)
    head = {"format": "lazytsc-events", "version": 1, **(meta or {}), "count": total}
    with atomic_open(path) as fh:
        fh.write(json.dumps(head)[:-1] + ', "events": [\n')
        first = True
        for chunk in _chunks(log, rows):
            keys = CSV_HEADER
            for values in zip(*(chunk[k] for k in keys), strict=True):
                rec = dict(zip(keys, values, strict=True))
                rec["exit"] = rec["exit"] or None
                rec["sub"] = rec["sub"] or None
                rec["parent"] = rec["parent"] if rec["parent"] >= 0 else None
                fh.write(("" if first else ",\n") + json.dumps(rec, separators=(",", ":")))
                first = False
            n += len(chunk["index"])
            if job is not None:
                job.check()
                job.report(n / max(1, total), f"{n:,} events written")
        fh.write("\n]}\n")
    return n


def exit_table(cursor: dict, whole: dict) -> list[tuple[str, int, str, int, str]]:
    return [(label, get_path(cursor, p), share(cursor, p), get_path(whole, p), share(whole, p)) for label, p in table_rows(whole)]


def export_exits_csv(cursor: dict, whole: dict, path: str | os.PathLike) -> None:
    with atomic_open(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "at_cursor", "at_cursor_share", "whole_run", "whole_run_share"])
        for row in exit_table(cursor, whole):
            w.writerow(row)


def exits_markdown(cursor: dict, whole: dict, title: str = "", position: int = 0) -> str:
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append(f"| VM exits | at cursor (event {position:,}) | whole run |")
    lines.append("|---|---:|---:|")
    for label, c, cp, w, wp in exit_table(cursor, whole):
        cells = [f"{c:,}" + (f" ({cp})" if cp else ""), f"{w:,}" + (f" ({wp})" if wp else "")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def export_exits_markdown(cursor: dict, whole: dict, path: str | os.PathLike, title: str = "", position: int = 0) -> None:
    with atomic_open(path) as fh:
        fh.write(exits_markdown(cursor, whole, title, position))


def export_events_perfetto(log: EventLog, path: str | os.PathLike, title: str = "lazytsc", note_names=(), job=None) -> int:
    """A Perfetto trace of the run or imported trace (lazytsc.perfetto); returns its events."""
    from lazytsc.perfetto import export_perfetto

    export_perfetto(log, path, title=title, note_names=note_names)
    return len(log)
