"""One streaming pass over a trace: `import_trace(path) -> TraceResult` (text or trace.dat).

Why one hand-inlined loop: traces run to 10^7-10^8 lines, so the per-line work is
a few C-level string operations (`split`, `rfind`, `int`), dictionary look-ups and
counter increments, with no object per line kept. Anything the fast path does not
recognise goes to `_slow`, the full regex grammar of `lines.LINE_RE`, which reads
unusual layouts or says why a line is garbled; both accept the same lines (tested).

vCPU of a line (first rule that applies):
  1. the `vcpu N` / `apicid N` / `vcpu_id N` field of the payload (kvm_exit since
     5.5, kvm_entry, kvm_apic_accept_irq and kvm_eoi, whose `apicid` KVM fills with
     `vcpu->vcpu_id`, kvm_hv_timer_state);
  2. the host thread's name when it is QEMU's `CPU N/KVM`;
  3. the vCPU of the latest kvm_entry printed by the same host thread (same
     `COMM-PID` text before ` [CPU]`), since a vCPU thread only runs its own vCPU;
  4. the vCPU of the first kvm_entry the same thread prints later (exits before a
     thread's first entry are held under a provisional id and moved there);
  5. otherwise `unknown` (JSON key), -1 in the event log, and a warning.

MSR-write exits: `kvm_exit` does not print ECX, so each msr-write exit is paired with
the next `kvm_msr: msr_write` of the same vCPU (KVM traces it while handling that
exit, before the next kvm_entry); an exit followed by kvm_entry/kvm_exit or the end
of the trace without one counts as sub-reason `other`.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator

import numpy as np

from ..eventlog import EventLog
from ..taxonomy import (
    BACKEND_HV,
    LOCAL_TIMER_VECTOR,
    MSR_IA32_TSC_DEADLINE,
    Exit,
    Kind,
    MsrSub,
    msr_sub_for,
)
from . import lines as L
from . import perfstat, reasons, textcolumns
from . import textgrammar as G
from .accounting import (
    N_COUNTERS,
    ROW_ACCEPT_IRQ,
    ROW_INJ_VIRQ,
    SUB_BASE,
    UNKNOWN_VCPU,
    TraceAccounting,
    exits_dict,
    spans_of,
)
from .errors import TraceError
from .source import MAX_LINE_BYTES, OVERLONG, Source, chunk_lines, open_source, quote_name
from .textblock import (
    EV_ACCEPT,
    EV_APIC,
    EV_ENTRY,
    EV_EOI,
    EV_EXIT,
    EV_HVT,
    EV_INJ,
    EV_IPI,
    EV_MSR,
    EV_PERF,
)

_SCALE = tuple(10 ** (9 - k) for k in range(10))
_INT64_MAX = (1 << 63) - 1
_SUB_OTHER = SUB_BASE + int(MsrSub.OTHER)
_EXIT_KIND = {
    int(Exit.INTR): int(Kind.HOST_IRQ),
    int(Exit.HALT): int(Kind.HLT),
    int(Exit.PREEMPTION_TIMER): int(Kind.TIMER_FIRE),
    int(Exit.CPUID): int(Kind.CPUID),
}
_MSR_KIND = {
    int(MsrSub.TSC_DEADLINE): int(Kind.WRMSR_TSC_DEADLINE),
    int(MsrSub.APIC_ICR): int(Kind.WRMSR_ICR),
    int(MsrSub.APIC_EOI): int(Kind.WRMSR_EOI),
    int(MsrSub.PV_LAZY): int(Kind.WRMSR_PV),
    int(MsrSub.OTHER): int(Kind.NOTE),
}


def _msr_row(sub: int, msr: int, value: int, fault: bool) -> tuple[int, int, int]:
    """(kind, a, b) of an MSR write row, with a/b as taxonomy.KIND_FIELDS names them."""
    kind = _MSR_KIND[sub]
    if sub == MsrSub.TSC_DEADLINE:
        return kind, value, 0
    if sub == MsrSub.APIC_ICR:
        return kind, value >> 32, value & 0xFF  # x2APIC ICR: destination in bits 63:32
    if sub == MsrSub.APIC_EOI:
        return kind, 0, 0
    if sub == MsrSub.PV_LAZY:
        return kind, value, 0 if fault else 1
    return kind, msr, value  # NOTE of an msr-write exit: a=MSR number, b=value


# Event codes of the fast path; a perf script name (`kvm:kvm_exit`) adds EV_PERF.
# (EV_* come from textblock: one definition, shared with the block parser)
_EVENT_CODES = {
    "kvm_exit": EV_EXIT,
    "kvm_entry": EV_ENTRY,
    "kvm_msr": EV_MSR,
    "kvm_apic_accept_irq": EV_ACCEPT,
    "kvm_inj_virq": EV_INJ,
    "kvm_eoi": EV_EOI,
    "kvm_apic_ipi": EV_IPI,
    "kvm_hv_timer_state": EV_HVT,
}
EVENT_NAMES = {code: name for name, code in _EVENT_CODES.items()}
EVENT_NAMES[EV_APIC] = "kvm_apic"
# the event token as the fast path sees it: `kvm_exit:` (ftrace), `kvm_exit` (trace-cmd
# 3.x pads the name without a colon), `kvm:kvm_exit:` (perf script)
DISPATCH: dict[str, int] = {}
for _name, _code in _EVENT_CODES.items():
    DISPATCH[_name] = DISPATCH[_name + ":"] = _code
    DISPATCH[f"kvm:{_name}:"] = DISPATCH[f"kvm:{_name}"] = _code | EV_PERF
DISPATCH["kvm_apic"] = DISPATCH["kvm_apic:"] = EV_APIC
DISPATCH["kvm:kvm_apic:"] = DISPATCH["kvm:kvm_apic"] = EV_APIC | EV_PERF
_PAYLOAD_BY_CODE = {code: L.PAYLOADS[name] for name, code in _EVENT_CODES.items()
                    if name in L.PAYLOADS}
# vcpu value meaning "resolve from the host thread" (old kvm_exit, kvm_msr, kvm_inj_virq)
_FROM_THREAD = -2
# provisional vCPU ids of threads whose first kvm_entry is still to come
_PROVISIONAL_BASE = -1000
_MAX_PROVISIONAL = 4096
_TABLE = (0, 0, "", 0, None, None, None)
_HELD = (0, 0, "", 0, None, None, None)
_T_MAX = (1 << 63) - 1
_T_INF = 1 << 63
_MAX_VCPU = G.MAX_VCPU
_LAPIC_MSRS = frozenset({0x832, 0x838, 0x83E})
# read blocks of lines in bulk (textblock/textcolumns) where they allow it; False: every
# line through the per-line loop (the reference the block path is tested against)
BLOCK_PATH = True


class _State:
    """Slow-path state carried across lines: the held (incomplete) event, the last time."""

    __slots__ = ("held", "held_lineno", "held_why", "last_t", "last_event", "last_known", "event_line")

    def __init__(self) -> None:
        self.held: str | None = None
        self.held_lineno = 0
        self.event_line = 0  # the line an event returned by _slow is recorded at
        self.held_why = ""
        self.last_t = 0
        self.last_event = False  # the line before was an event line
        self.last_known = False  # ... of a tracepoint we read (and complete)


def _event_tuple(acc: TraceAccounting, h: G.Header, line: str) -> tuple | None:
    """Normalize one header-split line, or raise ValueError/Incomplete naming the field."""
    name = h.name
    if h.ts is None:
        t = None
    else:
        t, raw = G.timestamp(h.ts)
        if raw:
            acc.integer_timestamps += 1
    style = EV_PERF if h.sys is not None else 0
    key = h.key
    payload = h.payload
    if name == "kvm_exit":
        if payload.strip() and G.is_arm_exit(payload):
            acc.non_x86_exits += 1
            return ("arm", t, key, "kvm_exit (arm64)")
        vcpu, reason, info1 = G.parse_exit(payload)
        return (EV_EXIT | style, t, key, vcpu if vcpu is not None else _FROM_THREAD,
                reason, info1 or "0", None)
    if name == "kvm_entry":
        if payload.strip() and G.is_arm_exit(payload):
            return ("arm", t, key, "kvm_entry (arm64)")
        return (EV_ENTRY | style, t, "", G.parse_entry(payload), key, None, None)
    if name == "kvm_msr":
        direction, msr, value = G.parse_msr(payload)
        return (EV_MSR | style, t, key, _FROM_THREAD, direction, msr, value)
    if name == "kvm_apic":
        write, reg, value = G.parse_apic(payload)
        return (EV_APIC | style, t, key, _FROM_THREAD, write, reg, value)
    code = _EVENT_CODES.get(name)
    if code is None:
        return ("unknown", t, key, name)
    p = L.PAYLOADS[name].match(payload.strip())
    if p is None:
        why = L.diagnose(name, payload).split(": ", 1)[1]
        if not payload.strip() or why.startswith("end:") or "end of line" in why:
            raise G.Incomplete(why)
        raise ValueError(why)
    groups = p.groups()
    if code in (EV_ACCEPT, EV_HVT):
        v = int(groups[0], 16)
        if v > _MAX_VCPU:
            raise ValueError(f"{'apicid' if code == EV_ACCEPT else 'vcpu_id'}: expected a vCPU"
                             f" number up to {_MAX_VCPU}, got {groups[0][:20]}")
    return (code | style, t, key, _FROM_THREAD, groups, None, None)


def _slow(
    acc: TraceAccounting, st: _State, lineno: int, line: str, events_so_far: int
) -> tuple | None:
    """The lenient grammar (textgrammar) for a line the fast path declined.

    Returns the fast path's normalized tuple (code, t, thread key, vcpu, f1, f2, f3),
    `_TABLE` when a perf kvm stat table starts here, or None when the line was
    counted here (comment, unknown tracepoint, garbled, held for its continuation).
    """
    if st.held is not None:
        held, held_no, why = st.held, st.held_lineno, st.held_why
        st.held = None
        if line is not OVERLONG and G.is_continuation(G.strip_quotes(line)):
            joined = held.rstrip() + " " + G.strip_quotes(line).strip()
            acc.continuation_lines += 1
            acc.ignored += 1
            # the joined event is the held line's: recorded at its (first) line
            st.event_line = held_no
            return _slow(acc, st, held_no, joined, events_so_far)
        acc.skip(held_no, why)
        st.last_event = False
    if line is OVERLONG:
        acc.overlong_lines += 1
        acc.skip(lineno, f"line: expected at most {MAX_LINE_BYTES} bytes per line; this one is longer"
                 " (skipped without reading it)")
        st.last_event = False
        return None
    text = G.strip_quotes(line)
    h = G.parse_header(text)
    if h is None:
        if st.last_event and not st.last_known and G.is_continuation(text):
            acc.continuation_lines += 1  # the wrapped tail of an event we do not read
            acc.ignored += 1
            return None
        st.last_event = False
        return _TABLE if _unmatched(acc, lineno, text, events_so_far) else None
    try:
        r = _event_tuple(acc, h, text)
    except G.Incomplete as exc:
        st.held, st.held_lineno, st.held_why = text, lineno, f"{h.name}: {exc}"
        return None
    except ValueError as exc:
        msg = str(exc)
        acc.skip(lineno, msg if msg.startswith("timestamp:") else f"{h.name}: {msg}")
        if h.name == "kvm_exit":
            acc.garbled_exits += 1
        st.last_event = False
        return None
    st.last_event = True
    if r is None:
        return None
    t = r[1]
    if t is None:
        acc.untimed_lines += 1
        t = st.last_t
    st.last_t = t
    if r[0] == "unknown" or r[0] == "arm":
        acc.unknown(r[3])
        st.last_known = False
        return None
    st.last_known = True
    code, _t, key, v, f1, f2, f3 = r
    if code & 15 == EV_EXIT and not (code & EV_PERF) and h.ts is not None and not h.flags:
        code |= 32  # counted as trace-cmd style (no irq-flags column) unless ftrace says so
    return (code, t, key, v, f1, f2, f3)


def _provisional(acc: TraceAccounting, key: str) -> int:
    """A provisional vCPU id for a thread not attributed yet (moved at its first kvm_entry)."""
    v = acc.thread_provisional.get(key)
    if v is None:
        if len(acc.thread_provisional) >= _MAX_PROVISIONAL:
            return UNKNOWN_VCPU
        v = acc.thread_provisional[key] = _PROVISIONAL_BASE - len(acc.thread_provisional)
    return v


class Scanner:
    """One pass over a text trace: the per-line loop (`lines`) and the block path
    (`block`, numpy over ~1 MiB at a time) share this state, so a file can switch between
    them at any line and get the same result as reading every line one by one.

    Per-line fast path: `line.split(": ", 1)` gives the header and the rest; the
    timestamp is the header's last word and the event the rest's first; hot payloads are
    split on whitespace and checked field by field against their TP_printk layout.
    Anything else (and any ValueError/IndexError on the way) goes to `_slow`. The block
    path (textblock, textcolumns) reads the lines the fast path reads, in bulk.
    """

    def __init__(self, acc: TraceAccounting, block_path: bool = True) -> None:
        self.acc = acc
        self.dispatch = DISPATCH
        self.st = _State()
        self.held = self.last_ev = self.last_known = False  # mirrors of st's fields
        self.msr_subs: dict[int, int] = {}
        self.pending: dict[int, int] = {}  # vcpu -> row index of an msr-write exit awaiting kvm_msr
        self.halted: dict[int, int] = {}  # vcpu -> time of its HLT exit, until the next kvm_entry
        self.tp_counts = [0] * 10  # lines per event code
        self.thread_known: set[int] = set()  # vCPUs whose thread was learned from a kvm_exit payload
        self.exit_cache: dict[str, tuple] = {}  # payload -> (vcpu, reason, info1) of checked kvm_exit lines
        self.entry_cache: dict[str, int] = {}  # payload -> vcpu of checked kvm_entry lines
        self.other_cache: dict[int, dict[str, tuple]] = {code: {} for code in _PAYLOAD_BY_CODE}
        self.lineno = acc.lines
        self.perf_n = self.flags_n = self.plain_n = 0
        self.prev = self.tmin = _T_INF
        self.tmax = -1
        self.nonmono = 0
        self.unpaired = self.nomsr = self.reads = self.faults = self.clamped = 0
        self.columns = textcolumns.Columns(self) if block_path and self.dispatch else None

    def padding(self) -> dict[str, bytes]:
        """What `run` wants around each chunk of bytes (Source.chunks front/back)."""
        return textcolumns.PADDING if self.columns is not None else {}

    def chunk_lines(self, chunk: bytes) -> list[str]:
        """The text lines of a chunk from Source.chunks(**self.padding())."""
        pad = self.padding()
        return chunk_lines(chunk, len(pad.get("front", b"")), len(pad.get("back", b"")))

    def run(self, chunks: Iterator[bytes | list[str]]) -> tuple[int, str, list[str]] | None:
        """Read `chunks` (Source.chunks(**self.padding())) until the end or a perf kvm stat
        table starts; returns (line number, line, rest of its block) of the table's first line."""
        chunk = next(chunks, None)
        while chunk is not None:
            if isinstance(chunk, list):
                start = self.lines(chunk)
            elif self.columns is not None:
                start = self.columns.block(chunk)
            else:
                start = self.lines(chunk_lines(chunk))
            if start is not None:
                return start
            del chunk  # not held while the next one is read
            chunk = next(chunks, None)
        return None

    def lines(self, block: list[str]) -> tuple[int, str, list[str]] | None:
        """The per-line loop over `block` (text lines in file order)."""
        acc = self.acc
        dispatch = self.dispatch
        ev_exit, ev_entry, ev_msr, ev_accept, ev_inj = EV_EXIT, EV_ENTRY, EV_MSR, EV_ACCEPT, EV_INJ
        ev_eoi, ev_ipi, ev_hvt, ev_apic, ev_perf = EV_EOI, EV_IPI, EV_HVT, EV_APIC, EV_PERF
        payload_res = _PAYLOAD_BY_CODE
        vcpus = acc.vcpus
        new_counters = acc.counters
        name_vcpu = acc.thread_name_vcpu
        entry_vcpu = acc.thread_entry_vcpu
        reason_codes = acc.reason_codes
        raw_reasons = acc.raw_reasons
        classify = acc.classify
        other_reasons = acc.other_reasons
        deadline_t = acc.deadline_t
        deadline_v = acc.deadline_v
        provisional = acc.thread_provisional
        halts = acc.halts
        thread_vcpu = L.thread_vcpu
        msr_subs = self.msr_subs
        pending = self.pending
        halted = self.halted
        tp_counts = self.tp_counts
        scale = _SCALE
        svm_msr = reasons.SVM_MSR
        ex_msr_write = int(Exit.MSR_WRITE)
        ex_msr_read = int(Exit.MSR_READ)
        ex_other = int(Exit.OTHER)
        ex_halt = int(Exit.HALT)
        sub_other = _SUB_OTHER
        timer_vec = LOCAL_TIMER_VECTOR
        deadline_msr = MSR_IA32_TSC_DEADLINE
        from_thread = _FROM_THREAD
        t_max = _T_MAX
        max_vcpu = _MAX_VCPU
        st = self.st
        held, last_ev, last_known = self.held, self.last_ev, self.last_known
        known_names = G.KNOWN
        no_task = G.NO_TASK
        thread_known = self.thread_known
        unknown_events = acc.unknown_events
        exit_cache = self.exit_cache
        entry_cache = self.entry_cache
        other_cache = self.other_cache
        keep = acc.rows is not None
        if keep:
            rows = acc.rows
            assert rows is not None
            r_time, r_vcpu, r_kind = rows["time"], rows["vcpu"], rows["kind"]
            r_exit, r_sub, r_a, r_b = rows["exit"], rows["sub"], rows["a"], rows["b"]
            r_line = rows["line"]
            exit_kind = _EXIT_KIND
            note = int(Kind.NOTE)

        lineno = base = self.lineno
        perf_n, flags_n, plain_n = self.perf_n, self.flags_n, self.plain_n
        t_inf = _T_INF
        prev, tmin, tmax = self.prev, self.tmin, self.tmax
        nonmono = self.nonmono
        unpaired, nomsr, reads = self.unpaired, self.nomsr, self.reads
        faults, clamped = self.faults, self.clamped
        table_start: tuple[int, str, list[str]] | None = None

        try:
            for line in block:
                lineno += 1
                try:
                    head, rest = line.split(": ", 1)
                    ev, _sp, payload = rest.partition(" ")
                    code = dispatch.get(ev, 0)
                    ts = head.rpartition(" ")[2]
                    if not code:
                        # another tracepoint, counted by name when the header is sound
                        if ev and not held and ts.replace(".", "", 1).isdigit() and "." in ts:
                            name = ev.rstrip(":").rpartition(":")[2]
                            if name and name not in known_names:
                                n_u = unknown_events.get(name)
                                if n_u is None:
                                    acc.unknown(name)
                                else:
                                    unknown_events[name] = n_u + 1
                                last_ev = True
                                last_known = False
                                continue
                        raise ValueError
                    if ts[-7] == ".":  # SECS.USECS, what ftrace and trace-cmd print
                        t = int(ts.replace(".", "", 1)) * 1000
                    else:  # SECS.NSECS (perf script --ns, trace-cmd report -t) and others
                        k = ts.find(".")
                        if k < 0:  # a raw clock count (x86-tsc, counter): the slow path notes it
                            raise ValueError
                        t = int(ts.replace(".", "", 1)) * scale[len(ts) - k - 1]
                    if not 0 <= t <= t_max:
                        raise ValueError
                    perf = code & ev_perf
                    if perf:
                        code ^= ev_perf
                    key = ""
                    if code == ev_exit:
                        # TP_printk of kvm_exit (arch/x86/kvm/trace.h), layouts by token count:
                        # 14 "vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx
                        # intr_info 0x%08x error_code 0x%08x" (5.12+; 10 without the last two),
                        # 9 "vcpu %u reason %s rip 0x%lx info %llx %llx" (5.5-5.11),
                        # 7 "reason %s rip 0x%lx info %llx %llx" (older, and libtraceevent's
                        # kvm plugin, which trace-cmd report uses). Anything else: slow path.
                        hit = exit_cache.get(payload)  # real traces repeat payloads a lot
                        if hit is None:
                            tk = payload.split()
                            n = len(tk)
                            if (
                                n == 14
                                and tk[2] == "reason"
                                and tk[4] == "rip"
                                and tk[6] == "info1"
                                and tk[12] == "error_code"
                                and len(tk[13]) == 10
                                and tk[0] == "vcpu"
                            ):
                                v = int(tk[1])
                                f1 = tk[3]
                                f2 = tk[7]
                            elif n == 7 and tk[0] == "reason" and tk[2] == "rip" and tk[4] == "info":
                                v = from_thread
                                f1 = tk[1]
                                f2 = tk[5]
                            elif n == 9 and tk[0] == "vcpu" and tk[2] == "reason" and tk[4] == "rip" and (
                                tk[6] == "info"
                            ):
                                v = int(tk[1])
                                f1 = tk[3]
                                f2 = tk[7]
                            elif n == 10 and tk[0] == "vcpu" and tk[2] == "reason" and tk[6] == "info1" and (
                                len(tk[9]) == 18
                            ):
                                v = int(tk[1])
                                f1 = tk[3]
                                f2 = tk[7]
                            else:
                                raise ValueError
                            if v > max_vcpu or (v < 0 and n != 7):  # %u never prints a sign
                                raise ValueError
                            if f1 == "msr" or f1 == "EXIT_MSR":
                                int(f2, 16)  # validated here, where a ValueError reaches _slow
                            if len(exit_cache) < 8192:
                                exit_cache[payload] = (v, f1, f2)
                        else:
                            v, f1, f2 = hit
                        j = head.find(" [")
                        if v == from_thread:
                            key = (head[:j] if j >= 0 else head[: len(head) - len(ts)]).strip() or no_task
                        elif v not in thread_known:
                            # the payload names the vCPU: its thread runs only that vCPU, which
                            # attributes the thread's kvm_msr lines even without kvm_entry
                            # (learned once per vCPU)
                            thread_known.add(v)
                            tkey = (head[:j] if j >= 0 else head[: len(head) - len(ts)]).strip() or no_task
                            if tkey not in entry_vcpu:
                                entry_vcpu[tkey] = v
                                if tkey in provisional:
                                    _adopt(acc, provisional.pop(tkey), v, pending)
                        # ftrace prints an irq-flags column between [CPU] and the time, trace-cmd
                        # does not; looked at on kvm_exit lines only (cheap, and enough to tell)
                        if not perf:
                            j = head.rfind("] ")
                            if j >= 0 and head[j + 2] != " " and head.find(" ", j + 2) > 0:
                                flags_n += 1
                            else:
                                plain_n += 1
                    elif code == ev_msr:
                        # TP_printk of kvm_msr: "msr_%s %x = 0x%llx%s", %s = " (#GP)" on a fault
                        tk = payload.split()
                        n = len(tk)
                        if n == 5:
                            if tk[4] != "(#GP)":
                                raise ValueError
                        elif n != 4:
                            raise ValueError
                        d = tk[0]
                        if tk[2] != "=" or tk[3][:2] != "0x" or (d != "msr_write" and d != "msr_read"):
                            raise ValueError
                        # f1: 0 read, 1 write, 2 write that faulted (#GP)
                        f1 = (n - 3) if d == "msr_write" else 0
                        f2 = int(tk[1], 16)
                        f3 = int(tk[3], 16)
                        if f2 > 0xFFFFFFFF:
                            raise ValueError
                        v = from_thread
                        j = head.find(" [")
                        key = (head[:j] if j >= 0 else head[: len(head) - len(ts)]).strip() or no_task
                    elif code == ev_apic:
                        # TP_printk of kvm_apic: "apic_%s %s = 0x%x" (register by name)
                        tk = payload.split()
                        if len(tk) != 4 or tk[2] != "=" or tk[3][:2] != "0x":
                            raise ValueError
                        d = tk[0]
                        if d == "apic_write":
                            f1 = True
                        elif d == "apic_read":
                            f1 = False
                        else:
                            raise ValueError
                        f2 = tk[1]
                        f3 = int(tk[3], 16)
                        v = from_thread
                        j = head.find(" [")
                        key = (head[:j] if j >= 0 else head[: len(head) - len(ts)]).strip() or no_task
                    elif code == ev_entry:
                        # TP_printk of kvm_entry: "vcpu %u" (before 5.10), "vcpu %u, rip 0x%lx%s";
                        # libtraceevent's kvm plugin prints "vcpu %u rip 0x%lx"
                        v = entry_cache.get(payload)
                        if v is None:
                            tk = payload.split()
                            if tk[0] != "vcpu":
                                raise ValueError
                            vt = tk[1]
                            if vt[-1] == ",":
                                vt = vt[:-1]
                            v = int(vt)
                            if v < 0 or v > max_vcpu or (len(tk) > 2 and tk[2] != "rip"):
                                raise ValueError
                            if len(entry_cache) < 8192:
                                entry_cache[payload] = v
                        j = head.find(" [")
                        f1 = (head[:j] if j >= 0 else head[: len(head) - len(ts)]).strip() or no_task
                    else:
                        # the other tracepoints: their TP_printk grammars in lines.PAYLOADS
                        # (checked payloads are remembered: `apicid 0 vec 236 (Fixed|edge)`
                        # and the like repeat all through a trace)
                        seen = other_cache[code]
                        f1 = seen.get(payload)
                        if f1 is None:
                            p = payload_res[code].match(payload.lstrip())
                            if p is None:
                                raise ValueError
                            f1 = p.groups()
                            if code == ev_accept or code == ev_hvt:
                                if int(f1[0], 16) > max_vcpu:
                                    raise ValueError
                            if len(seen) < 4096:
                                seen[payload] = f1
                        v = from_thread
                        if code == ev_inj:
                            j = head.find(" [")
                            key = (head[:j] if j >= 0 else head[: len(head) - len(ts)]).strip() or no_task
                except (ValueError, IndexError, KeyError):
                    st.last_event = last_ev
                    st.last_known = last_known
                    st.last_t = prev if prev != t_inf else 0
                    st.event_line = lineno
                    r = _slow(acc, st, lineno, line, sum(tp_counts))
                    ev_line = st.event_line
                    held = st.held is not None
                    last_ev = st.last_event
                    last_known = st.last_known
                    if r is None:
                        continue
                    if r is _TABLE:
                        table_start = (lineno, line, block[lineno - base - 1 :])
                        break
                    code, t, key, v, f1, f2, f3 = r
                    if code & ev_perf:
                        perf_n += 1
                    elif code & 15 == ev_exit:
                        if code & 32:
                            plain_n += 1
                        else:
                            flags_n += 1
                    code &= 15
                    if v != from_thread:
                        key = ""
                else:
                    ev_line = lineno
                    if held:
                        _flush_held(acc, st)
                        held = False
                    last_ev = last_known = True
                    if perf:
                        perf_n += 1

                # -- time: integer ns; count lines earlier than their predecessor ----------
                # (prev starts at +inf, so the first line registers as one decrease: undone below)
                if t < prev:
                    nonmono += 1
                    if prev > tmax and prev != t_inf:
                        tmax = prev
                    if t < tmin:
                        tmin = t
                prev = t
                tp_counts[code] += 1
                if key:
                    v = name_vcpu.get(key)
                    if v is None:
                        v = name_vcpu[key] = thread_vcpu(key)
                    if v < 0:
                        v = entry_vcpu.get(key, -1)
                        if v < 0:
                            v = provisional.get(key)
                            if v is None:
                                v = _provisional(acc, key)
                elif v == from_thread:
                    v = -1

                if code == ev_exit:
                    raw = f1
                    raw_reasons[raw] = raw_reasons.get(raw, 0) + 1
                    code = reason_codes.get(raw)
                    if code is None:
                        code = classify(raw)
                    if code == svm_msr:  # AMD: EXITINFO1 is 1 for WRMSR, 0 for RDMSR
                        code = ex_msr_write if int(f2, 16) & 1 else ex_msr_read
                    c = vcpus.get(v)
                    if c is None:
                        c = new_counters(v)
                    c[code] += 1
                    if pending and v in pending:
                        del pending[v]
                        c[sub_other] += 1
                        nomsr += 1
                    if code == ex_other:
                        other_reasons[raw] = other_reasons.get(raw, 0) + 1
                    elif code == ex_halt:
                        halted[v] = t
                    if keep:
                        idx = len(r_time)
                        r_time.append(t)
                        r_line.append(ev_line)
                        r_vcpu.append(v)
                        r_exit.append(code)
                        if code == ex_msr_write:
                            r_kind.append(note)
                            r_sub.append(int(MsrSub.OTHER))
                            r_a.append(0)
                            r_b.append(0)
                        else:
                            r_kind.append(exit_kind.get(code, note))
                            r_sub.append(-1)
                            r_a.append(acc.note_index(raw) if code == ex_other else 0)
                            r_b.append(BACKEND_HV if code == Exit.PREEMPTION_TIMER else 0)
                    else:
                        idx = -1
                    if code == ex_msr_write:
                        pending[v] = idx
                elif code == ev_entry:
                    if f1:
                        old = entry_vcpu.get(f1)
                        entry_vcpu[f1] = v
                        if old is None and f1 in provisional:
                            _adopt(acc, provisional.pop(f1), v, pending)
                    if pending and v in pending:
                        del pending[v]
                        vcpus[v][sub_other] += 1
                        nomsr += 1
                    if halted and v in halted:
                        spans_of(halts, v).append((halted.pop(v), t))
                elif code == ev_msr:
                    if not f1:
                        reads += 1
                        continue
                    msr = f2
                    value = f3
                    fault = f1 == 2
                    if value > _INT64_MAX:
                        value = _INT64_MAX
                        clamped += 1
                    sub = msr_subs.get(msr)
                    if sub is None:
                        sub = msr_subs[msr] = int(msr_sub_for(msr))
                    if fault:
                        faults += 1
                    if pending and v in pending:
                        idx = pending.pop(v)
                        vcpus[v][SUB_BASE + sub] += 1
                        if keep:
                            kind, a, b = _msr_row(sub, msr, value, fault)
                            r_kind[idx] = kind
                            r_sub[idx] = sub
                            r_a[idx] = a
                            r_b[idx] = b
                    else:
                        unpaired += 1
                        if keep:
                            kind, a, b = _msr_row(sub, msr, value, fault)
                            r_time.append(t)
                            r_line.append(ev_line)
                            r_vcpu.append(v)
                            r_kind.append(kind)
                            r_exit.append(-1)
                            r_sub.append(-1)
                            r_a.append(a)
                            r_b.append(b)
                    if msr == deadline_msr and not fault:
                        dt = deadline_t.get(v)
                        if dt is None:
                            dt = deadline_t[v] = array("q")
                            deadline_v[v] = array("q")
                        dt.append(t)
                        deadline_v[v].append(value)
                    elif msr in _LAPIC_MSRS and not fault:
                        acc.lapic_writes.append((t, v, msr, value))
                elif code == ev_accept:
                    apicid, vec, _mode, _trig, coalesced = f1
                    acc.accept_lines += 1
                    if int(vec) == timer_vec:
                        if coalesced is not None:
                            acc.coalesced += 1
                            continue
                        v = int(apicid, 16)  # KVM passes vcpu->vcpu_id as `apicid`
                        _irq(acc.accept_t, acc.accept_k, v, t, deadline_t)
                        if keep:
                            _irq_row(rows, t, v, ROW_ACCEPT_IRQ, ev_line)
                elif code == ev_inj:
                    irq, how, hexvec, _reinjected = f1
                    acc.inj_lines += 1
                    vec = int(irq) if irq is not None else int(hexvec, 16)
                    if vec == timer_vec and how != "Soft/INTn":
                        _irq(acc.inj_t, acc.inj_k, v, t, deadline_t)
                        if keep:
                            _irq_row(rows, t, v, ROW_INJ_VIRQ, ev_line)
                elif code == ev_eoi:
                    if int(f1[1]) == timer_vec:
                        acc.timer_eois += 1
                elif code == ev_ipi:
                    acc.ipis += 1
                elif code == ev_hvt:
                    if int(f1[1], 16):
                        acc.hv_timer_on += 1
                    else:
                        acc.hv_timer_off += 1
                elif code == ev_apic:
                    if f1:
                        acc.xapic_writes += 1
                        reg = G.XAPIC_TIMER_REGS.get(f2)
                        if reg is not None:
                            acc.lapic_writes.append((t, v, reg, min(f3, _INT64_MAX)))
        finally:
            # stored also when a cut-off compressed stream ends the loop: keep what was read
            self.held, self.last_ev, self.last_known = held, last_ev, last_known
            self.lineno = lineno if table_start is None else table_start[0] - 1
            self.perf_n, self.flags_n, self.plain_n = perf_n, flags_n, plain_n
            self.prev, self.tmin, self.tmax = prev, tmin, tmax
            self.nonmono = nonmono
            self.unpaired, self.nomsr, self.reads = unpaired, nomsr, reads
            self.faults, self.clamped = faults, clamped
        return table_start

    def close(self, table_start: tuple[int, str, list[str]] | None) -> None:
        """Move the pass's totals into the accounting (also after an error or a cut-off
        stream: what was read stays counted)."""
        acc = self.acc
        st = self.st
        if st.held is not None:
            _flush_held(acc, st)
        for v in self.pending:
            acc.vcpus[v][_SUB_OTHER] += 1
            self.nomsr += 1
        self.pending.clear()
        for v, t_h in self.halted.items():  # still halted when the trace ends
            spans_of(acc.halts, v).append((t_h, -1))
        self.halted.clear()
        tp_counts = self.tp_counts
        acc.lines = self.lineno if table_start is None else table_start[0] - 1
        acc.parsed += sum(tp_counts)
        tp = acc.tracepoints
        for code, n in enumerate(tp_counts):
            if n:
                name = EVENT_NAMES[code]
                tp[name] = tp.get(name, 0) + n
        acc.entries += tp_counts[EV_ENTRY]
        acc.styles[L.STYLE_PERF] = acc.styles.get(L.STYLE_PERF, 0) + self.perf_n
        acc.styles["flags"] = acc.styles.get("flags", 0) + self.flags_n
        acc.styles["plain"] = acc.styles.get("plain", 0) + self.plain_n
        nonmono = self.nonmono
        tmin, tmax, prev = self.tmin, self.tmax, self.prev
        if tmin != _T_INF:
            nonmono -= 1  # the first line's "decrease" from +inf
            if acc.first_ns is None:
                acc.first_ns = tmin
                acc.min_ns = tmin
                acc.max_ns = max(tmax, prev)
            else:
                acc.min_ns = min(acc.min_ns, tmin)
                acc.max_ns = max(acc.max_ns, tmax, prev)
        acc.nonmonotonic += nonmono
        acc.unpaired_msr_writes += self.unpaired
        acc.msr_exits_without_msr += self.nomsr
        acc.msr_reads += self.reads
        acc.msr_faults += self.faults
        acc.deadline_values_clamped += self.clamped


def _flush_held(acc: TraceAccounting, st: _State) -> None:
    """A held incomplete event that got no continuation: garbled after all."""
    acc.skip(st.held_lineno, st.held_why)
    if st.held_why.startswith("kvm_exit"):
        acc.garbled_exits += 1
    st.held = None


def _adopt(acc: TraceAccounting, tmp: int, v: int, pending: dict[int, int]) -> None:
    """A thread's first kvm_entry names its vCPU: move what was counted provisionally."""
    acc.vcpu_alias[tmp] = v
    c = acc.vcpus.pop(tmp, None)
    if c is not None:
        dst = acc.counters(v)
        for i, n in enumerate(c):
            dst[i] += n
    for series in (acc.deadline_t, acc.deadline_v):
        arr = series.pop(tmp, None)
        if arr is not None:
            series[v] = arr + series.get(v, array("q"))
    if tmp in pending:
        pending[v] = pending.pop(tmp)
    h = acc.halts.pop(tmp, None)
    if h:
        spans_of(acc.halts, v).prepend(h)
    acc.lapic_writes[:] = [(t, v if w == tmp else w, m, x) for t, w, m, x in acc.lapic_writes]



def _irq(
    times: dict[int, array], counts: dict[int, array], vcpu: int, t: int,
    deadline_t: dict[int, array],
) -> None:
    """Record a timer interrupt: its time and how many deadline writes preceded it."""
    arr = times.get(vcpu)
    if arr is None:
        arr = times[vcpu] = array("q")
        counts[vcpu] = array("q")
    arr.append(t)
    counts[vcpu].append(len(deadline_t.get(vcpu, ())))


def _irq_row(rows: dict[str, array], t: int, vcpu: int, kind: int, lineno: int) -> None:
    rows["time"].append(t)
    rows["line"].append(lineno)
    rows["vcpu"].append(vcpu)
    rows["kind"].append(kind)
    rows["exit"].append(-1)
    rows["sub"].append(-1)
    rows["a"].append(0)
    rows["b"].append(0)


def _unmatched(acc: TraceAccounting, lineno: int, line: str, events_so_far: int) -> bool:
    """A line without an event header. True when a perf kvm stat table starts here."""
    if L.is_preamble(line):
        acc.ignored += 1
        stripped = line.lstrip()
        if stripped.startswith("# tracer:"):
            acc.file_hint = L.STYLE_FTRACE
        elif stripped.startswith("cpus=") and lineno <= 3:
            acc.file_hint = L.STYLE_TRACE_CMD
        return False
    lost = L.LOST_RE.match(line)
    if lost is not None:
        acc.ignored += 1
        acc.lost_event_lines += 1
        acc.lost_events += int(lost.group(2) or lost.group(3))
        return False
    if events_so_far == 0 and perfstat.starts_output(line):
        return True
    acc.skip(lineno, L.diagnose_header(line))
    return False


def _scan_perf_stat(
    start: tuple[int, str, list[str]], blocks: Iterator[list[str]], acc: TraceAccounting
) -> None:
    """The rest of a `perf kvm stat` output from its first line on: VM-EXIT tables into
    the exit counters (vCPU -1 = all vCPUs, unless the table is for one), `--event=msr`
    tables into the msr-write sub-reasons and the TSC-deadline write count."""
    parser = perfstat.PerfStatParser()
    lineno, _line, rest = start
    for line in rest:
        parser.feed(lineno, line)
        lineno += 1
    for block in blocks:
        for line in block:
            parser.feed(lineno, line)
            lineno += 1
    parser.finish(quote_name(acc.path))
    acc.lines = lineno - 1
    acc.parsed += parser.parsed
    acc.ignored += parser.lines - parser.parsed - len(parser.skipped)
    for where, why in parser.skipped:
        acc.skip(where, why)
    acc.warnings.extend(parser.warnings)
    acc.format = "perf-kvm-stat"
    tables = [t for t in parser.tables if t.kind == perfstat.VMEXIT_TABLE]
    msr_tables = [t for t in parser.tables if t.kind == perfstat.MSR_TABLE]
    svm_msr_rows = 0
    for table in tables:
        vcpu = table.vcpu if table.vcpu is not None else UNKNOWN_VCPU
        c = acc.counters(vcpu)
        for row in table.rows:
            code = reasons.classify_perf_stat(row.name)
            c[code] += row.samples
            acc.raw_reasons[row.name] = acc.raw_reasons.get(row.name, 0) + row.samples
            if code == Exit.MSR_WRITE:
                if not msr_tables:
                    c[_SUB_OTHER] += row.samples
                if row.name.lower() in ("msr", "exit_msr"):
                    svm_msr_rows += row.samples
            elif code == Exit.OTHER:
                acc.other_reasons[row.name] = acc.other_reasons.get(row.name, 0) + row.samples
    deadline_writes = 0
    for table in msr_tables:
        vcpu = table.vcpu if table.vcpu is not None else UNKNOWN_VCPU
        c = acc.counters(vcpu)
        for row in table.rows:
            msr, write = perfstat.msr_row_key(row.name)
            if msr is None:
                continue
            if write:
                sub = int(msr_sub_for(msr))
                c[SUB_BASE + sub] += row.samples
                if not tables:
                    c[int(Exit.MSR_WRITE)] += row.samples
                if msr == MSR_IA32_TSC_DEADLINE:
                    deadline_writes += row.samples
            elif not tables:
                c[int(Exit.MSR_READ)] += row.samples
    if msr_tables:
        acc.perf_msr_deadline_writes = deadline_writes
        if not tables:
            acc.warn(
                "perf kvm stat --event=msr counts MSR-access exits only: the other exit reasons"
                " are not in this output (run `perf kvm stat report --event=vmexit` too)"
            )
    elif any(c[int(Exit.MSR_WRITE)] for c in acc.vcpus.values()):
        acc.warn(
            "perf kvm stat does not print MSR numbers: msr-write sub-reasons are unknown and"
            " counted as `other` (record kvm:kvm_exit and kvm:kvm_msr, or add"
            " `perf kvm stat report --event=msr`, to split them)"
        )
    if svm_msr_rows:
        acc.warn(
            f"AMD `msr` rows ({svm_msr_rows} samples) count RDMSR and WRMSR together: all"
            " counted as msr-write"
        )
    shown = tables or msr_tables
    acc.perf_stat = {
        "tables": len(tables),
        "msr_tables": len(msr_tables),
        "total_samples": sum(
            t.total_samples if t.total_samples is not None and t.total_samples >= 0
            else t.rows_sum()
            for t in shown
        ),
        "rows_sum": sum(t.rows_sum() for t in shown),
        "total_time_us": sum(t.total_time_us or 0.0 for t in shown),
        "lost_events": sum(t.lost_events for t in shown),
    }
    if not tables and not msr_tables:
        acc.warn("no VM-EXIT or MSR table found in the perf kvm stat output")


def _settle_provisional(acc: TraceAccounting) -> None:
    """Threads that never printed a kvm_entry: what they counted goes to `unknown`."""
    for key, tmp in list(acc.thread_provisional.items()):
        _adopt(acc, tmp, UNKNOWN_VCPU, {})
        del acc.thread_provisional[key]
    for v in [v for v in acc.vcpus if v < UNKNOWN_VCPU]:  # provisional ids past the cap
        _adopt(acc, v, UNKNOWN_VCPU, {})


def _finish(acc: TraceAccounting) -> None:
    """Format detection and the warnings a user must see next to the numbers."""
    _settle_provisional(acc)
    if acc.perf_stat is None and acc.tracedat is None:
        perf = acc.styles.get(L.STYLE_PERF, 0)
        flags = acc.styles.get("flags", 0)
        plain = acc.styles.get("plain", 0)
        by_style: dict[str, int] = {}
        if acc.file_hint is not None:
            by_style[acc.file_hint] = flags + plain
        else:
            by_style[L.STYLE_FTRACE] = flags
            by_style[L.STYLE_TRACE_CMD] = plain
        by_style[L.STYLE_PERF] = perf
        seen = {name: n for name, n in by_style.items() if n}
        if len(seen) == 1:
            acc.format = next(iter(seen))
        elif len(seen) > 1:
            acc.format = "mixed"
            detail = ", ".join(f"{name} {n}" for name, n in sorted(seen.items()))
            acc.warn(f"lines of several tools in one file ({detail}): all were read")
        elif acc.parsed or sum(acc.unknown_events.values()):
            # no kvm_exit line to tell the layout by (e.g. kvm_msr lines only)
            acc.format = acc.file_hint or "ftrace/trace-cmd text"
    if acc.nonmonotonic:
        acc.warn(
            f"{acc.nonmonotonic} lines have a timestamp earlier than the line before (reordered,"
            " e.g. trace_pipe across CPUs): counts are unaffected, times are sorted for the"
            " timeline and the what-if"
        )
    if acc.integer_timestamps:
        acc.clock_counts = True
        acc.warn(
            f"{acc.integer_timestamps} timestamps have no fraction: raw trace-clock counts"
            " (x86-tsc cycles or counter), not ns; times are shown in those units"
        )
    if acc.untimed_lines:
        acc.warn(
            f"{acc.untimed_lines} event lines have no timestamp (pasted without the task, CPU"
            " and time columns): counted, and placed at the time of the line before"
        )
    if acc.continuation_lines:
        acc.warn(f"{acc.continuation_lines} lines continue the line before (wrapped by a mail"
                 " client): joined")
    if acc.overlong_lines:
        acc.warn(f"{acc.overlong_lines} lines longer than {MAX_LINE_BYTES} bytes were skipped unread")
    unknown = acc.vcpus.get(UNKNOWN_VCPU)
    if unknown is not None and acc.perf_stat is None and any(unknown):
        n = sum(unknown[: SUB_BASE])
        acc.warn(
            f"{n} exits could not be attributed to a vCPU (no `vcpu N` field, no `CPU N/KVM`"
            " thread name, no kvm_entry on the thread): counted under `unknown`"
        )
    if acc.msr_exits_without_msr:
        acc.warn(
            f"{acc.msr_exits_without_msr} msr-write exits had no following kvm_msr line:"
            " sub-reason `other` (record kvm:kvm_msr to split them)"
        )
    if acc.lost_events or acc.lost_event_lines:
        acc.warn(
            f"the tracer lost {acc.lost_events} events ({acc.lost_event_lines} LOST/DROPPED"
            " markers): counts are lower bounds"
        )
    if acc.coalesced:
        acc.warn(f"{acc.coalesced} timer interrupts were coalesced (not counted as interrupts)")
    if acc.deadline_values_clamped:
        acc.warn(
            f"{acc.deadline_values_clamped} MSR values above 2^63-1 were clamped to it"
        )
    if acc.non_x86_exits:
        acc.warn(
            f"{acc.non_x86_exits} kvm_exit lines are not x86 exits (arm64 `TRAP: HSR_EC ...`):"
            " listed under other tracepoints, not in the x86 exit table"
        )
    if acc.perf_stat is None and not acc.tracepoints.get("kvm_exit"):
        if acc.garbled_exits:
            acc.warn(
                f"{acc.garbled_exits} kvm_exit lines could not be read (see skipped): exit counts"
                " are zero because of them, not because the guest had no exits"
            )
        elif acc.non_x86_exits:
            pass
        elif acc.parsed:
            acc.warn("no kvm_exit lines: exit counts are zero because exits were not recorded"
                     " (record the kvm:kvm_exit tracepoint)")
    if not acc.parsed and acc.perf_stat is None and acc.lines:
        acc.warn("no KVM event this importer reads was found (see skipped lines and other"
                 " tracepoints)")


def run_import(path: str | os.PathLike[str], keep_events: bool = False) -> TraceAccounting:
    """Read the whole trace once into a TraceAccounting (raises TraceError on bad input)."""
    src = open_source(path)
    name = src.name
    acc = TraceAccounting(name, keep_events=keep_events)
    acc.compressed = src.compression
    try:
        if src.kind == "tracedat":
            _import_tracedat(src, acc)
        else:
            if not src.head:
                raise TraceError(f"{quote_name(name)}:1: content: expected trace lines, the file is empty")
            scanner = Scanner(acc, block_path=BLOCK_PATH)
            chunks = src.chunks(**scanner.padding())
            start = None
            try:
                start = scanner.run(chunks)
            finally:
                scanner.close(start)
            if start is not None:
                _scan_perf_stat(start, (c if isinstance(c, list) else scanner.chunk_lines(c) for c in chunks), acc)
    finally:
        src.close()
    if src.truncated is not None:
        if acc.lines == 0:
            raise TraceError(f"{quote_name(name)}:1: {src.compression}: expected a complete compressed"
                             f" stream ({src.truncated})")
        acc.warn(f"input ends early after line {acc.lines} ({src.compression} stream cut off:"
                 f" {src.truncated}): the rest is missing")
    _finish(acc)
    return acc


def _import_tracedat(src: Source, acc: TraceAccounting) -> None:
    from .binary import account_tracedat
    from .tracedat import TraceDat, TraceDatError

    try:
        td = TraceDat(src.read_all(), src.name)
        account_tracedat(td, acc)
    except TraceDatError as exc:
        raise TraceError(f"{quote_name(src.name)}: trace.dat: {exc}") from None
    acc.tracedat = td


class TraceResult:
    """An imported trace: summary JSON, per-vCPU arrays, and the event log on demand."""

    def __init__(self, acc: TraceAccounting) -> None:
        self.acc = acc
        self.path = acc.path
        self._log: EventLog | None = None
        self._lines = np.zeros(0, dtype=np.int64)

    @property
    def format(self) -> str:
        return self.acc.format

    @property
    def vcpus(self) -> list[int]:
        """vCPUs that appear in the trace (-1: events not attributable to one)."""
        keys = set(self.acc.vcpus) | set(self.acc.deadline_t) | set(self.acc.irq_times())
        return sorted(keys)

    def summary(self) -> dict[str, object]:
        """The `lazytsc trace --json` object (see accounting.TraceAccounting.summary)."""
        return self.acc.summary()

    def exits(self) -> dict[str, object]:
        """The `exits` object alone (total, by_reason, msr_write)."""
        return exits_dict(self.acc.total_counters())

    def vcpu_exits(self, vcpu: int) -> dict[str, object]:
        return exits_dict(self.acc.vcpus.get(vcpu, [0] * N_COUNTERS))

    def deadline_writes(self, vcpu: int) -> tuple[np.ndarray, np.ndarray]:
        """(time_ns, value) of the vCPU's accepted MSR 0x6e0 writes, int64, sorted by time.

        Times are relative to the earliest line of the trace (the event log's zero);
        values are the guest TSC deadlines as written.
        """
        return self._series(self.acc.deadline_t.get(vcpu), self.acc.deadline_v.get(vcpu))

    def timer_interrupts(self, vcpu: int) -> np.ndarray:
        """Times (ns, same zero as deadline_writes) of the vCPU's timer-vector interrupts."""
        return self._series(self.acc.irq_times().get(vcpu), None)[0]

    def armed_at_interrupts(self, vcpu: int) -> tuple[np.ndarray, np.ndarray]:
        """(interrupt time ns, value of the last 0x6e0 write before it in the file).

        Interrupts before any write are left out. Pairing follows line order, which
        is exact even when the trace clock gives both lines the same timestamp.
        """
        times = self.acc.irq_times().get(vcpu)
        counts = self.acc.irq_write_counts().get(vcpu)
        values = self.acc.deadline_v.get(vcpu)
        if not times or counts is None or values is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        k = np.frombuffer(counts, dtype=np.int64) - 1
        ok = k >= 0
        t = np.frombuffer(times, dtype=np.int64)[ok] - self.acc.min_ns
        return t, np.frombuffer(values, dtype=np.int64)[k[ok]]

    def _series(
        self, times: array | None, values: array | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if times is None or not len(times):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        t = np.frombuffer(times, dtype=np.int64) - self.acc.min_ns
        v = (
            np.frombuffer(values, dtype=np.int64).copy()
            if values is not None
            else np.zeros(0, dtype=np.int64)
        )
        if len(t) > 1 and np.any(t[1:] < t[:-1]):
            order = np.argsort(t, kind="stable")
            t = t[order]
            if len(v):
                v = v[order]
        return t, v

    def to_eventlog(self) -> EventLog:
        """The trace as an EventLog the GUI draws like a simulated run.

        Rows: one per kvm_exit (kind by reason: HLT, HOST_IRQ, TIMER_FIRE for the
        preemption timer, CPUID, WRMSR_* by MSR for msr-write, NOTE otherwise with
        a = index into `note_names` for `other` exits, a = MSR and b = value for
        other MSRs), one per kvm_msr write without an exit (exit = -1), one
        GUEST_TIMER_IRQ per timer-vector interrupt, and a final END. Built on first
        call by a second pass over the file unless the import kept the rows.
        """
        if self._log is None:
            acc = self.acc if self.acc.rows is not None else run_import(self.path, True)
            cols = acc.to_columns()
            self._lines = cols["line"]
            self._log = EventLog.from_columns(cols)
            if acc is not self.acc:
                self.acc.note_names[:] = acc.note_names
        return self._log

    def source_lines(self) -> np.ndarray:
        """The file line (1-based) each event of `to_eventlog()` was read from (-1: none, END;
        for a trace.dat, the event's index in trace-cmd's merged order, 1-based)."""
        self.to_eventlog()
        return self._lines

    @property
    def note_names(self) -> list[str]:
        """Raw exit-reason names that NOTE rows of `other` exits index with column a."""
        return self.acc.note_names


def import_trace(path: str | os.PathLike[str], keep_events: bool = False) -> TraceResult:
    """Import a recorded KVM trace (text, optionally gzip) in one streaming pass.

    Raises TraceError (`FILE:LINE: field: what was expected`) when the file is
    missing, unreadable, binary or holds no trace at all; garbled lines inside a
    trace are only counted (`skipped`) with the first few reasons kept.
    With keep_events the event-log rows are collected during the same pass
    (about 30 bytes per row) so `to_eventlog()` needs no second pass.
    """
    return TraceResult(run_import(path, keep_events))
