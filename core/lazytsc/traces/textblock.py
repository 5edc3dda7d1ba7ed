"""Columnar parse of a block of trace text: all lines of a ~1 MiB block at once, in numpy.

Why: the per-line loop (importer.Scanner.lines) costs a few microseconds of Python per
line; here a block is split into space-separated tokens once (a few passes over its
bytes), and every line's header and payload fields are then read with gathers at token
offsets, so the Python work is per block, not per line.

What it reads: exactly the lines the per-line loop reads on its fast path (the layouts
ftrace, trace-cmd report and perf script print), further restricted to what is cheap to
prove in bulk: ASCII text without control characters, tokens that fit the fixed-width
windows below, payload fields as the tracepoint's TP_printk prints them. Every other
line has `ok` False and the importer reads it with the per-line loop, in file order,
so both give the same result (tests/test_trace_block.py compares them).

Strings that repeat (event names, host threads, exit reasons, whole payloads of
low-cardinality events such as `apicid 0 vec 236 (Fixed|edge)`) are turned into small
ids by `Interner`: an exact table (64-bit hash, then the bytes compared), so Python
looks at each distinct string once per import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FRONT = 32  # bytes of padding before the block (backward windows stay in the buffer)
BACK = 80  # bytes of padding after it (forward windows stay in the buffer)
KEY_WORDS = 4  # host-thread names, event names, exit reasons, registers: at most 32 bytes
PAYLOAD_WORDS = 8  # whole payloads of low-cardinality events: at most 64 bytes
MAX_INTERNED = 1 << 16  # distinct strings per table; more are read by the per-line loop
MAX_VCPU = 32767  # the event log stores vCPUs as int16 (textgrammar.MAX_VCPU)
KEY_TOKENS = 4  # header tokens searched for ` [CPU]` and `] ` (more: the per-line loop)
# the importer's event codes (importer.DISPATCH values; a perf `sys:` prefix adds EV_PERF)
EV_EXIT, EV_ENTRY, EV_MSR, EV_ACCEPT, EV_INJ, EV_EOI, EV_IPI, EV_HVT, EV_APIC = range(1, 10)
EV_PERF = 16

_U8 = np.uint8
_U64 = np.uint64
# MASKS[r]: the low r bytes of a little-endian word
MASKS = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [(1 << 64) - 1], dtype=_U64)
_ZEROS = _U64(0x3030303030303030)  # eight ASCII '0'
_HASH_MUL = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x27D4EB2F165667C5, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                      0x94D049BB133111EB, 0xBF58476D1CE4E5B9, 0x2545F4914F6CDD1D], dtype=_U64)
_SCALE = np.array([10 ** (9 - d) for d in range(10)], dtype=_U64)  # ns per unit of d fraction digits


def word_of(text: bytes) -> int:
    """`text` (at most 8 bytes) as the little-endian word a load at its start gives, with
    the bytes past its end masked off."""
    return int.from_bytes(text.ljust(8, b"\0"), "little")


def _length_masks(k: int) -> np.ndarray:
    """Row L: the masks keeping the first L bytes of k little-endian words."""
    out = np.zeros((8 * k + 1, k), dtype=_U64)
    for length in range(8 * k + 1):
        for j in range(k):
            out[length, j] = MASKS[min(max(length - 8 * j, 0), 8)]
    return out


_LEN_MASKS = {k: _length_masks(k) for k in (1, 2, KEY_WORDS, PAYLOAD_WORDS)}


class Interner:
    """Byte strings of at most 8*k bytes to dense ids, in bulk and exactly.

    A row's id is found by the 64-bit hash of its words (searchsorted in a sorted table)
    and confirmed by comparing the words with the stored ones (the strings hold no NUL,
    so the masked words also fix the length); a string whose hash another string holds,
    or that arrives when the table is full, gets -1 (its lines go to the per-line loop).
    """

    def __init__(self, k: int, limit: int = MAX_INTERNED) -> None:
        self.k = k
        self.limit = limit
        self.values: list[bytes] = []
        self._by_hash: dict[int, int] = {}
        # sorted hashes, then a sentinel (all ones) whose words match nothing
        self._sorted = np.full(1, ~_U64(0), dtype=_U64)
        self._sorted_ids = np.zeros(1, dtype=np.int64)
        self._words = np.full((1, k), ~_U64(0), dtype=_U64)  # row 0: the sentinel's
        self._cols = [np.ascontiguousarray(self._words[:, j]) for j in range(k)]

    def __len__(self) -> int:
        return len(self.values)

    def _find(self, h: np.ndarray, words: np.ndarray) -> np.ndarray:
        ids = self._sorted_ids[np.searchsorted(self._sorted, h)]
        cols = self._cols
        diff = cols[0][ids] ^ words[:, 0]
        for j in range(1, self.k):
            diff |= cols[j][ids] ^ words[:, j]
        return np.where(diff == 0, ids - 1, -1)

    def _hash(self, words: np.ndarray) -> np.ndarray:
        h = words[:, 0] * _HASH_MUL[0]
        for j in range(1, self.k):
            h += words[:, j] * _HASH_MUL[j]
        return h

    def ids(self, words: np.ndarray, text: Callable[[int], bytes]) -> np.ndarray:
        """The id of each row (`words`: n x k masked words); `text(row)` gives a new
        row's bytes."""
        h = self._hash(words)
        out = self._find(h, words)
        miss = np.flatnonzero(out < 0)
        if not len(miss):
            return out
        uniq, first = np.unique(h[miss], return_index=True)
        added = []
        for hv, row in zip(uniq.tolist(), miss[first].tolist(), strict=True):
            if hv in self._by_hash or len(self.values) >= self.limit:
                continue  # a hash collision (or a full table): those rows stay -1
            self.values.append(text(row))
            self._by_hash[hv] = len(self.values)  # its row in _words (row 0: the sentinel)
            added.append(row)
        if added:
            self._words = np.concatenate([self._words, words[added]])
            self._cols = [np.ascontiguousarray(self._words[:, j]) for j in range(self.k)]
            hashes = np.array(list(self._by_hash), dtype=_U64)
            order = np.argsort(hashes, kind="stable")
            self._sorted = np.append(hashes[order], ~_U64(0))
            self._sorted_ids = np.append(np.array(list(self._by_hash.values()), dtype=np.int64)[order], 0)
            out[miss] = self._find(h[miss], words[miss])
        return out


def swar8(words: np.ndarray) -> np.ndarray:
    """The value of 8 ASCII decimal digits held in each little-endian word (first digit
    in the low byte), by three multiply-shift steps instead of a loop over digits."""
    v = ((words & _U64(0x0F0F0F0F0F0F0F0F)) * _U64(2561)) >> _U64(8)
    v = ((v & _U64(0x00FF00FF00FF00FF)) * _U64(6553601)) >> _U64(16)
    return ((v & _U64(0x0000FFFF0000FFFF)) * _U64(42949672960001)) >> _U64(32)


def all_digits(words: np.ndarray) -> np.ndarray:
    """True where every byte of the word is an ASCII digit (bytes below 0x80)."""
    bad = ((words + _U64(0x4646464646464646)) | (words - _ZEROS)) & _U64(0x8080808080808080)
    return bad == 0


@dataclass
class Block:
    """Per-line columns of one block (index i = the block's line i).

    `code`: 0 another tracepoint (`f1` = id of its name in `Tables.unknown_names`),
    1..9 the importer's event codes; `v`: the payload's vCPU (kvm_exit with `vcpu`,
    kvm_entry), -2 for events attributed through their host thread, -1 for none;
    `key`: id of the host-thread text; `f1`..`f3`: event fields (see `parse_block`).
    """

    n: int
    starts: np.ndarray
    ends: np.ndarray
    ok: np.ndarray
    code: np.ndarray
    perf: np.ndarray
    t: np.ndarray
    flags: np.ndarray
    key: np.ndarray
    v: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    f3: np.ndarray
    padded: bytes

    def lines(self, i: int, j: int) -> list[str]:
        """Lines i..j-1 as text (for the per-line loop)."""
        if i >= j:
            return []
        return self.padded[self.starts[i] : self.ends[j - 1]].decode("ascii").split("\n")

    def text_from(self, i: int) -> list[str]:
        """Lines i.. of the block as text."""
        return self.lines(i, self.n)


class Tables:
    """What the block parser interns, shared across the blocks of one import."""

    def __init__(self) -> None:
        self.events = Interner(KEY_WORDS)  # event tokens (`kvm_exit:`, `kvm:kvm_msr:`, ...)
        self.keys = Interner(KEY_WORDS)  # host-thread texts
        self.reasons = Interner(KEY_WORDS)  # kvm_exit reason tokens
        self.regs = Interner(KEY_WORDS)  # kvm_apic register names
        self.payloads = Interner(PAYLOAD_WORDS)  # whole payloads of low-cardinality events
        # per event-token id: importer event code (with the perf bit), 0 for another
        # tracepoint, -1 for a token the per-line loop must see
        self.event_code: list[int] = []
        self.event_name: list[int] = []  # per event-token id: unknown-name id or -1
        self.unknown_names: list[str] = []
        self._unknown_index: dict[str, int] = {}
        self._msr_reasons: list[bool] = []

    def classify_events(self, dispatch: dict[str, int], known: frozenset[str] | set[str]) -> None:
        """Codes of event tokens interned since the last call (the per-line loop's rules:
        a dispatch token, else `name` of `sys:name:` unless it is one the loop reads)."""
        for raw in self.events.values[len(self.event_code) :]:
            ev = raw.decode("ascii")
            code = dispatch.get(ev, 0)
            name_id = -1
            if not code:
                name = ev.rstrip(":").rpartition(":")[2]
                if name and name not in known:
                    name_id = self._unknown_index.get(name, -1)
                    if name_id < 0:
                        name_id = self._unknown_index[name] = len(self.unknown_names)
                        self.unknown_names.append(name)
                else:
                    code = -1
            self.event_code.append(code)
            self.event_name.append(name_id)

    def msr_reasons(self) -> np.ndarray:
        """Per reason id (and -1, the last entry): AMD's `msr`/`EXIT_MSR`, read or write by info1."""
        for raw in self.reasons.values[len(self._msr_reasons) :]:
            self._msr_reasons.append(raw in (b"msr", b"EXIT_MSR"))
        return np.asarray(self._msr_reasons + [False], dtype=bool)


class _Bytes:
    """The padded block and the gathers the parser makes from it."""

    def __init__(self, padded: bytes) -> None:
        self.padded = padded
        self.a = np.frombuffer(padded, dtype=_U8)
        self._views: dict[int, np.ndarray] = {}

    def window(self, s: np.ndarray, width: int) -> np.ndarray:
        """Bytes s .. s+width of each row (n x width): one gather of `width`-byte items."""
        view = self._views.get(width)
        if view is None:
            view = self._views[width] = np.ndarray(shape=(len(self.padded) - width + 1,), dtype=f"V{width}",
                                                   buffer=self.padded, strides=(1,))
        return view[s].view(_U8).reshape(len(s), width)

    def word(self, s: np.ndarray) -> np.ndarray:
        """The little-endian word of bytes s .. s+8 of each row."""
        return self.window(s, 8).view("<u8").ravel()

    def words(self, s: np.ndarray, lens: np.ndarray, k: int) -> np.ndarray:
        """Bytes s .. s+lens of each row as k words, zero past the end (lens <= 8k)."""
        w = self.window(s, 8 * k).view("<u8")
        if k <= KEY_WORDS:
            w &= _LEN_MASKS[k][lens]
        else:  # a column at a time: less memory for the wide rows
            for j in range(k):
                w[:, j] &= MASKS[np.clip(lens - 8 * j, 0, 8)]
        return w

    def is_word(self, s: np.ndarray, lens: np.ndarray, text: bytes) -> np.ndarray:
        """Tokens (start, length) that are exactly `text` (at most 16 bytes)."""
        if len(text) <= 8:
            return (lens == len(text)) & ((self.word(s) & MASKS[len(text)]) == _U64(word_of(text)))
        w = self.window(s, 16).view("<u8")
        return ((lens == len(text)) & (w[:, 0] == _U64(word_of(text[:8])))
                & ((w[:, 1] & MASKS[len(text) - 8]) == _U64(word_of(text[8:]))))

    def small_uint(self, s: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ok, value) of decimal tokens of 1..8 digits."""
        lens8 = np.clip(lens, 1, 8)
        w = self.word(s + lens8 - 8)  # the 8 bytes ending at the token's end
        low = MASKS[8 - lens8]
        w = (w & ~low) | (_ZEROS & low)
        ok = (lens >= 1) & (lens <= 8) & all_digits(w)
        return ok, swar8(w).astype(np.int64)

    def hex_value(self, s: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ok, value as uint64) of bare hex tokens of 1..16 digits."""
        lens16 = np.clip(lens, 1, 16)
        win = self.window(s + lens16 - 16, 16)
        inside = np.arange(16) >= (16 - lens16)[:, None]
        is_hex = ((win - _U8(48)) < 10) | (((win | _U8(0x20)) - _U8(97)) < 6)
        ok = (lens >= 1) & (lens <= 16) & (is_hex | ~inside).all(axis=1)
        nib = (win & _U8(0x0F)) + _U8(9) * ((win >> _U8(6)) & _U8(1))
        nib[~inside] = 0
        packed = np.ascontiguousarray((nib[:, 0::2] << _U8(4)) | nib[:, 1::2])
        return ok, packed.view(">u8").ravel().astype(_U64)


def _intern(table: Interner, b: _Bytes, s: np.ndarray, lens: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Ids of the strings (start, length) where `want`; -1 elsewhere and for strings longer
    than the table's words."""
    out = np.full(len(s), -1, dtype=np.int64)
    rows = np.flatnonzero(want & (lens <= 8 * table.k))
    if len(rows):
        rs, rl = s[rows], lens[rows]
        out[rows] = table.ids(b.words(rs, rl, table.k), lambda r: b.padded[rs[r] : rs[r] + rl[r]])
    return out


def _timestamps(b: _Bytes, colon: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok for an event the importer reads, ok for another tracepoint, ns) of each line's
    timestamp token, the `lens` characters before the `:` at `colon`.

    The per-line loop takes `SECS.FRACTION` (one dot, at least 7 characters, a fraction
    of 1 to 9 digits) as int(digits) * 10**(9 - fraction digits), and for another
    tracepoint's line only checks digits around one dot. Read here: up to 10 digits of
    seconds (a clock below 317 years) and the fraction, 8 digits per word; anything else
    is left to the per-line loop.
    """
    a = b.a
    n = len(colon)
    frac = np.full(n, -1, dtype=np.int64)
    frac[a[colon - 7] == 46] = 6  # microseconds: what ftrace, trace-cmd and perf print
    rest = np.flatnonzero(frac < 0)
    for d in (9, 3, 1, 2, 4, 5, 7, 8):
        if not len(rest):
            break
        hit = a[colon[rest] - 1 - d] == 46
        frac[rest[hit]] = d
        rest = rest[~hit]
    d = np.clip(frac, 1, 9)
    dot = colon - 1 - d
    secs = lens - 1 - frac
    ok = (frac >= 1) & (secs >= 0) & (secs <= 10)
    secs = np.clip(secs, 0, 10)
    # seconds: the 8 bytes before the dot, those before the token made '0' (and for more
    # than 8 digits the 8 before those)
    lo = b.word(dot - 8)
    pad = MASKS[np.maximum(8 - secs, 0)]
    lo = (lo & ~pad) | (_ZEROS & pad)
    ok &= all_digits(lo)
    sec = swar8(lo)
    long = np.flatnonzero(secs > 8)
    if len(long):
        hi = b.word(dot[long] - 16)
        pad = MASKS[16 - secs[long]]
        hi = (hi & ~pad) | (_ZEROS & pad)
        ok[long] &= all_digits(hi)
        sec[long] += swar8(hi) * _U64(100_000_000)
    # fraction: its digits moved to the top of the word, '0's below (a 9th digit apart)
    d8 = np.minimum(d, 8)
    fw = b.word(dot + 1)
    fw = (fw << ((_U64(8) - d8.astype(_U64)) * _U64(8))) | (_ZEROS & MASKS[8 - d8])
    ok &= all_digits(fw)
    fval = swar8(fw)
    nine = np.flatnonzero(d == 9)
    if len(nine):
        last = a[dot[nine] + 9] - _U8(48)
        ok[nine] &= last < 10
        fval[nine] = fval[nine] * _U64(10) + last.astype(_U64)
    t = sec * _U64(1_000_000_000) + fval * _SCALE[d]
    ok &= t <= _U64((1 << 63) - 1)
    return ok & (lens >= 7), ok, t.astype(np.int64)


def _edges(a: np.ndarray, piece: int = 1 << 17) -> np.ndarray:
    """Positions where a token (a run of bytes above the space) starts or ends, found a
    piece at a time so the temporary masks stay small (the padding starts and ends with
    newlines, so starts and ends alternate)."""
    parts = []
    for lo in range(1, len(a), piece):
        hi = min(lo + piece, len(a))
        word = a[lo - 1 : hi] > 32
        parts.append(np.flatnonzero(word[1:] != word[:-1]).astype(np.int32) + np.int32(lo))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def parse_block(padded: bytes, tables: Tables, dispatch: dict[str, int], known: frozenset[str],
                payload_valid: Callable[[int], np.ndarray]) -> Block | None:
    """Parse the lines of `padded` (FRONT newlines, the block ending in a newline, BACK
    newlines). None when the block is not plain ASCII text (the per-line loop reads it).

    Fields by code: kvm_exit f1 = reason id, f2 = the low bit of info1 (AMD `msr`);
    kvm_msr f1 = 0 read / 1 write / 2 faulting write, f2 = MSR, f3 = value (uint64 bits);
    kvm_apic f1 = 1 write / 0 read, f2 = register-name id, f3 = value; the
    low-cardinality events f1 = payload id (`payload_valid(code)[id]` says whether the
    per-line loop would accept that payload).
    """
    if not padded.isascii():
        return None
    b = _Bytes(padded)
    a = b.a
    region = a[FRONT : len(padded) - BACK]
    nl = np.flatnonzero(region < 32).astype(np.int32) + np.int32(FRONT)  # positions fit int32
    if not (a[nl] == 10).all():
        return None  # tabs, carriage returns, other controls: the per-line loop reads them
    n = len(nl)
    starts = np.empty(n, dtype=np.int32)
    starts[0] = FRONT
    starts[1:] = nl[:-1] + 1
    ends = nl
    # -- tokens: maximal runs of bytes above the space (what str.split() gives here) ---------
    edges = _edges(a)
    tok_s, tok_e = edges[0::2], edges[1::2]
    n_tok = len(tok_s)
    if not n_tok:
        return None  # blank lines only
    top = n_tok - 1
    first = np.searchsorted(tok_s, starts).astype(np.int32)
    last = np.empty(n, dtype=np.int32)  # one past the line's last token
    last[:-1] = first[1:]
    last[-1] = n_tok
    last_byte = a[tok_e - 1]
    # -- header: the first `: ` (a token ending in `:` followed by a space) ---------------
    colon_toks = np.flatnonzero((last_byte == 58) & (a[tok_e] == 32)).astype(np.int32)
    if not len(colon_toks):
        colon_toks = np.zeros(1, dtype=np.int32)
        k = np.ones(n, dtype=np.int64)
    else:
        k = np.searchsorted(colon_toks, first)
    ct = colon_toks[np.minimum(k, len(colon_toks) - 1)]
    ok = (k < len(colon_toks)) & (ct < last - 1)
    del k, colon_toks
    ct[~ok] = 0
    ev = np.minimum(ct + 1, top)
    ev_s, ev_e = tok_s[ev], tok_e[ev]
    del ev
    ok &= ev_s == tok_e[ct] + 1  # `EVENT` right after `: ` (one space)
    colon = tok_e[ct] - 1
    known_ts, other_ts, t = _timestamps(b, colon, colon - tok_s[ct])
    del colon
    # -- event token ----------------------------------------------------------------------
    ev_ids = _intern(tables.events, b, ev_s, ev_e - ev_s, ok)
    del ev_s, ev_e
    tables.classify_events(dispatch, known)
    raw_code = np.asarray(tables.event_code + [-1], dtype=np.int16)[ev_ids]  # id -1: the last entry
    ok &= raw_code >= 0
    perf = (raw_code & EV_PERF) != 0
    code = np.where(raw_code > 0, raw_code & 15, 0).astype(np.int8)
    del raw_code
    is_known = code > 0
    ok &= np.where(is_known, known_ts, other_ts)
    del known_ts, other_ts
    f1 = np.where(code == 0, np.asarray(tables.event_name + [-1], dtype=np.int64)[ev_ids], 0)
    del ev_ids
    f2 = np.zeros(n, dtype=np.int64)
    f3 = np.zeros(n, dtype=np.int64)
    v = np.full(n, -1, dtype=np.int32)
    # -- host thread: the text before ` [CPU]`, else before the timestamp ---------------------
    key = np.full(n, -1, dtype=np.int32)
    rows = np.flatnonzero(ok & is_known & ((code <= EV_INJ) & (code != EV_ACCEPT) | (code == EV_APIC)))
    del is_known
    if len(rows):
        # ` [`: the first token opening with `[` after a space (the line's first token only
        # when spaces precede it), looked for among the first few tokens
        fr, cr = first[rows], ct[rows]
        key_last = cr.copy()
        todo = np.arange(len(rows))  # rows still looking
        for j in range(KEY_TOKENS):
            cand = fr[todo] + j
            s_ = tok_s[np.minimum(cand, top)]
            hit = (cand <= cr[todo]) & (a[s_] == 91) & (a[s_ - 1] == 32)
            key_last[todo[hit]] = cand[hit]
            todo = todo[~hit & (cand < cr[todo])]
            if not len(todo):
                break
        ok[rows[todo]] = False  # ` [` may be further on: the per-line loop looks
        ks = tok_s[fr]
        kl = np.where(key_last > fr, tok_e[np.maximum(key_last - 1, 0)] - ks, 0)
        key[rows] = _intern(tables.keys, b, ks, kl, np.ones(len(rows), dtype=bool))
        ok[rows] &= key[rows] >= 0
    # -- payload tokens ---------------------------------------------------------------------
    p0 = ct + 2
    n_pay = last - p0

    def cols(rows: np.ndarray, which: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(start, length) of payload tokens `which` of `rows` (n x len(which)); a token
        past its line's end is another line's, never used."""
        idx = np.minimum(p0[rows][:, None] + np.array(which), top)
        s = tok_s[idx]
        return s, tok_e[idx] - s

    # kvm_exit: the four layouts the per-line loop reads, told apart by token count:
    # 7 "reason %s rip 0x%lx info %llx %llx" (before 5.5; libtraceevent's kvm plugin)
    # 9 "vcpu %u reason %s rip 0x%lx info %llx %llx" (5.5 - 5.11)
    # 10 / 14 "vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx[ intr_info
    # 0x%08x error_code 0x%08x]" (5.12 on)
    rows = np.flatnonzero(ok & (code == EV_EXIT))
    if len(rows):
        npay = n_pay[rows]
        good = np.zeros(len(rows), dtype=bool)
        reason_s = np.zeros(len(rows), dtype=np.int64)
        reason_l = np.zeros(len(rows), dtype=np.int64)
        info_s = np.zeros(len(rows), dtype=np.int64)
        info_l = np.zeros(len(rows), dtype=np.int64)
        for count, words, reason, info, vcpu, widths in (
            (7, {0: b"reason", 2: b"rip", 4: b"info"}, 1, 5, None, {}),
            (9, {0: b"vcpu", 2: b"reason", 4: b"rip", 6: b"info"}, 3, 7, 1, {}),
            (10, {0: b"vcpu", 2: b"reason", 6: b"info1"}, 3, 7, 1, {9: 18}),
            (14, {0: b"vcpu", 2: b"reason", 4: b"rip", 6: b"info1", 12: b"error_code"}, 3, 7, 1, {13: 10}),
        ):
            sel = np.flatnonzero(npay == count)
            if not len(sel):
                continue
            which = [*words, reason, info, *widths] + ([vcpu] if vcpu is not None else [])
            s, ln = cols(rows[sel], which)
            g = np.ones(len(sel), dtype=bool)
            for c, text in enumerate(words.values()):
                g &= b.is_word(s[:, c], ln[:, c], text)
            c = len(words)
            reason_s[sel], reason_l[sel] = s[:, c], ln[:, c]
            info_s[sel], info_l[sel] = s[:, c + 1], ln[:, c + 1]
            for k, width in enumerate(widths.values()):
                g &= ln[:, c + 2 + k] == width
            if vcpu is None:
                v[rows[sel]] = -2
            else:
                v_ok, v_val = b.small_uint(s[:, -1], ln[:, -1])
                g &= v_ok & (ln[:, -1] <= 5) & (v_val <= MAX_VCPU)
                v[rows[sel]] = v_val
            good[sel] = g
        rid = _intern(tables.reasons, b, reason_s, reason_l, good)
        good &= rid >= 0
        f1[rows] = rid
        # AMD `msr` exits are WRMSR when info1's low bit is 1; the per-line loop checks
        # that int(info1, 16) works for them
        amd = np.flatnonzero(good & tables.msr_reasons()[rid])
        if len(amd):
            is_s, is_l = info_s[amd], info_l[amd]
            prefixed = (is_l > 2) & ((b.word(is_s) & MASKS[2]) == _U64(word_of(b"0x")))
            h_ok, h_val = b.hex_value(np.where(prefixed, is_s + 2, is_s), np.where(prefixed, is_l - 2, is_l))
            f2[rows[amd]] = (h_val & _U64(1)).astype(np.int64)
            good[amd] &= h_ok
        ok[rows] &= good
    # kvm_entry: "vcpu %u" | "vcpu %u, rip 0x%lx%s" | libtraceevent "vcpu %u rip 0x%lx"
    rows = np.flatnonzero(ok & (code == EV_ENTRY))
    if len(rows):
        npay = n_pay[rows]
        s, ln = cols(rows, [0, 1, 2])
        good = (npay >= 2) & b.is_word(s[:, 0], ln[:, 0], b"vcpu")
        good &= (npay == 2) | b.is_word(s[:, 2], ln[:, 2], b"rip")
        vs, vl = s[:, 1], ln[:, 1]
        vl = vl - (a[vs + vl - 1] == 44)  # a trailing comma
        v_ok, v_val = b.small_uint(vs, vl)
        good &= v_ok & (vl <= 5) & (v_val <= MAX_VCPU)
        v[rows] = v_val
        ok[rows] &= good
    # kvm_msr: "msr_%s %x = 0x%llx%s" (%s " (#GP)" on a fault)
    rows = np.flatnonzero(ok & (code == EV_MSR))
    if len(rows):
        npay = n_pay[rows]
        s, ln = cols(rows, [0, 1, 2, 3, 4])
        write = b.is_word(s[:, 0], ln[:, 0], b"msr_write")
        good = (write | b.is_word(s[:, 0], ln[:, 0], b"msr_read")) & b.is_word(s[:, 2], ln[:, 2], b"=")
        good &= (npay == 4) | ((npay == 5) & b.is_word(s[:, 4], ln[:, 4], b"(#GP)"))
        m_ok, m_val = b.hex_value(s[:, 1], ln[:, 1])
        good &= m_ok & (ln[:, 1] <= 8)
        vs, vl = s[:, 3], ln[:, 3]
        good &= (vl > 2) & ((b.word(vs) & MASKS[2]) == _U64(word_of(b"0x")))
        x_ok, x_val = b.hex_value(vs + 2, vl - 2)
        good &= x_ok
        f1[rows] = np.where(write, npay - 3, 0)
        f2[rows] = m_val.astype(np.int64)
        f3[rows] = x_val.view(np.int64)
        v[rows] = -2
        ok[rows] &= good
    # kvm_apic: "apic_%s %s = 0x%x"
    rows = np.flatnonzero(ok & (code == EV_APIC))
    if len(rows):
        s, ln = cols(rows, [0, 1, 2, 3])
        write = b.is_word(s[:, 0], ln[:, 0], b"apic_write")
        good = (n_pay[rows] == 4) & b.is_word(s[:, 2], ln[:, 2], b"=")
        good &= write | b.is_word(s[:, 0], ln[:, 0], b"apic_read")
        vs, vl = s[:, 3], ln[:, 3]
        good &= (vl > 2) & ((b.word(vs) & MASKS[2]) == _U64(word_of(b"0x")))
        x_ok, x_val = b.hex_value(vs + 2, vl - 2)
        good &= x_ok
        rid = _intern(tables.regs, b, s[:, 1], ln[:, 1], good)
        good &= rid >= 0
        f1[rows] = write
        f2[rows] = rid
        f3[rows] = x_val.view(np.int64)
        v[rows] = -2
        ok[rows] &= good
    # the others: the whole payload (first token to the end of the line) interned, and
    # each distinct one checked by the per-line loop's own regex
    rows = np.flatnonzero(ok & (code >= EV_ACCEPT) & (code <= EV_HVT))
    if len(rows):
        ps = tok_s[np.minimum(p0[rows], top)]
        good = n_pay[rows] >= 1
        pid = _intern(tables.payloads, b, ps, ends[rows] - ps, good)
        good &= pid >= 0
        codes = code[rows]
        for c in sorted(set(codes[good].tolist())):
            sel = good & (codes == c)
            good[sel] = payload_valid(c)[pid[sel]]
        f1[rows] = pid
        v[rows] = np.where(codes == EV_INJ, -2, -1)
        ok[rows] &= good
    # ftrace's irq-flags column (kvm_exit lines, not perf): the last `] ` of the header
    # is followed by one more field before the timestamp
    flags = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(ok & (code == EV_EXIT) & ~perf)
    if len(rows):
        fr, cr = first[rows], ct[rows]
        found = np.zeros(len(rows), dtype=bool)
        bk2 = np.zeros(len(rows), dtype=np.int64)
        for j in range(1, KEY_TOKENS + 1):
            cand = np.maximum(cr - j, 0)
            hit = ~found & (cr - j >= fr) & (last_byte[cand] == 93)
            bk2[hit] = cand[hit]
            found |= hit
        ok[rows] &= found | (cr - KEY_TOKENS <= fr)  # none found: none in the header
        nxt = np.minimum(bk2 + 1, top)
        flags[rows] = found & (tok_s[nxt] == tok_e[bk2] + 1) & (bk2 + 1 < cr)
    return Block(n, starts, ends, ok, code, perf, t, flags, key, v, f1, f2, f3, padded)
