"""Write trace.dat files (v6, or v7 with none/zlib/zstd) from parsed parts.

Why a writer in a reader's package: the reader must be tested on every layout it
claims (v6, v7 uncompressed, zlib, zstd) and benchmarked on files far larger than the
real recordings we ship; re-packing a real recording's own metadata and ring-buffer
pages into those layouts gives both without inventing event data. It writes what
trace-cmd.dat.v6(5)/v7(5) describe and nothing more (no kallsyms, no printk formats).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .container import (
    MAGIC,
    OPT_BUFFER,
    OPT_CMDLINES,
    OPT_CPUCOUNT,
    OPT_DONE,
    OPT_EVENT_FORMATS,
    OPT_FTRACE_EVENTS,
    OPT_HEADER_INFO,
    OPT_TRACECLOCK,
    OPT_TSC2NSEC,
)

CHUNK_PAGES = 10  # pages per compressed chunk of CPU data


@dataclass
class Parts:
    """Everything a trace.dat holds that the reader uses."""

    page_size: int
    header_page: str
    header_event: str
    event_formats: list[tuple[str, str]]
    ftrace_formats: list[str] = field(default_factory=list)
    cmdlines: dict[int, str] = field(default_factory=dict)
    clock: str = "local"
    tsc2nsec: tuple[int, int, int] | None = None
    cpus: dict[int, bytes] = field(default_factory=dict)  # cpu -> whole ring-buffer pages


def parts_of(td) -> Parts:
    """The parts of an opened TraceDat (its CPU data uncompressed)."""
    from .container import cpu_data

    c = td.c
    return Parts(
        page_size=c.page_size,
        header_page=c.header_page,
        header_event=c.header_event,
        event_formats=list(c.event_formats),
        ftrace_formats=list(c.ftrace_formats),
        cmdlines=dict(c.cmdlines),
        clock=c.clock,
        tsc2nsec=c.tsc2nsec,
        cpus={cpu.cpu: cpu_data(td._data, c, cpu) for cpu in c.cpus},
    )


def _compress(algo: str, data: bytes) -> bytes:
    if algo == "zlib":
        return zlib.compress(data, 6)
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _header_info(p: Parts) -> bytes:
    hp, he = p.header_page.encode(), p.header_event.encode()
    return (b"header_page\0" + struct.pack("<Q", len(hp)) + hp
            + b"header_event\0" + struct.pack("<Q", len(he)) + he)


def _ftrace(p: Parts) -> bytes:
    out = [struct.pack("<I", len(p.ftrace_formats))]
    for text in p.ftrace_formats:
        b = text.encode()
        out += [struct.pack("<Q", len(b)), b]
    return b"".join(out)


def _events(p: Parts) -> bytes:
    systems: dict[str, list[str]] = {}
    for system, text in p.event_formats:
        systems.setdefault(system, []).append(text)
    out = [struct.pack("<I", len(systems))]
    for system, texts in systems.items():
        out += [system.encode() + b"\0", struct.pack("<I", len(texts))]
        for text in texts:
            b = text.encode()
            out += [struct.pack("<Q", len(b)), b]
    return b"".join(out)


def _cmdlines(p: Parts) -> bytes:
    text = "".join(f"{pid} {comm}\n" for pid, comm in sorted(p.cmdlines.items())).encode()
    return struct.pack("<Q", len(text)) + text


def _pad(buf: bytearray, page: int) -> None:
    buf += b"\0" * (-len(buf) % page)


def write_v6(p: Parts) -> bytes:
    """trace.dat version 6, little endian, 64-bit longs, uncompressed."""
    buf = bytearray(MAGIC + b"6\0" + bytes([0, 8]) + struct.pack("<I", p.page_size))
    buf += _header_info(p) + _ftrace(p) + _events(p)
    buf += struct.pack("<I", 0) + struct.pack("<I", 0)  # kallsyms, printk: empty
    buf += _cmdlines(p)
    cpus = sorted(p.cpus)
    n = (max(cpus) + 1) if cpus else 0
    buf += struct.pack("<I", n)
    buf += b"options  \0"
    clock = f"[{p.clock}]\0".encode()
    buf += struct.pack("<HI", OPT_TRACECLOCK, len(clock)) + clock
    if p.tsc2nsec is not None:
        buf += struct.pack("<HI", OPT_TSC2NSEC, 16) + struct.pack("<IIQ", *p.tsc2nsec)
    buf += struct.pack("<H", OPT_DONE)
    buf += b"flyrecord\0"
    table_at = len(buf)
    buf += b"\0" * (16 * n)
    entries = []
    for cpu in range(n):
        data = p.cpus.get(cpu, b"")
        _pad(buf, p.page_size)
        entries.append((len(buf), len(data)))
        buf += data
    for i, (off, size) in enumerate(entries):
        struct.pack_into("<QQ", buf, table_at + 16 * i, off, size)
    return bytes(buf)


def write_v7(p: Parts, compression: str = "zlib") -> bytes:
    """trace.dat version 7 with `none`, `zlib` or `zstd` sections and CPU data."""
    versions = {"none": "", "zlib": "1.2.11", "zstd": "1.5.0"}
    buf = bytearray(MAGIC + b"7\0" + bytes([0, 8]) + struct.pack("<I", p.page_size))
    buf += compression.encode() + b"\0" + versions[compression].encode() + b"\0"
    opt_at = len(buf)
    buf += b"\0" * 8

    def section(sid: int, body: bytes, compress: bool = True) -> int:
        at = len(buf)
        if compression != "none" and compress:
            z = _compress(compression, body)
            payload = struct.pack("<II", len(z), len(body)) + z
            buf.extend(struct.pack("<HHIQ", sid, 1, 0, len(payload)) + payload)
        else:
            buf.extend(struct.pack("<HHIQ", sid, 0, 0, len(body)) + body)
        return at

    offsets = {
        OPT_HEADER_INFO: section(OPT_HEADER_INFO, _header_info(p)),
        OPT_FTRACE_EVENTS: section(OPT_FTRACE_EVENTS, _ftrace(p)),
        OPT_EVENT_FORMATS: section(OPT_EVENT_FORMATS, _events(p)),
        OPT_CMDLINES: section(OPT_CMDLINES, _cmdlines(p)),
    }
    cpu_entries = []
    for cpu in sorted(p.cpus):
        data = p.cpus[cpu]
        _pad(buf, p.page_size)
        at = len(buf)
        if compression == "none":
            buf += data
        else:
            chunk = CHUNK_PAGES * p.page_size
            pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
            buf += struct.pack("<I", len(pieces))
            for piece in pieces:
                z = _compress(compression, piece)
                buf += struct.pack("<II", len(z), len(piece)) + z
        cpu_entries.append((cpu, at, len(buf) - at))
    clock = p.clock.encode() + b"\0"
    buffer_opt = (struct.pack("<Q", 0) + b"\0" + clock + struct.pack("<II", p.page_size, len(cpu_entries))
                  + b"".join(struct.pack("<IQQ", cpu, at, size) for cpu, at, size in cpu_entries))
    opts = bytearray()
    for sid, at in offsets.items():
        opts += struct.pack("<HI", sid, 8) + struct.pack("<Q", at)
    tclock = f"[{p.clock}]\0".encode()
    opts += struct.pack("<HI", OPT_TRACECLOCK, len(tclock)) + tclock
    opts += struct.pack("<HI", OPT_CPUCOUNT, 4) + struct.pack("<I", len(cpu_entries))
    if p.tsc2nsec is not None:
        opts += struct.pack("<HI", OPT_TSC2NSEC, 16) + struct.pack("<IIQ", *p.tsc2nsec)
    opts += struct.pack("<HI", OPT_BUFFER, len(buffer_opt)) + buffer_opt
    opts += struct.pack("<HI", OPT_DONE, 8) + struct.pack("<Q", 0)
    struct.pack_into("<Q", buf, opt_at, section(0, bytes(opts)))
    return bytes(buf)
