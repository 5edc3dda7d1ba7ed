"""Fast drawing of event tracks for the timeline (pyqtgraph GraphicsObject + numpy).

A `TrackItem` paints all tracks of one plot in device pixels. For each paint it
takes the view's pixel columns, maps their edges to event indices once
(`Frame`, shared by every plot of the timeline), and then per track either

  * draws every mark (zoomed in, `exact`): cached glyph pixmaps, span rectangles,
    deadline polylines; or
  * shades per pixel column (zoomed out, `binned`): marks per column, the part of
    a column a span covers, where a deadline's value spends its time, all
    computed with `searchsorted` over the lane's event indices and composed into
    one ARGB image (numpy), drawn with a single `drawImage`.

A frame therefore costs O(pixels * log n) numpy work plus one image per plot,
however many events the run holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from .timeline_data import (
    SPAN_CANCELLED,
    Marks,
    Spans,
    Steps,
    TimelineData,
    choose_mode,
    column_counts,
    coverage,
    find,
    index_range,
    step_values,
    symlog,
    tsc_to_ns,
)

DENSITY_SAMPLES = 8  # samples of a deadline per pixel column (density mode)
LEVELS = (0.5, 0.67, 0.84, 1.0)  # opacity of a binned column by how many marks it holds


@dataclass
class Geom:
    """Data -> device mapping of one paint: px = ox + x * sx, py = oy + y * sy."""

    x0: float
    x1: float
    sx: float
    ox: float
    sy: float
    oy: float
    npix: int
    y0: float = 0.0
    y1: float = 1.0

    def px(self, x):
        return self.ox + np.asarray(x) * self.sx

    def py(self, y: float) -> float:
        return self.oy + y * self.sy

    @property
    def left(self) -> float:
        return self.ox + self.x0 * self.sx

    @property
    def top(self) -> float:
        return min(self.py(self.y0), self.py(self.y1))


class Frame:
    """Pixel-column edges of the current view as times and as event indices.

    Shared by every plot of a timeline (they are x-linked and equally wide) and
    recomputed only when the view, the width or the data changes.
    """

    def __init__(self, data: TimelineData) -> None:
        self.data = data
        self._key: tuple | None = None
        self.edges_ns = np.zeros(1)
        self.before = np.zeros(1, dtype=np.int64)
        self._visible = (0, 0)
        self._samples: tuple | None = None

    def update(self, x0: float, x1: float, npix: int) -> None:
        key = (x0, x1, npix, self.data.version)
        if key == self._key:
            return
        self._key = key
        self.edges_ns = np.linspace(x0 * 1e9, x1 * 1e9, npix + 1)
        # int32: lanes index their marks with int32, and a search casts its keys
        self.before = self.data.events_before(self.edges_ns).astype(np.int32)
        self._visible = (int(self.before[0]), int(self.data.events_upto(np.array([self.edges_ns[-1]]))[0]))
        self._samples = None

    def visible_events(self) -> tuple[int, int]:
        """[e0, e1): the events inside the view."""
        return self._visible

    def samples(self, k: int, end_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k sample times per pixel column (up to `end_ns`), their columns and the events up to each.

        Shared by every deadline of every plot in this frame.
        """
        key = (k, end_ns)
        if self._samples is None or self._samples[0] != key:
            edges = self.edges_ns
            frac = (np.arange(k) + 0.5) / k
            s = (edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * frac[None, :]).ravel()
            cols = np.repeat(np.arange(len(edges) - 1), k)
            keep = s <= end_ns
            s, cols = s[keep], cols[keep]
            self._samples = (key, s, cols, self.data.events_upto(s).astype(np.int32))
        return self._samples[1:]


def _path(xs: np.ndarray, ys: np.ndarray, connect) -> QtGui.QPainterPath:
    if not len(xs):
        return QtGui.QPainterPath()
    return pg.arrayToQPath(np.ascontiguousarray(xs, dtype=np.float64), np.ascontiguousarray(ys, dtype=np.float64), connect=connect)


def _glyph_path(glyph: str, px: np.ndarray, yc: float, h: float) -> tuple[QtGui.QPainterPath, bool]:
    """Path of one glyph per x (device px); returns (path, closed shape?)."""
    n = len(px)
    w = max(2.5, min(5.0, h * 0.45))
    if glyph == "bar":  # "|"
        xs = np.repeat(px, 2)
        ys = np.tile([yc - h / 2, yc + h / 2], n)
        return _path(xs, ys, "pairs"), False
    if glyph in ("v", "v_open"):  # downward triangle, tip at the bottom
        xs = np.stack([px - w, px + w, px, px - w], axis=1).ravel()
        ys = np.tile([yc - h / 2, yc - h / 2, yc + h / 2, yc - h / 2], n)
        conn = np.tile([1, 1, 1, 0], n).astype(np.int32)
        return _path(xs, ys, conn), glyph == "v"
    if glyph in ("up", "up_open"):
        xs = np.stack([px - w, px + w, px, px - w], axis=1).ravel()
        ys = np.tile([yc + h / 2, yc + h / 2, yc - h / 2, yc + h / 2], n)
        conn = np.tile([1, 1, 1, 0], n).astype(np.int32)
        return _path(xs, ys, conn), glyph == "up"
    if glyph in ("diamond", "diamond_open"):
        r = min(w, h / 2)
        xs = np.stack([px, px + r, px, px - r, px], axis=1).ravel()
        ys = np.tile([yc - r, yc, yc + r, yc, yc - r], n)
        conn = np.tile([1, 1, 1, 1, 0], n).astype(np.int32)
        return _path(xs, ys, conn), glyph == "diamond"
    if glyph == "x":
        r = min(w, h / 2) * 0.8
        xs = np.stack([px - r, px + r, px - r, px + r], axis=1).ravel()
        ys = np.tile([yc - r, yc + r, yc + r, yc - r], n)
        return _path(xs, ys, "pairs"), False
    # "dot": a small square
    r = min(w, h / 2) * 0.7
    xs = np.stack([px - r, px + r, px + r, px - r, px - r], axis=1).ravel()
    ys = np.tile([yc - r, yc - r, yc + r, yc + r, yc - r], n)
    conn = np.tile([1, 1, 1, 1, 0], n).astype(np.int32)
    return _path(xs, ys, conn), True


def is_vector(p: QtGui.QPainter) -> bool:
    engine = p.paintEngine()
    return engine is not None and engine.type() in (QtGui.QPaintEngine.Type.SVG, QtGui.QPaintEngine.Type.Pdf, QtGui.QPaintEngine.Type.Picture)


_PIXMAPS: dict[tuple, tuple[QtGui.QPixmap, float, float]] = {}


def _glyph_pixmap(glyph: str, color: QtGui.QColor, h: float, dpr: float) -> tuple[QtGui.QPixmap, float, float]:
    """A glyph rendered once (antialiased, at the device pixel ratio); returns (pixmap, anchor x, anchor y)."""
    key = (glyph, color.rgba(), round(h * 2) / 2, dpr)
    hit = _PIXMAPS.get(key)
    if hit is not None:
        return hit
    size = int(np.ceil(h + 6))
    pm = QtGui.QPixmap(int(size * dpr), int(size * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    c = size / 2
    path, closed = _glyph_path(glyph, np.array([c]), c, key[2])
    q = QtGui.QPainter(pm)
    q.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
    q.setPen(pg.mkPen(color, width=2.0 if glyph == "bar" else 1.3))
    if closed:
        q.fillPath(path, QtGui.QBrush(color))
    q.drawPath(path)
    q.end()
    if len(_PIXMAPS) > 512:
        _PIXMAPS.clear()
    _PIXMAPS[key] = (pm, c, c)
    return _PIXMAPS[key]


def argb(color: QtGui.QColor, alpha: float) -> int:
    """Premultiplied ARGB32 of a colour at an opacity (for numpy images)."""
    a = max(0.0, min(1.0, alpha)) * color.alphaF()
    return (int(a * 255) << 24) | (int(color.red() * a) << 16) | (int(color.green() * a) << 8) | int(color.blue() * a)


class Raster:
    """An ARGB32 (premultiplied) image of one plot's binned tracks, drawn with one call.

    The numpy array is a view of the QImage's own pixels: the image is never
    built from a Python buffer (PySide6 6.11's QImage(buffer, ...) releases a
    reference it never took, which corrupts the Python heap after a while).
    """

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = max(1, width), max(1, height)
        self.qimg = QtGui.QImage(self.w, self.h, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        self.qimg.fill(0)
        stride = self.qimg.bytesPerLine() // 4
        buf = np.frombuffer(self.qimg.bits(), dtype=np.uint32, count=stride * self.h)
        self.img = buf.reshape(self.h, stride)[:, : self.w]
        self.used = False

    def columns(self, y0: float, y1: float, cols: np.ndarray, values: np.ndarray) -> None:
        """Paint `values` (ARGB) into the pixel columns `cols` between rows y0..y1."""
        a, b = max(0, int(round(y0))), min(self.h, int(round(y1)))
        if b <= a or not len(cols):
            return
        self.img[a:b, cols] = values[None, :]
        self.used = True

    def put(self, flat: np.ndarray, values: np.ndarray) -> None:
        """Paint ARGB values at flat pixel indices (row-major, `w` per row), over what is there."""
        rows, cols = np.divmod(flat, self.w)
        self.img[rows, cols] = values
        self.used = True

    def block(self, img: np.ndarray, y0: int) -> None:
        """Composite a (rows, w) ARGB block over the image at row y0 (source-over)."""
        a, b = max(0, y0), min(self.h, y0 + img.shape[0])
        if b <= a:
            return
        src = img[a - y0 : b - y0]
        dst = self.img[a:b]
        sa = (src >> 24).astype(np.uint32)
        keep = 255 - sa
        out = np.zeros_like(dst)
        for shift in (0, 8, 16, 24):
            s = (src >> shift) & 0xFF
            d = (dst >> shift) & 0xFF
            out |= (np.minimum(255, s + (d * keep + 127) // 255)).astype(np.uint32) << shift
        self.img[a:b] = out
        self.used = True

    def draw(self, p: QtGui.QPainter, left: float, top: float) -> None:
        if not self.used:
            return
        p.drawImage(QtCore.QRectF(left, top, self.w, self.h), self.qimg)


_PALETTES: dict[int, np.ndarray] = {}


def palette(color: QtGui.QColor) -> np.ndarray:
    """ARGB of a colour at each of the LEVELS opacities (cached)."""
    key = color.rgba()
    hit = _PALETTES.get(key)
    if hit is None:
        if len(_PALETTES) > 256:
            _PALETTES.clear()
        hit = _PALETTES[key] = np.array([argb(color, a) for a in LEVELS], dtype=np.uint32)
    return hit


def levels_for(counts: np.ndarray) -> np.ndarray:
    """Opacity level (0..3) of each non-empty column: the log of its count against the busiest."""
    top = int(counts.max()) if len(counts) else 1
    if top <= 1:
        return np.zeros(len(counts), dtype=np.int64)
    # the counts where the log-scale level steps up: top ** (k / LEVELS)
    steps = np.power(float(top + 1), np.arange(1, len(LEVELS)) / len(LEVELS)) - 1.0
    return np.searchsorted(steps, counts, side="right")


class Track:
    """Something drawn in one lane row (or a value axis), with picking for clicks/tooltips."""

    name = ""
    label = ""
    row = ""
    last_mode = ""

    def visible_count(self, frame: Frame) -> int:
        return 0

    def draw(self, p: QtGui.QPainter, g: Geom, frame: Frame, mode: str, raster: Raster, colors) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def pick(self, data: TimelineData, x: float, tol: float) -> tuple[float, int] | None:
        """(distance in s, event index) of the mark nearest to x within tol, if any."""
        return None


class MarkTrack(Track):
    """Point events drawn as glyphs (exact) or shaded per pixel column by count (binned)."""

    def __init__(self, name: str, marks: Marks, y: float, height: float, glyph: str, role: str, label: str = "", row: str = "", binned_band: tuple[float, float] | None = None) -> None:
        self.name = name
        self.marks = marks
        # (y, height) of the track when shaded per column, if not its glyphs' (flags over a dense track
        # take a band of their own, so the track under them stays readable)
        self.binned_band = binned_band
        self.y = y
        self.height = height
        self.glyph = glyph
        self.role = role
        self.label = label or name
        self.row = row
        self.flag = role.startswith("haz:") or role == "dropped"
        self.max_px = 22.0 if glyph == "bar" else 14.0

    @property
    def idx(self) -> np.ndarray:
        return self.marks.idx

    @property
    def t(self) -> np.ndarray:
        return self.marks.t

    def visible_count(self, frame: Frame) -> int:
        e0, e1 = frame.visible_events()
        i0, i1 = index_range(self.marks.idx, e0, e1)
        return i1 - i0

    def draw(self, p, g, frame, mode, raster, colors) -> None:
        idx = self.marks.idx
        self.last_mode = mode
        if not len(idx):
            return
        yc = g.py(self.y)
        h = min(abs(self.height * g.sy), self.max_px)
        color = colors(self.role)
        if mode == "binned":
            counts = column_counts(idx, frame.before)
            cols = np.flatnonzero(counts)
            if not len(cols):
                return
            lv = levels_for(counts[cols])
            if self.flag:  # a rare, important mark shows strongly, even alone in its column
                lv = np.maximum(lv, len(LEVELS) - 2)
            if self.binned_band is not None:
                yc = g.py(self.binned_band[0])
                h = min(abs(self.binned_band[1] * g.sy), self.max_px)
            top = yc - h / 2 - g.top
            raster.columns(top, top + h, cols, palette(color)[lv])
            return
        e0, e1 = frame.visible_events()
        i0, i1 = index_range(idx, e0, e1)
        if i1 <= i0:
            return
        px = g.px(frame.data.time_ns[idx[i0:i1]] * 1e-9)
        if is_vector(p):
            path, closed = _glyph_path(self.glyph, px, yc, h)
            p.setPen(pg.mkPen(color, width=1))
            if closed:
                p.fillPath(path, QtGui.QBrush(color))
            p.drawPath(path)
            return
        # Raster: stamp a cached glyph pixmap per mark (far cheaper than filling a path
        # of hundreds of overlapping sub-polygons).
        pm, ax, ay = _glyph_pixmap(self.glyph, color, h, p.device().devicePixelRatioF())
        top = yc - ay
        point = QtCore.QPointF
        draw = p.drawPixmap
        for x in (px - ax).tolist():
            draw(point(x, top), pm)

    def pick(self, data, x, tol):
        idx = self.marks.idx
        if not len(idx):
            return None
        e0 = int(data.events_before(np.array([(x - tol) * 1e9]))[0])
        e1 = int(data.events_upto(np.array([(x + tol) * 1e9]))[0])
        i0, i1 = index_range(idx, e0, e1)
        if i1 <= i0:
            return None
        cand = idx[i0:i1]
        d = np.abs(data.time_ns[cand] * 1e-9 - x)
        j = int(np.argmin(d))
        return float(d[j]), int(cand[j])


class SpanTrack(Track):
    """Intervals (arm->fire, HLT periods) as bars; cancelled ones thin; shaded by coverage when dense."""

    def __init__(self, name: str, spans: Spans, y: float, height: float, role: str, cancelled_role: str = "", label: str = "", row: str = "") -> None:
        self.name = name
        self.spans = spans
        self.y = y
        self.height = height
        self.role = role
        self.cancelled_role = cancelled_role or role
        self.label = label or name
        self.row = row

    def _visible(self, frame: Frame) -> tuple[int, int]:
        """[j0, j1) of closed spans meeting the view: ending at or after it starts, starting before it ends."""
        e0, e1 = frame.visible_events()
        s = self.spans
        j0 = int(find(s.end, e0, side="left"))
        j1 = int(find(s.start, e1, side="left"))
        return j0, max(j0, j1)

    def visible_count(self, frame: Frame) -> int:
        j0, j1 = self._visible(frame)
        return j1 - j0

    def draw(self, p, g, frame, mode, raster, colors) -> None:
        s = self.spans
        self.last_mode = mode
        if not len(s):
            return
        data = frame.data
        yc = g.py(self.y)
        h = min(abs(self.height * g.sy), 14.0)
        col = QtGui.QColor(colors(self.role))
        if mode == "binned":
            cov = coverage(s, data.time_ns, data.t_end_ns, frame.edges_ns, frame.before)
            cols = np.flatnonzero(cov > 0)
            if len(cols):
                alpha = 0.25 + 0.5 * cov[cols]
                values = np.array([argb(col, a) for a in np.round(alpha, 2)], dtype=np.uint32) if len(cols) < 64 else _argb_ramp(col, alpha)
                top = yc - h / 2 - g.top
                raster.columns(top, top + h, cols, values)
            return
        j0, j1 = self._visible(frame)
        time = data.time_ns
        t0 = time[s.start[j0:j1]] * 1e-9
        t1 = time[s.end[j0:j1]] * 1e-9
        flag = s.flag[j0:j1]
        if s.open_start >= 0 and s.open_t * 1e-9 <= g.x1:
            t0 = np.concatenate([t0, [s.open_t * 1e-9]])
            t1 = np.concatenate([t1, [max(s.open_t, data.t_end_ns) * 1e-9]])
            flag = np.concatenate([flag, [2]])
        t0 = np.maximum(t0, g.x0)
        t1 = np.minimum(t1, g.x1)
        solid = flag != SPAN_CANCELLED
        fill = QtGui.QColor(col)
        fill.setAlpha(110)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p0 = np.floor(g.px(t0[solid]))
        p1 = np.maximum(np.ceil(g.px(t1[solid])), p0 + 1)
        for a, b in zip(p0.tolist(), p1.tolist(), strict=True):
            p.fillRect(QtCore.QRectF(a, yc - h / 2, b - a, h), fill)
        canc = ~solid
        if np.any(canc):
            c0 = g.px(t0[canc])
            c1 = g.px(t1[canc])
            xs = np.stack([c0, c1], axis=1).ravel()
            ys = np.full(len(xs), yc)
            p.setPen(pg.mkPen(QtGui.QColor(colors(self.cancelled_role)), width=1, style=QtCore.Qt.PenStyle.DashLine))
            p.drawPath(_path(xs, ys, "pairs"))

    def span_at(self, data: TimelineData, x: float) -> tuple[float, float, int, int] | None:
        """(t0 s, t1 s, start event, flag) of the span holding time x."""
        s = self.spans
        t0, t1 = s.times_ns()
        if not len(t0):
            return None
        xn = x * 1e9
        j = int(np.searchsorted(t0, xn, side="right")) - 1
        if 0 <= j < len(t0) and xn <= t1[j]:
            return t0[j] * 1e-9, t1[j] * 1e-9, int(s.idx[j]), int(s.flag[j])
        return None

    def pick(self, data, x, tol):
        hit = self.span_at(data, x)
        if hit is None:
            return None
        return 0.0, hit[2]


def _argb_ramp(color: QtGui.QColor, alpha: np.ndarray) -> np.ndarray:
    a = np.clip(alpha, 0, 1) * color.alphaF()
    r = (color.red() * a).astype(np.uint32)
    gg = (color.green() * a).astype(np.uint32)
    b = (color.blue() * a).astype(np.uint32)
    return ((a * 255).astype(np.uint32) << 24) | (r << 16) | (gg << 8) | b


class DeadlineTrack(Track):
    """One deadline (a TSC step series) as time to deadline, `deadline - now`, on a symlog axis.

    Zoomed in: the exact line (it falls with slope -1 between changes and jumps at
    each new deadline). Zoomed out: a density -- for each pixel column, how much
    of its time the value spends at each height, from samples -- so neither a
    dense series nor a rare excursion turns into a solid block.
    """

    def __init__(self, name: str, steps: Steps, khz: int | None, role: str, width: float, label: str, emphasis: float = 1.0) -> None:
        self.name = name
        self.steps = steps
        self.khz = khz
        self.role = role
        self.width = width
        self.label = label
        self.emphasis = emphasis

    def visible_count(self, frame: Frame) -> int:
        e0, e1 = frame.visible_events()
        i0, i1 = index_range(self.steps.idx, e0, e1)
        return i1 - i0

    def values_at(self, data: TimelineData, t_ns: np.ndarray) -> np.ndarray:
        """Time to deadline (ns, NaN: none) at each time (after every change at that time)."""
        raw = step_values(self.steps, data.events_upto(t_ns))
        return tsc_to_ns(raw, self.khz) - t_ns

    def draw(self, p, g, frame, mode, raster, colors) -> None:
        self.last_mode = mode
        if not len(self.steps) or not self.khz:
            return
        data = frame.data
        color = colors(self.role)
        end_ns = data.t_end_ns
        if mode == "binned":
            self._density(g, frame, raster, color, end_ns)
            return
        self._line(p, g, frame, color, end_ns)

    def _density(self, g: Geom, frame: Frame, raster: Raster, color: QtGui.QColor, end_ns: int) -> None:
        n = g.npix
        s, cols, upto = frame.samples(DENSITY_SAMPLES, end_ns)
        if not len(s):
            return
        k = DENSITY_SAMPLES
        seg = find(self.steps.idx, upto, side="left")  # which value holds at each sample
        raw = np.where(seg > 0, self.steps.raw[np.maximum(seg - 1, 0)], 0)
        y = symlog(tsc_to_ns(raw, self.khz) - s)
        ok = np.isfinite(y)
        h = raster.h
        ypx = np.zeros(len(y), dtype=np.int64)
        ypx[ok] = np.clip((g.oy + np.clip(y[ok], min(g.y0, g.y1), max(g.y0, g.y1)) * g.sy - g.top).astype(np.int64), 0, h - 1)
        # Each sample stands for 1/k of its column's time. Between two samples of one
        # column that see the same value, the time to it fell steadily: that time is
        # spread over the pixels in between (a falling line, not two dots). Laid out
        # (column, y) so the running sum over y is contiguous.
        pair = (cols[1:] == cols[:-1]) & (seg[1:] == seg[:-1]) & ok[1:] & ok[:-1]
        lo = np.minimum(ypx[:-1], ypx[1:])[pair]
        hi = np.maximum(ypx[:-1], ypx[1:])[pair]
        c = cols[1:][pair]
        length = hi - lo + 1
        total = int(length.sum())
        single = ok.copy()
        single[1:] &= ~pair
        single[:-1] &= ~pair
        keys = cols[single] * h + ypx[single]  # pixel (column-major) of each lone sample
        weights = np.full(len(keys), 1.0 / k)
        if total:
            start = np.repeat(c * h + lo - np.concatenate([[0], np.cumsum(length)[:-1]]), length)
            keys = np.concatenate([keys, start + np.arange(total)])
            weights = np.concatenate([weights, np.repeat(1.0 / (k * length), length)])
        if not len(keys):
            return
        if len(keys) * 4 < n * h:  # few pixels: sum per pixel sparsely
            pix, inv = np.unique(keys, return_inverse=True)
            dens = np.bincount(inv, weights=weights)
        else:
            full = np.bincount(keys, weights=weights, minlength=n * h)
            pix = np.flatnonzero(full > 1e-12)
            dens = full[pix]
        # opacity: at least `base` for any value seen, full when a pixel holds a good part of the column's time
        base = 0.55 * self.emphasis
        alpha = np.minimum(1.0, base + (1.0 - base) * dens * 6.0)
        col_of, y_of = np.divmod(pix, h)
        raster.img[y_of, col_of] = _argb_ramp(color, alpha)
        raster.used = True

    def _line(self, p: QtGui.QPainter, g: Geom, frame: Frame, color: QtGui.QColor, end_ns: int) -> None:
        data = frame.data
        e0, e1 = frame.visible_events()
        i0, i1 = index_range(self.steps.idx, e0, e1)
        x0n, x1n = frame.edges_ns[0], min(frame.edges_ns[-1], float(end_ns))
        if x1n <= x0n:
            return
        changes = data.time_ns[self.steps.idx[i0:i1]].astype(np.float64)
        cols = np.linspace(x0n, x1n, max(2, g.npix // 4 + 1))  # the curve between changes, every 4 px
        # before/after each change: a vertical jump at the change's time
        t_before = np.nextafter(changes, -np.inf)
        xs = np.concatenate([cols, t_before, changes])
        order = np.argsort(xs, kind="stable")
        xs = xs[order]
        raw = step_values(self.steps, data.events_upto(xs))
        # a change's "before" point takes the value before every event at that time
        is_before = np.zeros(len(order), dtype=bool)
        is_before[np.flatnonzero((order >= len(cols)) & (order < len(cols) + len(changes)))] = True
        if is_before.any():
            raw_b = step_values(self.steps, data.events_before(xs[is_before]))
            raw[is_before] = raw_b
        y = symlog(tsc_to_ns(raw, self.khz) - xs)
        y = np.clip(y, min(g.y0, g.y1), max(g.y0, g.y1))
        path = _path(g.ox + xs * 1e-9 * g.sx, g.oy + y * g.sy, "finite")
        pen = pg.mkPen(color, width=self.width)
        p.setPen(pen)
        p.drawPath(path)
        # the moments a deadline is set: a dot where the new value starts (stamped pixmaps)
        if len(changes) and len(changes) <= 400:
            after = symlog(self.values_at(data, changes))
            ok = np.isfinite(after)
            if ok.any():
                yy = g.oy + np.clip(after[ok], min(g.y0, g.y1), max(g.y0, g.y1)) * g.sy
                xs2 = g.ox + changes[ok] * 1e-9 * g.sx
                if is_vector(p):
                    p.setPen(QtCore.Qt.PenStyle.NoPen)
                    p.setBrush(QtGui.QBrush(color))
                    r = 2.2 if self.width >= 2 else 1.8
                    for xv, yv in zip(xs2.tolist(), yy.tolist(), strict=True):
                        p.drawEllipse(QtCore.QPointF(xv, yv), r, r)
                    p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
                    return
                pm, ax, ay = _glyph_pixmap("dot", color, 4.5 if self.width >= 2 else 3.5, p.device().devicePixelRatioF())
                point = QtCore.QPointF
                draw = p.drawPixmap
                for xv, yv in zip((xs2 - ax).tolist(), (yy - ay).tolist(), strict=True):
                    draw(point(xv, yv), pm)

    def pick(self, data, x, tol):
        idx = self.steps.idx
        if not len(idx):
            return None
        e0 = int(data.events_before(np.array([(x - tol) * 1e9]))[0])
        e1 = int(data.events_upto(np.array([(x + tol) * 1e9]))[0])
        i0, i1 = index_range(idx, e0, e1)
        if i1 <= i0:
            return None
        cand = idx[i0:i1]
        d = np.abs(data.time_ns[cand] * 1e-9 - x)
        j = int(np.argmin(d))
        return float(d[j]), int(cand[j])


_REPORTED: set[str] = set()
PAINT_ERRORS: list[str] = []  # every painting error so far (tests check it stays empty)


def report_paint_error(item) -> None:
    """Print a painting error once per item type (to stderr) instead of raising into Qt."""
    import sys
    import traceback

    text = traceback.format_exc()
    PAINT_ERRORS.append(text)
    key = type(item).__name__ + text.splitlines()[-1]
    if key not in _REPORTED:
        _REPORTED.add(key)
        print(f"lazytsc-gui: error while painting {type(item).__name__}:\n{text}", file=sys.stderr)


class TrackItem(pg.GraphicsObject):
    """One GraphicsObject per plot painting all its tracks in device coordinates.

    `rows` (lane plots) say which tracks share a level of detail: a row is drawn
    exactly only when all its visible marks together are few enough.
    """

    def __init__(self, tracks: list[Track], y_range: tuple[float, float], colors, frame: Frame, kind: str = "lanes", rows: int = 0, grid=None) -> None:
        super().__init__()
        self.tracks = tracks
        self.colors = colors
        self.y_range = y_range
        self.frame = frame
        self.kind = kind
        self.rows = rows
        self.grid = grid  # callable (x0, x1, npix) -> (major, minor) tick times
        self.setFlag(self.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.paint_count = 0
        self.last_modes: set[str] = set()
        self._modes: tuple | None = None

    def boundingRect(self) -> QtCore.QRectF:
        end = max(self.frame.data.span_end_ns * 1e-9, 1e-6)
        y0, y1 = self.y_range
        return QtCore.QRectF(0.0, y0, end, max(y1 - y0, 1e-12))

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        return (0.0, max(self.frame.data.span_end_ns * 1e-9, 1e-6)) if ax == 0 else self.y_range

    def data_changed(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def modes(self, frame: Frame, npix: int) -> dict[str, str]:
        """Level of detail of each row (lanes) or track (deadlines) at this view (cached per frame)."""
        key = (frame._key, npix, len(self.tracks))
        if self._modes is not None and self._modes[0] == key:
            return self._modes[1]
        out = self._compute_modes(frame, npix)
        self._modes = (key, out)
        return out

    def _compute_modes(self, frame: Frame, npix: int) -> dict[str, str]:
        counts: dict[str, int] = {}
        for t in self.tracks:
            key = t.row or t.name
            counts[key] = counts.get(key, 0) + t.visible_count(frame)
        if self.kind == "deadline":
            return {k: ("exact" if c <= max(48, npix // 8) else "binned") for k, c in counts.items()}
        return {k: choose_mode(c, npix) for k, c in counts.items()}

    def paint(self, p: QtGui.QPainter, opt, widget=None) -> None:
        # An exception must never leave a paint override: PySide6 6.11 crashes
        # reporting it while another thread runs Python (a streaming run).
        try:
            self._paint(p)
        except Exception:  # pragma: no cover - reported, never fatal
            report_paint_error(self)

    def _paint(self, p: QtGui.QPainter) -> None:
        vb = self.getViewBox()
        if vb is None:
            return
        tr = p.transform()
        sx, sy = tr.m11(), tr.m22()
        if sx == 0 or sy == 0:
            return
        (x0, x1), (y0, y1) = vb.viewRange()
        npix = max(1, int(round((x1 - x0) * abs(sx))))
        g = Geom(x0, x1, sx, tr.dx(), sy, tr.dy(), npix, y0, y1)
        frame = self.frame
        frame.update(x0, x1, npix)
        self.paint_count += 1
        xa, xb = g.ox + x0 * sx, g.ox + x1 * sx
        ya, yb = g.oy + y0 * sy, g.oy + y1 * sy
        left, top = min(xa, xb), min(ya, yb)
        height = abs(yb - ya)
        p.save()
        p.resetTransform()
        p.setClipRect(QtCore.QRectF(left, top, abs(xb - xa), height))
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        raster = Raster(npix, int(round(height)))
        self._background(p, g, left, top, abs(xb - xa), height, raster)
        modes = self.modes(frame, npix)
        self.last_modes = set(modes.values()) if self.tracks else set()
        exact = []
        for t in self.tracks:
            mode = modes.get(t.row or t.name, "exact")
            if mode == "binned":
                t.draw(p, g, frame, mode, raster, self.colors)
            else:
                t.last_mode = mode
                exact.append(t)
        raster.draw(p, left, top)
        if self.kind == "deadline":
            p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        for t in exact:
            t.draw(p, g, frame, "exact", raster, self.colors)
        self._pending_region(p, g, top, height)
        p.restore()

    def _background(self, p: QtGui.QPainter, g: Geom, left: float, top: float, width: float, height: float, raster: Raster | None = None) -> None:
        colors = self.colors
        if self.kind == "lanes":
            band = colors("__lane_alt__")
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            for r in range(1, self.rows, 2):
                ya, yb = g.py(r), g.py(r + 1)
                p.fillRect(QtCore.QRectF(left, min(ya, yb), width, abs(yb - ya)), band)
        else:
            # the overdue half (deadline already passed) is tinted
            y_now = g.py(0.0)
            lo = max(top, min(y_now, top + height))
            if lo < top + height:
                p.fillRect(QtCore.QRectF(left, lo, width, top + height - lo), colors("__lane_alt__"))
        if self.grid is not None and raster is not None:
            # grid lines are columns (and, in deadline plots, rows) of the raster image
            major, minor = self.grid(g.x0, g.x1, g.npix)
            for values, role in ((minor, "__grid_minor__"), (major, "__grid__")):
                cols = np.round(g.px(np.asarray(values, dtype=np.float64)) - left).astype(np.int64)
                cols = cols[(cols >= 0) & (cols < raster.w)]
                if len(cols):
                    raster.img[:, cols] = argb(colors(role), 1.0)
                    raster.used = True
        if self.kind == "deadline":
            # decades of the symlog axis, and `deadline == now`
            lo, hi = sorted((g.y0, g.y1))
            decades = np.arange(3, int(max(abs(lo), abs(hi))) + 2, 3)
            ticks = np.concatenate([symlog(10.0**decades), symlog(-(10.0**decades))])
            ticks = ticks[(ticks >= lo) & (ticks <= hi)]
            rows = np.round(g.oy + ticks * g.sy - top).astype(np.int64)
            rows = rows[(rows >= 0) & (rows < (raster.h if raster is not None else 0))]
            if len(rows):
                raster.img[rows, :] = argb(colors("__grid__"), 1.0)
                raster.used = True
            p.setPen(pg.mkPen(colors("now"), width=1, style=QtCore.Qt.PenStyle.DashLine))
            y_now = g.py(0.0)
            p.drawLine(QtCore.QPointF(left, y_now), QtCore.QPointF(left + width, y_now))

    def _pending_region(self, p: QtGui.QPainter, g: Geom, top: float, height: float) -> None:
        """While the run streams in: the part of the axis not simulated yet is hatched."""
        data = self.frame.data
        if data.complete or data.span_end_ns <= data.t_end_ns:
            return
        a = max(g.px(data.t_end * 1.0), g.left)
        b = g.px(data.span_end_ns * 1e-9)
        if b <= a:
            return
        color = QtGui.QColor(self.colors("__grid__"))
        p.fillRect(QtCore.QRectF(a, top, b - a, height), QtGui.QBrush(color, QtCore.Qt.BrushStyle.BDiagPattern))
