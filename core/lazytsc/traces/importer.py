"""One streaming pass over a trace file: `import_trace(path) -> TraceResult`.

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
  4. otherwise `unknown` (JSON key), -1 in the event log, and a warning.

MSR-write exits: `kvm_exit` does not print ECX, so each msr-write exit is paired with
the next `kvm_msr: msr_write` of the same vCPU (KVM traces it while handling that
exit, before the next kvm_entry); an exit followed by kvm_entry/kvm_exit or the end
of the trace without one counts as sub-reason `other`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from array import array
from collections.abc import Iterable

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
from . import perfstat, reasons
from .accounting import (
    N_COUNTERS,
    ROW_ACCEPT_IRQ,
    ROW_INJ_VIRQ,
    SUB_BASE,
    UNKNOWN_VCPU,
    TraceAccounting,
    exits_dict,
)
from .errors import TraceError
from .source import open_text

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
EV_EXIT, EV_ENTRY, EV_MSR, EV_ACCEPT, EV_INJ, EV_EOI, EV_IPI, EV_HVT = range(1, 9)
EV_PERF = 16
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
DISPATCH: dict[str, int] = {**_EVENT_CODES}
DISPATCH.update({f"kvm:{name}": code | EV_PERF for name, code in _EVENT_CODES.items()})
_PAYLOAD_BY_CODE = {code: L.PAYLOADS[name] for name, code in _EVENT_CODES.items()
                    if name in L.PAYLOADS}
# vcpu value meaning "resolve from the host thread" (old kvm_exit, kvm_msr, kvm_inj_virq)
_FROM_THREAD = -2
# _slow's answer when a perf kvm stat table starts
_TABLE = (0, 0, "", 0, None, None, None)


def _slow(
    acc: TraceAccounting, lineno: int, line: str, events_so_far: int
) -> tuple[int, int, str, int, object, object, object] | None:
    """Full regex parse of a line the fast path declined (unusual layout, or garbled).

    Returns the fast path's normalized tuple (code, t, thread key, vcpu, f1, f2, f3),
    `_TABLE` when a perf kvm stat table starts here, or None when the line was
    counted here (comment, unknown tracepoint, garbled).
    """
    m = L.LINE_RE.search(line)
    if m is None:
        return _TABLE if _unmatched(acc, lineno, line, events_so_far) else None
    (_cpu, flags, sec, frac, sys, xv, reason, i1, i1o, mw, msrhex, val, gp, ev,
     oname, opayload) = m.groups()
    t = L.timestamp_ns(sec, frac)
    if frac is None:
        acc.integer_timestamps += 1
    key = line[: m.start()]
    style = EV_PERF if sys is not None else 0
    if flags is None and not style:
        style = 32  # no irq-flags column: trace-cmd style
    if reason is not None:
        info1 = i1 if i1 is not None else i1o
        if reason == "msr":
            try:
                int(info1, 16)
            except ValueError:
                acc.skip(lineno, "kvm_exit: info1: expected a hex number (AMD msr exits:"
                         " 1 = WRMSR, 0 = RDMSR)")
                return None
        return (EV_EXIT | style, t, key, int(xv) if xv is not None else _FROM_THREAD,
                reason, info1, None)
    if mw is not None:
        direction = (2 if gp is not None else 1) if mw == "w" else 0
        return (EV_MSR | style, t, key, _FROM_THREAD, direction, int(msrhex, 16), int(val, 16))
    if ev is not None:
        return (EV_ENTRY | style, t, "", int(ev), key, None, None)
    code = _EVENT_CODES.get(oname)
    if code is None:
        acc.unknown(oname)
        return None
    grammar = L.PAYLOADS.get(oname)
    p = grammar.match(opayload) if grammar is not None else None
    if p is None:
        acc.skip(lineno, L.diagnose(oname, opayload))
        return None
    return (code | style, t, key, _FROM_THREAD, p.groups(), None, None)


def _scan(stream: Iterable[str], acc: TraceAccounting) -> tuple[int, str] | None:
    """The hot loop. Returns (line number, line) where a perf kvm stat table starts, if so.

    Fast path: `line.split(": ", 2)` gives header, event name and payload;
    the timestamp is the header's last word; hot payloads are split on whitespace
    and checked field by field against their TP_printk layout. Anything else (and
    any ValueError/IndexError on the way) goes to `_slow`, the full regex grammar,
    which parses unusual layouts or names why the line is garbled.
    """
    dispatch = DISPATCH
    payload_res = _PAYLOAD_BY_CODE
    vcpus = acc.vcpus
    new_counters = acc.counters
    name_vcpu = acc.thread_name_vcpu
    entry_vcpu = acc.thread_entry_vcpu
    reason_codes = acc.reason_codes
    classify = acc.classify
    other_reasons = acc.other_reasons
    deadline_t = acc.deadline_t
    deadline_v = acc.deadline_v
    thread_vcpu = L.thread_vcpu
    msr_subs: dict[int, int] = {}
    pending: dict[int, int] = {}  # vcpu -> row index of an msr-write exit awaiting kvm_msr
    tp_counts = [0] * 9  # lines per event code
    scale = _SCALE
    svm_msr = reasons.SVM_MSR
    ex_msr_write = int(Exit.MSR_WRITE)
    ex_msr_read = int(Exit.MSR_READ)
    ex_other = int(Exit.OTHER)
    sub_other = _SUB_OTHER
    timer_vec = LOCAL_TIMER_VECTOR
    deadline_msr = MSR_IA32_TSC_DEADLINE
    from_thread = _FROM_THREAD
    keep = acc.rows is not None
    if keep:
        rows = acc.rows
        assert rows is not None
        r_time, r_vcpu, r_kind = rows["time"], rows["vcpu"], rows["kind"]
        r_exit, r_sub, r_a, r_b = rows["exit"], rows["sub"], rows["a"], rows["b"]
        r_line = rows["line"]
        exit_kind = _EXIT_KIND
        note = int(Kind.NOTE)

    lineno = acc.lines
    perf_n = flags_n = plain_n = 0
    t_inf = 1 << 63
    prev = tmin = t_inf
    tmax = -1
    nonmono = 0
    unpaired = nomsr = reads = faults = clamped = 0
    table_start: tuple[int, str] | None = None

    try:
        for line in stream:
            lineno += 1
            try:
                head, event, payload = line.split(": ", 2)
                code = dispatch.get(event, 0)
                j = head.rfind("] ")
                if not code or j < 0:
                    raise ValueError
                ts = head.rpartition(" ")[2]
                if ts[-7] == ".":  # SECS.USECS, what ftrace and trace-cmd print
                    t = int(ts.replace(".", "", 1)) * 1000
                else:  # SECS.NSECS (perf script --ns, trace-cmd report -t) and others
                    k = ts.find(".")
                    if k < 0:  # a raw clock count (x86-tsc, counter): the slow path notes it
                        raise ValueError
                    t = int(ts.replace(".", "", 1)) * scale[len(ts) - k - 1]
                perf = code & EV_PERF
                if perf:
                    code ^= EV_PERF
                key = ""
                if code == EV_EXIT:
                    # TP_printk of kvm_exit (arch/x86/kvm/trace.h), three layouts by token
                    # count: 14 "vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx
                    # intr_info 0x%08x error_code 0x%08x" (5.12+; 10 without the last two),
                    # 9 "vcpu %u reason %s rip 0x%lx info %llx %llx" (5.5-5.11),
                    # 7 "reason %s rip 0x%lx info %llx %llx" (older). Reasons with spaces
                    # (VMX flags, SVM "UD excp") change the count and take the slow path.
                    tk = payload.split()
                    n = len(tk)
                    # info1 stays text: only AMD `msr` exits need its value
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
                    if v < 0 and n != 7:  # "vcpu -5": int() takes a sign, %u never prints one
                        raise ValueError
                    if f1 == "msr":
                        int(f2, 16)  # validated here, where a ValueError reaches _slow
                    if v == from_thread:
                        key = head[: head.find(" [")]
                    # ftrace prints an irq-flags column between [CPU] and the time, trace-cmd
                    # does not; looked at on kvm_exit lines only (cheap, and enough to tell)
                    if perf:
                        pass
                    elif head[j + 2] != " " and head.find(" ", j + 2) > 0:
                        flags_n += 1
                    else:
                        plain_n += 1
                elif code == EV_MSR:
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
                    v = from_thread
                    key = head[: head.find(" [")]
                elif code == EV_ENTRY:
                    # TP_printk of kvm_entry: "vcpu %u" (before 5.10), "vcpu %u, rip 0x%lx%s"
                    s, sep, tail = payload.partition(",")
                    tk = s.split()
                    if tk[0] != "vcpu" or len(tk) != 2 or (sep and tail[:5] != " rip "):
                        raise ValueError
                    v = int(tk[1])
                    if v < 0:
                        raise ValueError
                    f1 = head[: head.find(" [")]  # the thread, for later lines without a vCPU
                else:
                    # the other tracepoints: their TP_printk grammars in lines.PAYLOADS
                    p = payload_res[code].match(payload.lstrip())
                    if p is None:
                        raise ValueError
                    f1 = p.groups()
                    v = from_thread
                    if code == EV_INJ:
                        key = head[: head.find(" [")]
            except (ValueError, IndexError, KeyError):
                r = _slow(acc, lineno, line, sum(tp_counts))
                if r is None:
                    continue
                if r is _TABLE:
                    table_start = (lineno, line)
                    break
                code, t, key, v, f1, f2, f3 = r
                if code & EV_PERF:
                    perf_n += 1
                elif code & 15 == EV_EXIT:
                    if code & 32:
                        plain_n += 1
                    else:
                        flags_n += 1
                code &= 15
                if v != from_thread:
                    key = ""
            else:
                if perf:
                    perf_n += 1

            # -- time: integer ns; count lines earlier than their predecessor ------------------
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

            if code == EV_EXIT:
                code = reason_codes.get(f1)
                if code is None:
                    code = classify(f1)
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
                    other_reasons[f1] = other_reasons.get(f1, 0) + 1
                if keep:
                    idx = len(r_time)
                    r_time.append(t)
                    r_line.append(lineno)
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
                        r_a.append(acc.note_index(f1) if code == ex_other else 0)
                        r_b.append(BACKEND_HV if code == Exit.PREEMPTION_TIMER else 0)
                else:
                    idx = -1
                if code == ex_msr_write:
                    pending[v] = idx
            elif code == EV_ENTRY:
                entry_vcpu[f1] = v
                if pending and v in pending:
                    del pending[v]
                    vcpus[v][sub_other] += 1
                    nomsr += 1
            elif code == EV_MSR:
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
                        r_line.append(lineno)
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
            elif code == EV_ACCEPT:
                apicid, vec, _mode, _trig, coalesced = f1
                acc.accept_lines += 1
                if int(vec) == timer_vec:
                    if coalesced is not None:
                        acc.coalesced += 1
                        continue
                    v = int(apicid, 16)  # KVM passes vcpu->vcpu_id as `apicid`
                    _irq(acc.accept_t, acc.accept_k, v, t, deadline_t)
                    if keep:
                        _irq_row(rows, t, v, ROW_ACCEPT_IRQ, lineno)
            elif code == EV_INJ:
                irq, how, hexvec, _reinjected = f1
                acc.inj_lines += 1
                vec = int(irq) if irq is not None else int(hexvec, 16)
                if vec == timer_vec and how != "Soft/INTn":
                    _irq(acc.inj_t, acc.inj_k, v, t, deadline_t)
                    if keep:
                        _irq_row(rows, t, v, ROW_INJ_VIRQ, lineno)
            elif code == EV_EOI:
                if int(f1[1]) == timer_vec:
                    acc.timer_eois += 1
            elif code == EV_IPI:
                acc.ipis += 1
            elif code == EV_HVT:
                if int(f1[1], 16):
                    acc.hv_timer_on += 1
                else:
                    acc.hv_timer_off += 1

    finally:
        # runs also when a truncated gzip stream raises mid-file: keep what was read
        # pending msr-write exits at the end of the trace never saw their kvm_msr
        for v in pending:
            vcpus[v][sub_other] += 1
            nomsr += 1
        pending.clear()
        acc.lines = lineno
        acc.parsed += sum(tp_counts)
        tp = acc.tracepoints
        for code, n in enumerate(tp_counts):
            if n:
                name = EVENT_NAMES[code]
                tp[name] = tp.get(name, 0) + n
        acc.entries += tp_counts[EV_ENTRY]
        acc.styles[L.STYLE_PERF] = acc.styles.get(L.STYLE_PERF, 0) + perf_n
        acc.styles["flags"] = acc.styles.get("flags", 0) + flags_n
        acc.styles["plain"] = acc.styles.get("plain", 0) + plain_n
        if tmin != t_inf:
            nonmono -= 1  # the first line's "decrease" from +inf
            if acc.first_ns is None:
                acc.first_ns = tmin
                acc.min_ns = tmin
                acc.max_ns = max(tmax, prev)
            else:
                acc.min_ns = min(acc.min_ns, tmin)
                acc.max_ns = max(acc.max_ns, tmax, prev)
        acc.nonmonotonic += nonmono
        acc.unpaired_msr_writes += unpaired
        acc.msr_exits_without_msr += nomsr
        acc.msr_reads += reads
        acc.msr_faults += faults
        acc.deadline_values_clamped += clamped
    return table_start


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
    start: tuple[int, str], stream: Iterable[str], acc: TraceAccounting
) -> None:
    """The rest of a `perf kvm stat` file from its first line `start` on: tables into the
    same counters (vCPU -1 = all vCPUs, unless the table is for one)."""
    parser = perfstat.PerfStatParser()
    lineno, line = start
    parser.feed(lineno, line)
    for line in stream:
        lineno += 1
        parser.feed(lineno, line)
    parser.finish(acc.path)
    acc.lines = lineno
    acc.parsed += parser.parsed
    acc.ignored += parser.lines - parser.parsed - len(parser.skipped)
    for where, why in parser.skipped:
        acc.skip(where, why)
    acc.warnings.extend(parser.warnings)
    acc.format = "perf-kvm-stat"
    tables = [t for t in parser.tables if t.kind == perfstat.VMEXIT_TABLE]
    svm_msr_rows = 0
    for table in tables:
        vcpu = table.vcpu if table.vcpu is not None else UNKNOWN_VCPU
        c = acc.counters(vcpu)
        for row in table.rows:
            code = reasons.classify_perf_stat(row.name)
            c[code] += row.samples
            if code == Exit.MSR_WRITE:
                c[_SUB_OTHER] += row.samples
                if row.name == "msr":
                    svm_msr_rows += row.samples
            elif code == Exit.OTHER:
                acc.other_reasons[row.name] = acc.other_reasons.get(row.name, 0) + row.samples
    if any(c[int(Exit.MSR_WRITE)] for c in acc.vcpus.values()):
        acc.warn(
            "perf kvm stat does not print MSR numbers: msr-write sub-reasons are unknown and"
            " counted as `other` (record kvm:kvm_exit and kvm:kvm_msr to split them)"
        )
    if svm_msr_rows:
        acc.warn(
            f"AMD `msr` rows ({svm_msr_rows} samples) count RDMSR and WRMSR together: all"
            " counted as msr-write"
        )
    acc.perf_stat = {
        "tables": len(tables),
        "total_samples": sum(
            t.total_samples if t.total_samples is not None and t.total_samples >= 0
            else t.rows_sum()
            for t in tables
        ),
        "rows_sum": sum(t.rows_sum() for t in tables),
        "total_time_us": sum(t.total_time_us or 0.0 for t in tables),
        "lost_events": sum(t.lost_events for t in tables),
    }
    if not tables:
        acc.warn("no VM-EXIT table found in the perf kvm stat output")


def _finish(acc: TraceAccounting) -> None:
    """Format detection and the warnings a user must see next to the numbers."""
    if acc.perf_stat is None:
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
    if acc.nonmonotonic:
        acc.warn(
            f"{acc.nonmonotonic} lines have a timestamp earlier than the line before (reordered,"
            " e.g. trace_pipe across CPUs): counts are unaffected, times are sorted for the"
            " timeline and the what-if"
        )
    if acc.integer_timestamps:
        acc.warn(
            f"{acc.integer_timestamps} timestamps have no fraction (trace clock counter or"
            " x86-tsc?): taken as ns"
        )
    unknown = acc.vcpus.get(UNKNOWN_VCPU)
    if unknown is not None and acc.perf_stat is None and any(unknown):
        n = sum(unknown[: SUB_BASE])
        acc.warn(
            f"{n} exits could not be attributed to a vCPU (no `vcpu N` field, no `CPU N/KVM`"
            " thread name, no earlier kvm_entry on the thread): counted under `unknown`"
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
    if acc.perf_stat is None and acc.parsed and not acc.tracepoints.get("kvm_exit"):
        acc.warn("no kvm_exit lines: exit counts are zero (record the kvm:kvm_exit tracepoint)")


def run_import(path: str | os.PathLike[str], keep_events: bool = False) -> TraceAccounting:
    """Read the whole file once into a TraceAccounting (raises TraceError on bad input)."""
    name = os.fspath(path)
    acc = TraceAccounting(name, keep_events=keep_events)
    stream, gz = open_text(path)
    acc.compressed = gz
    with stream:
        try:
            start = _scan(stream, acc)
            if start is not None:
                _scan_perf_stat(start, stream, acc)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            if acc.lines == 0 and acc.parsed == 0:
                raise TraceError(f"{name}:1: content: expected readable data ({exc})") from None
            acc.warn(f"input ends early after line {acc.lines} ({exc}): the rest is missing")
        except UnicodeError as exc:  # pragma: no cover - errors="replace" prevents it
            raise TraceError(f"{name}:{acc.lines}: content: expected UTF-8 text ({exc})") from None
    _finish(acc)
    if acc.parsed == 0 and not any(acc.unknown_events.values()):
        if acc.skip_examples:
            line, why = acc.skip_examples[0]
            raise TraceError(f"{name}:{line}: {why}")
        raise TraceError(
            f"{name}:1: content: expected ftrace, trace-cmd report or perf script event lines,"
            " or a perf kvm stat table; found none"
        )
    return acc


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
        """The file line (1-based) each event of `to_eventlog()` was read from (-1: none, END)."""
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
