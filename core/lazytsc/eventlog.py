"""The event log: columnar to its readers, row-packed in memory for a cheap append.

Why: a 10^6-event run must fit in tens of MB and be sliced, filtered and drawn
with numpy, never as 10^6 Python objects -- and the engine appends an event in a
single `array.extend` call. Each event is 5 int64 words (40 bytes): time, a
packed tag (vCPU, kind, exit reason, MSR sub-reason), a, b, parent. `column()`
unpacks one column with numpy (cached until the log changes). Truncation (step
back by checkpoint + replay) is one slice deletion -- or, for a debugger session that
keeps everything it computed (`keep_future`), a seek: the recorded events stay and
the replayed appends are checked against them instead of being stored twice.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .taxonomy import EXIT_NAMES, KIND_FIELDS, KIND_NAMES, MSR_SUB_NAMES

WORDS = 5  # int64 words per event
# Column name -> numpy dtype of the unpacked column.
COLUMNS: dict[str, str] = {
    "time": "int64",  # ns of simulated time
    "vcpu": "int16",  # vCPU index (-1: the whole VM)
    "kind": "int16",  # taxonomy.Kind
    "exit": "int8",  # taxonomy.Exit (-1 = this event caused no exit)
    "sub": "int8",  # taxonomy.MsrSub for msr-write exits (-1 otherwise)
    "a": "int64",  # first value (meaning per kind: taxonomy.KIND_FIELDS)
    "b": "int64",  # second value
    "parent": "int32",  # index of the event that caused this one (-1: none)
}
BYTES_PER_EVENT = WORDS * 8
ROW = struct.Struct(f"={WORDS}q")  # one event's words in the array's (native) byte order
_array_len = array.__len__


class ReplayDiverged(RuntimeError):
    """A replayed event differs from the recorded one: the run is not deterministic."""


class _Rows(array):
    """The packed words. A subclass only so that a log can switch into replay mode."""

    __slots__ = ("logical",)


class _ReplayRows(_Rows):
    """Replay mode: the log reads as its first `logical` words; appends re-check the record.

    Why: stepping back restores a checkpoint and replays; a session that keeps the
    whole run must not lose (or copy) the events after the checkpoint. Only time and
    tag are compared: a and b may still be patched later in the same action.
    """

    __slots__ = ()

    def __len__(self) -> int:
        return self.logical

    def extend(self, row) -> None:  # type: ignore[override]
        at = self.logical
        if self[at] != row[0] or self[at + 1] != row[1]:
            raise ReplayDiverged(f"event {at // WORDS}: replay logged {tuple(row)}, the record has {tuple(self[at : at + WORDS])}")
        at += WORDS
        self.logical = at
        if at >= _array_len(self):
            self.__class__ = _Rows

    def frombytes(self, data) -> None:  # type: ignore[override]
        """Packed rows (the engine's append): each re-checked like `extend`; past the end of
        the record they are appended."""
        for row in ROW.iter_unpack(data):
            if type(self) is _ReplayRows:
                self.extend(row)
            else:
                array.extend(self, row)


def pack_tag(vcpu: int, kind: int, exit_reason: int, sub: int) -> int:
    """vcpu+1 in bits 0-15, kind in 16-31, exit+1 in 32-39, sub+1 in 40-47."""
    return (vcpu + 1) | (kind << 16) | ((exit_reason + 1) << 32) | ((sub + 1) << 40)


@dataclass(frozen=True, slots=True)
class Event:
    """One row, materialised on demand (UI, tests); never used on hot paths."""

    index: int
    time: int
    vcpu: int
    kind: int
    exit: int
    sub: int
    a: int
    b: int
    parent: int

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, str(self.kind))

    @property
    def exit_name(self) -> str:
        return EXIT_NAMES.get(self.exit, "") if self.exit >= 0 else ""

    @property
    def sub_name(self) -> str:
        return MSR_SUB_NAMES.get(self.sub, "") if self.sub >= 0 else ""

    def describe(self) -> str:
        """A one-line human description: `kind a_name=a b_name=b`."""
        names = KIND_FIELDS.get(self.kind, ("a", "b"))
        parts = [self.kind_name]
        for name, value in zip(names, (self.a, self.b), strict=True):
            if name:
                parts.append(f"{name}={value:#x}" if value > 0xFF else f"{name}={value}")
        if self.exit >= 0:
            parts.append(f"exit={self.exit_name}" + (f"/{self.sub_name}" if self.sub >= 0 else ""))
        return " ".join(parts)


class EventLog:
    """Append-only event log with numpy column views and O(1) truncation."""

    __slots__ = ("rows", "_cache", "_cache_len", "_keep")

    def __init__(self) -> None:
        self.rows = _Rows("q")  # WORDS int64 per event
        self._cache: dict[str, np.ndarray] = {}
        self._cache_len = -1
        self._keep = False

    def __len__(self) -> int:
        return len(self.rows) // WORDS

    def append(
        self,
        time: int,
        vcpu: int,
        kind: int,
        exit_reason: int = -1,
        sub: int = -1,
        a: int = 0,
        b: int = 0,
        parent: int = -1,
    ) -> int:
        """Add one event and return its index (the engine inlines this on its hot path)."""
        index = len(self.rows) // WORDS
        self.rows.extend((time, pack_tag(vcpu, kind, exit_reason, sub), a, b, parent))
        return index

    def truncate(self, length: int) -> None:
        """Drop every event from `length` on (used when replaying from a checkpoint).

        With `keep_future` the events stay recorded: the log reads as `length` events
        long and replays the record from there (either direction, up to what is recorded).
        """
        if not self._keep:
            if length < len(self):
                del self.rows[length * WORDS :]
                # the cache is keyed by length: a branch that appends as many events again
                # must not read the dropped branch's columns
                self._cache = {}
                self._cache_len = -1
            return
        words = length * WORDS
        recorded = _array_len(self.rows)
        if not 0 <= words <= recorded:
            raise ValueError(f"cannot seek to event {length}: {recorded // WORDS} recorded")
        self.rows.logical = words
        self.rows.__class__ = _ReplayRows if words < recorded else _Rows

    def keep_future(self) -> None:
        """From now on `truncate` seeks instead of dropping (see the module docstring)."""
        if not isinstance(self.rows, _Rows):
            raise TypeError("only a log built by EventLog() can keep its future")
        self._keep = True

    def recorded_len(self) -> int:
        """Events stored, including those after the replay position."""
        return _array_len(self.rows) // WORDS

    def recorded(self) -> RecordedLog:
        """A read-only view of everything recorded (stable while this log replays)."""
        return RecordedLog(self)

    def _matrix(self) -> np.ndarray:
        n = len(self)
        if not n:
            return np.zeros((0, WORDS), dtype=np.int64)
        return np.frombuffer(self.rows, dtype=np.int64, count=n * WORDS).reshape(-1, WORDS)

    def column(self, name: str, cache: bool = True) -> np.ndarray:
        """One column as a read-only numpy array (cached until the log changes).

        `cache=False` unpacks a copy the log does not keep: a one-off scan of a wide
        column (a search over the values) must not leave 8 B/event behind.
        """
        n = len(self)
        if self._cache_len != n:
            self._cache = {}
            self._cache_len = n
        col = self._cache.get(name)
        if col is None:
            col = self._unpack(self._matrix(), name).astype(COLUMNS[name], copy=False)
            col.flags.writeable = False
            if cache:
                self._cache[name] = col
        return col

    @staticmethod
    def _unpack(m: np.ndarray, name: str) -> np.ndarray:
        plain = {"time": 0, "a": 2, "b": 3, "parent": 4}
        if name in plain:
            return m[:, plain[name]].copy()
        tag = m[:, 1]
        if name == "vcpu":
            return (tag & 0xFFFF) - 1
        if name == "kind":
            return (tag >> 16) & 0xFFFF
        if name == "exit":
            return ((tag >> 32) & 0xFF) - 1
        if name == "sub":
            return ((tag >> 40) & 0xFF) - 1
        raise KeyError(name)

    def columns(self) -> dict[str, np.ndarray]:
        """Every column (read-only arrays, safe to keep while the engine keeps running)."""
        return {name: self.column(name) for name in COLUMNS}

    def event(self, index: int) -> Event:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        base = index * WORDS
        rows = self.rows
        tag = rows[base + 1]
        return Event(
            index,
            rows[base],
            (tag & 0xFFFF) - 1,
            (tag >> 16) & 0xFFFF,
            ((tag >> 32) & 0xFF) - 1,
            ((tag >> 40) & 0xFF) - 1,
            rows[base + 2],
            rows[base + 3],
            rows[base + 4],
        )

    # Column attributes (read-only numpy arrays), for readers that prefer `log.kind[i]`.
    time = property(lambda self: self.column("time"))
    vcpu = property(lambda self: self.column("vcpu"))
    kind = property(lambda self: self.column("kind"))
    exit = property(lambda self: self.column("exit"))
    sub = property(lambda self: self.column("sub"))
    a = property(lambda self: self.column("a"))
    b = property(lambda self: self.column("b"))
    parent = property(lambda self: self.column("parent"))

    def kind_at(self, index: int) -> int:
        return (self.rows[index * WORDS + 1] >> 16) & 0xFFFF

    def exit_at(self, index: int) -> int:
        return ((self.rows[index * WORDS + 1] >> 32) & 0xFF) - 1

    def vcpu_at(self, index: int) -> int:
        return (self.rows[index * WORDS + 1] & 0xFFFF) - 1

    def __iter__(self) -> Iterator[Event]:
        for i in range(len(self)):
            yield self.event(i)

    def digest(self) -> str:
        """SHA-256 over the packed rows: equal digests mean byte-identical logs."""
        return hashlib.sha256(memoryview(self.rows)[: len(self) * WORDS]).hexdigest()

    def nbytes(self) -> int:
        return _array_len(self.rows) * self.rows.itemsize

    @classmethod
    def from_columns(cls, cols: dict[str, np.ndarray]) -> EventLog:
        """Build a log from numpy columns (trace import); missing columns get defaults."""
        n = len(cols["time"])
        defaults = {"vcpu": 0, "exit": -1, "sub": -1, "a": 0, "b": 0, "parent": -1}

        def get(name: str) -> np.ndarray:
            data = cols.get(name)
            if data is None:
                return np.full(n, defaults[name], dtype=np.int64)
            return np.asarray(data, dtype=np.int64)

        m = np.empty((n, WORDS), dtype=np.int64)
        m[:, 0] = get("time")
        m[:, 1] = (get("vcpu") + 1) | (get("kind") << 16) | ((get("exit") + 1) << 32) | ((get("sub") + 1) << 40)
        m[:, 2] = get("a")
        m[:, 3] = get("b")
        m[:, 4] = get("parent")
        log = cls()
        log.rows.frombytes(m.tobytes())
        return log


class RecordedLog(EventLog):
    """Every event a log has recorded, sharing its storage (no copy).

    A debugger session hands this to readers: it does not shrink or change while the
    session's engine seeks back and replays, and grows when the run goes further.
    """

    __slots__ = ()

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self.rows = log.rows

    def __len__(self) -> int:
        return _array_len(self.rows) // WORDS

    def truncate(self, length: int) -> None:
        raise TypeError("a RecordedLog is read-only")
