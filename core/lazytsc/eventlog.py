"""The columnar event log: one row per event, one typed array per column.

Why columnar: a 10^6-event run must fit in tens of MB and be sliced, filtered and
drawn with numpy, never as 10^6 Python objects. Appends go to `array.array`
buffers (cheap on the hot path); `column()` exposes them as zero-copy numpy views.
Truncation (for step back by checkpoint + replay) is O(1) per column.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .taxonomy import EXIT_NAMES, KIND_FIELDS, KIND_NAMES, MSR_SUB_NAMES

# name -> array typecode; the numpy dtype follows from the typecode.
COLUMNS: dict[str, str] = {
    "time": "q",  # int64 ns of simulated time
    "vcpu": "h",  # int16 vCPU index (-1: the whole VM)
    "kind": "h",  # int16 taxonomy.Kind
    "exit": "b",  # int8 taxonomy.Exit (-1 = no exit caused by this event)
    "sub": "b",  # int8 taxonomy.MsrSub for msr-write exits (-1 otherwise)
    "a": "q",  # int64 first value (meaning per kind: taxonomy.KIND_FIELDS)
    "b": "q",  # int64 second value
    "parent": "i",  # int32 index of the event that caused this one (-1: none)
}
BYTES_PER_EVENT = sum(array(code).itemsize for code in COLUMNS.values())


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
    """Append-only columnar log with O(1) truncation."""

    __slots__ = ("_cols", "time", "vcpu", "kind", "exit", "sub", "a", "b", "parent")

    def __init__(self) -> None:
        self._cols: dict[str, array] = {name: array(code) for name, code in COLUMNS.items()}
        # Direct references to the buffers keep `append` free of dict look-ups.
        self.time = self._cols["time"]
        self.vcpu = self._cols["vcpu"]
        self.kind = self._cols["kind"]
        self.exit = self._cols["exit"]
        self.sub = self._cols["sub"]
        self.a = self._cols["a"]
        self.b = self._cols["b"]
        self.parent = self._cols["parent"]

    def __len__(self) -> int:
        return len(self.time)

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
        """Add one event and return its index."""
        index = len(self.time)
        self.time.append(time)
        self.vcpu.append(vcpu)
        self.kind.append(kind)
        self.exit.append(exit_reason)
        self.sub.append(sub)
        self.a.append(a)
        self.b.append(b)
        self.parent.append(parent)
        return index

    def truncate(self, length: int) -> None:
        """Drop every event from `length` on (used when replaying from a checkpoint)."""
        if length < len(self.time):
            for col in self._cols.values():
                del col[length:]

    def column(self, name: str) -> np.ndarray:
        """A read-only numpy view of a column (valid until the next append)."""
        view = np.frombuffer(self._cols[name], dtype=self._cols[name].typecode) if len(self) else (
            np.zeros(0, dtype=np.dtype(self._cols[name].typecode))
        )
        view.flags.writeable = False
        return view

    def columns(self) -> dict[str, np.ndarray]:
        """Copies of every column, safe to keep while the engine keeps running."""
        return {name: np.array(self.column(name)) for name in COLUMNS}

    def event(self, index: int) -> Event:
        if index < 0:
            index += len(self)
        return Event(
            index,
            self.time[index],
            self.vcpu[index],
            self.kind[index],
            self.exit[index],
            self.sub[index],
            self.a[index],
            self.b[index],
            self.parent[index],
        )

    def __iter__(self) -> Iterator[Event]:
        for i in range(len(self)):
            yield self.event(i)

    def digest(self) -> str:
        """SHA-256 over every column's bytes: equal digests mean byte-identical logs."""
        h = hashlib.sha256()
        for name in COLUMNS:
            h.update(name.encode())
            h.update(self._cols[name].tobytes())
        return h.hexdigest()

    def nbytes(self) -> int:
        return sum(col.itemsize * len(col) for col in self._cols.values())

    @classmethod
    def from_columns(cls, cols: dict[str, np.ndarray]) -> EventLog:
        """Build a log from numpy columns (trace import); missing columns get defaults."""
        log = cls()
        n = len(cols["time"])
        defaults = {"vcpu": 0, "exit": -1, "sub": -1, "a": 0, "b": 0, "parent": -1}
        for name, code in COLUMNS.items():
            data = cols.get(name)
            if data is None:
                data = np.full(n, defaults.get(name, 0))
            log._cols[name].frombytes(np.ascontiguousarray(data, dtype=np.dtype(code)).tobytes())
        return log
