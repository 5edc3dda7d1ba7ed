"""Export an event log (a simulated run or an imported trace) as a Perfetto trace.

ui.perfetto.dev opens the file (Open trace file): per vCPU one track of exits as slices
(an HLT lasts until the vCPU's next event; other exits until the next event, at most
1 us), one track of instants for everything else the log records (deadline requests and
skips, kicks, timer interrupts, hazards...), and counter tracks of the TSC-deadline MSR
value written and, in lazy runs, the shared page's `pending` and `armed`.

Why the protobuf is written here: the format needs only four messages (TracePacket,
TrackDescriptor, TrackEvent, CounterDescriptor) of Perfetto's public schema
(protos/perfetto/trace/perfetto_trace.proto; field numbers below), and writing them
directly streams in constant memory with no dependency; the `perfetto` package's
TraceProtoBuilder (protobuf objects; it works offline) holds the whole trace in memory
and adds protobuf and its own 3 MB. benchmarks/bench_trace.py measures both. The tests decode our output with that
package's generated classes, so the file is checked against the real schema.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from .eventlog import EventLog
from .taxonomy import EXIT_NAMES, KIND_NAMES, MSR_SUB_NAMES, Exit, Kind

# TracePacket fields
_PKT_TIMESTAMP, _PKT_SEQ_ID, _PKT_TRACK_EVENT, _PKT_SEQ_FLAGS, _PKT_TRACK_DESC = 8, 10, 11, 13, 60
# TrackDescriptor fields
_TD_UUID, _TD_NAME, _TD_PARENT, _TD_COUNTER = 1, 2, 5, 8
# TrackEvent fields and types
_TE_TYPE, _TE_TRACK, _TE_NAME, _TE_COUNTER = 9, 11, 23, 30
SLICE_BEGIN, SLICE_END, INSTANT, COUNTER = 1, 2, 3, 4
# CounterDescriptor.unit_name
_CD_UNIT_NAME = 6
SEQ_ID = 7
SEQ_INCREMENTAL_STATE_CLEARED = 1
MAX_EXIT_SLICE_NS = 1_000


_SMALL = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    value &= (1 << 64) - 1  # int64 values are written as their two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode("utf-8"))


def _packet(body: bytes) -> bytes:
    """One `Trace.packet` (field 1) holding a TracePacket."""
    return _bytes(1, body)


def _track(uuid: int, name: str, parent: int | None = None, counter_unit: str | None = None) -> bytes:
    td = _int(_TD_UUID, uuid) + _str(_TD_NAME, name)
    if parent is not None:
        td += _int(_TD_PARENT, parent)
    if counter_unit is not None:
        td += _bytes(_TD_COUNTER, _str(_CD_UNIT_NAME, counter_unit))
    return _packet(_int(_PKT_SEQ_ID, SEQ_ID) + _bytes(_PKT_TRACK_DESC, td))


_K_TYPE = _key(_TE_TYPE, 0)
_K_TRACK = _key(_TE_TRACK, 0)
_K_COUNTER = _key(_TE_COUNTER, 0)
_K_TS = _key(_PKT_TIMESTAMP, 0)
_SEQ = _int(_PKT_SEQ_ID, SEQ_ID)
_K_TE = _key(_PKT_TRACK_EVENT, 2)
_K_PACKET = _key(1, 2)
_NAMES: dict[str, bytes] = {}


_BLOCKS: dict[tuple[int, int, str | None], bytes] = {}


def _event(ts: int, kind: int, track: int, name: str | None = None, value: int | None = None) -> bytes:
    """One TracePacket{timestamp, sequence id, TrackEvent} inside a `Trace.packet`.

    Slices and instants repeat a few (type, track, name) TrackEvents millions of times:
    their encoding is cached, so an event costs one timestamp varint and a concatenation.
    """
    if value is None:
        block = _BLOCKS.get((kind, track, name))
        if block is None:
            te = _K_TYPE + _SMALL[kind] + _K_TRACK + _varint(track)
            if name is not None:
                te += _str(_TE_NAME, name)
            block = _BLOCKS[(kind, track, name)] = _SEQ + _K_TE + _varint(len(te)) + te
    else:
        te = _K_TYPE + _SMALL[kind] + _K_TRACK + _varint(track) + _K_COUNTER + _varint(value)
        block = _SEQ + _K_TE + _varint(len(te)) + te
    stamp = _varint(ts if ts > 0 else 0)
    return _K_PACKET + _SMALL[1 + len(stamp) + len(block)] + _K_TS + stamp + block if (
        1 + len(stamp) + len(block) < 128
    ) else _K_PACKET + _varint(1 + len(stamp) + len(block)) + _K_TS + stamp + block


_EXIT = {int(k): v for k, v in EXIT_NAMES.items()}
_SUB = {int(k): v for k, v in MSR_SUB_NAMES.items()}
_MSR_WRITE, _OTHER, _NOTE = int(Exit.MSR_WRITE), int(Exit.OTHER), int(Kind.NOTE)


def _exit_name(exit_code: int, sub: int, kind: int, a: int, note_names: Sequence[str]) -> str:
    name = _EXIT.get(exit_code, "other")
    if exit_code == _MSR_WRITE and sub >= 0:
        return f"{name}: {_SUB.get(sub, 'other')}"
    if exit_code == _OTHER and kind == _NOTE and 0 <= a < len(note_names):
        return f"other: {note_names[a]}"
    return name


def write_perfetto(
    log: EventLog, out: BinaryIO, *, title: str = "lazytsc", note_names: Sequence[str] = ()
) -> int:
    """Stream `log` to `out` as a Perfetto protobuf trace; returns the packets written.

    `note_names` names the raw reasons of an imported trace's `other` exits (NOTE rows
    carry the index in column a; see TraceResult.note_names).
    """
    cols = {name: log.column(name) for name in ("time", "vcpu", "kind", "exit", "sub", "a", "b")}
    n = len(cols["time"])
    vcpus = sorted(int(v) for v in np.unique(cols["vcpu"]) if v >= 0) if n else []
    lazy = bool(n) and bool(np.isin(cols["kind"], [int(Kind.LAZY_UPDATE), int(Kind.LAZY_KICK),
                                                  int(Kind.LAZY_CLEAR)]).any())
    packets = 0
    buf: list[bytes] = []

    def emit(data: bytes) -> None:
        nonlocal packets
        buf.append(data)
        packets += 1
        if len(buf) >= 4096:
            out.write(b"".join(buf))
            buf.clear()

    root = 1
    emit(_packet(_int(_PKT_SEQ_ID, SEQ_ID) + _int(_PKT_SEQ_FLAGS, SEQ_INCREMENTAL_STATE_CLEARED)
                 + _bytes(_PKT_TRACK_DESC, _int(_TD_UUID, root) + _str(_TD_NAME, title))))
    tracks: dict[tuple[int, str], int] = {}
    for v in vcpus + ([-1] if n and (cols["vcpu"] < 0).any() else []):
        base = 1000 * (v + 2)
        label = f"vCPU {v}" if v >= 0 else "VM"
        emit(_track(base, label, root))
        for k, (suffix, unit) in enumerate((("exits", None), ("events", None),
                                            ("TSC-deadline MSR", "TSC"), ("pending", "TSC"),
                                            ("armed", "TSC"))):
            if suffix in ("pending", "armed") and not lazy:
                continue
            uuid = base + 1 + k
            tracks[(v, suffix)] = uuid
            emit(_track(uuid, f"{label} {suffix}", base, unit))
    if not n:
        out.write(b"".join(buf))
        return packets
    time = cols["time"].astype(np.int64)
    vcpu = cols["vcpu"].astype(np.int64)
    # the next event's time on the same vCPU (exit slices end there, at the latest)
    order = np.lexsort((np.arange(n), vcpu))
    next_t = np.full(n, -1, dtype=np.int64)
    same = vcpu[order][1:] == vcpu[order][:-1]
    next_t[order[:-1][same]] = time[order][1:][same]
    kinds = cols["kind"].tolist()
    end_kind = int(Kind.END)
    halt = int(Exit.HALT)
    wrmsr = int(Kind.WRMSR_TSC_DEADLINE)
    request = int(Kind.DEADLINE_REQUEST)
    update = int(Kind.LAZY_UPDATE)
    kick = int(Kind.LAZY_KICK)
    kind_names = {int(k): name for k, name in KIND_NAMES.items()}
    exits = cols["exit"].tolist()
    subs = cols["sub"].tolist()
    avals = cols["a"].tolist()
    bvals = cols["b"].tolist()
    armed_kinds = {int(Kind.LAZY_UPDATE), int(Kind.LAZY_KICK), int(Kind.LAZY_CLEAR)}
    for i, (t, v, kind, ex) in enumerate(zip(time.tolist(), vcpu.tolist(), kinds, exits, strict=True)):
        if kind == end_kind:
            continue
        if ex >= 0:
            nt = int(next_t[i])
            # slices of one vCPU never overlap: each ends by the vCPU's next event (at the
            # same instant: a zero-length slice); the last one lasts 1 ns
            if nt < t:
                end = t + 1
            elif ex == halt:
                end = nt
            else:
                end = t + min(MAX_EXIT_SLICE_NS, nt - t)
            track = tracks[(v, "exits")]
            emit(_event(t, SLICE_BEGIN, track, _exit_name(ex, subs[i], kind, avals[i], note_names)))
            emit(_event(end, SLICE_END, track))
        else:
            emit(_event(t, INSTANT, tracks[(v, "events")], kind_names.get(kind, f"kind {kind}")))
        if kind == wrmsr:
            emit(_event(t, COUNTER, tracks[(v, "TSC-deadline MSR")], value=avals[i]))
        elif lazy and kind == request:
            emit(_event(t, COUNTER, tracks[(v, "pending")], value=avals[i]))
        elif lazy and kind in armed_kinds:
            armed = avals[i] if kind == update else (None if kind == kick and bvals[i] else 0)
            if armed is not None:
                emit(_event(t, COUNTER, tracks[(v, "armed")], value=armed))
    out.write(b"".join(buf))
    return packets


def export_perfetto(
    log: EventLog, path: str | os.PathLike, *, title: str = "lazytsc", note_names: Sequence[str] = ()
) -> int:
    """Write `path` atomically (lazytsc.atomic: links, mode and owner kept); returns the packets written."""
    from .atomic import atomic_open

    with atomic_open(path, binary=True) as fh:
        return write_perfetto(log, fh, title=title, note_names=note_names)
