"""The importer's accounting of a parsed block (textblock.Block), in bulk.

Every rule is the per-line loop's (importer.Scanner.lines), applied with numpy over
a run of lines: counters by (vCPU, reason) with one bincount, the pairing of an
msr-write exit with the next kvm_msr write of its vCPU (and of a HLT exit with the next
kvm_entry) as neighbours in a stable sort by vCPU, event-log rows sorted by line.

What a run must not contain, because its effect would change how the lines after it
are read: an exit naming a vCPU no kvm_exit named before (its thread learns the vCPU),
a kvm_entry that gives its thread a different vCPU (or its first, for a thread whose
exits were held under a provisional id), a line of a thread seen for the first time
without a vCPU (it gets a provisional id), a numeric exit reason (its meaning depends
on the ISA seen so far). `Columns.block` reads such a line with the per-line loop and
goes on in bulk after it.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

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
from . import lines as L
from . import reasons
from . import textblock as TB
from . import textgrammar as G
from .accounting import N_COUNTERS, ROW_ACCEPT_IRQ, ROW_INJ_VIRQ, SUB_BASE, UNKNOWN_VCPU, spans_of
from .source import MAX_LINE_BYTES, chunk_lines

if TYPE_CHECKING:
    from .importer import Scanner

INT64_MAX = (1 << 63) - 1
_T_INF = 1 << 63  # the scanner's time before the first line
# the padding parse_block wants around a chunk (Source.chunks front/back)
PADDING = {"front": b"\n" * TB.FRONT, "back": b"\n" * TB.BACK}
_EV = (TB.EV_EXIT, TB.EV_ENTRY, TB.EV_MSR, TB.EV_ACCEPT, TB.EV_INJ, TB.EV_EOI, TB.EV_IPI,
       TB.EV_HVT, TB.EV_APIC)
EV_EXIT, EV_ENTRY, EV_MSR, EV_ACCEPT, EV_INJ, EV_EOI, EV_IPI, EV_HVT, EV_APIC = _EV
_NAMES = {EV_ACCEPT: "kvm_apic_accept_irq", EV_INJ: "kvm_inj_virq", EV_EOI: "kvm_eoi",
          EV_IPI: "kvm_apic_ipi", EV_HVT: "kvm_hv_timer_state"}
N_EXIT = SUB_BASE
_SUB_OTHER = SUB_BASE + int(MsrSub.OTHER)
_MSR_WRITE, _MSR_READ, _OTHER, _HALT = int(Exit.MSR_WRITE), int(Exit.MSR_READ), int(Exit.OTHER), int(Exit.HALT)
_NOTE = int(Kind.NOTE)
# per exit code: its event-log kind (importer._EXIT_KIND, NOTE otherwise)
_EXIT_KIND = np.full(N_EXIT, _NOTE, dtype=np.int64)
for _code, _kind in ((Exit.INTR, Kind.HOST_IRQ), (Exit.HALT, Kind.HLT),
                     (Exit.PREEMPTION_TIMER, Kind.TIMER_FIRE), (Exit.CPUID, Kind.CPUID)):
    _EXIT_KIND[int(_code)] = int(_kind)
# per msr-write sub-reason: the kind of its row (importer._MSR_KIND)
_MSR_KIND = np.full(int(MsrSub.OTHER) + 1, _NOTE, dtype=np.int64)
for _sub, _kind in ((MsrSub.TSC_DEADLINE, Kind.WRMSR_TSC_DEADLINE), (MsrSub.APIC_ICR, Kind.WRMSR_ICR),
                    (MsrSub.APIC_EOI, Kind.WRMSR_EOI), (MsrSub.PV_LAZY, Kind.WRMSR_PV)):
    _MSR_KIND[int(_sub)] = int(_kind)
_LAPIC_MSRS = np.array([0x832, 0x838, 0x83E], dtype=np.int64)
# after this many lines of a block read one by one, the rest of it is read one by one too
MAX_LINES_PER_BLOCK = 64
# runs of parsed lines shorter than this are read one by one (the bulk path's fixed cost
# per run is that of a few hundred lines of the per-line loop)
MIN_RUN = 256


def _msr_rows(sub: np.ndarray, msr: np.ndarray, value: np.ndarray, fault: np.ndarray):
    """(kind, a, b) of MSR-write rows: importer._msr_row for arrays."""
    kind = _MSR_KIND[sub]
    a = np.where(sub == int(MsrSub.OTHER), msr, value)
    a = np.where(sub == int(MsrSub.APIC_ICR), value >> 32, a)
    a = np.where(sub == int(MsrSub.APIC_EOI), 0, a)
    b = np.zeros(len(sub), dtype=np.int64)
    b = np.where(sub == int(MsrSub.APIC_ICR), value & 0xFF, b)
    b = np.where(sub == int(MsrSub.PV_LAZY), (~fault).astype(np.int64), b)
    b = np.where(sub == int(MsrSub.OTHER), value, b)
    return kind, a, b


def _groups(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events (in line order) grouped by vCPU, line order kept within a group:
    (order, vcpu per sorted event, first of its group, last of its group)."""
    order = np.argsort(v, kind="stable")
    g = v[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    last = np.ones(len(g), dtype=bool)
    last[:-1] = first[1:]
    return order, g, first, last


def _in_order(values: np.ndarray) -> list[int]:
    """The distinct values in order of first appearance."""
    uniq, first = np.unique(values, return_index=True)
    return uniq[np.argsort(first)].tolist()


def distinct(values: np.ndarray) -> np.ndarray:
    """np.unique(values) (which would import numpy.ma on first use: memory an import
    should not pay)."""
    if not len(values):
        return values
    s = np.sort(values)
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _extend(store: dict[int, array], v: int, values: np.ndarray) -> None:
    arr = store.get(v)
    if arr is None:
        arr = store[v] = array("q")
    arr.frombytes(values.astype(np.int64).tobytes())


class Columns:
    """The block path of one Scanner: parse (textblock) and account (here) in bulk."""

    def __init__(self, sc: Scanner) -> None:
        self.sc = sc
        self.tables = TB.Tables()
        self._key_text: list[str] = []
        self._reason_text: list[str] = []
        self._reason_code: list[int] = []  # per reason id; -100 until classified
        self._reason_numeric: list[bool] = []
        self._reg: list[int] = []  # per register-name id: x2APIC MSR of an xAPIC timer register
        # per payload id and code: accepted by the per-line loop, and what accounting needs
        self._payload_ok: dict[int, list[bool]] = {c: [] for c in _NAMES}
        self._payload_info: dict[int, list[tuple]] = {c: [] for c in _NAMES}
        self._regexes = {c: L.PAYLOADS[name] for c, name in _NAMES.items()}

    # -- per-id facts (each distinct string looked at once) -------------------------------

    def payload_valid(self, code: int) -> np.ndarray:
        ok, info = self._payload_ok[code], self._payload_info[code]
        values = self.tables.payloads.values
        regex = self._regexes[code]
        for raw in values[len(ok) :]:
            p = regex.match(raw.decode("ascii"))
            good, fact = p is not None, ()
            if good:
                g = p.groups()
                if code == EV_ACCEPT:
                    apic_v = int(g[0], 16)
                    good = apic_v <= G.MAX_VCPU
                    fact = (int(g[1]) == LOCAL_TIMER_VECTOR, g[4] is not None, apic_v)
                elif code == EV_HVT:
                    good = int(g[0], 16) <= G.MAX_VCPU
                    fact = (int(g[1], 16) != 0,)
                elif code == EV_INJ:
                    vec = int(g[0]) if g[0] is not None else int(g[2], 16)
                    fact = (vec == LOCAL_TIMER_VECTOR and g[1] != "Soft/INTn",)
                elif code == EV_EOI:
                    fact = (int(g[1]) == LOCAL_TIMER_VECTOR,)
            ok.append(good)
            info.append(fact)
        return np.asarray(ok + [False], dtype=bool)

    def _facts(self, code: int, ids: np.ndarray, k: int, dtype=bool) -> np.ndarray:
        info = self._payload_info[code]
        table = np.array([f[k] if f else 0 for f in info] + [0], dtype=dtype)
        return table[ids]

    def key_text(self, ids: list[int]) -> list[str]:
        values = self.tables.keys.values
        for raw in values[len(self._key_text) :]:
            self._key_text.append(raw.decode("ascii") or G.NO_TASK)
        return [self._key_text[i] for i in ids]

    def reason_codes(self, rid: np.ndarray) -> np.ndarray:
        """Exit code per reason id (names only), classified in order of first appearance
        as the per-line loop would (acc.classify notes the ISA of the first name)."""
        acc = self.sc.acc
        self._numeric_reasons()
        codes = self._reason_code
        for i in _in_order(rid):
            if codes[i] == -100:
                raw = self._reason_text[i]
                code = acc.reason_codes.get(raw)
                codes[i] = acc.classify(raw) if code is None else code
        return np.asarray(codes, dtype=np.int64)

    def reg_msr(self, ids: np.ndarray) -> np.ndarray:
        for raw in self.tables.regs.values[len(self._reg) :]:
            self._reg.append(G.XAPIC_TIMER_REGS.get(raw.decode("ascii"), 0))
        return np.asarray(self._reg, dtype=np.int64)[ids]

    # -- a block ------------------------------------------------------------------------

    def block(self, padded: bytes) -> tuple[int, str, list[str]] | None:
        """Read one chunk of whole lines (with PADDING around it); the perf kvm stat start
        if one begins in it."""
        sc = self.sc
        blk = TB.parse_block(padded, self.tables, sc.dispatch, G.KNOWN, self.payload_valid)
        if blk is None or int((blk.ends - blk.starts).max()) > MAX_LINE_BYTES:
            return sc.lines(chunk_lines(padded, TB.FRONT, TB.BACK))
        bad = np.flatnonzero(~blk.ok)
        if len(bad) > max(MAX_LINES_PER_BLOCK, blk.n // 32):
            return sc.lines(blk.text_from(0))
        n = blk.n
        good = np.flatnonzero(blk.ok)
        pos = 0
        calls = 0  # runs read one line at a time
        while pos < n:
            if calls >= MAX_LINES_PER_BLOCK:
                return self._lines(blk, pos, n)
            if not blk.ok[pos]:
                k = np.searchsorted(good, pos)
                end = int(good[k]) if k < len(good) else n
            else:
                k = np.searchsorted(bad, pos)
                end = int(bad[k]) if k < len(bad) else n
                if sc.held:
                    end = pos + 1
                elif end - pos >= MIN_RUN:
                    stop = self.account(blk, pos, end)
                    if stop > pos:
                        pos = stop
                        continue
                    end = pos + 1  # a line the run must not contain: read it alone
            # a short run costs less one line at a time
            start = self._lines(blk, pos, end)
            if start is not None:
                return start
            pos = end
            calls += 1
        return None

    def _lines(self, blk: TB.Block, pos: int, end: int) -> tuple[int, str, list[str]] | None:
        """The per-line loop over lines pos..end-1 of the block; where a perf kvm stat
        table starts, the rest of the block comes with it."""
        before = self.sc.lineno
        start = self.sc.lines(blk.lines(pos, end))
        if start is not None:
            start = (start[0], start[1], blk.text_from(pos + start[0] - before - 1))
        return start

    def account(self, blk: TB.Block, i: int, j: int) -> int:
        """Account lines i..j-1 of `blk` (all parsed) up to the first one that must be read
        alone (see the module doc); returns where it stopped."""
        sc = self.sc
        code = blk.code[i:j]
        pv = blk.v[i:j]
        key = blk.key[i:j]
        m = j - i
        # -- where the run must stop --------------------------------------------------------
        named = np.flatnonzero((code == EV_EXIT) & (pv >= 0))
        if len(named):
            new = [x for x in distinct(pv[named]).tolist() if x not in sc.thread_known]
            if new:
                m = min(m, int(named[np.isin(pv[named], new)][0]))
        readers = pv[:m] == -2
        entries = code[:m] == EV_ENTRY
        keyed = np.flatnonzero(readers | entries)
        key_v = None
        if len(keyed):
            kids = distinct(key[keyed])
            value, expect, named_key = self._key_state(kids.tolist())
            slot = np.searchsorted(kids, key[keyed])
            unstable = readers[keyed] & (value[slot] == _UNSET)
            unstable |= entries[keyed] & ~named_key[slot] & (expect[slot] != pv[keyed])
            bad = np.flatnonzero(unstable)
            if len(bad):
                m = min(m, int(keyed[bad[0]]))
            key_v = (kids, value)
        exits = np.flatnonzero(code[:m] == EV_EXIT)
        rid = blk.f1[i : i + m][exits]
        if len(exits):
            numeric = self._numeric_reasons()[rid]
            if numeric.any():  # classify_code depends on the ISA seen so far: read it alone
                m = int(exits[np.argmax(numeric)])
                rid = rid[exits < m]
        if m == 0:
            return i
        rcode = self.reason_codes(rid) if len(rid) else None
        self._account(blk, i, i + m, key_v, rcode)
        return i + m

    def _numeric_reasons(self) -> np.ndarray:
        values = self.tables.reasons.values
        for raw in values[len(self._reason_text) :]:
            text = raw.decode("ascii")
            self._reason_text.append(text)
            self._reason_code.append(-100)
            self._reason_numeric.append(reasons.parse_code(text) is not None)
        return np.asarray(self._reason_numeric, dtype=bool)

    def _key_state(self, kids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per thread id: the vCPU its lines get now (`_UNSET`: a new provisional id would be
        needed), the vCPU a kvm_entry must name to change nothing, whether its name says."""
        acc = self.sc.acc
        name_vcpu, entry_vcpu, provisional = acc.thread_name_vcpu, acc.thread_entry_vcpu, acc.thread_provisional
        from .importer import _MAX_PROVISIONAL

        value, expect, named = [], [], []
        for text in self.key_text(kids):
            nv = name_vcpu.get(text)
            if nv is None:
                nv = name_vcpu[text] = L.thread_vcpu(text)
            if nv >= 0:
                value.append(nv)
                expect.append(_UNSET)
                named.append(True)
                continue
            named.append(False)
            e = entry_vcpu.get(text)
            if e is not None:
                value.append(e)
                expect.append(e)
                continue
            expect.append(_UNSET)
            p = provisional.get(text)
            if p is not None:
                value.append(p)
            elif len(provisional) >= _MAX_PROVISIONAL:
                value.append(UNKNOWN_VCPU)
            else:
                value.append(_UNSET)
        return (np.array(value, dtype=np.int64), np.array(expect, dtype=np.int64),
                np.array(named, dtype=bool))

    def _account(self, blk: TB.Block, i: int, j: int, key_v, rcode: np.ndarray | None) -> None:
        sc = self.sc
        acc = sc.acc
        m = j - i
        code = blk.code[i:j]
        t = blk.t[i:j]
        f1, f2, f3 = blk.f1[i:j], blk.f2[i:j], blk.f3[i:j]
        line = np.arange(sc.lineno + 1, sc.lineno + 1 + m, dtype=np.int64)
        sc.lineno += m
        acc.bulk_lines += m
        known = code > 0
        sc.last_ev = True
        sc.last_known = bool(known[-1])
        # -- other tracepoints: counted by name, in order of first appearance -------------
        unk = np.flatnonzero(~known)
        if len(unk):
            names = f1[unk]
            uniq, first, counts = np.unique(names, return_index=True, return_counts=True)
            table = self.tables.unknown_names
            for k in np.argsort(first).tolist():
                acc.unknown_n(table[int(uniq[k])], int(counts[k]))
        kn = np.flatnonzero(known)
        if not len(kn):
            return
        # -- time ------------------------------------------------------------------------------
        tt = t[kn]
        sc.nonmono += int(np.count_nonzero(tt[1:] < tt[:-1])) + (1 if int(tt[0]) < sc.prev else 0)
        # the per-line loop's tmin is the least time so far and max(tmax, prev) the
        # greatest: the same here (the time before the run included)
        lo, hi = int(tt.min()), int(tt.max())
        sc.tmin = min(sc.tmin, lo)
        sc.tmax = max(sc.tmax, hi, sc.prev if sc.prev != _T_INF else -1)
        sc.prev = int(tt[-1])
        counts = np.bincount(code[kn], minlength=10)
        for c, n in enumerate(counts.tolist()):
            sc.tp_counts[c] += n
        perf = blk.perf[i:j]
        sc.perf_n += int(np.count_nonzero(perf[kn]))
        # -- vCPU of each line -----------------------------------------------------------------
        v = blk.v[i:j].copy()
        rd = np.flatnonzero(v == -2)
        if len(rd):
            kids, value = key_v
            v[rd] = value[np.searchsorted(kids, blk.key[i:j][rd])]
        is_entry = code == EV_ENTRY
        if is_entry.any() and key_v is not None:
            self._name_keyed_entries(blk.key[i:j], v, is_entry)
        keep = acc.rows is not None
        row_parts: list[tuple[np.ndarray, ...]] = []
        # -- exits ---------------------------------------------------------------------------
        ex = np.flatnonzero(code == EV_EXIT)
        ecode_line = np.full(m, -1, dtype=np.int64)
        if len(ex):
            assert rcode is not None
            rid = f1[ex]
            ecode = rcode[rid]
            svm = ecode == reasons.SVM_MSR
            if svm.any():  # AMD: EXITINFO1 is 1 for WRMSR, 0 for RDMSR
                ecode = np.where(svm, np.where(f2[ex] == 1, _MSR_WRITE, _MSR_READ), ecode)
            ecode_line[ex] = ecode
            ve = v[ex]
            uniq, first, cnt = np.unique(rid, return_index=True, return_counts=True)
            text = self._reason_text
            for k in np.argsort(first).tolist():
                raw = text[int(uniq[k])]
                acc.raw_reasons[raw] = acc.raw_reasons.get(raw, 0) + int(cnt[k])
            other = ecode == _OTHER
            if other.any():
                uniq, first, cnt = np.unique(rid[other], return_index=True, return_counts=True)
                for k in np.argsort(first).tolist():
                    raw = text[int(uniq[k])]
                    acc.other_reasons[raw] = acc.other_reasons.get(raw, 0) + int(cnt[k])
            self._count(ve, ecode)
            plain = ~perf[ex]
            fl = blk.flags[i:j][ex]
            sc.flags_n += int(np.count_nonzero(plain & fl))
            sc.plain_n += int(np.count_nonzero(plain & ~fl))
            if keep:
                kind = np.where(ecode == _MSR_WRITE, _NOTE, _EXIT_KIND[np.clip(ecode, 0, N_EXIT - 1)])
                sub = np.where(ecode == _MSR_WRITE, int(MsrSub.OTHER), -1)
                a = np.zeros(len(ex), dtype=np.int64)
                if other.any():
                    notes = {r: acc.note_index(text[r]) for r in _in_order(rid[other])}
                    a[other] = np.array([notes[r] for r in rid[other].tolist()], dtype=np.int64)
                b = np.where(ecode == int(Exit.PREEMPTION_TIMER), BACKEND_HV, 0)
                row_parts.append((ex, t[ex], line[ex], ve, kind, ecode, sub, a, b))
        # -- kvm_msr ------------------------------------------------------------------------------
        ms = np.flatnonzero(code == EV_MSR)
        wr = ms[f1[ms] != 0] if len(ms) else ms
        if len(ms):
            sc.reads += len(ms) - len(wr)
        msr = f2[wr]
        raw_value = f3[wr].view(np.uint64)
        big = raw_value > np.uint64(INT64_MAX)
        sc.clamped += int(np.count_nonzero(big))
        value = np.where(big, np.uint64(INT64_MAX), raw_value).astype(np.int64)
        fault = f1[wr] == 2
        sc.faults += int(np.count_nonzero(fault))
        if len(wr):
            subs = sc.msr_subs
            umsr = distinct(msr)
            table = np.array([subs[x] if x in subs else subs.setdefault(x, int(msr_sub_for(x)))
                              for x in umsr.tolist()], dtype=np.int64)
            sub_w = table[np.searchsorted(umsr, msr)]
        else:
            sub_w = np.zeros(0, dtype=np.int64)
        # -- msr-write exits paired with the next kvm_msr write of their vCPU ---------------------
        unpaired_w, fixups, waiting = self._pair_msr(code, ecode_line, v, wr, sub_w, msr, value, fault, keep)
        if keep and len(unpaired_w):
            k = unpaired_w
            kind, a, b = _msr_rows(sub_w[k], msr[k], value[k], fault[k])
            w = wr[k]
            row_parts.append((w, t[w], line[w], v[w], kind, np.full(len(w), -1), np.full(len(w), -1), a, b))
        # -- HLT periods: a HLT exit until the next kvm_entry of its vCPU ----------------------------
        self._halts(code, ecode_line, v, t)
        # -- TSC-deadline writes (and how many each timer interrupt follows) ----------------------
        dl = (msr == MSR_IA32_TSC_DEADLINE) & ~fault
        dl_lines: dict[int, np.ndarray] = {}
        base_len: dict[int, int] = {}
        if dl.any():
            dv = v[wr[dl]]
            for x in _in_order(dv):
                sel = dv == x
                base_len[x] = len(acc.deadline_t.get(x, ()))
                dl_lines[x] = wr[dl][sel]
                _extend(acc.deadline_t, x, t[wr[dl][sel]])
                _extend(acc.deadline_v, x, value[dl][sel])
        lapic: list[tuple[np.ndarray, ...]] = []
        lw = np.isin(msr, _LAPIC_MSRS) & ~fault
        if lw.any():
            w = wr[lw]
            lapic.append((w, t[w], v[w], msr[lw], value[lw]))
        # -- kvm_apic (xAPIC MMIO) ------------------------------------------------------------------
        ap = np.flatnonzero(code == EV_APIC)
        if len(ap):
            write = ap[f1[ap] == 1]
            acc.xapic_writes += len(write)
            reg = self.reg_msr(f2[write])
            w = write[reg != 0]
            if len(w):
                x = f3[w].view(np.uint64)
                x = np.where(x > np.uint64(INT64_MAX), np.uint64(INT64_MAX), x).astype(np.int64)
                lapic.append((w, t[w], v[w], reg[reg != 0], x))
        if lapic:
            pos = np.concatenate([p[0] for p in lapic])
            order = np.argsort(pos, kind="stable")
            cols = [np.concatenate([p[k] for p in lapic])[order].tolist() for k in range(1, 5)]
            acc.lapic_writes.extend(zip(*cols, strict=True))
        # -- timer interrupts ------------------------------------------------------------------------
        ac = np.flatnonzero(code == EV_ACCEPT)
        if len(ac):
            acc.accept_lines += len(ac)
            pid = f1[ac]
            timer = self._facts(EV_ACCEPT, pid, 0)
            coal = self._facts(EV_ACCEPT, pid, 1)
            acc.coalesced += int(np.count_nonzero(timer & coal))
            irq = ac[timer & ~coal]
            if len(irq):
                iv = self._facts(EV_ACCEPT, pid[timer & ~coal], 2, np.int64)
                self._irqs(acc.accept_t, acc.accept_k, irq, iv, t, dl_lines, base_len)
                if keep:
                    row_parts.append(self._irq_rows(irq, t, line, iv, ROW_ACCEPT_IRQ))
        inj = np.flatnonzero(code == EV_INJ)
        if len(inj):
            acc.inj_lines += len(inj)
            irq = inj[self._facts(EV_INJ, f1[inj], 0)]
            if len(irq):
                self._irqs(acc.inj_t, acc.inj_k, irq, v[irq], t, dl_lines, base_len)
                if keep:
                    row_parts.append(self._irq_rows(irq, t, line, v[irq], ROW_INJ_VIRQ))
        eoi = np.flatnonzero(code == EV_EOI)
        if len(eoi):
            acc.timer_eois += int(np.count_nonzero(self._facts(EV_EOI, f1[eoi], 0)))
        acc.ipis += int(np.count_nonzero(code == EV_IPI))
        hvt = np.flatnonzero(code == EV_HVT)
        if len(hvt):
            on = int(np.count_nonzero(self._facts(EV_HVT, f1[hvt], 0)))
            acc.hv_timer_on += on
            acc.hv_timer_off += len(hvt) - on
        if keep and row_parts:
            self._append_rows(row_parts, fixups, waiting)

    def _name_keyed_entries(self, key: np.ndarray, v: np.ndarray, is_entry: np.ndarray) -> None:
        """kvm_entry sets its thread's vCPU; threads named `CPU N/KVM` (which keep their
        name's vCPU) get the last entry's, the others already have it (see `account`)."""
        acc = self.sc.acc
        en = np.flatnonzero(is_entry)
        ek = key[en]
        # the last entry of each thread: reversed first occurrence
        uniq, last_rev = np.unique(ek[::-1], return_index=True)
        last_idx = en[len(en) - 1 - last_rev]
        for kid, idx in zip(uniq.tolist(), last_idx.tolist(), strict=True):
            text = self.key_text([kid])[0]
            acc.thread_entry_vcpu[text] = int(v[idx])

    def _count(self, ve: np.ndarray, ecode: np.ndarray) -> None:
        """Exit counters per (vCPU, reason): one bincount."""
        acc = self.sc.acc
        uniq = distinct(ve)
        slot = np.searchsorted(uniq, ve)
        table = np.bincount(slot * N_COUNTERS + ecode, minlength=len(uniq) * N_COUNTERS)
        table = table.reshape(len(uniq), N_COUNTERS).tolist()
        for x in _in_order(ve):  # counters created in order of first appearance
            c = acc.vcpus.get(x)
            if c is None:
                c = acc.counters(x)
            for k, n in enumerate(table[int(np.searchsorted(uniq, x))]):
                if n:
                    c[k] += n

    def _pair_msr(self, code, ecode_line, v, wr, sub_w, msr, value, fault, keep):
        """Resolve the run's msr-write exits (importer: `pending`): an exit waits for the
        next kvm_msr write of its vCPU; the vCPU's next exit or kvm_entry ends the wait
        (sub-reason `other`). Returns (indices into `wr` of writes that follow no
        waiting exit, in-run row fix-ups, vCPU -> position of the exit still waiting)."""
        sc = self.sc
        acc = sc.acc
        evm = (code == EV_EXIT) | (code == EV_ENTRY)
        evm[wr] = True
        ev = np.flatnonzero(evm)
        fixups = None
        waiting: dict[int, int] = {}
        if not len(ev):
            return np.zeros(0, dtype=np.int64), fixups, waiting
        # 0 msr-write exit, 1 other exit, 2 kvm_entry, 3 kvm_msr write
        ty = np.where(code[ev] == EV_ENTRY, 2, np.where(ecode_line[ev] == _MSR_WRITE, 0, 1))
        ty[np.isin(ev, wr)] = 3
        order, g, first, last = _groups(v[ev])
        ty_s = ty[order]
        ev_s = ev[order]
        prev_ty = np.empty_like(ty_s)
        prev_ty[0] = -1
        prev_ty[1:] = ty_s[:-1]
        pending = sc.pending
        if pending:
            carried = first & np.isin(g, np.fromiter(pending, dtype=np.int64, count=len(pending)))
        else:
            carried = np.zeros(len(g), dtype=bool)
        resolves = (~first & (prev_ty == 0)) | carried
        other = np.flatnonzero(resolves & (ty_s != 3))
        if len(other):
            sc.nomsr += len(other)
            xs, ns = np.unique(g[other], return_counts=True)
            for x, n in zip(xs.tolist(), ns.tolist(), strict=True):
                acc.vcpus[x][_SUB_OTHER] += n
        paired = np.flatnonzero(resolves & (ty_s == 3))
        w_index = np.searchsorted(wr, ev_s[paired])  # the paired writes, as indices into wr
        if len(paired):
            combo = g[paired] * 8 + sub_w[w_index]
            cs, ns = np.unique(combo, return_counts=True)
            for c, n in zip(cs.tolist(), ns.tolist(), strict=True):
                acc.vcpus[c // 8][SUB_BASE + c % 8] += n
            if keep:
                kind, a, b = _msr_rows(sub_w[w_index], msr[w_index], value[w_index], fault[w_index])
                inside = ~carried[paired]
                fixups = (ev_s[paired[inside] - 1], sub_w[w_index][inside], kind[inside], a[inside], b[inside])
                rows = acc.rows
                assert rows is not None
                for k in np.flatnonzero(~inside).tolist():  # exits of an earlier run
                    idx = pending[int(g[paired[k]])]
                    rows["kind"][idx] = int(kind[k])
                    rows["sub"][idx] = int(sub_w[w_index[k]])
                    rows["a"][idx] = int(a[k])
                    rows["b"][idx] = int(b[k])
        for k in np.flatnonzero(last).tolist():
            x = int(g[k])
            if ty_s[k] == 0:
                pending[x] = -1  # the row index, when rows are kept, is set with the rows
                waiting[x] = int(ev_s[k])
            else:
                pending.pop(x, None)
        paired_w = np.zeros(len(wr), dtype=bool)
        paired_w[w_index] = True
        sc.unpaired += int(len(wr) - np.count_nonzero(paired_w))
        return np.flatnonzero(~paired_w), fixups, waiting

    def _halts(self, code, ecode_line, v, t) -> None:
        sc = self.sc
        acc = sc.acc
        hm = ((code == EV_EXIT) & (ecode_line == _HALT)) | (code == EV_ENTRY)
        ev = np.flatnonzero(hm)
        if not len(ev):
            return
        ty = (code[ev] == EV_ENTRY).astype(np.int64)  # 0 HLT exit, 1 kvm_entry
        order, g, first, last = _groups(v[ev])
        ty_s, t_s = ty[order], t[ev][order]
        halted = sc.halted
        prev_ty = np.empty_like(ty_s)
        prev_ty[0] = -1
        prev_ty[1:] = ty_s[:-1]
        prev_t = np.empty_like(t_s)
        prev_t[0] = 0
        prev_t[1:] = t_s[:-1]
        inside = (ty_s == 1) & ~first & (prev_ty == 0)
        carried = (ty_s == 1) & first & np.isin(g, np.array(list(halted), dtype=np.int64)) if halted else (
            np.zeros(len(g), dtype=bool))
        start = np.where(carried, 0, prev_t)
        for k in np.flatnonzero(carried).tolist():
            start[k] = halted[int(g[k])]
        pairs = np.flatnonzero(inside | carried)
        if len(pairs):
            line_of = ev[order][pairs]
            pv = g[pairs]
            for x in _in_order(pv[np.argsort(line_of, kind="stable")]):
                sel = pv == x
                spans_of(acc.halts, x).extend_arrays(start[pairs][sel], t_s[pairs][sel])
        for k in np.flatnonzero(last).tolist():
            x = int(g[k])
            if ty_s[k] == 0:
                halted[x] = int(t_s[k])
            else:
                halted.pop(x, None)

    def _irqs(self, times, ks, irq, iv, t, dl_lines, base_len) -> None:
        """Timer interrupts: time, and how many of the vCPU's 0x6e0 writes came before."""
        acc = self.sc.acc
        for x in _in_order(iv):
            sel = iv == x
            lines_x = irq[sel]
            if x in dl_lines:  # writes of this run: count those before each interrupt
                k = base_len[x] + np.searchsorted(dl_lines[x], lines_x)
            else:
                k = np.full(len(lines_x), len(acc.deadline_t.get(x, ())), dtype=np.int64)
            if x not in times:
                times[x] = array("q")
                ks[x] = array("q")
            times[x].frombytes(t[lines_x].astype(np.int64).tobytes())
            ks[x].frombytes(k.astype(np.int64).tobytes())

    @staticmethod
    def _irq_rows(irq, t, line, iv, kind):
        n = len(irq)
        return (irq, t[irq], line[irq], iv, np.full(n, kind), np.full(n, -1), np.full(n, -1),
                np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))

    def _append_rows(self, parts, fixups, waiting: dict[int, int]) -> None:
        """Event-log rows of the run in line order (each line gives at most one)."""
        sc = self.sc
        rows = sc.acc.rows
        assert rows is not None
        cols = [np.concatenate([p[k] for p in parts]) for k in range(9)]
        order = np.argsort(cols[0], kind="stable")
        pos, time, line, vcpu, kind, exit_, sub, a, b = (c[order] for c in cols)
        base = len(rows["time"])
        if fixups is not None and len(fixups[0]):
            at = np.searchsorted(pos, fixups[0])
            sub[at] = fixups[1]
            kind[at] = fixups[2]
            a[at] = fixups[3]
            b[at] = fixups[4]
        for x, p in waiting.items():
            sc.pending[x] = base + int(np.searchsorted(pos, p))
        for name, col in (("time", time), ("line", line), ("vcpu", vcpu), ("kind", kind), ("exit", exit_),
                          ("sub", sub), ("a", a), ("b", b)):
            arr = rows[name]
            arr.frombytes(col.astype(np.dtype(arr.typecode)).tobytes())


_UNSET = -(1 << 40)
