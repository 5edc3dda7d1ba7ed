"""The GUI's one copy of a run's event log: numpy columns that grow as the run streams in.

Why: the window draws a run while the engine is still producing it, on another
thread. The engine's `EventLog` is a growing `array('q')` that must never be
read by the UI thread while the engine appends to it (a numpy view would pin
its buffer and make the next append fail), so the thread that runs the engine
unpacks each finished chunk with the log's own `column()` and hands the copies
to the UI thread, which appends them here. When the run is complete the engine
(and its packed rows) is dropped: these columns are the only copy left.

`ColumnLog` offers the reader side of `EventLog` (`len`, `column`, `columns`,
`event`, `digest`), so panels, accounting and exports read it unchanged.
No Qt here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
from lazytsc.eventlog import COLUMNS, WORDS, Event, pack_tag


def _libc():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand memory freed by big temporaries back to the OS (glibc's `malloc_trim`), if available.

    Why: a streamed run's chunk copies are freed once the run is complete, but
    glibc keeps freed heap pages mapped (its mmap threshold rises after large
    frees), so the process would go on holding them.
    """
    import ctypes
    import gc

    gc.collect()
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:  # not glibc
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


class GrowArray:
    """A 1-D numpy array with amortised O(1) appends.

    Views handed out by `view()` stay valid after a later append: growing
    allocates a new buffer and copies, it never resizes in place.
    """

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype, capacity: int = 0) -> None:
        self._buf = np.empty(max(16, capacity), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def dtype(self):
        return self._buf.dtype

    def reserve(self, capacity: int) -> None:
        if capacity > len(self._buf):
            new = np.empty(capacity, dtype=self._buf.dtype)
            new[: self._n] = self._buf[: self._n]
            self._buf = new

    def extend(self, values: np.ndarray) -> None:
        m = len(values)
        if not m:
            return
        need = self._n + m
        if need > len(self._buf):
            self.reserve(max(need, int(len(self._buf) * 1.5) + 16))
        self._buf[self._n : need] = values
        self._n = need

    def append(self, value) -> None:
        if self._n == len(self._buf):
            self.reserve(int(len(self._buf) * 1.5) + 16)
        self._buf[self._n] = value
        self._n += 1

    def view(self) -> np.ndarray:
        """The filled part, read-only (a view: no copy)."""
        v = self._buf[: self._n]
        v.flags.writeable = False
        return v

    def last(self, default=0):
        return self._buf[self._n - 1] if self._n else default

    def shrink(self) -> None:
        """Drop spare capacity (once the run is complete)."""
        if len(self._buf) > self._n + 16:
            self._buf = self._buf[: self._n].copy()

    @property
    def nbytes(self) -> int:
        return int(self._buf.nbytes)


class TimeColumn:
    """The times of the events streamed so far: all the timeline needs of a log meanwhile.

    (8 bytes an event while a run streams in, instead of a copy of every column.)
    """

    def __init__(self) -> None:
        self._t = GrowArray(np.int64)

    def __len__(self) -> int:
        return len(self._t)

    def append(self, times: np.ndarray) -> None:
        self._t.extend(times)

    def reserve(self, n: int) -> None:
        self._t.reserve(n)

    def column(self, name: str) -> np.ndarray:
        if name != "time":
            raise KeyError(name)
        return self._t.view()


class ColumnLog:
    """Columnar event log (the reader API of `lazytsc.eventlog.EventLog`)."""

    def __init__(self, capacity: int = 0) -> None:
        self._cols = {name: GrowArray(dtype, capacity) for name, dtype in COLUMNS.items()}
        self._n = 0
        self.complete = False

    @classmethod
    def from_eventlog(cls, log) -> ColumnLog:
        """A finished log (trace import, what-if replay) as columns."""
        out = cls(len(log))
        out.append_chunk({name: log.column(name) for name in COLUMNS})
        out.finish()
        return out

    def __len__(self) -> int:
        return self._n

    def append_chunk(self, cols: dict[str, np.ndarray]) -> None:
        m = len(cols["time"])
        for name, arr in self._cols.items():
            arr.extend(cols[name])
        self._n += m

    def reserve(self, n: int) -> None:
        for arr in self._cols.values():
            arr.reserve(n)

    def finish(self) -> None:
        for arr in self._cols.values():
            arr.shrink()
        self.complete = True

    def column(self, name: str, cache: bool = True) -> np.ndarray:
        """A view of the stored column (`cache` is EventLog's: these columns are the storage)."""
        return self._cols[name].view()

    def columns(self) -> dict[str, np.ndarray]:
        return {name: self.column(name) for name in COLUMNS}

    # Column attributes, as EventLog has them (`log.kind[i]`).
    time = property(lambda self: self.column("time"))
    vcpu = property(lambda self: self.column("vcpu"))
    kind = property(lambda self: self.column("kind"))
    exit = property(lambda self: self.column("exit"))
    sub = property(lambda self: self.column("sub"))
    a = property(lambda self: self.column("a"))
    b = property(lambda self: self.column("b"))
    parent = property(lambda self: self.column("parent"))

    def event(self, index: int) -> Event:
        n = self._n
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        c = self._cols
        return Event(index, *(int(c[name]._buf[index]) for name in ("time", "vcpu", "kind", "exit", "sub", "a", "b", "parent")))

    def __iter__(self) -> Iterator[Event]:
        for i in range(self._n):
            yield self.event(i)

    def kind_at(self, index: int) -> int:
        return int(self._cols["kind"]._buf[index])

    def exit_at(self, index: int) -> int:
        return int(self._cols["exit"]._buf[index])

    def vcpu_at(self, index: int) -> int:
        return int(self._cols["vcpu"]._buf[index])

    def nbytes(self) -> int:
        return sum(arr.nbytes for arr in self._cols.values())

    def digest(self) -> str:
        """SHA-256 over the packed rows, equal to `EventLog.digest()` of the same events."""
        h = hashlib.sha256()
        step = 1 << 18
        c = {name: self.column(name).astype(np.int64) for name in COLUMNS}
        for i0 in range(0, self._n, step):
            sl = slice(i0, min(self._n, i0 + step))
            m = np.empty((sl.stop - sl.start, WORDS), dtype=np.int64)
            m[:, 0] = c["time"][sl]
            m[:, 1] = pack_tag(c["vcpu"][sl], c["kind"][sl], c["exit"][sl], c["sub"][sl])
            m[:, 2] = c["a"][sl]
            m[:, 3] = c["b"][sl]
            m[:, 4] = c["parent"][sl]
            h.update(m.tobytes())
        return h.hexdigest()
