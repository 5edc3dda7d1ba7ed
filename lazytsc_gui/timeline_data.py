"""What the timeline draws, derived from the event log columns with numpy.

Presentation data only: every value here is read off events the engine logged
(taxonomy.KIND_FIELDS says what columns a/b mean), never re-computed from
protocol rules. Pure functions, no Qt, unit-tested in tests/gui/test_timeline_data.py.

Times are float64 seconds (the plot's x unit); TSC values become seconds with
the vCPU's `tsc_khz` (tsc / (khz * 1000)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from lazytsc.taxonomy import EXIT_NAMES, HAZARD_KINDS, KIND_NAMES, Kind

NOTE_SAVE = 3  # lazytsc.script.NOTE_SAVE: a VMM save (b == 0) whose page copy MIGRATE restores

EMPTY_F = np.zeros(0, dtype=np.float64)
EMPTY_I = np.zeros(0, dtype=np.int64)

# Zoom thresholds: draw every mark while at most this many are visible per pixel
# column budget; otherwise bin per pixel column.
EXACT_MIN = 64


@dataclass
class Marks:
    """Point events: time (s, sorted) and their event indices; `target` is optional per mark."""

    t: np.ndarray = field(default_factory=lambda: EMPTY_F)
    idx: np.ndarray = field(default_factory=lambda: EMPTY_I)
    target: np.ndarray | None = None  # e.g. the requested deadline (s), NaN when unknown

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Spans:
    """Intervals [t0, t1] (s), sorted by t0 and non-overlapping per vCPU; `flag` per span."""

    t0: np.ndarray = field(default_factory=lambda: EMPTY_F)
    t1: np.ndarray = field(default_factory=lambda: EMPTY_F)
    idx: np.ndarray = field(default_factory=lambda: EMPTY_I)
    flag: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    def __len__(self) -> int:
        return len(self.t0)


SPAN_FIRED = 0
SPAN_CANCELLED = 1
SPAN_OPEN = 2


@dataclass
class Steps:
    """A step function: value `raw[i]` holds from `t[i]` until `t[i+1]` (first point at t=0)."""

    t: np.ndarray = field(default_factory=lambda: EMPTY_F)
    raw: np.ndarray = field(default_factory=lambda: EMPTY_I)
    y: np.ndarray = field(default_factory=lambda: EMPTY_F)  # raw as seconds, NaN where raw == 0
    idx: np.ndarray = field(default_factory=lambda: EMPTY_I)

    def __len__(self) -> int:
        return len(self.t)

    def value_at(self, time_s: float) -> int:
        """The step's raw value in force at `time_s` (after every change at that time)."""
        if not len(self.t):
            return 0
        i = int(np.searchsorted(self.t, time_s, side="right")) - 1
        return int(self.raw[i]) if i >= 0 else 0


@dataclass
class VcpuLanes:
    vcpu: int
    written: Marks
    skipped: Marks
    arms: Marks
    fires: Marks
    timer_spans: Spans
    updates: Marks
    kicks_rearm: Marks
    kicks_disarm: Marks
    kick_requests: Marks
    clears: Marks
    irqs: Marks
    irqs_spurious: Marks
    irqs_late: Marks
    irqs_dropped: Marks
    ipis: Marks
    hlt: Spans
    exits: dict[str, Marks]
    hazards: dict[str, Marks]
    pending: Steps
    armed: Steps
    requested: Steps
    has_page: bool


@dataclass
class TimelineData:
    n_events: int
    t_end: float
    time_s: np.ndarray  # every event's time (s)
    vcpus: list[VcpuLanes]
    has_deadlines: bool  # TSC -> time conversion known (simulated runs)
    exit_reasons: list[str]  # reasons present anywhere (lane bands)
    hazard_names: list[str]

    def nearest_event(self, x: float) -> int:
        """Index of the event whose time is nearest to `x` (last of equal times before x)."""
        n = len(self.time_s)
        if n == 0:
            return -1
        i = int(np.searchsorted(self.time_s, x))
        if i >= n:
            return n - 1
        if i > 0 and abs(self.time_s[i - 1] - x) <= abs(self.time_s[i] - x):
            return i - 1
        return i


# ---- building --------------------------------------------------------------------------------
def _sorted_marks(t: np.ndarray, idx: np.ndarray, target: np.ndarray | None = None) -> Marks:
    if len(t) > 1 and np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        t, idx = t[order], idx[order]
        if target is not None:
            target = target[order]
    return Marks(np.ascontiguousarray(t, dtype=np.float64), np.ascontiguousarray(idx, dtype=np.int64), target)


def tsc_to_seconds(tsc: np.ndarray, khz: int | None) -> np.ndarray:
    if not khz:
        return np.full(len(tsc), np.nan)
    return tsc.astype(np.float64) / (float(khz) * 1000.0)


def timer_spans(kind: np.ndarray, time_s: np.ndarray, idx: np.ndarray, t_end: float) -> Spans:
    """Arm->fire spans of one vCPU's LAPIC timer (one timer per vCPU, so spans never overlap).

    Each TIMER_ARM ends at the next TIMER_FIRE (fired), TIMER_CANCEL or TIMER_ARM
    (cancelled/replaced) of the same vCPU, or is still open at the end of the run.
    `kind`, `time_s`, `idx` are that vCPU's rows in log order.
    """
    sel = np.nonzero((kind == Kind.TIMER_ARM) | (kind == Kind.TIMER_FIRE) | (kind == Kind.TIMER_CANCEL))[0]
    k = kind[sel]
    arm_pos = np.nonzero(k == Kind.TIMER_ARM)[0]
    if not len(arm_pos):
        return Spans()
    nxt = arm_pos + 1
    has_end = nxt < len(sel)
    t0 = time_s[sel[arm_pos]]
    t1 = np.full(len(arm_pos), t_end)
    flag = np.full(len(arm_pos), SPAN_OPEN, dtype=np.int8)
    end_rows = sel[nxt[has_end]]
    t1[has_end] = time_s[end_rows]
    end_kind = kind[end_rows]
    flag[has_end] = np.where(end_kind == Kind.TIMER_FIRE, SPAN_FIRED, SPAN_CANCELLED)
    return Spans(t0, np.maximum(t1, t0), idx[sel[arm_pos]], flag)


def hlt_spans(kind: np.ndarray, a: np.ndarray, time_s: np.ndarray, idx: np.ndarray, t_end: float, has_wake: bool) -> Spans:
    """HLT periods of one vCPU: from a blocking HLT to the next WAKE.

    Logs without WAKE rows (imported traces: a halt exit, then the next kvm_entry is
    not logged) end each halt at the vCPU's next event.
    """
    if has_wake:
        hlt = np.nonzero((kind == Kind.HLT) & (a != 0))[0]
        wake = np.nonzero(kind == Kind.WAKE)[0]
        if not len(hlt):
            return Spans()
        j = np.searchsorted(wake, hlt)
        ok = j < len(wake)
        t1 = np.full(len(hlt), t_end)
        t1[ok] = time_s[wake[j[ok]]]
        flag = np.where(ok, SPAN_FIRED, SPAN_OPEN).astype(np.int8)
    else:
        hlt = np.nonzero(kind == Kind.HLT)[0]
        if not len(hlt):
            return Spans()
        nxt = hlt + 1
        ok = nxt < len(kind)
        t1 = np.full(len(hlt), t_end)
        t1[ok] = time_s[nxt[ok]]
        flag = np.where(ok, SPAN_FIRED, SPAN_OPEN).astype(np.int8)
    t0 = time_s[hlt]
    return Spans(t0, np.maximum(t1, t0), idx[hlt], flag)


def page_series(
    kind: np.ndarray, a: np.ndarray, b: np.ndarray, time_ns: np.ndarray, idx: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`pending` and `armed` of one vCPU's shared page as step series, from its log rows.

    Returns ((t_ns, value, event_idx) for pending, (t_ns, value, event_idx) for armed),
    each starting with (0, 0, -1). What each event says about the page (KIND_FIELDS):
      - WRMSR_PV with bit 0 set: kvm_guest_cpu_init zeroed the page first -> both 0;
        registered afterwards iff the write was accepted (b == 1); WRMSR_PV 0 unregisters;
      - DEADLINE_REQUEST while registered: `pending = a` (the lazy driver's store);
      - LAZY_UPDATE: `armed = a`; LAZY_KICK with b == 0 and LAZY_CLEAR: `armed = 0`;
      - MIGRATE: the page comes back as of the last VMM save (NOTE a == NOTE_SAVE, b == 0).
    """
    n = len(kind)
    pos = np.arange(n)
    is_pv = kind == Kind.WRMSR_PV
    enable = is_pv & ((a & 1) == 1)
    reg_after = enable & (b == 1)
    last_pv = np.maximum.accumulate(np.where(is_pv, pos, -1)) if n else pos
    registered = np.zeros(n, dtype=bool)
    has = last_pv >= 0
    registered[has] = reg_after[last_pv[has]]

    p_set = (kind == Kind.DEADLINE_REQUEST) & registered
    p_pos = np.nonzero(p_set | enable)[0]
    p_val = np.where(enable[p_pos], 0, a[p_pos])

    a_zero = enable | (kind == Kind.LAZY_CLEAR) | ((kind == Kind.LAZY_KICK) & (b == 0))
    a_pos = np.nonzero(a_zero | (kind == Kind.LAZY_UPDATE))[0]
    a_val = np.where(kind[a_pos] == Kind.LAZY_UPDATE, a[a_pos], 0)

    migrates = np.nonzero(kind == Kind.MIGRATE)[0]
    if len(migrates):
        saves = np.nonzero((kind == Kind.NOTE) & (a == NOTE_SAVE) & (b == 0))[0]
        p_list = list(zip(p_pos.tolist(), p_val.tolist(), strict=True))
        a_list = list(zip(a_pos.tolist(), a_val.tolist(), strict=True))
        for m in migrates.tolist():
            earlier = saves[saves < m]
            if not len(earlier):
                continue
            s = int(earlier[-1])
            for lst in (p_list, a_list):
                before = [v for p, v in lst if p <= s]
                value = before[-1] if before else 0
                lst.append((m, value))
                lst.sort(key=lambda pv: pv[0])
        p_pos = np.array([p for p, _ in p_list], dtype=np.int64)
        p_val = np.array([v for _, v in p_list], dtype=np.int64)
        a_pos = np.array([p for p, _ in a_list], dtype=np.int64)
        a_val = np.array([v for _, v in a_list], dtype=np.int64)

    def series(p: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = p.astype(np.int64)
        return (
            np.concatenate([[0], time_ns[p]]).astype(np.int64),
            np.concatenate([[0], v]).astype(np.int64),
            np.concatenate([[-1], idx[p]]).astype(np.int64),
        )

    return series(p_pos, p_val), series(a_pos, a_val)


def _steps(t_ns: np.ndarray, raw: np.ndarray, idx: np.ndarray, khz: int | None) -> Steps:
    y = tsc_to_seconds(raw, khz)
    y[raw == 0] = np.nan
    return Steps(t_ns.astype(np.float64) * 1e-9, raw, y, idx)


def _flag_interrupts(kind: np.ndarray, hazard: int) -> np.ndarray:
    """Mask of one vCPU's GUEST_TIMER_IRQ rows that a `hazard` (spurious, late) flags.

    The engine logs the hazard right after the interrupt it judges, in the same action
    (its `parent` is the action's root, which is the interrupt only when the interrupt
    started the action), so each hazard flags the vCPU's latest interrupt before it.
    """
    out = np.zeros(len(kind), dtype=bool)
    irq = np.nonzero(kind == Kind.GUEST_TIMER_IRQ)[0]
    haz = np.nonzero(kind == hazard)[0]
    if len(irq) and len(haz):
        j = np.searchsorted(irq, haz) - 1
        out[irq[j[j >= 0]]] = True
    return out


def build_timeline_data(cols: dict[str, np.ndarray], n_vcpus: int, tsc_khz: list[int] | None = None) -> TimelineData:
    """Every lane of every vCPU from the log columns (one pass of masks per vCPU)."""
    time_ns = np.asarray(cols["time"], dtype=np.int64)
    n = len(time_ns)
    time_s = time_ns.astype(np.float64) * 1e-9
    if n > 1 and np.any(time_s[1:] < time_s[:-1]):
        time_sorted = np.sort(time_s)
    else:
        time_sorted = time_s
    t_end = float(time_sorted[-1]) if n else 0.0
    vcpu_col = np.asarray(cols["vcpu"])
    kind_col = np.asarray(cols["kind"])
    exit_col = np.asarray(cols["exit"])
    a_col = np.asarray(cols["a"], dtype=np.int64)
    b_col = np.asarray(cols["b"], dtype=np.int64)
    has_wake = bool(np.any(kind_col == Kind.WAKE))


    present_exits = [EXIT_NAMES[c] for c in sorted(EXIT_NAMES) if c >= 0 and np.any(exit_col == c)]
    hazard_codes = sorted(HAZARD_KINDS) + [int(Kind.TIMER_COALESCED)]
    present_haz = [KIND_NAMES[k] for k in hazard_codes if np.any(kind_col == k)]

    lanes: list[VcpuLanes] = []
    for v in range(n_vcpus):
        rows = np.nonzero(vcpu_col == v)[0]
        k = kind_col[rows]
        t = time_s[rows]
        av = a_col[rows]
        bv = b_col[rows]
        khz = tsc_khz[v] if tsc_khz and v < len(tsc_khz) else None

        def marks(mask: np.ndarray, target: np.ndarray | None = None, _rows=rows, _t=t) -> Marks:
            sel = np.nonzero(mask)[0]
            return _sorted_marks(_t[sel], _rows[sel], None if target is None else target[sel])

        deadline_target = tsc_to_seconds(av, khz)
        irq_mask = k == Kind.GUEST_TIMER_IRQ
        is_spur = _flag_interrupts(k, Kind.HAZ_SPURIOUS)
        is_late = _flag_interrupts(k, Kind.HAZ_LATE)
        exits: dict[str, Marks] = {}
        ex = exit_col[rows]
        for name in present_exits:
            code = next(c for c, nm in EXIT_NAMES.items() if nm == name)
            exits[name] = marks(ex == code)
        hazards = {name: marks(k == next(c for c, nm in KIND_NAMES.items() if nm == name)) for name in present_haz}
        (p_t, p_v, p_i), (a_t, a_v, a_i) = page_series(k, av, bv, time_ns[rows], rows)
        req = np.nonzero(k == Kind.DEADLINE_REQUEST)[0]
        r_t = np.concatenate([[0], time_ns[rows[req]]]).astype(np.int64)
        r_v = np.concatenate([[0], av[req]]).astype(np.int64)
        r_i = np.concatenate([[-1], rows[req]]).astype(np.int64)
        lanes.append(
            VcpuLanes(
                vcpu=v,
                written=marks(k == Kind.WRMSR_TSC_DEADLINE, deadline_target),
                skipped=marks(k == Kind.DEADLINE_SKIP, deadline_target),
                arms=marks(k == Kind.TIMER_ARM, deadline_target),
                fires=marks(k == Kind.TIMER_FIRE),
                timer_spans=timer_spans(k, t, rows, t_end),
                updates=marks(k == Kind.LAZY_UPDATE),
                kicks_rearm=marks((k == Kind.LAZY_KICK) & (bv == 1)),
                kicks_disarm=marks((k == Kind.LAZY_KICK) & (bv != 1)),
                kick_requests=marks(k == Kind.KICK_REQUEST),
                clears=marks(k == Kind.LAZY_CLEAR),
                irqs=marks(irq_mask & ~is_spur & ~is_late),
                irqs_spurious=marks(irq_mask & is_spur),
                irqs_late=marks(irq_mask & is_late & ~is_spur),
                irqs_dropped=marks((k == Kind.IRQ_INJECT) & (bv != 0)),
                ipis=marks(k == Kind.GUEST_IPI),
                hlt=hlt_spans(k, av, t, rows, t_end, has_wake),
                exits=exits,
                hazards=hazards,
                pending=_steps(p_t, p_v, p_i, khz),
                armed=_steps(a_t, a_v, a_i, khz),
                requested=_steps(r_t, r_v, r_i, khz),
                has_page=len(p_t) > 1 or len(a_t) > 1,
            )
        )
    return TimelineData(
        n_events=n,
        t_end=t_end,
        time_s=time_sorted,
        vcpus=lanes,
        has_deadlines=bool(tsc_khz),
        exit_reasons=present_exits,
        hazard_names=present_haz,
    )


# ---- level of detail -------------------------------------------------------------------------
def visible_range(t: np.ndarray, x0: float, x1: float) -> tuple[int, int]:
    """[i0, i1) of the sorted times inside [x0, x1]."""
    return int(np.searchsorted(t, x0, side="left")), int(np.searchsorted(t, x1, side="right"))


def choose_mode(count: int, npix: int) -> str:
    """`exact` (one glyph per mark) while marks are sparse enough to tell apart, else `binned`."""
    return "exact" if count <= max(EXACT_MIN, npix // 10) else "binned"


def bin_columns(t: np.ndarray, x0: float, sx: float, npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel columns holding at least one mark and how many marks each holds.

    `t` is already clipped to the view; pixel = floor((t - x0) * sx).
    """
    if not len(t):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    px = ((t - x0) * sx).astype(np.int64)
    np.clip(px, 0, max(npix - 1, 0), out=px)
    # t is sorted, so equal pixels are adjacent: run-length encode instead of bincount.
    starts = np.flatnonzero(np.diff(px)) + 1
    starts = np.concatenate([[0], starts])
    counts = np.diff(np.concatenate([starts, [len(px)]]))
    return px[starts], counts


def visible_spans(t0: np.ndarray, t1: np.ndarray, x0: float, x1: float) -> tuple[int, int]:
    """[i0, i1) of sorted non-overlapping spans intersecting [x0, x1]."""
    return int(np.searchsorted(t1, x0, side="left")), int(np.searchsorted(t0, x1, side="right"))


def merge_pixel_spans(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge integer pixel intervals (sorted by start) that touch or overlap."""
    if not len(p0):
        return p0, p1
    reach = np.maximum.accumulate(p1)
    breaks = np.flatnonzero(p0[1:] > reach[:-1] + 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(p0) - 1]])
    return p0[starts], reach[ends]


def step_polyline(
    t: np.ndarray, y: np.ndarray, x0: float, x1: float, sx: float, max_points: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Points of a step plot inside [x0, x1] (value carried in from before x0).

    Returns (xs, ys, mode): `exact` is the true staircase; `binned` draws, per pixel
    column, a vertical stroke from the minimum to the maximum value there (NaN gaps
    survive: fmin/fmax ignore NaN unless the whole column is NaN).
    """
    n = len(t)
    if n == 0:
        return EMPTY_F, EMPTY_F, "exact"
    i0 = max(0, int(np.searchsorted(t, x0, side="right")) - 1)
    i1 = int(np.searchsorted(t, x1, side="right"))
    tv = t[i0:i1]
    yv = y[i0:i1]
    if len(tv) == 0:
        return EMPTY_F, EMPTY_F, "exact"
    if len(tv) * 2 <= max_points:
        xs = np.empty(2 * len(tv))
        ys = np.empty(2 * len(tv))
        xs[0::2] = np.maximum(tv, x0)
        xs[1::2] = np.concatenate([np.maximum(tv[1:], x0), [x1]])
        ys[0::2] = yv
        ys[1::2] = yv
        return xs, ys, "exact"
    px = ((np.maximum(tv, x0) - x0) * sx).astype(np.int64)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(px)) + 1])
    lo = np.fmin.reduceat(yv, starts)
    hi = np.fmax.reduceat(yv, starts)
    xcol = x0 + px[starts] / sx
    xs = np.repeat(xcol, 2)
    ys = np.empty(2 * len(starts))
    ys[0::2] = lo
    ys[1::2] = hi
    return xs, ys, "binned"
