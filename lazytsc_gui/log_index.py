"""Incremental views of an event log for panels that refresh on every step (no Qt).

`PrefixCounts` keeps the exit table at the cursor by adding or removing only the
events between the old and the new cursor, instead of recounting the prefix
(`accounting.summarize`) on every step. `CausalIndex` answers "what did this event
cause" from a parent -> children index built once per log, instead of one pass
over the whole log per level of descendants.
"""

from __future__ import annotations

import numpy as np
from lazytsc.accounting import summary_from_counts
from lazytsc.eventlog import EventLog
from lazytsc.taxonomy import EXIT_NAMES, EXIT_ORDER, MSR_SUB_NAMES, MSR_SUB_ORDER, Exit, Kind

_EXIT_CODE = {name: code for code, name in EXIT_NAMES.items()}
_SUB_CODE = {name: code for code, name in MSR_SUB_NAMES.items()}
_N_KIND = max(int(k) for k in Kind) + 1
_N_EXIT = max(EXIT_NAMES) + 1
_N_SUB = max(MSR_SUB_NAMES) + 1


class PrefixCounts:
    """Counts per kind, exit reason and msr-write sub-reason of events [0, position)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.kind = log.column("kind")
        self.exit = log.column("exit")
        self.sub = log.column("sub")
        self.time = log.column("time")
        self.position = 0
        self.kinds = np.zeros(_N_KIND, dtype=np.int64)
        self.exits = np.zeros(_N_EXIT, dtype=np.int64)
        self.subs = np.zeros(_N_SUB, dtype=np.int64)

    def _count(self, lo: int, hi: int, sign: int) -> None:
        kind = self.kind[lo:hi].astype(np.int64)
        exit_col = self.exit[lo:hi]
        self.kinds += sign * np.bincount(kind, minlength=_N_KIND)[:_N_KIND]
        has = exit_col >= 0
        if has.any():
            self.exits += sign * np.bincount(exit_col[has].astype(np.int64), minlength=_N_EXIT)[:_N_EXIT]
            sel = (exit_col == Exit.MSR_WRITE) & (self.sub[lo:hi] >= 0)
            if sel.any():
                self.subs += sign * np.bincount(self.sub[lo:hi][sel].astype(np.int64), minlength=_N_SUB)[:_N_SUB]

    def move_to(self, position: int) -> None:
        position = max(0, min(position, len(self.kind)))
        old = self.position
        if position > old:
            self._count(old, position, +1)
        elif position < old:
            if position < old - position:  # nearer to the start: recount
                self.kinds[:] = 0
                self.exits[:] = 0
                self.subs[:] = 0
                self._count(0, position, +1)
            else:
                self._count(position, old, -1)
        self.position = position

    def summary(self) -> dict:
        """The same object as `accounting.summarize(log, upto=position)`."""
        k = self.kinds
        by = {name: int(self.exits[_EXIT_CODE[name]]) for name in EXIT_ORDER}
        msr = {name: int(self.subs[_SUB_CODE[name]]) for name in MSR_SUB_ORDER}
        n = self.position
        table = {"total": int(self.exits.sum()), "by_reason": by, "msr_write": msr}
        return summary_from_counts(k, table, int(n), int(self.time[n - 1]) if n else 0)


class CausalIndex:
    """parent -> children, sorted once; `caused_by` walks only the descendants."""

    def __init__(self, log: EventLog) -> None:
        parent = log.column("parent")
        self.order = np.argsort(parent, kind="stable")
        self.sorted_parent = parent[self.order]

    def children(self, index: int) -> np.ndarray:
        lo = int(np.searchsorted(self.sorted_parent, index, side="left"))
        hi = int(np.searchsorted(self.sorted_parent, index, side="right"))
        return self.order[lo:hi]

    def caused_by(self, index: int, max_depth: int = 64, limit: int = 100_000) -> np.ndarray:
        """The event and every event it caused (transitively), like accounting.caused_by."""
        found = [np.array([index])]
        frontier = [index]
        count = 1
        for _ in range(max_depth):
            kids = [self.children(i) for i in frontier]
            kids = [k for k in kids if len(k)]
            if not kids:
                break
            level = np.concatenate(kids)
            found.append(level)
            count += len(level)
            if count >= limit:
                break
            frontier = level.tolist()
        return np.unique(np.concatenate(found))
