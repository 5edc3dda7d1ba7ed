"""What the timeline draws, derived from the event log columns with numpy, chunk by chunk.

Presentation data only: every value here is read off events the engine logged
(taxonomy.KIND_FIELDS says what columns a/b mean), never re-computed from
protocol rules. No Qt; unit-tested in tests/gui/test_timeline_data.py.

Why index-based: a lane keeps only the event indices of its marks (int32, 4 B
per mark); times come from the log's own time column. The log is sorted by time,
so a pixel column's time range maps to a range of event indices with one
`searchsorted`, and a lane's marks in that column to a range of its indices with
another: binning a whole view costs O(pixels * log n), whatever n is, and the
GUI holds no second copy of the log.

Why incremental: a run streams in while it is drawn. `TimelineData.extend`
takes each chunk of columns in log order and carries across chunks what spans
chunks (an armed timer, a halt, the shared page's registration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lazytsc.taxonomy import EXIT_NAMES, HAZARD_KINDS, KIND_NAMES, Kind

from .runlog import GrowArray

NOTE_SAVE = 3  # lazytsc.script.NOTE_SAVE: a VMM save (b == 0) whose page copy MIGRATE restores

EMPTY_F = np.zeros(0, dtype=np.float64)
EMPTY_I = np.zeros(0, dtype=np.int64)

# Draw every mark of a row while at most this many (or npix / 10) are visible;
# otherwise shade per pixel column.
EXACT_MIN = 64

SPAN_FIRED = 0
SPAN_CANCELLED = 1
SPAN_OPEN = 2

HAZARD_CODES = sorted(HAZARD_KINDS) + [int(Kind.TIMER_COALESCED)]
EXIT_BY_CODE = {c: n for c, n in EXIT_NAMES.items() if c >= 0}

# Marks of a lane: name -> event kind (None: selected by a mask in VcpuLanes.extend).
_SIMPLE_MARKS = {
    "written": Kind.WRMSR_TSC_DEADLINE,
    "skipped": Kind.DEADLINE_SKIP,
    "arms": Kind.TIMER_ARM,
    "fires": Kind.TIMER_FIRE,
    "updates": Kind.LAZY_UPDATE,
    "kick_requests": Kind.KICK_REQUEST,
    "clears": Kind.LAZY_CLEAR,
    "irqs": Kind.GUEST_TIMER_IRQ,
    "ipis": Kind.GUEST_IPI,
}
if hasattr(Kind, "GUEST_IRQ"):  # the guest takes another interrupt (a device's)
    _SIMPLE_MARKS["irqs_other"] = Kind.GUEST_IRQ
_MASK_MARKS = ("kicks_rearm", "kicks_disarm", "irqs_dropped", "irqs_spurious", "irqs_late")


def find(a: np.ndarray, keys, side: str = "left"):
    """`np.searchsorted` with the keys cast to the array's dtype.

    numpy compares in the common type of the two, so an int32 index array
    searched with int64 keys (or int64 times with float keys) would be converted,
    a copy of the whole array, on every call: O(n) instead of O(log n). Event
    indices fit int32 and times int64, so the cast loses nothing.
    """
    if isinstance(keys, (int, float, np.integer, np.floating)):
        return np.searchsorted(a, int(keys) if a.dtype.kind in "iu" else float(keys), side=side)
    k = np.asarray(keys)
    if k.dtype != a.dtype:
        k = k.astype(a.dtype)
    return np.searchsorted(a, k, side=side)


class Marks:
    """Point events of one track: sorted event indices (times are the log's)."""

    def __init__(self, data: TimelineData | None = None) -> None:
        self._idx = GrowArray(np.int32)
        self._data = data

    def __len__(self) -> int:
        return len(self._idx)

    @property
    def idx(self) -> np.ndarray:
        return self._idx.view()

    @property
    def t(self) -> np.ndarray:
        """Times in seconds (computed: for tests and tooltips, not for painting)."""
        if self._data is None or not len(self._idx):
            return EMPTY_F
        return self._data.time_ns[self.idx] * 1e-9

    def extend(self, idx: np.ndarray) -> None:
        self._idx.extend(idx)


class Spans:
    """Non-overlapping intervals [start event, end event] of one vCPU, sorted.

    `cum[i]` is the total length (ns) of spans 0..i-1, so how much of any time
    range is covered is two look-ups (`coverage`). The last span may be open
    (`open_start`): it lasts to the end of the data so far.
    """

    def __init__(self, data: TimelineData | None = None) -> None:
        self._start = GrowArray(np.int32)
        self._end = GrowArray(np.int32)
        self._flag = GrowArray(np.int8)
        self._cum = GrowArray(np.int64)
        self._total = 0
        self.open_start = -1  # event index of a span not closed yet
        self.open_t = 0  # its start time (ns)
        self._data = data

    def __len__(self) -> int:
        return len(self._start) + (1 if self.open_start >= 0 else 0)

    @property
    def start(self) -> np.ndarray:
        return self._start.view()

    @property
    def end(self) -> np.ndarray:
        return self._end.view()

    @property
    def flag(self) -> np.ndarray:
        """SPAN_FIRED / SPAN_CANCELLED per closed span, then SPAN_OPEN for an open one."""
        f = self._flag.view()
        return np.concatenate([f, [SPAN_OPEN]]).astype(np.int8) if self.open_start >= 0 else f

    @property
    def cum(self) -> np.ndarray:
        return self._cum.view()

    def add(self, start: np.ndarray, end: np.ndarray, flag: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> None:
        if not len(start):
            return
        lengths = np.maximum(t1 - t0, 0).astype(np.int64)
        cum = self._total + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self._total += int(lengths.sum())
        self._start.extend(start)
        self._end.extend(end)
        self._flag.extend(flag)
        self._cum.extend(cum)

    # seconds, for tests and tooltips
    def times_ns(self) -> tuple[np.ndarray, np.ndarray]:
        d = self._data
        time = d.time_ns
        t0 = time[self.start] if len(self._start) else EMPTY_I
        t1 = time[self.end] if len(self._start) else EMPTY_I
        if self.open_start >= 0:
            t0 = np.concatenate([t0, [self.open_t]])
            t1 = np.concatenate([t1, [max(self.open_t, d.t_end_ns)]])
        return t0.astype(np.int64), t1.astype(np.int64)

    @property
    def t0(self) -> np.ndarray:
        return self.times_ns()[0] * 1e-9

    @property
    def t1(self) -> np.ndarray:
        return self.times_ns()[1] * 1e-9

    @property
    def idx(self) -> np.ndarray:
        s = self.start.astype(np.int64)
        return np.concatenate([s, [self.open_start]]) if self.open_start >= 0 else s


class Steps:
    """A step function of one value (a TSC deadline, 0 = none): `raw[i]` from event `idx[i]` on.

    Before the first change the value is 0.
    """

    def __init__(self) -> None:
        self._idx = GrowArray(np.int32)
        self._raw = GrowArray(np.int64)

    def __len__(self) -> int:
        return len(self._idx)

    @property
    def idx(self) -> np.ndarray:
        return self._idx.view()

    @property
    def raw(self) -> np.ndarray:
        return self._raw.view()

    def extend(self, idx: np.ndarray, raw: np.ndarray) -> None:
        self._idx.extend(idx)
        self._raw.extend(raw)

    def last(self) -> int:
        return int(self._raw.last(0))

    def value_after(self, index: int) -> int:
        """The value after every change logged at or before event `index`."""
        j = int(find(self.idx, index, side="right")) - 1
        return int(self.raw[j]) if j >= 0 else 0


@dataclass
class _Carry:
    """What one vCPU's lanes carry from one chunk into the next."""

    arm_idx: int = -1  # an armed timer not ended yet
    arm_t: int = 0
    arm_raw: int = 0
    hlt_idx: int = -1  # a halt not woken yet
    hlt_t: int = 0
    last_irq: int = -1  # the latest timer interrupt (hazards flag it)
    registered: bool = False  # the PV page is registered
    saved: tuple[int, int] | None = None  # (pending, armed) at the last VMM save


class VcpuLanes:
    """Everything drawn for one vCPU, grown chunk by chunk."""

    def __init__(self, vcpu: int, data: TimelineData, khz: int | None, label: str | None = None) -> None:
        self.vcpu = vcpu
        self.label = label if label is not None else f"vCPU {vcpu}"
        self.khz = khz
        self._data = data
        for name in (*_SIMPLE_MARKS, *_MASK_MARKS):
            setattr(self, name, Marks(data))
        self.exits: dict[str, Marks] = {}
        self.hazards: dict[str, Marks] = {}
        self.timer_spans = Spans(data)
        self.hlt = Spans(data)
        self.pending = Steps()
        self.armed = Steps()
        self.requested = Steps()
        self.timer = Steps()  # the host's armed LAPIC timer deadline (TIMER_ARM .. FIRE/CANCEL)
        self.n_events = 0
        self._carry = _Carry()

    @property
    def has_page(self) -> bool:
        return len(self.pending) > 0 or len(self.armed) > 0

    def deadline_series(self) -> list[tuple[str, Steps]]:
        """The deadlines drawn, in painting order (`armed` last: on top).

        With a shared page: the guest's `pending` and the host-published `armed`.
        Without one (classic runs): the guest's requested deadline and the host's
        armed timer -- the same two roles, drawn in the same colours.
        """
        if self.has_page:
            return [("pending", self.pending), ("armed", self.armed)]
        return [("requested", self.requested), ("armed", self.timer)]

    def marks(self) -> dict[str, Marks]:
        return {name: getattr(self, name) for name in (*_SIMPLE_MARKS, *_MASK_MARKS)}

    # ---- building ----------------------------------------------------------------------
    def extend(self, k: np.ndarray, a: np.ndarray, b: np.ndarray, ex: np.ndarray, t: np.ndarray, gidx: np.ndarray, halts_end_at_wake: bool) -> None:
        """Append one chunk of this vCPU's rows (log order; `gidx` their event indices)."""
        c = self._carry
        self.n_events += len(k)
        for name, code in _SIMPLE_MARKS.items():
            sel = gidx[k == code]
            if len(sel):
                getattr(self, name).extend(sel)
        kick = k == Kind.LAZY_KICK
        self.kicks_rearm.extend(gidx[kick & (b == 1)])
        self.kicks_disarm.extend(gidx[kick & (b != 1)])
        self.irqs_dropped.extend(gidx[(k == Kind.IRQ_INJECT) & (b != 0)])
        # A hazard is logged right after the interrupt it judges, in the same action
        # (its parent is the action's root, not always the interrupt): it flags the
        # vCPU's latest interrupt before it.
        irq_pos = np.flatnonzero(k == Kind.GUEST_TIMER_IRQ)
        for code, marks in ((Kind.HAZ_SPURIOUS, self.irqs_spurious), (Kind.HAZ_LATE, self.irqs_late)):
            haz = np.flatnonzero(k == code)
            if not len(haz):
                continue
            j = np.searchsorted(irq_pos, haz) - 1
            flagged = np.where(j >= 0, gidx[irq_pos[np.maximum(j, 0)]] if len(irq_pos) else -1, c.last_irq)
            flagged = np.unique(flagged[flagged >= 0])
            if len(marks):
                flagged = flagged[flagged > marks.idx[-1]]
            marks.extend(flagged)
        if len(irq_pos):
            c.last_irq = int(gidx[irq_pos[-1]])
        exiting = ex >= 0
        if exiting.any():
            for code in np.unique(ex[exiting]).tolist():
                name = EXIT_BY_CODE.get(code, "other")
                self.exits.setdefault(name, Marks(self._data)).extend(gidx[ex == code])
        for code in HAZARD_CODES:
            sel = gidx[k == code]
            if len(sel):
                self.hazards.setdefault(KIND_NAMES[code], Marks(self._data)).extend(sel)
        self._timer(k, a, t, gidx)
        self._halts(k, a, t, gidx, halts_end_at_wake)
        req = np.flatnonzero(k == Kind.DEADLINE_REQUEST)
        self.requested.extend(gidx[req], a[req])
        if np.any(k == Kind.MIGRATE):
            self._page_loop(k, a, b, gidx)
        else:
            self._page_vectorized(k, a, b, gidx)

    def _timer(self, k, a, t, gidx) -> None:
        """Arm->end spans of the LAPIC timer (one per vCPU, so spans never overlap).

        Each TIMER_ARM ends at the next TIMER_FIRE (fired), TIMER_CANCEL or TIMER_ARM
        (cancelled/replaced) of the vCPU, or is still open at the end of the data.
        """
        c = self._carry
        sel = np.flatnonzero((k == Kind.TIMER_ARM) | (k == Kind.TIMER_FIRE) | (k == Kind.TIMER_CANCEL))
        if not len(sel):
            return
        kk = k[sel]
        ids = gidx[sel].astype(np.int64)
        ts = t[sel].astype(np.int64)
        if c.arm_idx >= 0:  # the open arm of the previous chunk comes first
            kk = np.concatenate([[Kind.TIMER_ARM], kk])
            ids = np.concatenate([[c.arm_idx], ids])
            ts = np.concatenate([[c.arm_t], ts])
        arm_pos = np.flatnonzero(kk == Kind.TIMER_ARM)
        closed = arm_pos[arm_pos + 1 < len(kk)]
        end = closed + 1
        flag = np.where(kk[end] == Kind.TIMER_FIRE, SPAN_FIRED, SPAN_CANCELLED).astype(np.int8)
        self.timer_spans.add(ids[closed], ids[end], flag, ts[closed], ts[end])
        last_arm = arm_pos[-1] if len(arm_pos) else -1
        if last_arm >= 0 and last_arm == len(kk) - 1:
            c.arm_idx, c.arm_t = int(ids[last_arm]), int(ts[last_arm])
        else:
            c.arm_idx = -1
        self.timer_spans.open_start, self.timer_spans.open_t = c.arm_idx, c.arm_t
        # the host timer's deadline as a step: TIMER_ARM a, then 0 at FIRE/CANCEL
        raw = np.where(k[sel] == Kind.TIMER_ARM, a[sel], 0)
        self.timer.extend(gidx[sel], raw)

    def _halts(self, k, a, t, gidx, halts_end_at_wake: bool) -> None:
        """HLT periods: from a blocking HLT to the next WAKE of the vCPU.

        Logs without WAKE rows (imported traces: a halt exit, then the next
        kvm_entry is not logged) end each halt at the vCPU's next event.
        """
        c = self._carry
        if halts_end_at_wake:
            sel = np.flatnonzero(((k == Kind.HLT) & (a != 0)) | (k == Kind.WAKE))
            is_start = k[sel] == Kind.HLT
        else:
            sel = np.arange(len(k))
            is_start = k == Kind.HLT
        if not len(sel):
            return
        ids = gidx[sel].astype(np.int64)
        ts = t[sel].astype(np.int64)
        starts = is_start
        if c.hlt_idx >= 0:
            ids = np.concatenate([[c.hlt_idx], ids])
            ts = np.concatenate([[c.hlt_t], ts])
            starts = np.concatenate([[True], starts])
        pos = np.flatnonzero(starts)
        if halts_end_at_wake:
            # a start ends at the next WAKE (not at a second HLT)
            ends_at = np.flatnonzero(~starts)
            j = np.searchsorted(ends_at, pos)
            ok = j < len(ends_at)
            end = np.where(ok, ends_at[np.minimum(j, max(len(ends_at) - 1, 0))] if len(ends_at) else 0, -1)
            # two HLTs before one WAKE: only the later one is a halt period
            keep = ok.copy()
            if len(pos) > 1:
                keep[:-1] &= end[:-1] != end[1:]
            self.hlt.add(ids[pos[keep]], ids[end[keep]], np.full(int(keep.sum()), SPAN_FIRED, np.int8), ts[pos[keep]], ts[end[keep]])
            open_pos = pos[~ok]
        else:
            ok = pos + 1 < len(ids)
            self.hlt.add(ids[pos[ok]], ids[pos[ok] + 1], np.full(int(ok.sum()), SPAN_FIRED, np.int8), ts[pos[ok]], ts[pos[ok] + 1])
            open_pos = pos[~ok]
        if len(open_pos):
            c.hlt_idx, c.hlt_t = int(ids[open_pos[-1]]), int(ts[open_pos[-1]])
        else:
            c.hlt_idx = -1
        self.hlt.open_start, self.hlt.open_t = c.hlt_idx, c.hlt_t

    def _page_vectorized(self, k, a, b, gidx) -> None:
        """`pending` and `armed` of the vCPU's shared page (chunks without MIGRATE).

        What each event says about the page (KIND_FIELDS):
          - WRMSR_PV with bit 0 set: kvm_guest_cpu_init zeroed the page first -> both 0;
            registered afterwards iff the write was accepted (b == 1); WRMSR_PV 0 unregisters;
          - DEADLINE_REQUEST while registered: `pending = a` (the lazy driver's store);
          - LAZY_UPDATE: `armed = a`; LAZY_KICK with b == 0 and LAZY_CLEAR: `armed = 0`;
          - NOTE a == NOTE_SAVE, b == 0: a VMM save (MIGRATE restores the page as of it).
        """
        c = self._carry
        n = len(k)
        is_pv = k == Kind.WRMSR_PV
        enable = is_pv & ((a & 1) == 1)
        pos = np.arange(n)
        last_pv = np.maximum.accumulate(np.where(is_pv, pos, -1)) if n else pos
        reg_after = enable & (b == 1)
        registered = np.where(last_pv >= 0, reg_after[np.maximum(last_pv, 0)], c.registered)
        if is_pv.any():
            c.registered = bool(reg_after[np.flatnonzero(is_pv)[-1]])
        p_pos = np.flatnonzero(((k == Kind.DEADLINE_REQUEST) & registered) | enable)
        p_val = np.where(enable[p_pos], 0, a[p_pos])
        a_zero = enable | (k == Kind.LAZY_CLEAR) | ((k == Kind.LAZY_KICK) & (b == 0))
        a_pos = np.flatnonzero(a_zero | (k == Kind.LAZY_UPDATE))
        a_val = np.where(k[a_pos] == Kind.LAZY_UPDATE, a[a_pos], 0)
        saves = np.flatnonzero((k == Kind.NOTE) & (a == NOTE_SAVE) & (b == 0))
        if len(saves):
            s = saves[-1]
            jp = np.searchsorted(p_pos, s, side="right") - 1
            ja = np.searchsorted(a_pos, s, side="right") - 1
            c.saved = (
                int(p_val[jp]) if jp >= 0 else self.pending.last(),
                int(a_val[ja]) if ja >= 0 else self.armed.last(),
            )
        self.pending.extend(gidx[p_pos], p_val)
        self.armed.extend(gidx[a_pos], a_val)

    def _page_loop(self, k, a, b, gidx) -> None:
        """The same rules one event at a time (chunks with a MIGRATE: rare, small)."""
        c = self._carry
        pending, armed = self.pending.last(), self.armed.last()
        p_out: list[tuple[int, int]] = []
        a_out: list[tuple[int, int]] = []
        for i in range(len(k)):
            kind, ai, bi, g = int(k[i]), int(a[i]), int(b[i]), int(gidx[i])
            if kind == Kind.WRMSR_PV:
                if ai & 1:
                    pending = armed = 0
                    p_out.append((g, 0))
                    a_out.append((g, 0))
                c.registered = bool(ai & 1) and bi == 1
            elif kind == Kind.DEADLINE_REQUEST and c.registered:
                pending = ai
                p_out.append((g, ai))
            elif kind == Kind.LAZY_UPDATE:
                armed = ai
                a_out.append((g, ai))
            elif kind == Kind.LAZY_CLEAR or (kind == Kind.LAZY_KICK and bi == 0):
                armed = 0
                a_out.append((g, 0))
            elif kind == Kind.NOTE and ai == NOTE_SAVE and bi == 0:
                c.saved = (pending, armed)
            elif kind == Kind.MIGRATE and c.saved is not None:
                pending, armed = c.saved
                p_out.append((g, pending))
                a_out.append((g, armed))
        for steps, out in ((self.pending, p_out), (self.armed, a_out)):
            if out:
                arr = np.array(out, dtype=np.int64)
                steps.extend(arr[:, 0], arr[:, 1])


class TimelineData:
    """The lanes of every vCPU of one run, over the run's `ColumnLog`.

    `extend(cols)` appends the next chunk of the log (the caller has appended it
    to the log first); `finish()` marks the data complete.
    """

    def __init__(
        self,
        log,
        tsc_khz: list[int] | dict[int, int] | None = None,
        vcpus: list[int] | None = None,
        labels: dict[int, str] | None = None,
        kind: str = "scenario",
        expected_end_ns: int | None = None,
    ) -> None:
        self.log = log
        self.kind = kind
        self.has_deadlines = bool(tsc_khz)
        if isinstance(tsc_khz, dict):
            self._khz = dict(tsc_khz)
        else:
            self._khz = dict(enumerate(tsc_khz or []))
        self._labels = dict(labels or {})
        self._lanes: dict[int, VcpuLanes] = {}
        self.exit_codes: set[int] = set()
        self.hazard_codes: set[int] = set()
        self.halts_end_at_wake = kind != "trace"
        self.n_events = 0
        self.t_start_ns = 0  # the first event's time
        self.t_end_ns = 0
        self.expected_end_ns = expected_end_ns
        self.complete = False
        self.sorted = True
        self._search: GrowArray | None = None  # running maximum of time, only for unsorted logs
        self.version = 0
        for v in vcpus or []:
            self._lane(v)

    # ---- queries -----------------------------------------------------------------------
    @property
    def vcpus(self) -> list[VcpuLanes]:
        return [self._lanes[v] for v in sorted(self._lanes)]

    def lanes_of(self, vcpu: int) -> VcpuLanes | None:
        return self._lanes.get(vcpu)

    @property
    def time_ns(self) -> np.ndarray:
        """Event times (ns) of the log: exact, for drawing marks."""
        return self.log.column("time")[: self.n_events]

    @property
    def search_ns(self) -> np.ndarray:
        """Non-decreasing times to search in (the times themselves when the log is sorted)."""
        if self._search is None:
            return self.time_ns
        return self._search.view()

    @property
    def t_end(self) -> float:
        return self.t_end_ns * 1e-9

    @property
    def span_end_ns(self) -> int:
        """Where the time axis ends: the data's end, or the run's expected end while it streams."""
        if self.complete or not self.expected_end_ns:
            return self.t_end_ns
        return max(self.t_end_ns, int(self.expected_end_ns))

    @property
    def exit_reasons(self) -> list[str]:
        return [EXIT_BY_CODE.get(c, "other") for c in sorted(self.exit_codes)]

    @property
    def hazard_names(self) -> list[str]:
        return [KIND_NAMES[c] for c in HAZARD_CODES if c in self.hazard_codes]

    def khz(self, vcpu: int) -> int | None:
        return self._khz.get(vcpu)

    def nearest_event(self, x: float) -> int:
        """Index of the event whose time is nearest to `x` seconds (the earlier one on ties)."""
        n = self.n_events
        if n == 0:
            return -1
        s = self.search_ns
        xn = x * 1e9
        i = int(find(s, np.ceil(xn)))
        if i >= n:
            return n - 1
        if i > 0 and abs(s[i - 1] - xn) <= abs(s[i] - xn):
            return i - 1
        return i

    def events_before(self, t_ns: np.ndarray) -> np.ndarray:
        """For each time, how many events happened strictly before it."""
        # times are integer ns: time < t  <=>  time < ceil(t)
        return find(self.search_ns, np.ceil(np.asarray(t_ns, dtype=np.float64)), side="left")

    def events_upto(self, t_ns: np.ndarray) -> np.ndarray:
        """For each time, how many events happened at or before it."""
        # time <= t  <=>  time <= floor(t)
        return find(self.search_ns, np.floor(np.asarray(t_ns, dtype=np.float64)), side="right")

    # ---- building ----------------------------------------------------------------------
    def _lane(self, v: int) -> VcpuLanes:
        lane = self._lanes.get(v)
        if lane is None:
            lane = VcpuLanes(v, self, self._khz.get(v), self._labels.get(v))
            self._lanes[v] = lane
        return lane

    def extend(self, cols: dict[str, np.ndarray]) -> None:
        """Append the next chunk of log rows (in log order)."""
        time = np.asarray(cols["time"], dtype=np.int64)
        m = len(time)
        if not m:
            return
        offset = self.n_events
        prev_end = self.t_end_ns
        if offset == 0:
            self.t_start_ns = int(time.min())
        if self.sorted and (time[0] < prev_end or (m > 1 and np.any(time[1:] < time[:-1]))):
            self.sorted = False
            self._search = GrowArray(np.int64)
            self._search.extend(np.maximum.accumulate(self.log.column("time")[:offset]) if offset else EMPTY_I)
        if self._search is not None:
            self._search.extend(np.maximum.accumulate(np.maximum(time, prev_end)))
        vcpu = np.asarray(cols["vcpu"])
        kind = np.asarray(cols["kind"])
        ex = np.asarray(cols["exit"])
        a = np.asarray(cols["a"], dtype=np.int64)
        b = np.asarray(cols["b"], dtype=np.int64)
        self.exit_codes.update(int(c) for c in np.unique(ex[ex >= 0]))
        haz = np.isin(kind, HAZARD_CODES)
        if haz.any():
            self.hazard_codes.update(int(c) for c in np.unique(kind[haz]))
        order = np.argsort(vcpu, kind="stable")
        vs = vcpu[order]
        bounds = np.flatnonzero(np.diff(vs)) + 1
        for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [m]]), strict=True):
            v = int(vs[lo])
            if v < 0:
                continue
            rows = order[lo:hi]
            self._lane(v).extend(kind[rows], a[rows], b[rows], ex[rows], time[rows], (rows + offset).astype(np.int32), self.halts_end_at_wake)
        self.n_events = offset + m
        self.t_end_ns = max(prev_end, int(time.max()))
        self.version += 1

    def finish(self) -> None:
        """The data is complete: drop the spare capacity of every lane's arrays.

        With a shared page the drawn deadlines are `pending` and `armed`: the
        requested and host-timer steps (drawn without one) are dropped.
        """
        for lane in self._lanes.values():
            if lane.has_page:
                lane.requested, lane.timer = Steps(), Steps()
            marks = list(lane.marks().values()) + list(lane.exits.values()) + list(lane.hazards.values())
            for m in marks:
                m._idx.shrink()
            for sp in (lane.timer_spans, lane.hlt):
                for arr in (sp._start, sp._end, sp._flag, sp._cum):
                    arr.shrink()
            for st in (lane.pending, lane.armed, lane.requested, lane.timer):
                st._idx.shrink()
                st._raw.shrink()
        if self._search is not None:
            self._search.shrink()
        self.complete = True
        self.version += 1

    def nbytes(self) -> int:
        """Bytes held by the lanes (not the log)."""
        total = 0
        for lane in self._lanes.values():
            marks = list(lane.marks().values()) + list(lane.exits.values()) + list(lane.hazards.values())
            total += sum(m._idx.nbytes for m in marks)
            for s in (lane.timer_spans, lane.hlt):
                total += s._start.nbytes + s._end.nbytes + s._flag.nbytes + s._cum.nbytes
            for st in (lane.pending, lane.armed, lane.requested, lane.timer):
                total += st._idx.nbytes + st._raw.nbytes
        return total


def build_timeline_data(log, tsc_khz=None, **kwargs) -> TimelineData:
    """Lanes of a finished log in one go (tests, what-if replays)."""
    data = TimelineData(log, tsc_khz, **kwargs)
    data.extend(log.columns())
    data.finish()
    return data


# ---- level of detail -------------------------------------------------------------------------
def choose_mode(count: int, npix: int) -> str:
    """`exact` (one glyph per mark) while marks are sparse enough to tell apart, else `binned`."""
    return "exact" if count <= max(EXACT_MIN, npix // 10) else "binned"


def index_range(idx: np.ndarray, e0: int, e1: int) -> tuple[int, int]:
    """[i0, i1) of a sorted index array's entries in the event range [e0, e1)."""
    return int(find(idx, e0, side="left")), int(find(idx, e1, side="left"))


def column_counts(idx: np.ndarray, edges_events: np.ndarray) -> np.ndarray:
    """Marks per pixel column: `edges_events[j]` is the first event of column j (len npix + 1)."""
    c = find(idx, edges_events, side="left")
    return np.diff(c)


def coverage(spans: Spans, time_ns: np.ndarray, end_ns: int, edges_ns: np.ndarray, edges_events: np.ndarray) -> np.ndarray:
    """Fraction of each pixel column [edges_ns[j], edges_ns[j+1]) covered by the spans."""
    start, end, cum = spans.start, spans.end, spans.cum
    covered = np.zeros(len(edges_ns), dtype=np.float64)
    if len(start):
        # the last span starting before each edge (its start event comes before the edge's)
        j = find(start, edges_events, side="left") - 1
        ok = j >= 0
        jj = np.maximum(j, 0)
        t0 = time_ns[start[jj]]
        t1 = time_ns[end[jj]]
        part = np.clip(edges_ns - t0, 0, np.maximum(t1 - t0, 0))
        covered = np.where(ok, cum[jj] + part, 0.0).astype(np.float64)
    if spans.open_start >= 0:
        covered = covered + np.clip(edges_ns - spans.open_t, 0, max(0, end_ns - spans.open_t))
    width = np.diff(edges_ns).astype(np.float64)
    return np.clip(np.diff(covered) / np.maximum(width, 1e-9), 0.0, 1.0)


def step_values(steps: Steps, events_upto: np.ndarray) -> np.ndarray:
    """The step's raw value after the first `events_upto[i]` events, for each i."""
    if not len(steps):
        return np.zeros(len(events_upto), dtype=np.int64)
    j = find(steps.idx, events_upto, side="left") - 1
    return np.where(j >= 0, steps.raw[np.maximum(j, 0)], 0)


def merge_pixel_spans(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge integer pixel intervals (sorted by start) that touch or overlap."""
    if not len(p0):
        return p0, p1
    reach = np.maximum.accumulate(p1)
    breaks = np.flatnonzero(p0[1:] > reach[:-1] + 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(p0) - 1]])
    return p0[starts], reach[ends]


# ---- time to deadline: a symmetric log scale ----------------------------------------------------
def symlog(d_ns):
    """y of a time to deadline (ns): sign(d) * log10(1 + |d| / 1 ns).

    One decade per power of ten from 1 ns to seconds, 0 at `deadline == now`,
    negative (overdue) below: the axis reads the same at every zoom and never
    grows with the run.
    """
    d = np.asarray(d_ns, dtype=np.float64)
    return np.copysign(np.log10(1.0 + np.abs(d)), d)


def symlog_inv(y):
    y = np.asarray(y, dtype=np.float64)
    return np.sign(y) * (10.0 ** np.abs(y) - 1.0)


def tsc_to_ns(raw: np.ndarray, khz: int | None) -> np.ndarray:
    """TSC values as ns (tsc / khz * 10^6); NaN where the value is 0 (no deadline)."""
    if not khz:
        return np.full(len(raw), np.nan)
    out = np.asarray(raw, dtype=np.float64) * (1e6 / float(khz))
    out[np.asarray(raw) == 0] = np.nan
    return out
