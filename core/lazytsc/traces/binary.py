"""Account a trace.dat (`tracedat.TraceDat`) into a `TraceAccounting`, in bulk.

The same questions as the text importer answers, with the same rules (see
importer.py): vCPU from the event's `vcpu_id`, else the vCPU of the host thread (pid)
taken from its kvm_entry events (a vCPU thread only runs its own vCPU); an msr-write
exit is paired with the next kvm_msr write of the same thread before its next
entry/exit; timer interrupts are `kvm_apic_accept_irq` (or `kvm_inj_virq`) of vector
0xec. Every step is a numpy operation over all events of a type.
"""

from __future__ import annotations

from array import array

import numpy as np

from ..taxonomy import (
    BACKEND_HV,
    LOCAL_TIMER_VECTOR,
    MSR_IA32_TSC_DEADLINE,
    Exit,
    Kind,
    MsrSub,
    msr_sub_for,
)
from . import reasons
from .accounting import SUB_BASE, UNKNOWN_VCPU, TraceAccounting, spans_of
from .tracedat import TraceDat


def _msr_row(sub: int, msr: int, value: int, fault: bool) -> tuple[int, int, int]:
    from .importer import _msr_row as row

    return row(sub, msr, value, fault)

INT64_MAX = (1 << 63) - 1
KNOWN = ("kvm_exit", "kvm_entry", "kvm_msr", "kvm_apic_accept_irq", "kvm_inj_virq", "kvm_eoi",
         "kvm_hv_timer_state", "kvm_apic_ipi", "kvm_apic")
APIC_LVTT, APIC_TMICT, APIC_TDCR = 0x320, 0x380, 0x3E0
X2APIC_OF_XAPIC = {APIC_LVTT: 0x832, APIC_TMICT: 0x838, APIC_TDCR: 0x83E}
_EXIT_KIND = {int(Exit.INTR): int(Kind.HOST_IRQ), int(Exit.HALT): int(Kind.HLT),
              int(Exit.PREEMPTION_TIMER): int(Kind.TIMER_FIRE), int(Exit.CPUID): int(Kind.CPUID)}
_MSR_KIND = {int(MsrSub.TSC_DEADLINE): int(Kind.WRMSR_TSC_DEADLINE), int(MsrSub.APIC_ICR): int(Kind.WRMSR_ICR),
             int(MsrSub.APIC_EOI): int(Kind.WRMSR_EOI), int(MsrSub.PV_LAZY): int(Kind.WRMSR_PV),
             int(MsrSub.OTHER): int(Kind.NOTE)}


def _raw_reason(td: TraceDat, reason: int, isa: int) -> str:
    """The reason as the recording kernel prints it (its own __print_symbolic tables)."""
    if isa == 1:
        name = td.symbol("kvm_exit", "exit_reason", 1).get(reason & 0xFFFF)
        return name if name is not None else f"0x{reason & 0xFFFF:x}"
    name = td.symbol("kvm_exit", "exit_reason", 2).get(reason)
    return name if name is not None else f"0x{reason:x}"


def _distinct(values: np.ndarray) -> np.ndarray:
    """np.unique of `values`, sped up for event streams, where a value mostly repeats its
    predecessor (one thread's events, one exit reason in a burst): runs are cut first."""
    if len(values) > 1:
        values = values[np.concatenate([[True], values[1:] != values[:-1]])]
    return np.unique(values)


def _reason_keys(svm: np.ndarray, reason: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (ISA, reason) keys `svm << 32 | reason`, sorted, and each exit's index
    into them; a counting pass where reasons are below 2^16 (every VMX and SVM code)."""
    if not len(reason) or int(reason.max()) >= 1 << 16:
        keys = (svm.astype(np.int64) << 32) | reason
        uniq = _distinct(keys)
        return uniq, np.searchsorted(uniq, keys)
    compact = (svm.astype(np.int64) << 16) | reason
    present = np.flatnonzero(np.bincount(compact, minlength=1 << 17))
    slot = np.zeros(1 << 17, dtype=np.int64)
    slot[present] = np.arange(len(present))
    return ((present >> 16) << 32) | (present & 0xFFFF), slot[compact]


def account_tracedat(td: TraceDat, acc: TraceAccounting) -> None:
    """Fill `acc` from every event of `td` (see the module docstring)."""
    rec = td.records()
    n = len(rec["ts"])
    acc.lines = n
    acc.format = f"trace.dat (v{td.version}, {td.compression}, clock {td.clock})"
    acc.clock_counts = not td.clock_is_ns
    if acc.clock_counts:
        acc.warn(f"trace clock {td.clock}: timestamps are raw clock counts (TSC cycles for x86-tsc),"
                 " not ns; pass --tsc-khz to convert")
    t_all = td.to_ns(rec["ts"], rec["cpu"])  # ns, or raw counts (plus OFFSET) for x86-tsc/counter
    names = {fid: fmt.name for fid, fmt in td.formats.items()}
    per_id = td.id_counts()
    ids = np.flatnonzero(per_id)
    for fid, cnt in zip(ids.tolist(), per_id[ids].tolist(), strict=True):
        name = names.get(fid, f"event {fid}")
        if name in KNOWN:
            acc.tracepoints[name] = acc.tracepoints.get(name, 0) + cnt
            acc.parsed += cnt
        else:
            acc.unknown_events[name] = acc.unknown_events.get(name, 0) + cnt
    if n:
        acc.first_ns = int(t_all.min())
        acc.min_ns = acc.first_ns
        acc.max_ns = int(t_all.max())
    if td.lost_pages:
        acc.lost_events += td.lost_pages
        acc.lost_event_lines += td.lost_pages
    if td.bad_pages:
        acc.warn(f"{td.bad_pages} ring-buffer pages are corrupt: read up to the damage")
    acc.styles["trace.dat"] = n

    entry = td.events("kvm_entry", ["vcpu_id"])
    exits = td.events("kvm_exit", ["exit_reason", "isa", "vcpu_id"])  # info1: only where needed
    msr = td.events("kvm_msr", ["write", "ecx", "data", "exception"])
    # host thread -> vCPU, from kvm_entry (and kvm_exit where it carries vcpu_id)
    pid_vcpu: dict[int, int] = {}
    for src in (exits, entry):
        if "vcpu_id" in src and len(src["pid"]):
            pairs = _distinct((src["pid"].astype(np.int64) << 20) | (src["vcpu_id"] & 0xFFFFF))
            for key in pairs.tolist():
                pid_vcpu.setdefault(key >> 20, key & 0xFFFFF)
    acc.entries += len(entry["ts"])

    top = max(int(rec["pid"].max()) if n else 0, max(pid_vcpu, default=0))
    lut = None
    if 0 <= top < (1 << 23) and (not n or int(rec["pid"].min()) >= 0):  # pid_max is at most 2^22
        lut = np.full(top + 1, UNKNOWN_VCPU, dtype=np.int64)
        for pid, v in pid_vcpu.items():
            if 0 <= pid <= top:
                lut[pid] = v

    def vcpu_of_pid(pids: np.ndarray) -> np.ndarray:
        if not len(pids):
            return np.zeros(0, dtype=np.int64)
        if lut is not None:
            return lut[pids]
        uniq = _distinct(pids)
        table = np.array([pid_vcpu.get(int(p), UNKNOWN_VCPU) for p in uniq], dtype=np.int64)
        return table[np.searchsorted(uniq, pids)]

    # -- exits ------------------------------------------------------------------------
    ne = len(exits["ts"])
    if ne:
        isa = exits.get("isa", np.ones(ne, dtype=np.int64))
        reason = exits["exit_reason"]
        vx = exits["vcpu_id"] if "vcpu_id" in exits else vcpu_of_pid(exits["pid"])
        # (isa, reason) as one int64 key
        uniq_keys, inv = _reason_keys(isa == 2, reason.astype(np.int64) & 0xFFFFFFFF)
        uniq = np.stack([np.where(uniq_keys >> 32, 2, 1), uniq_keys & 0xFFFFFFFF])
        raw_names = [_raw_reason(td, int(r), int(i)) for i, r in uniq.T.tolist()]
        codes = np.empty(len(raw_names), dtype=np.int64)
        for k, raw in enumerate(raw_names):
            code, _isa = reasons.classify_name(raw) if reasons.parse_code(raw) is None else reasons.classify_code(
                reasons.parse_code(raw) or 0, int(uniq[0, k]))
            if uniq[0, k] == 2 and raw == "msr":
                code = reasons.SVM_MSR
            codes[k] = code
            acc.isa = reasons.ISA_VMX if uniq[0, k] == 1 else reasons.ISA_SVM
        code = codes[inv]
        svm_msr = code == reasons.SVM_MSR
        if svm_msr.any():  # AMD: EXITINFO1 is 1 for WRMSR, 0 for RDMSR
            fmt = td.format("kvm_exit")
            assert fmt is not None
            info1 = td.field_values(fmt, "info1", exits["index"][svm_msr])
            if info1 is None:
                info1 = np.zeros(int(np.count_nonzero(svm_msr)), dtype=np.int64)
            code[svm_msr] = np.where(info1 & 1, int(Exit.MSR_WRITE), int(Exit.MSR_READ))
        raw_idx = inv
        per_raw = np.bincount(raw_idx, minlength=len(raw_names))
        for k, raw in enumerate(raw_names):
            cnt = int(per_raw[k])
            acc.raw_reasons[raw] = acc.raw_reasons.get(raw, 0) + cnt
            acc.raw_reason_code[raw] = int(codes[k]) if codes[k] != reasons.SVM_MSR else int(Exit.MSR_WRITE)
            if codes[k] == Exit.OTHER:
                acc.other_reasons[raw] = acc.other_reasons.get(raw, 0) + cnt
    else:
        vx = code = raw_idx = np.zeros(0, dtype=np.int64)
        raw_names = []
    # -- msr-write sub-reasons: pair exits with the next kvm_msr write of the thread ------
    nm = len(msr["ts"])
    sub = np.full(ne, -1, dtype=np.int64)
    exit_ecx = np.zeros(ne, dtype=np.int64)
    exit_data = np.zeros(ne, dtype=np.uint64)
    exit_fault = np.zeros(ne, dtype=bool)
    msr_paired = np.zeros(nm, dtype=bool)
    is_write = (msr["write"] != 0) if nm else np.zeros(0, dtype=bool)
    if ne and nm:
        idx = np.concatenate([exits["index"], entry["index"], msr["index"]])
        kind = np.concatenate([np.zeros(ne, np.int8), np.ones(len(entry["ts"]), np.int8), np.full(nm, 2, np.int8)])
        local = np.concatenate([np.arange(ne), np.arange(len(entry["ts"])), np.arange(nm)])
        pid = rec["pid"][idx]
        order = np.lexsort((idx, pid))
        kind, local, pid = kind[order], local[order], pid[order]
        prev_kind = np.concatenate([[-1], kind[:-1]])
        prev_local = np.concatenate([[0], local[:-1]])
        prev_pid = np.concatenate([[-1], pid[:-1]])
        cand = (kind == 2) & (prev_kind == 0) & (prev_pid == pid)
        cand_msr = local[cand]
        cand_exit = prev_local[cand]
        ok = is_write[cand_msr] & (code[cand_exit] == int(Exit.MSR_WRITE))
        cand_msr, cand_exit = cand_msr[ok], cand_exit[ok]
        ecx = msr["ecx"][cand_msr]
        msrs = _distinct(ecx)
        subs = np.array([int(msr_sub_for(int(m))) for m in msrs.tolist()], dtype=np.int64)
        sub[cand_exit] = subs[np.searchsorted(msrs, ecx)]
        msr_paired[cand_msr] = True
        exit_ecx[cand_exit] = ecx
        exit_data[cand_exit] = msr["data"][cand_msr].astype(np.uint64)
        exit_fault[cand_exit] = msr["exception"][cand_msr] != 0
    msr_write_exit = code == int(Exit.MSR_WRITE)
    acc.msr_exits_without_msr += int(np.count_nonzero(msr_write_exit & (sub < 0)))
    sub = np.where(msr_write_exit & (sub < 0), int(MsrSub.OTHER), sub)
    acc.unpaired_msr_writes += int(np.count_nonzero(is_write & ~msr_paired)) if nm else 0
    acc.msr_reads += int(np.count_nonzero(~is_write)) if nm else 0
    acc.msr_faults += int(np.count_nonzero(msr["exception"] != 0)) if nm else 0
    # -- per-vCPU counters ----------------------------------------------------------------
    vm = vcpu_of_pid(msr["pid"]) if nm else np.zeros(0, dtype=np.int64)
    if ne:
        # counters per vCPU: one bincount over (vCPU slot, counter index)
        shifted = vx + 1  # vCPUs are >= -1 (unknown)
        present = np.flatnonzero(np.bincount(shifted))
        slot_of = np.full(int(present.max()) + 1, -1, dtype=np.int64)
        slot_of[present] = np.arange(len(present))
        vslot = slot_of[shifted]
        slots = present - 1
        width = SUB_BASE + 16
        counts = np.bincount(vslot * width + code, minlength=len(slots) * width)
        has_sub = sub >= 0
        sub_counts = np.bincount(vslot[has_sub] * width + SUB_BASE + sub[has_sub],
                                 minlength=len(slots) * width)
        table = (counts + sub_counts).reshape(len(slots), width)
        for k, v in enumerate(slots.tolist()):
            c = acc.counters(int(v))
            for i, cnt in enumerate(table[k, : len(c)].tolist()):
                c[i] += cnt
    # -- TSC-deadline writes ------------------------------------------------------------------
    if nm:
        dl = is_write & (msr["ecx"] == MSR_IA32_TSC_DEADLINE) & (msr["exception"] == 0)
        values = msr["data"].astype(np.uint64)
        clamped = values > np.uint64(INT64_MAX)
        acc.deadline_values_clamped += int(np.count_nonzero(clamped & dl))
        values = np.where(clamped, np.uint64(INT64_MAX), values).astype(np.int64)
        t_msr = t_all[msr["index"]]
        for v in _distinct(vm[dl]).tolist():
            sel = dl & (vm == v)
            acc.deadline_t[int(v)] = array("q", t_msr[sel].tobytes())
            acc.deadline_v[int(v)] = array("q", values[sel].tobytes())
        dl_index = {int(v): msr["index"][dl & (vm == v)] for v in _distinct(vm[dl]).tolist()}
        # LVTT / TMICT writes (x2APIC MSRs) for the what-if replay
        lapic = is_write & np.isin(msr["ecx"], [0x832, 0x838, 0x83E])
        for i in np.nonzero(lapic)[0].tolist():
            acc.lapic_writes.append((int(t_msr[i]), int(vm[i]), int(msr["ecx"][i]), int(values[i])))
    else:
        dl_index = {}
    apic = td.events("kvm_apic", ["rw", "reg", "val"])
    if len(apic["ts"]):
        sel = (apic["rw"] != 0) & np.isin(apic["reg"], list(X2APIC_OF_XAPIC))
        va = vcpu_of_pid(apic["pid"])
        t_apic = t_all[apic["index"]]
        for i in np.nonzero(sel)[0].tolist():
            acc.lapic_writes.append((int(t_apic[i]), int(va[i]), X2APIC_OF_XAPIC[int(apic["reg"][i])],
                                     int(apic["val"][i]) & INT64_MAX))
        acc.xapic_writes += int(np.count_nonzero(apic["rw"] != 0))
    # -- timer interrupts --------------------------------------------------------------------
    acc_irq = td.events("kvm_apic_accept_irq", ["apicid", "vec"] + (
        ["coalesced"] if td.format("kvm_apic_accept_irq") and "coalesced" in td.format("kvm_apic_accept_irq").fields else []))
    acc.accept_lines += len(acc_irq["ts"])
    inj = td.events("kvm_inj_virq", None)
    acc.inj_lines += len(inj["ts"])
    for src, times, ks, vec_field, vcpus in (
        (acc_irq, acc.accept_t, acc.accept_k, "vec", acc_irq.get("apicid")),
        (inj, acc.inj_t, acc.inj_k, "vector" if "vector" in inj else "irq", None),
    ):
        if not len(src["ts"]) or vec_field not in src:
            continue
        timer = src[vec_field] == LOCAL_TIMER_VECTOR
        if "coalesced" in src:
            acc.coalesced += int(np.count_nonzero(timer & (src["coalesced"] != 0)))
            timer &= src["coalesced"] == 0
        if "soft" in src:
            timer &= src["soft"] == 0
        vv = vcpus if vcpus is not None else vcpu_of_pid(src["pid"])
        t_src = t_all[src["index"]]
        for v in _distinct(vv[timer]).tolist():
            sel = timer & (vv == v)
            times[int(v)] = array("q", t_src[sel].tobytes())
            before = np.searchsorted(dl_index.get(int(v), np.zeros(0, np.int64)), src["index"][sel])
            ks[int(v)] = array("q", before.astype(np.int64).tobytes())
    eoi = td.events("kvm_eoi", ["vector"])
    acc.timer_eois += int(np.count_nonzero(eoi.get("vector", np.zeros(0)) == LOCAL_TIMER_VECTOR))
    acc.ipis += len(td.events("kvm_apic_ipi", [])["ts"])
    hvt = td.events("kvm_hv_timer_state", ["hv_timer_in_use"])
    if "hv_timer_in_use" in hvt:
        on = int(np.count_nonzero(hvt["hv_timer_in_use"] != 0))
        acc.hv_timer_on += on
        acc.hv_timer_off += len(hvt["ts"]) - on
    # -- HLT periods for the what-if: halt exit -> next entry of the same vCPU --------------
    if ne:
        halt = code == int(Exit.HALT)
        for v in _distinct(vx[halt]).tolist():
            t_h = t_all[exits["index"][halt & (vx == v)]]
            ent = entry["index"][entry["vcpu_id"] == v] if "vcpu_id" in entry else np.zeros(0, np.int64)
            nxt = np.searchsorted(ent, exits["index"][halt & (vx == v)])
            t_w = np.where(nxt < len(ent), t_all[ent[np.minimum(nxt, max(len(ent) - 1, 0))]] if len(ent) else -1, -1)
            spans_of(acc.halts, int(v)).extend_arrays(t_h, t_w)
    if acc.rows is not None:
        _rows(acc, t_all, exits, code, sub, vx, raw_idx, raw_names, msr, vm, msr_paired, is_write,
              (exit_ecx, exit_data, exit_fault))


def _rows(acc, t_all, exits, code, sub, vx, raw_idx, raw_names, msr, vm, msr_paired, is_write, paired) -> None:
    """Event-log rows in the text importer's layout (see TraceResult.to_eventlog)."""
    rows = acc.rows
    ne = len(code)
    t = t_all[exits["index"]] if ne else np.zeros(0, np.int64)
    kind = np.array([_EXIT_KIND.get(int(c), int(Kind.NOTE)) for c in code.tolist()], dtype=np.int64)
    a = np.zeros(ne, dtype=np.int64)
    b = np.zeros(ne, dtype=np.int64)
    b[code == int(Exit.PREEMPTION_TIMER)] = BACKEND_HV
    other = code == int(Exit.OTHER)
    if other.any():
        note = np.array([acc.note_index(name) for name in raw_names], dtype=np.int64)
        a[other] = note[raw_idx[other]]
    mw = code == int(Exit.MSR_WRITE)
    for s, k in _MSR_KIND.items():
        kind[mw & (sub == s)] = k
    ecx, data, fault = paired
    data = np.minimum(data, np.uint64(INT64_MAX)).astype(np.int64)
    for i in np.nonzero(mw & (ecx != 0))[0].tolist():
        _k, a[i], b[i] = _msr_row(int(sub[i]), int(ecx[i]), int(data[i]), bool(fault[i]))
    subcol = np.where(mw, sub, -1)
    rows["time"].extend(t.tolist())
    rows["line"].extend((exits["index"] + 1).tolist() if ne else [])
    rows["vcpu"].extend(vx.tolist())
    rows["kind"].extend(kind.tolist())
    rows["exit"].extend(code.tolist())
    rows["sub"].extend(subcol.tolist())
    rows["a"].extend(a.tolist())
    rows["b"].extend(b.tolist())
    if len(msr["ts"]):
        free = is_write & ~msr_paired
        tm = t_all[msr["index"][free]]
        ecx = msr["ecx"][free]
        data = np.minimum(msr["data"][free].astype(np.uint64), np.uint64(INT64_MAX)).astype(np.int64)
        subs = [int(msr_sub_for(int(m))) for m in ecx.tolist()]
        rows["time"].extend(tm.tolist())
        rows["line"].extend((msr["index"][free] + 1).tolist())
        rows["vcpu"].extend(vm[free].tolist())
        rows["kind"].extend(_MSR_KIND[s] for s in subs)
        rows["exit"].extend([-1] * len(subs))
        rows["sub"].extend([-1] * len(subs))
        rows["a"].extend((d if s == MsrSub.TSC_DEADLINE else int(m)) for s, d, m in zip(subs, data.tolist(), ecx.tolist(), strict=True))
        rows["b"].extend((0 if s == MsrSub.TSC_DEADLINE else d) for s, d in zip(subs, data.tolist(), strict=True))
    for src in (acc.accept_t, acc.inj_t):
        kind_code = -2 if src is acc.accept_t else -3
        for v, times in src.items():
            rows["time"].extend(times)
            rows["line"].extend([-1] * len(times))
            rows["vcpu"].extend([v] * len(times))
            rows["kind"].extend([kind_code] * len(times))
            rows["exit"].extend([-1] * len(times))
            rows["sub"].extend([-1] * len(times))
            rows["a"].extend([0] * len(times))
            rows["b"].extend([0] * len(times))
