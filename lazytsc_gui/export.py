"""Exports: events (CSV, JSON), the exit table (CSV, Markdown), the timeline (PNG, SVG).

The data exports are plain functions (no Qt) so they can run in the worker
thread; every file is written to a temporary name and renamed into place, and
gets the mode any other program would give it (0666 less the umask, or the mode
of the file it replaces). Images: `image_export` (title band, checked writes).
"""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from lazytsc.atomic import atomic_open
from lazytsc.eventlog import EventLog
from lazytsc.taxonomy import EXIT_NAMES, KIND_FIELDS, KIND_NAMES, MSR_SUB_NAMES

from .exits_panel import get_path, share, table_rows

IMAGE_SUFFIXES = {"png": ".png", "svg": ".svg"}


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextmanager
def user_file(path: str | os.PathLike, newline: str | None = None) -> Iterator:
    """atomic_open, then the mode a plain `open(path, "w")` would have left."""
    target = Path(path)
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    with atomic_open(target, newline=newline) as fh:
        yield fh
    os.chmod(target, old_mode if old_mode is not None else 0o666 & ~current_umask())


def image_path(what: str, path: str) -> str:
    """The path an image export writes: the format's suffix added when it has none."""
    suffix = IMAGE_SUFFIXES[what]
    p = Path(path)
    if p.suffix.lower() != suffix:
        if p.suffix.lower() in IMAGE_SUFFIXES.values():
            raise ValueError(f"{path}: a {what.upper()} export needs a {suffix} file name")
        p = p.with_name(p.name + suffix)
    return str(p)


def check_writable(path: str) -> None:
    """Fail early, with the reason, where a file cannot be created."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise OSError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OSError(f"{path}: the folder {parent} is not writable")
    if Path(path).is_dir():
        raise OSError(f"{path}: is a folder")


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
    with user_file(path, newline="") as fh:
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
    with user_file(path) as fh:
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
    with user_file(path, newline="") as fh:
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
    with user_file(path) as fh:
        fh.write(exits_markdown(cursor, whole, title, position))


def export_events_perfetto(log: EventLog, path: str | os.PathLike, title: str = "lazytsc", note_names=(), job=None) -> int:
    """A Perfetto trace of the run or imported trace (lazytsc.perfetto); returns its events."""
    from lazytsc.perfetto import export_perfetto

    export_perfetto(log, path, title=title, note_names=note_names)
    return len(log)
