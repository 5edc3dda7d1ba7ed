"""A native reader of trace-cmd's `trace.dat` (versions 6 and 7; zlib and zstd sections).

No maintained Python reader of trace.dat exists, so this one is its own module with a
small API (no lazytsc imports; numpy, `zstandard` for zstd files, and `isal` to inflate
zlib sections faster where it is installed):

    td = TraceDat.open("trace.dat")          # raises TraceDatError (`field: expected ...`)
    td.version, td.compression, td.clock, td.page_size, td.cpus, td.cmdlines
    td.formats                               # {event id: EventFormat}, parsed from the file
    td.format("kvm_exit")                    # EventFormat or None
    rec = td.records()                       # all events, merged across CPUs in time order:
                                             #   {"ts", "cpu", "id", "pid", "pos", "size"} arrays
    ev = td.events("kvm_exit")               # one event's records and decoded fields:
                                             #   {"ts", "cpu", "pid", "index", <field>: array, ...}
    td.to_ns(ev["ts"])                       # trace clock -> ns where the clock allows it
    td.clock_is_ns                           # False for x86-tsc/counter without TSC2NSEC

Timestamps are the ring buffer's clock (`to_ns` adds the file's OFFSET option): ns for
the default `local`/`global`/`mono`/`boot` clocks and TSC cycles for `x86-tsc`
(`to_ns` converts with the TSC2NSEC option when the file has one). The merge order is
trace-cmd's: repeatedly the earliest head of all CPU streams, ties to the lower CPU.
Decoding is bulk numpy over all records of a type; nothing is done per event in Python.
"""

from __future__ import annotations

import os

import numpy as np

from .container import Container, TraceDatError, cpu_data_parts, parse_container
from .formats import EventFormat, Field, header_page_layout, parse_format
from .ringbuffer import walk_pages

NS_CLOCKS = frozenset({"local", "global", "mono", "mono_raw", "boot", "perf", "uptime", "tai"})
MAX_FILE_BYTES = 16 << 30

__all__ = ["EventFormat", "Field", "TraceDat", "TraceDatError", "is_tracedat"]


def is_tracedat(head: bytes) -> bool:
    return head.startswith(b"\x17\x08\x44tracing")


def _unaligned(blob: np.ndarray, dtype: str) -> np.ndarray:
    """`blob` read as `dtype` values starting at every byte (element i: bytes i..i+size)."""
    size = np.dtype(dtype).itemsize
    return np.ndarray((len(blob) - size + 1,), dtype=dtype, buffer=blob, strides=(1,))


class TraceDat:
    """One parsed trace.dat (metadata eagerly, events on first use)."""

    def __init__(self, data: bytes, path: str = "trace.dat") -> None:
        self.path = path
        self._data = data
        self.c: Container = parse_container(data)
        self.formats: dict[int, EventFormat] = {}
        self._by_name: dict[str, EventFormat] = {}
        for system, text in self.c.event_formats:
            fmt = parse_format(system, text)
            if fmt is not None:
                self.formats[fmt.id] = fmt
                self._by_name.setdefault(fmt.name, fmt)
                self._by_name[f"{system}:{fmt.name}"] = fmt
        for text in self.c.ftrace_formats:
            fmt = parse_format("ftrace", text)
            if fmt is not None:
                self.formats.setdefault(fmt.id, fmt)
        self._records: dict[str, np.ndarray] | None = None
        self._blob: np.ndarray | None = None
        self._id_counts: np.ndarray | None = None
        self.lost_pages = 0
        self.bad_pages = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TraceDat:
        name = os.fspath(path)
        try:
            size = os.path.getsize(name)
            if size > MAX_FILE_BYTES:
                raise TraceDatError(f"size: expected a trace.dat below 16 GiB, got {size} bytes")
            with open(name, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise TraceDatError(f"file: expected a readable file ({exc.strerror or exc})") from None
        return cls(data, name)

    # -- metadata ---------------------------------------------------------------------
    version = property(lambda self: self.c.version)
    compression = property(lambda self: self.c.compression)
    clock = property(lambda self: self.c.clock)
    page_size = property(lambda self: self.c.page_size)
    long_size = property(lambda self: self.c.long_size)
    big_endian = property(lambda self: self.c.big_endian)
    cmdlines = property(lambda self: self.c.cmdlines)

    @property
    def cpus(self) -> list[int]:
        return [cpu.cpu for cpu in self.c.cpus]

    def format(self, name: str) -> EventFormat | None:
        """An event format by `name` or `system:name`."""
        return self._by_name.get(name)

    @property
    def clock_is_ns(self) -> bool:
        return self.c.clock in NS_CLOCKS or self.c.tsc2nsec is not None

    def to_ns(self, ts: np.ndarray, cpu: np.ndarray | None = None) -> np.ndarray:
        """Raw timestamps as trace-cmd report shows them (trace-input.c timestamp_calc):
        a guest trace's TIME_SHIFT correction to host time (needs each event's `cpu`),
        then TSC2NSEC (ts * mult >> shift) when the file has it, then the OFFSET option."""
        t = ts if ts.dtype == np.uint64 else ts.astype(np.uint64)  # read only below
        if self.c.time_shift is not None and cpu is not None:
            t = self._host_sync(t, cpu)
        if self.c.tsc2nsec is not None:
            mult, shift, _offset = self.c.tsc2nsec
            # mul_u64_u32_shr without overflow: split into high and low 32 bits
            hi, lo = t >> np.uint64(32), t & np.uint64(0xFFFFFFFF)
            high = hi * np.uint64(mult)
            if shift <= 32:
                t = (high << np.uint64(32 - shift)) + ((lo * np.uint64(mult)) >> np.uint64(shift))
            else:
                t = (high >> np.uint64(shift - 32)) + ((lo * np.uint64(mult)) >> np.uint64(shift))
        out = t.astype(np.int64)  # a copy: `ts` is left as it was
        if self.c.ts_offset:
            out += self.c.ts_offset
        return out

    def _host_sync(self, t: np.ndarray, cpu: np.ndarray) -> np.ndarray:
        """timestamp_host_sync: per CPU, the correction between the two samples around ts."""
        assert self.c.time_shift is not None
        flags, per_cpu = self.c.time_shift
        out = t.copy()
        ti = t.astype(np.int64)
        for c_id, (times, offsets, scalings, fractions) in enumerate(per_cpu):
            sel = np.nonzero(cpu == c_id)[0]
            if not len(sel) or not times:
                continue
            x = ti[sel]
            if len(times) == 1:
                out[sel] = (x + offsets[0]).astype(np.uint64)
                continue
            tm = np.array(times, dtype=np.int64)
            off = np.array(offsets, dtype=np.int64)
            k = np.clip(np.searchsorted(tm, x, side="right") - 1, 0, len(tm) - 2)
            if flags & 0x1:  # TRACECMD_TSYNC_FLAG_INTERPOLATE
                delta = tm[k + 1] - tm[k]
                num = (x - tm[k]) * (off[k + 1] - off[k])
                half = delta // 2
                tscor = off[k] + np.where(delta != 0, (num + half) // np.where(delta != 0, delta, 1), 0)
            else:
                tscor = off[k]
            scale = np.array(scalings, dtype=np.uint64)[k]
            frac = np.array(fractions, dtype=np.uint64)[k]
            scaled = ((x.astype(np.uint64) * scale) >> frac).astype(np.int64)
            out[sel] = (scaled + tscor).astype(np.uint64)
        return out

    # -- events -----------------------------------------------------------------------
    def _load(self) -> None:
        c = self.c
        parts_of_cpu, cpu_ids = [], []
        total = 0
        for cpu in sorted(c.cpus, key=lambda x: x.cpu):  # ascending CPU: the merge's tie order
            parts = cpu_data_parts(self._data, c, cpu)
            n = sum(map(len, parts)) // c.page_size  # a partial last page is not a page
            if n:
                parts_of_cpu.append((parts, n * c.page_size))
                cpu_ids.append(cpu.cpu)
                total += n * c.page_size
        # one buffer, copied into once (a numpy allocation this large is backed by huge
        # pages where the kernel allows, which the page walk's gathers benefit from)
        blob = np.empty(total + 8, dtype=np.uint8)
        blob[total:] = 0
        cpu_bounds = [0]
        at = 0
        for parts, size in parts_of_cpu:
            end = at + size
            for part in parts:
                n = min(len(part), end - at)
                blob[at : at + n] = np.frombuffer(part, dtype=np.uint8, count=n)
                at += n
            cpu_bounds.append(at)
        self._blob = blob
        if not total:
            z = np.zeros(0, dtype=np.int64)
            self._records = {"ts": z.astype(np.uint64), "cpu": z.astype(np.int16), "id": z.astype(np.uint16),
                             "pid": z.astype(np.int32), "pos": z, "size": z}
            return
        page_starts = np.arange(0, total, c.page_size, dtype=np.int64)
        commit_off, commit_size, data_off = header_page_layout(c.header_page)
        w = walk_pages(blob, page_starts, page_size=c.page_size, big_endian=c.big_endian,
                       commit_off=commit_off, commit_size=commit_size, data_off=data_off)
        self.lost_pages = int(w["lost"].sum())
        self.bad_pages = int(w["bad"].sum())
        # file order (the walk's order): the CPUs' pages are contiguous in the blob, in
        # ascending CPU
        pos, ts_file = w["pos"], w["ts"]
        per_cpu = np.diff(np.searchsorted(pos, np.array(cpu_bounds, dtype=np.int64)))
        bounds = np.cumsum(per_cpu)[:-1]
        # trace-cmd's merge: the earliest head first, so an event never precedes the
        # later events before it on its own CPU: order by the running maximum per CPU
        # (where a CPU's clock goes back). In (CPU, file position) order, a stable sort
        # of that key keeps ties in CPU order (lower CPU first) and file order within a
        # CPU; the per-CPU runs are already sorted, which the merge sort exploits.
        key = ts_file
        back = np.flatnonzero(ts_file[1:] < ts_file[:-1]) + 1
        if len(back) and not np.isin(back, bounds).all():
            key = ts_file.copy()
            for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(pos)], strict=True):
                key[lo:hi] = np.maximum.accumulate(ts_file[lo:hi])
        merge = np.argsort(key, kind="stable")
        del key
        ts, pos, size = ts_file[merge], pos[merge], w["size"][merge]
        cpu = np.repeat(np.array(cpu_ids, dtype=np.int16), per_cpu)[merge]
        # the common header (u16 type, u8 flags, u8 preempt count, i32 pid) in one
        # gather of 8 bytes per record
        e = ">" if c.big_endian else "<"
        head = _unaligned(blob, e + "u8")[pos]
        if c.big_endian:
            common_type = (head >> np.uint64(48)).astype(np.uint16)
            pid = (head & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
        else:
            common_type = (head & np.uint64(0xFFFF)).astype(np.uint16)
            pid = (head >> np.uint64(32)).astype(np.uint32).view(np.int32)
        short = size < 8
        if short.any():
            common_type[short] = 0
            pid[short] = 0
        self._records = {"ts": ts, "cpu": cpu, "id": common_type, "pid": pid, "pos": pos, "size": size}

    def records(self) -> dict[str, np.ndarray]:
        """Every event, merged across CPUs in trace-cmd's order (see the module doc)."""
        if self._records is None:
            self._load()
        assert self._records is not None
        return self._records

    def field_values(self, fmt: EventFormat, name: str, index: np.ndarray) -> np.ndarray | None:
        """Field `name` of the records at `index` (which must all be of event `fmt`)."""
        rec = self.records()
        return self._field_at(fmt, name, rec["pos"][index], rec["size"][index])

    def _field_at(self, fmt: EventFormat, name: str, pos: np.ndarray, size: np.ndarray) -> np.ndarray | None:
        """Field `name` of the records whose payloads start at `pos` and are `size` long."""
        f = fmt.fields.get(name)
        if f is None or f.dynamic or f.size not in (1, 2, 4, 8):
            return None
        blob = self._blob
        assert blob is not None
        e = ">" if self.big_endian else "<"
        kind = ("i" if f.signed else "u") + str(f.size)
        at = pos + f.offset
        if len(at) and int(at.max()) > len(blob) - f.size:
            at = np.minimum(at, len(blob) - f.size)  # short records are zeroed below
        if f.size < 8 and f.offset % f.size == 0:  # aligned (payloads start 4-aligned)
            out = blob.view(e + kind)[at >> (f.size.bit_length() - 1)].astype(np.int64)
        else:
            out = _unaligned(blob, e + kind)[at].astype(np.int64 if f.size < 8 or f.signed else np.uint64)
        short = size < f.offset + f.size
        if short.any():
            out[short] = 0
        return out

    def id_counts(self) -> np.ndarray:
        """Records per event id (indexed by id)."""
        if self._id_counts is None:
            self._id_counts = np.bincount(self.records()["id"], minlength=1)
        return self._id_counts

    def index_of(self, event_id: int) -> np.ndarray:
        """Record indices (ascending) of one event id; ids without records cost nothing."""
        counts = self.id_counts()
        if not 0 <= event_id < len(counts) or not counts[event_id]:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.records()["id"] == event_id)

    def field_text(self, fmt: EventFormat, name: str, index: np.ndarray) -> list[str]:
        """A fixed-size char array field (e.g. sched_switch's `prev_comm`) as text."""
        f = fmt.fields.get(name)
        if f is None or f.dynamic or not len(index):
            return [""] * len(index)
        rec = self.records()
        assert self._blob is not None
        raw = self._blob[rec["pos"][index, None] + f.offset + np.arange(f.size)]
        return [bytes(row).split(b"\0", 1)[0].decode("utf-8", "replace") for row in raw]

    def comms(self) -> list[str]:
        """The task name of every record, as trace-cmd report prints it.

        The saved cmdlines first; a pid they lack gets the name its first
        sched_switch/sched_wakeup event shows (libtraceevent's sched_switch plugin
        registers those, first name wins), from the event after that one on;
        `<...>` before; pid 0 is `<idle>`.
        """
        rec = self.records()
        learned: dict[int, tuple[int, str]] = {}
        for name, pairs in (("sched_switch", (("prev_pid", "prev_comm"), ("next_pid", "next_comm"))),
                            ("sched_wakeup", (("pid", "comm"),)), ("sched_wakeup_new", (("pid", "comm"),))):
            fmt = self.format(name)
            if fmt is None:
                continue
            index = self.index_of(fmt.id)
            for pid_field, comm_field in pairs:
                pids = self.field_values(fmt, pid_field, index)
                if pids is None:
                    continue
                texts = self.field_text(fmt, comm_field, index)
                for i, pid, text in zip(index.tolist(), pids.tolist(), texts, strict=True):
                    if pid and pid not in self.cmdlines and (pid not in learned or learned[pid][0] > i):
                        learned[pid] = (i, text)
        out = []
        for i, pid in enumerate(rec["pid"].tolist()):
            comm = self.cmdlines.get(pid) if pid else "<idle>"
            if comm is None:
                known = learned.get(pid)
                comm = known[1] if known is not None and known[0] < i else "<...>"
            out.append(comm)
        return out

    def events(self, name: str, fields: list[str] | None = None) -> dict[str, np.ndarray]:
        """Records of one event (by name or system:name) with its fields decoded."""
        fmt = self.format(name)
        rec = self.records()
        if fmt is None:
            z = np.zeros(0, dtype=np.int64)
            return {"ts": z.astype(np.uint64), "cpu": z, "pid": z, "index": z}
        index = self.index_of(fmt.id)
        out: dict[str, np.ndarray] = {"ts": rec["ts"][index], "cpu": rec["cpu"][index],
                                      "pid": rec["pid"][index], "index": index}
        pos, size = rec["pos"][index], rec["size"][index]
        for fname in fields if fields is not None else [n for n in fmt.fields if not n.startswith("common_")]:
            values = self._field_at(fmt, fname, pos, size)
            if values is not None:
                out[fname] = values
        return out

    def symbol(self, name: str, field: str, isa: int | None = None) -> dict[int, str]:
        """The value -> name table of `__print_symbolic` on `field` (for kvm_exit: by ISA)."""
        fmt = self.format(name)
        if fmt is None:
            return {}
        tables = fmt.symbols.get(field, [])
        if not tables:
            return {}
        if isa is None or len(tables) == 1:
            return tables[0]
        vmx = [t for t in tables if "EXTERNAL_INTERRUPT" in t.values()]
        svm = [t for t in tables if t not in vmx]
        pick = vmx if isa == 1 else svm
        return (pick or tables)[0]
