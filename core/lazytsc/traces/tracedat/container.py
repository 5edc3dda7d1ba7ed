"""The trace.dat container: file header, v6 layout, v7 sections and options, compression.

Layout from trace-cmd's trace-cmd.dat.v6(5) and trace-cmd.dat.v7(5) man pages. Version 6
stores the metadata in a fixed order followed by `options` and `flyrecord`; version 7
stores sections anywhere, located through options, each optionally compressed
(`<u32 compressed size><u32 size><data>`), and the per-CPU ring-buffer data in chunks
(`<u32 count>` then per chunk `<u32 compressed size><u32 size><data>`).

Why everything is read through one bounded buffer: a truncated or hostile file must
give a `TraceDatError` naming the part that is wrong, never an IndexError or a huge
allocation; every length read from the file is checked against what is left.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"\x17\x08\x44tracing"
# option ids (trace-cmd.dat.v7(5) "OPTIONS SECTION")
OPT_DONE, OPT_DATE, OPT_CPUSTAT, OPT_BUFFER, OPT_TRACECLOCK, OPT_UNAME = 0, 1, 2, 3, 4, 5
OPT_OFFSET, OPT_CPUCOUNT, OPT_VERSION, OPT_TIME_SHIFT, OPT_TSC2NSEC, OPT_STRINGS = 7, 8, 9, 12, 14, 15
TSYNC_FLAG_INTERPOLATE = 0x1
OPT_HEADER_INFO, OPT_FTRACE_EVENTS, OPT_EVENT_FORMATS = 16, 17, 18
OPT_KALLSYMS, OPT_PRINTK, OPT_CMDLINES, OPT_BUFFER_TEXT = 19, 20, 21, 22
SEC_FL_COMPRESS = 1
# a decompressed section or chunk larger than this is refused (hostile sizes)
MAX_UNCOMPRESSED = 1 << 31


class TraceDatError(Exception):
    """A trace.dat that cannot be read: `field: what was expected` (the caller adds the file)."""


@dataclass
class CpuData:
    cpu: int
    offset: int
    size: int


@dataclass
class Container:
    """Everything the header, options and metadata sections say; CPU data stays in the file."""

    version: int
    big_endian: bool
    long_size: int
    page_size: int
    compression: str = "none"
    compression_version: str = ""
    header_page: str = ""
    header_event: str = ""
    ftrace_formats: list[str] = field(default_factory=list)
    event_formats: list[tuple[str, str]] = field(default_factory=list)  # (system, format text)
    cmdlines: dict[int, str] = field(default_factory=dict)
    clock: str = "local"
    cpus: list[CpuData] = field(default_factory=list)
    cpu_compressed: bool = False
    ts_offset: int = 0
    tsc2nsec: tuple[int, int, int] | None = None  # (mult, shift, offset)
    # TIME_SHIFT (a guest's trace synced to its host): flags, per CPU (times, offsets,
    # scalings, fractions) sorted by time
    time_shift: tuple[int, list[tuple[list[int], list[int], list[int], list[int]]]] | None = None
    uname: str = ""
    tracer_version: str = ""
    cpu_count: int = 0
    options: list[int] = field(default_factory=list)


class Reader:
    """Bounded, endian-aware reads from a bytes-like object."""

    def __init__(self, data: bytes | memoryview, big_endian: bool = False, where: str = "file") -> None:
        self.data = data
        self.pos = 0
        self.e = ">" if big_endian else "<"
        self.where = where

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise TraceDatError(
                f"{what}: expected {n} more bytes at offset {self.pos} of the {self.where}"
                f" (it has {len(self.data)}; truncated file?)"
            )

    def bytes(self, n: int, what: str) -> bytes:
        self.need(n, what)
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def u16(self, what: str) -> int:
        self.need(2, what)
        (v,) = struct.unpack_from(self.e + "H", self.data, self.pos)
        self.pos += 2
        return v

    def u32(self, what: str) -> int:
        self.need(4, what)
        (v,) = struct.unpack_from(self.e + "I", self.data, self.pos)
        self.pos += 4
        return v

    def u64(self, what: str) -> int:
        self.need(8, what)
        (v,) = struct.unpack_from(self.e + "Q", self.data, self.pos)
        self.pos += 8
        return v

    def cstr(self, what: str, limit: int = 4096) -> str:
        window = bytes(self.data[self.pos : self.pos + limit])
        end = window.find(b"\0")
        if end < 0:
            raise TraceDatError(f"{what}: expected a NUL-terminated string at offset {self.pos}")
        self.pos += end + 1
        return window[:end].decode("utf-8", "replace")

    def text(self, n: int, what: str) -> str:
        return self.bytes(n, what).decode("utf-8", "replace").rstrip("\0")


try:  # ISA-L's inflate: the same output as zlib's at about twice the speed
    from isal.isal_zlib import decompress as _isal_decompress
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _isal_decompress = None


def _inflate(data: bytes, size: int) -> bytes:
    if _isal_decompress is not None:
        return _isal_decompress(data, bufsize=size)
    return zlib.decompress(data, bufsize=size)


def decompress(algo: str, data: bytes, size: int, what: str) -> bytes:
    """One compressed block of `size` bytes (zlib: compress2 format; zstd: one frame)."""
    if size > MAX_UNCOMPRESSED:
        raise TraceDatError(f"{what}: expected an uncompressed size below 2 GiB, got {size}")
    try:
        if algo == "zlib":
            out = _inflate(data, max(size, 1))
        elif algo == "zstd":
            try:
                import zstandard
            except ImportError:  # pragma: no cover - zstandard is a dependency
                raise TraceDatError(f"{what}: zstd-compressed: install the `zstandard` package") from None
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=max(size, 1))
        else:
            raise TraceDatError(f"compression: expected zlib or zstd, got {algo!r}")
    except TraceDatError:
        raise
    except Exception as exc:  # zlib.error, zstandard.ZstdError: corrupt data
        raise TraceDatError(f"{what}: expected valid {algo} data ({exc})") from None
    if len(out) != size:
        raise TraceDatError(f"{what}: expected {size} bytes after decompression, got {len(out)}")
    return out


def _parse_header_info(r: Reader, c: Container) -> None:
    if r.bytes(12, "header_page") != b"header_page\0":
        raise TraceDatError("header_page: expected the string `header_page`")
    c.header_page = r.text(r.u64("header_page size"), "header_page")
    if r.bytes(13, "header_event") != b"header_event\0":
        raise TraceDatError("header_event: expected the string `header_event`")
    c.header_event = r.text(r.u64("header_event size"), "header_event")


def _parse_ftrace(r: Reader, c: Container) -> None:
    for _ in range(r.u32("ftrace formats count")):
        c.ftrace_formats.append(r.text(r.u64("ftrace format size"), "ftrace format"))


def _parse_events(r: Reader, c: Container) -> None:
    systems = r.u32("event systems count")
    if systems > 100_000:
        raise TraceDatError(f"event systems: expected a plausible count, got {systems}")
    for _ in range(systems):
        system = r.cstr("event system name")
        for _ in range(r.u32("events count")):
            c.event_formats.append((system, r.text(r.u64("event format size"), "event format")))


def _parse_cmdlines(text: str, c: Container) -> None:
    for line in text.splitlines():
        pid, _, comm = line.strip().partition(" ")
        if pid.isdigit():
            c.cmdlines[int(pid)] = comm


def _apply_option(c: Container, opt: int, data: bytes, sections: dict[int, int]) -> None:
    e = ">" if c.big_endian else "<"
    c.options.append(opt)
    if opt == OPT_TRACECLOCK:
        text = data.split(b"\0", 1)[0].decode("utf-8", "replace")
        for word in text.split():
            if word.startswith("["):
                c.clock = word.strip("[]")
    elif opt == OPT_BUFFER and c.version >= 7:
        r = Reader(data, c.big_endian, "BUFFER option")
        r.u64("buffer offset")
        name = r.cstr("buffer name")
        clock = r.cstr("buffer clock")
        r.u32("buffer page size")
        n = r.u32("buffer cpu count")
        if name == "":  # the top instance: the one trace-cmd report shows
            c.clock = clock or c.clock
            c.cpus = []
            for _ in range(n):
                c.cpus.append(CpuData(r.u32("cpu id"), r.u64("cpu data offset"), r.u64("cpu data size")))
    elif opt == OPT_OFFSET:
        try:
            c.ts_offset += int(data.split(b"\0", 1)[0].decode(), 0)
        except ValueError:
            pass
    elif opt == OPT_TSC2NSEC and len(data) >= 16:
        c.tsc2nsec = struct.unpack_from(e + "IIQ", data, 0)
    elif opt == OPT_TIME_SHIFT and len(data) >= 16:
        c.time_shift = _parse_time_shift(data, c.big_endian)
    elif opt == OPT_UNAME:
        c.uname = data.split(b"\0", 1)[0].decode("utf-8", "replace")
    elif opt == OPT_VERSION:
        c.tracer_version = data.split(b"\0", 1)[0].decode("utf-8", "replace")
    elif opt == OPT_CPUCOUNT and len(data) >= 4:
        (c.cpu_count,) = struct.unpack_from(e + "I", data, 0)
    elif opt in (OPT_HEADER_INFO, OPT_FTRACE_EVENTS, OPT_EVENT_FORMATS, OPT_KALLSYMS,
                 OPT_PRINTK, OPT_CMDLINES) and len(data) >= 8:
        (sections[opt],) = struct.unpack_from(e + "Q", data, 0)


def _parse_time_shift(data: bytes, big_endian: bool):
    """TIME_SHIFT: peer id, flags, then per CPU the correction samples (trace-cmd.dat.v7(5))."""
    r = Reader(data, big_endian, "TIME_SHIFT option")
    r.u64("time shift peer id")
    flags = r.u32("time shift flags")
    ncpu = r.u32("time shift cpu count")
    if ncpu > 65536:
        raise TraceDatError(f"TIME_SHIFT: expected a plausible CPU count, got {ncpu}")
    per_cpu = []
    for _ in range(ncpu):
        n = r.u32("time shift sample count")
        r.need(24 * n, "time shift samples")
        times = [r.u64("time") for _ in range(n)]
        offsets = [struct.unpack(r.e + "q", struct.pack(r.e + "Q", r.u64("offset")))[0] for _ in range(n)]
        scalings = [r.u64("scaling") for _ in range(n)]
        per_cpu.append((times, offsets, scalings, [0] * n))
    if r.pos < len(r.data):
        for times, _o, _s, fractions in per_cpu:
            for k in range(len(times)):
                fractions[k] = r.u64("fraction")
    out = []
    for times, offsets, scalings, fractions in per_cpu:
        rows = sorted(zip(times, offsets, scalings, fractions, strict=True))
        dedup = [row for k, row in enumerate(rows) if k == 0 or row[0] != rows[k - 1][0]]
        out.append(tuple(list(col) for col in zip(*dedup, strict=True)) if dedup else ([], [], [], []))
    return flags, out


def _section(data: bytes, c: Container, offset: int, want: int, what: str) -> Reader:
    """The body of the v7 section at `offset` (decompressed), checked to have id `want`."""
    r = Reader(data, c.big_endian)
    r.pos = offset
    sid = r.u16(f"{what} section id")
    flags = r.u16(f"{what} section flags")
    r.u32(f"{what} section description")
    size = r.u64(f"{what} section size")
    if sid != want:
        raise TraceDatError(f"{what}: expected section id {want} at offset {offset}, got {sid}")
    if flags & SEC_FL_COMPRESS:
        csize = r.u32(f"{what} compressed size")
        usize = r.u32(f"{what} uncompressed size")
        body = decompress(c.compression, r.bytes(csize, what), usize, what)
        return Reader(body, c.big_endian, f"{what} section")
    r.need(size, what)
    return Reader(memoryview(data)[r.pos : r.pos + size], c.big_endian, f"{what} section")


def parse_container(data: bytes) -> Container:
    """Parse everything but the ring-buffer pages (see `cpu_data`)."""
    if not data.startswith(MAGIC):
        raise TraceDatError("magic: expected a trace-cmd trace.dat (\\x17\\x08\\x44tracing)")
    r = Reader(data)
    r.pos = len(MAGIC)
    version_text = r.cstr("version", 16)
    if not version_text.isdigit():
        raise TraceDatError(f"version: expected a number, got {version_text!r}")
    version = int(version_text)
    if version not in (6, 7):
        raise TraceDatError(f"version: expected 6 or 7, got {version}")
    endian = r.bytes(1, "endianness")[0]
    long_size = r.bytes(1, "long size")[0]
    if endian not in (0, 1) or long_size not in (4, 8):
        raise TraceDatError(f"header: expected endianness 0/1 and long size 4/8, got {endian}/{long_size}")
    r.e = ">" if endian else "<"
    page_size = r.u32("page size")
    if not 256 <= page_size <= (1 << 24) or page_size & (page_size - 1):
        raise TraceDatError(f"page size: expected a power of two, got {page_size}")
    c = Container(version, bool(endian), long_size, page_size)
    if version == 6:
        _parse_v6(r, c)
    else:
        _parse_v7(data, r, c)
    return c


def _parse_v6(r: Reader, c: Container) -> None:
    _parse_header_info(r, c)
    _parse_ftrace(r, c)
    _parse_events(r, c)
    r.bytes(r.u32("kallsyms size"), "kallsyms")
    r.bytes(r.u32("printk size"), "printk formats")
    _parse_cmdlines(r.text(r.u64("cmdlines size"), "cmdlines"), c)
    ncpus = r.u32("cpu count")
    kind = r.bytes(10, "data kind")
    sections: dict[int, int] = {}
    if kind.startswith(b"options"):
        while True:
            opt = r.u16("option id")
            if opt == OPT_DONE:
                break
            size = r.u32("option size")
            _apply_option(c, opt, r.bytes(size, "option data"), sections)
        kind = r.bytes(10, "data kind")
    if kind.startswith(b"latency"):
        raise TraceDatError("data: expected flyrecord data, got a latency-tracer text trace")
    if not kind.startswith(b"flyrecord"):
        raise TraceDatError(f"data: expected `flyrecord`, got {kind!r}")
    c.cpus = [CpuData(i, r.u64("cpu data offset"), r.u64("cpu data size")) for i in range(ncpus)]


def _parse_v7(data: bytes, r: Reader, c: Container) -> None:
    c.compression = r.cstr("compression name", 64)
    c.compression_version = r.cstr("compression version", 64)
    if c.compression not in ("none", "zlib", "zstd"):
        raise TraceDatError(f"compression: expected none, zlib or zstd, got {c.compression!r}")
    offset = r.u64("options offset")
    sections: dict[int, int] = {}
    seen: set[int] = set()
    while offset:
        if offset in seen or len(seen) > 64:
            raise TraceDatError("options: expected a finite chain of options sections")
        seen.add(offset)
        opts = _section(data, c, offset, 0, "options")
        offset = 0
        while opts.pos < len(opts.data):
            opt = opts.u16("option id")
            size = opts.u32("option size")
            body = opts.bytes(size, "option data")
            if opt == OPT_DONE:
                offset = struct.unpack_from(r.e + "Q", body, 0)[0] if len(body) >= 8 else 0
                break
            _apply_option(c, opt, body, sections)
    c.cpu_compressed = c.compression != "none"
    if OPT_HEADER_INFO not in sections or OPT_EVENT_FORMATS not in sections:
        raise TraceDatError("sections: expected HEADER_INFO and EVENT_FORMATS sections")
    _parse_header_info(_section(data, c, sections[OPT_HEADER_INFO], OPT_HEADER_INFO, "header info"), c)
    if OPT_FTRACE_EVENTS in sections:
        _parse_ftrace(_section(data, c, sections[OPT_FTRACE_EVENTS], OPT_FTRACE_EVENTS, "ftrace events"), c)
    _parse_events(_section(data, c, sections[OPT_EVENT_FORMATS], OPT_EVENT_FORMATS, "event formats"), c)
    if OPT_CMDLINES in sections:
        cr = _section(data, c, sections[OPT_CMDLINES], OPT_CMDLINES, "cmdlines")
        _parse_cmdlines(cr.text(cr.u64("cmdlines size"), "cmdlines"), c)


def cpu_data(data: bytes, c: Container, cpu: CpuData) -> bytes:
    """The uncompressed ring-buffer pages of one CPU."""
    return b"".join(cpu_data_parts(data, c, cpu))


def cpu_data_parts(data: bytes, c: Container, cpu: CpuData) -> list[bytes]:
    """The uncompressed ring-buffer pages of one CPU, as the chunks they were stored in."""
    if cpu.size == 0:
        return []
    if cpu.offset + cpu.size > len(data) and not c.cpu_compressed:
        raise TraceDatError(f"cpu {cpu.cpu} data: expected {cpu.size} bytes at offset {cpu.offset}"
                            f" (the file has {len(data)}; truncated?)")
    if not c.cpu_compressed:
        return [data[cpu.offset : cpu.offset + cpu.size]]
    r = Reader(data, c.big_endian)
    r.pos = cpu.offset
    parts = []
    total = 0
    for _ in range(r.u32(f"cpu {cpu.cpu} chunk count")):
        csize = r.u32(f"cpu {cpu.cpu} chunk compressed size")
        usize = r.u32(f"cpu {cpu.cpu} chunk size")
        total += usize
        if total > MAX_UNCOMPRESSED:
            raise TraceDatError(f"cpu {cpu.cpu} data: expected less than 2 GiB uncompressed")
        parts.append(decompress(c.compression, r.bytes(csize, f"cpu {cpu.cpu} chunk"), usize,
                                f"cpu {cpu.cpu} chunk"))
    return parts
