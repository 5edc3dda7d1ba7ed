"""A virtualized table model over the numpy event log: no per-row Python objects.

Rows are either every event or the event indices a filter selected (one numpy
array). Cells are formatted on demand for the rows the view paints, each from its
event (`log.event`): the model keeps no copy of the log's columns -- filters read the
narrow ones (kind, vCPU, exit; shared with the log's other readers) and a search by
value unpacks a/b once without keeping them; events
after the cursor are dimmed and the current event is highlighted. The two value
columns are named per kind (taxonomy.KIND_FIELDS) in each cell, and in the header
when one kind is shown; tooltips give TSC values as times too, and a script
`note` shows its text.
"""

from __future__ import annotations

import numpy as np
from lazytsc.eventlog import EventLog
from lazytsc.script import NOTE_CLASSIC_SKIPS_PV, NOTE_SAVE, NOTE_SCRIPT
from lazytsc.taxonomy import EXIT_NAMES, HAZARD_KINDS, KIND_FIELDS, KIND_NAMES, MSR_SUB_NAMES, Kind
from lazytsc.units import parse_duration
from PySide6 import QtCore, QtGui

from . import themes
from .fmt import fmt_hex, fmt_ns

COLUMNS = ("#", "time", "vCPU", "kind", "exit", "a", "b", "parent")
HEADERS = ("#", "time", "vCPU", "kind", "exit", "value 1", "value 2", "caused by")
# Value names that hold a guest TSC (shown as a time too, with the vCPU's tsc_khz).
TSC_FIELDS = frozenset({"tsc", "armed", "pending", "deadline", "wanted", "armed_before"})
NOTE_TEXT = {NOTE_CLASSIC_SKIPS_PV: "classic mode: the guest has no lazy driver, PV op skipped", NOTE_SAVE: "state saved (migration source)"}
HAZARD_CODES = np.array(sorted(HAZARD_KINDS), dtype=np.int16)
Qt = QtCore.Qt


def _value(name: str, value: int) -> str:
    return f"{name}={fmt_hex(value)}" if name else ""


class EventsModel(QtCore.QAbstractTableModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.log: EventLog | None = None
        self.rows: np.ndarray | None = None  # filtered event indices (None: all)
        self.position = 0
        self.filters: dict = {}
        self._n = 0
        self.tsc_khz: list[int] | None = None
        self.notes: dict[int, str] = {}  # scenario line -> the script entry's note
        self.header_names: tuple[str, str] | None = None
        self.raw = None  # trace_lines.RawLines of an imported trace

    # ---- data source ----------------------------------------------------------------------
    def set_log(self, log: EventLog | None, tsc_khz: list[int] | None = None, notes: dict[int, str] | None = None, raw=None) -> None:
        self.beginResetModel()
        self.log = log
        self.raw = raw
        self.tsc_khz = tsc_khz
        self.notes = dict(notes or {})
        self._n = len(log) if log is not None else 0
        self.rows = None
        self.position = 0
        self._apply_filters()
        self.endResetModel()

    def set_position(self, pos: int) -> None:
        old = self.position
        self.position = pos
        if self.rowCount() and old != pos:
            # Rows between the old and new cursor change colour; the view repaints only what it shows.
            lo, hi = sorted((old - 1, pos - 1))
            r0 = max(0, self.row_of(max(lo, 0), nearest=True))
            r1 = min(self.rowCount() - 1, max(r0, self.row_of(max(hi, 0), nearest=True)))
            self.dataChanged.emit(self.index(r0, 0), self.index(r1, len(COLUMNS) - 1), [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole])

    # ---- filtering --------------------------------------------------------------------------
    def set_filters(self, kinds: set[int] | None = None, vcpu: int | None = None, exit_code: int | None = None, hazards_only: bool = False, exits_only: bool = False) -> None:
        self.beginResetModel()
        self.filters = {"kinds": kinds, "vcpu": vcpu, "exit": exit_code, "hazards": hazards_only, "exits": exits_only}
        self._apply_filters()
        one = next(iter(kinds)) if kinds and len(kinds) == 1 else None
        names = KIND_FIELDS.get(one) if one is not None else None
        self.header_names = (names[0] or "—", names[1] or "—") if names else None
        self.endResetModel()

    def _col(self, name: str, keep: bool = True) -> np.ndarray:
        """A column of the log (`keep=False`: a one-off read the log does not cache)."""
        return self.log.column(name, cache=keep)

    def _apply_filters(self) -> None:
        f = self.filters
        if not self._n or not any(v not in (None, False) for v in f.values()):
            self.rows = None
            return
        mask = np.ones(self._n, dtype=bool)
        if f.get("kinds"):
            mask &= np.isin(self._col("kind"), np.array(sorted(f["kinds"]), dtype=np.int16))
        if f.get("vcpu") is not None:
            mask &= self._col("vcpu") == f["vcpu"]
        if f.get("exit") is not None:
            mask &= self._col("exit") == f["exit"]
        if f.get("exits"):
            mask &= self._col("exit") >= 0
        if f.get("hazards"):
            mask &= np.isin(self._col("kind"), HAZARD_CODES)
        self.rows = np.nonzero(mask)[0]

    def event_at(self, row: int) -> int:
        if self.rows is None:
            return row
        return int(self.rows[row]) if 0 <= row < len(self.rows) else -1

    def row_of(self, index: int, nearest: bool = False) -> int:
        """Row showing event `index` (-1 if filtered out, or the next row if `nearest`)."""
        if self.rows is None:
            return index if 0 <= index < self._n else -1
        r = int(np.searchsorted(self.rows, index))
        if r < len(self.rows) and self.rows[r] == index:
            return r
        return min(r, len(self.rows) - 1) if nearest else -1

    # ---- Qt model API ------------------------------------------------------------------------
    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return self._n if self.rows is None else len(self.rows)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            if section in (5, 6) and self.header_names is not None:
                return self.header_names[section - 5]
            return HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole and section in (5, 6):
            return "The event's values, named per kind in each cell (name=value); filter on one kind to see the names here"
        return None

    def note_text(self, i: int) -> str:
        ev = self.log.event(i)
        code, line = ev.a, ev.b
        if code == NOTE_SCRIPT:
            return self.notes.get(line, f"script note (line {line})")
        return NOTE_TEXT.get(code, f"note code={code}")

    def tsc_time(self, vcpu: int, value: int) -> float | None:
        """A guest TSC value as ns (TSC offset 0), or None without a clock rate."""
        khz = self.tsc_khz
        if not khz or not 0 <= vcpu < len(khz) or not khz[vcpu] or value <= 0:
            return None
        return value * 1_000_000 / khz[vcpu]

    def cell_text(self, i: int, col: int) -> str:
        ev = self.log.event(i)
        kind = ev.kind
        if col == 0:
            return str(i)
        if col == 1:
            return fmt_ns(ev.time)
        if col == 2:
            return str(ev.vcpu) if ev.vcpu >= 0 else "VM"
        if col == 3:
            return KIND_NAMES.get(kind, str(kind))
        if col == 4:
            if ev.exit < 0:
                return ""
            return EXIT_NAMES.get(ev.exit, str(ev.exit)) + (f" / {MSR_SUB_NAMES.get(ev.sub, ev.sub)}" if ev.sub >= 0 else "")
        names = KIND_FIELDS.get(kind, ("a", "b"))
        if col == 5:
            if kind == Kind.NOTE:
                return self.note_text(i)
            return _value(names[0], ev.a)
        if col == 6:
            return _value(names[1], ev.b)
        if col == 7:
            return str(ev.parent) if ev.parent >= 0 else ""
        return ""

    def data(self, index: QtCore.QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.log is None:
            return None
        i = self.event_at(index.row())
        if i < 0:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell_text(i, col)
        th = themes.current()
        if role == Qt.ItemDataRole.ForegroundRole:
            if i >= self.position:
                return QtGui.QColor(th.future_fg)
            ev = self.log.event(i)
            if ev.kind in HAZARD_KINDS and col == 3:
                return QtGui.QColor(th.marks.get(f"haz:{KIND_NAMES[ev.kind]}", th.text))
            if col == 4 and ev.exit >= 0:
                return QtGui.QColor(th.marks.get(f"exit:{EXIT_NAMES[ev.exit]}", th.text))
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if i == self.position - 1:
                return QtGui.QColor(th.current_row_bg)
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col in (0, 1, 2, 7):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            ev = self.log.event(i)
            state = "executed" if i < self.position else "not yet executed (after the cursor)"
            what = self.note_text(i) if ev.kind == Kind.NOTE else ev.describe()
            lines = [f"#{i} at {fmt_ns(ev.time)}, vCPU {ev.vcpu}: {what}"]
            for name, value in zip(KIND_FIELDS.get(ev.kind, ("", "")), (ev.a, ev.b), strict=True):
                ns = self.tsc_time(ev.vcpu, value) if name in TSC_FIELDS or (name == "value" and ev.kind == Kind.WRMSR_TSC_DEADLINE) else None
                if ns is not None:
                    lines.append(f"{name} = {value:#x} = {value:,} TSC = {fmt_ns(ns)} ({fmt_ns(ns - ev.time, signed=True)} from this event)")
            raw = self.raw.text(i) if self.raw is not None else ""
            if raw:
                lines.append(f"trace line {self.raw.line_of(i):,}: {raw.strip()}")
            lines.append(state)
            return "\n".join(lines)
        return None

    # ---- search -----------------------------------------------------------------------------
    def match_mask(self, query: str, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` match a search query.

        `#123` an event index, `@150us` the first event at or after a time, a number
        (decimal or 0x hex) a value in a/b, anything else a substring of the kind,
        exit or msr-write sub-reason name.
        """
        q = query.strip().lower()
        if not q or not len(rows):
            return np.zeros(len(rows), dtype=bool)
        if q.startswith("#") and q[1:].isdigit():
            return rows == int(q[1:])
        if q.startswith("@"):
            try:
                t = parse_duration(q[1:].strip())
            except ValueError:
                return np.zeros(len(rows), dtype=bool)
            first = int(np.searchsorted(self._col("time"), t))
            return rows == first
        try:
            number = int(q, 0)
        except ValueError:
            number = None
        if number is not None:
            return (self._col("a", keep=False)[rows] == number) | (self._col("b", keep=False)[rows] == number)
        kinds = np.array([k for k, n in KIND_NAMES.items() if q in n], dtype=np.int16)
        exits = np.array([e for e, n in EXIT_NAMES.items() if q in n], dtype=np.int8)
        subs = np.array([s for s, n in MSR_SUB_NAMES.items() if q in n], dtype=np.int8)
        m = np.isin(self._col("kind")[rows], kinds)
        if len(exits):
            m |= np.isin(self._col("exit")[rows], exits)
        if len(subs):
            m |= np.isin(self._col("sub")[rows], subs) & (self._col("exit")[rows] >= 0)
        return m

    def find(self, query: str, start_row: int, forward: bool = True) -> int:
        """Next (or previous) row after `start_row` matching `query`, wrapping; -1 if none."""
        n = self.rowCount()
        if not n:
            return -1
        rows = self.rows if self.rows is not None else np.arange(n)
        mask = self.match_mask(query, rows)
        hits = np.nonzero(mask)[0]
        if not len(hits):
            return -1
        if forward:
            after = hits[hits > start_row]
            return int(after[0]) if len(after) else int(hits[0])
        before = hits[hits < start_row]
        return int(before[-1]) if len(before) else int(hits[-1])

    def count_matches(self, query: str) -> int:
        rows = self.rows if self.rows is not None else np.arange(self.rowCount())
        return int(np.count_nonzero(self.match_mask(query, rows)))
