"""Fast drawing of event tracks for the timeline (pyqtgraph GraphicsObject + numpy).

A `TrackItem` holds tracks (marks, spans, step curves) and paints them in device
pixels: it reads the view's x range and the painter transform, clips each sorted
array to the view with `np.searchsorted`, and then either draws every glyph
(zoomed in, `exact`) or one stroke per pixel column (zoomed out, `binned`).
Paths are built from numpy arrays with `pg.arrayToQPath`, never per-mark Python
loops, so a frame costs O(visible marks) numpy work plus O(pixels) painting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from .timeline_data import (
    SPAN_CANCELLED,
    bin_columns,
    choose_mode,
    merge_pixel_spans,
    step_polyline,
    visible_range,
    visible_spans,
)


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

    def px(self, x: np.ndarray | float):
        return self.ox + np.asarray(x) * self.sx

    def py(self, y: float) -> float:
        return self.oy + y * self.sy


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


def _is_vector(p: QtGui.QPainter) -> bool:
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


class Track:
    """Something drawn in one lane row (or a value axis), with picking for clicks/tooltips."""

    name = ""
    last_mode = ""

    def x_bounds(self) -> tuple[float, float] | None:
        return None

    def draw(self, p: QtGui.QPainter, g: Geom, colors) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def pick(self, x: float, tol: float) -> tuple[float, int] | None:
        """(distance in s, event index) of the mark nearest to x within tol, if any."""
        return None


class MarkTrack(Track):
    """Point events drawn as glyphs (exact) or per-pixel-column density strokes (binned)."""

    def __init__(self, name: str, t: np.ndarray, idx: np.ndarray, y: float, height: float, glyph: str, role: str, label: str = "") -> None:
        self.name = name
        self.t = t
        self.idx = idx
        self.y = y
        self.height = height
        self.glyph = glyph
        self.role = role
        self.label = label or name
        self.max_px = 22.0 if glyph == "bar" else 14.0
        self.row = ""  # tracks of one lane row share a level of detail
        self.row_count = 0  # visible marks of the whole row (set by TrackItem.paint)
        self._cache: tuple | None = None

    def x_bounds(self):
        return (float(self.t[0]), float(self.t[-1])) if len(self.t) else None

    def draw(self, p, g, colors) -> None:
        if not len(self.t):
            return
        key = (g.x0, g.x1, g.sx, g.ox, g.sy, g.oy, g.npix, self.row_count)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, *self._build(g))
        _, mode, data = self._cache
        self.last_mode = mode
        if data is None:
            return
        color = colors(self.role)
        if mode == "binned":
            p.setPen(pg.mkPen(color, width=1))
            p.drawPath(data)
            return
        px, yc, h = data
        if _is_vector(p):
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

    def _build(self, g: Geom):
        i0, i1 = visible_range(self.t, g.x0, g.x1)
        count = i1 - i0
        if count <= 0:
            return "exact", None
        yc = g.py(self.y)
        h = min(abs(self.height * g.sy), self.max_px)
        mode = choose_mode(max(count, self.row_count), g.npix)
        if mode == "exact":
            return mode, (g.px(self.t[i0:i1]), yc, h)
        cols, counts = bin_columns(self.t[i0:i1], g.x0, g.sx, g.npix)
        # Stroke length grows with the log of the count: dense columns stand out.
        frac = 0.35 + 0.65 * np.minimum(1.0, np.log10(counts + 1) / max(1.0, np.log10(counts.max() + 1)))
        half = (h / 2) * frac
        x = g.ox + g.x0 * g.sx + cols + 0.5
        xs = np.repeat(x, 2)
        ys = np.stack([yc - half, yc + half], axis=1).ravel()
        return mode, _path(xs, ys, "pairs")

    def pick(self, x, tol):
        if not len(self.t):
            return None
        i = int(np.searchsorted(self.t, x))
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(self.t):
                d = abs(self.t[j] - x)
                if d <= tol and (best is None or d < best[0]):
                    best = (d, int(self.idx[j]))
        return best


class SpanTrack(Track):
    """Intervals (arm->fire, HLT periods) as bars; cancelled ones thin; merged per pixel when dense."""

    def __init__(self, name: str, t0, t1, idx, flag, y: float, height: float, role: str, cancelled_role: str = "", label: str = "") -> None:
        self.name = name
        self.t0, self.t1, self.idx, self.flag = t0, t1, idx, flag
        self.y = y
        self.height = height
        self.role = role
        self.cancelled_role = cancelled_role or role
        self.label = label or name
        self._cache: tuple | None = None

    def x_bounds(self):
        return (float(self.t0[0]), float(self.t1.max())) if len(self.t0) else None

    def draw(self, p, g, colors) -> None:
        if not len(self.t0):
            return
        key = (g.x0, g.x1, g.sx, g.ox, g.sy, g.oy, g.npix)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, *self._build(g))
        _, mode, full, thin = self._cache
        self.last_mode = mode
        col = QtGui.QColor(colors(self.role))
        col.setAlpha(110)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        if full is not None:
            p.fillPath(full, QtGui.QBrush(col))
        if thin is not None:
            c2 = QtGui.QColor(colors(self.cancelled_role))
            dashed = mode == "exact"
            p.setPen(pg.mkPen(c2, width=1, style=QtCore.Qt.PenStyle.DashLine if dashed else QtCore.Qt.PenStyle.SolidLine))
            p.drawPath(thin)

    def _rects(self, p0, p1, yc, h):
        n = len(p0)
        xs = np.stack([p0, p1, p1, p0, p0], axis=1).ravel().astype(np.float64)
        ys = np.tile([yc - h / 2, yc - h / 2, yc + h / 2, yc + h / 2, yc - h / 2], n)
        return _path(xs, ys, np.tile([1, 1, 1, 1, 0], n).astype(np.int32))

    def _build(self, g: Geom):
        i0, i1 = visible_spans(self.t0, self.t1, g.x0, g.x1)
        if i1 <= i0:
            return "exact", None, None
        t0 = np.maximum(self.t0[i0:i1], g.x0)
        t1 = np.minimum(self.t1[i0:i1], g.x1)
        flag = self.flag[i0:i1]
        yc = g.py(self.y)
        h = min(abs(self.height * g.sy), 14.0)
        mode = choose_mode(i1 - i0, g.npix)
        solid = flag != SPAN_CANCELLED
        p0 = np.floor(g.px(t0[solid]))
        p1 = np.maximum(np.ceil(g.px(t1[solid])), p0 + 1)
        if mode == "binned":
            p0, p1 = merge_pixel_spans(p0.astype(np.int64), p1.astype(np.int64))
        full = self._rects(p0, p1, yc, h) if len(p0) else None
        thin = None
        canc = ~solid
        if np.any(canc):
            c0 = g.px(t0[canc])
            c1 = g.px(t1[canc])
            if mode == "binned":
                a, b = merge_pixel_spans(np.floor(c0).astype(np.int64), np.ceil(c1).astype(np.int64))
                c0, c1 = a.astype(np.float64), b.astype(np.float64)
            xs = np.stack([c0, c1], axis=1).ravel()
            ys = np.full(len(xs), yc)
            thin = _path(xs, ys, "pairs")
        return mode, full, thin

    def pick(self, x, tol):
        if not len(self.t0):
            return None
        i = int(np.searchsorted(self.t0, x, side="right")) - 1
        if 0 <= i < len(self.t0) and self.t0[i] - tol <= x <= self.t1[i] + tol:
            return (0.0, int(self.idx[i]))
        return None

    def span_at(self, x: float) -> int:
        if not len(self.t0):
            return -1
        i = int(np.searchsorted(self.t0, x, side="right")) - 1
        return i if 0 <= i < len(self.t0) and x <= self.t1[i] else -1


class StepTrack(Track):
    """A step plot in value coordinates (deadline plots); NaN values are gaps."""

    def __init__(self, name: str, t, y, idx, role: str, width: float = 1.6, dash: bool = False, label: str = "") -> None:
        self.name = name
        self.t = t
        self.y = y
        self.idx = idx
        self.role = role
        self.width = width
        self.dash = dash
        self.label = label or name
        self._cache: tuple | None = None

    def x_bounds(self):
        return (float(self.t[0]), float(self.t[-1])) if len(self.t) else None

    def y_extent(self, x0: float, x1: float) -> tuple[float, float] | None:
        if not len(self.t):
            return None
        i0 = max(0, int(np.searchsorted(self.t, x0, side="right")) - 1)
        i1 = int(np.searchsorted(self.t, x1, side="right"))
        seg = self.y[i0:i1]
        if not len(seg) or np.all(np.isnan(seg)):
            return None
        return float(np.nanmin(seg)), float(np.nanmax(seg))

    def draw(self, p, g, colors) -> None:
        if not len(self.t):
            return
        key = (g.x0, g.x1, g.sx, g.ox, g.sy, g.oy, g.npix)
        if self._cache is None or self._cache[0] != key:
            xs, ys, mode = step_polyline(self.t, self.y, g.x0, g.x1, g.sx, 4 * g.npix)
            ys = np.clip(ys, min(g.y0, g.y1), max(g.y0, g.y1))  # NaN gaps stay NaN
            path = _path(g.ox + xs * g.sx, g.oy + ys * g.sy, "finite") if len(xs) else None
            self._cache = (key, mode, path, len(xs))
        _, mode, path, npts = self._cache
        self.last_mode = mode
        if path is None:
            return
        # Dashes and wide strokes are costly for Qt's stroker (a 1.6 px dashed zig-zag of
        # 1,400 points costs ~400 ms): only on the exact staircase of a few hundred points.
        sparse = mode == "exact" and npts <= 600
        style = QtCore.Qt.PenStyle.DashLine if (self.dash and sparse) else QtCore.Qt.PenStyle.SolidLine
        color = QtGui.QColor(colors(self.role))
        if not sparse and self.dash:
            # Dense dashed series (pending, requested) are toned down so armed shows
            # through -- by blending with the background, not with alpha: a translucent
            # pen makes Qt stroke-and-fill the whole zig-zag path (~20x slower).
            bg = colors("__background__")
            color = QtGui.QColor(
                (color.red() * 2 + bg.red() * 3) // 5,
                (color.green() * 2 + bg.green() * 3) // 5,
                (color.blue() * 2 + bg.blue() * 3) // 5,
            )
        pen = pg.mkPen(color, width=(1 if self.dash else self.width) if sparse else 1)
        pen.setStyle(style)
        p.setPen(pen)
        p.drawPath(path)

    def pick(self, x, tol):
        if not len(self.t):
            return None
        i = int(np.searchsorted(self.t, x, side="right")) - 1
        if i >= 0 and abs(self.t[i] - x) <= tol and self.idx[i] >= 0:
            return (abs(self.t[i] - x), int(self.idx[i]))
        return None

    def value_at(self, x: float) -> float:
        i = int(np.searchsorted(self.t, x, side="right")) - 1
        return float(self.y[i]) if i >= 0 else float("nan")


class DiagonalTrack(Track):
    """The line `deadline == now` of a deadline plot: values above it are in the future."""

    name = "now"
    label = "deadline = now"

    def draw(self, p, g, colors) -> None:
        lo, hi = max(g.x0, min(g.y0, g.y1)), min(g.x1, max(g.y0, g.y1))
        if hi <= lo:
            return
        xs = np.array([lo, hi])
        p.setPen(pg.mkPen(colors("now"), width=1, style=QtCore.Qt.PenStyle.DotLine))
        p.drawPath(_path(g.ox + xs * g.sx, g.oy + xs * g.sy, "all"))


class GridTrack(Track):
    """Grid lines at the axes' tick positions, opaque (pyqtgraph's alpha grid costs ~4 ms per plot)."""

    name = "grid"

    def __init__(self, x_axis, y_axis=None) -> None:
        self.x_axis = x_axis
        self.y_axis = y_axis

    def draw(self, p, g, colors) -> None:
        major = colors("__grid__")
        minor = colors("__grid_minor__")
        vb_h = self.view_height
        try:
            levels = self.x_axis.tickValues(g.x0, g.x1, g.npix)
        except Exception:  # axis not laid out yet
            return
        for level, (_spacing, values) in enumerate(levels[:2]):
            xs = g.px(np.asarray(values, dtype=np.float64))
            if not len(xs):
                continue
            ys = np.tile([self.y_top, self.y_top + vb_h], len(xs))
            p.setPen(pg.mkPen(major if level == 0 else minor, width=1))
            p.drawPath(_path(np.repeat(xs, 2), ys, "pairs"))
        if self.y_axis is not None:
            y0, y1 = sorted((self.y_lo, self.y_hi))
            try:
                ylevels = self.y_axis.tickValues(y0, y1, max(1, int(vb_h)))
            except Exception:
                return
            left = g.ox + g.x0 * g.sx
            right = g.ox + g.x1 * g.sx
            for level, (_spacing, values) in enumerate(ylevels[:1]):
                ys = g.oy + np.asarray(values, dtype=np.float64) * g.sy
                if not len(ys):
                    continue
                xs = np.tile([left, right], len(ys))
                p.setPen(pg.mkPen(major if level == 0 else minor, width=1))
                p.drawPath(_path(xs, np.repeat(ys, 2), "pairs"))

    # set by TrackItem.paint before drawing
    y_top = 0.0
    view_height = 0.0
    y_lo = 0.0
    y_hi = 1.0


class RowBands(Track):
    """Alternating background bands behind lane rows (drawn first)."""

    name = "bands"

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def draw(self, p, g, colors) -> None:
        col = colors("__lane_alt__")
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        left = g.ox + g.x0 * g.sx
        right = g.ox + g.x1 * g.sx
        for r in range(1, self.rows, 2):
            y0 = g.py(r)
            y1 = g.py(r + 1)
            p.fillRect(QtCore.QRectF(left, min(y0, y1), right - left, abs(y1 - y0)), col)


class TrackItem(pg.GraphicsObject):
    """One GraphicsObject per plot painting all its tracks in device coordinates."""

    def __init__(self, tracks: list[Track], y_range: tuple[float, float], colors) -> None:
        super().__init__()
        self.tracks = tracks
        self.colors = colors
        self.y_range = y_range
        xb = [b for b in (t.x_bounds() for t in tracks) if b is not None]
        self.x_range = (min(b[0] for b in xb), max(b[1] for b in xb)) if xb else (0.0, 1e-6)
        self.setFlag(self.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.paint_count = 0

    def boundingRect(self) -> QtCore.QRectF:
        x0, x1 = self.x_range
        y0, y1 = self.y_range
        return QtCore.QRectF(x0, y0, max(x1 - x0, 1e-12), max(y1 - y0, 1e-12))

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        return self.x_range if ax == 0 else self.y_range

    def paint(self, p: QtGui.QPainter, opt, widget=None) -> None:
        vb = self.getViewBox()
        if vb is None:
            return
        tr = p.transform()
        sx, sy = tr.m11(), tr.m22()
        if sx == 0 or sy == 0:
            return
        (x0, x1), (y0, y1) = vb.viewRange()
        g = Geom(x0, x1, sx, tr.dx(), sy, tr.dy(), max(1, int(round((x1 - x0) * abs(sx)))), y0, y1)
        self.paint_count += 1
        rows: dict[str, int] = {}
        marks = [t for t in self.tracks if isinstance(t, MarkTrack) and t.row and len(t.t)]
        for t in marks:
            i0, i1 = visible_range(t.t, x0, x1)
            rows[t.row] = rows.get(t.row, 0) + (i1 - i0)
        for t in marks:
            t.row_count = rows[t.row]
        for track in self.tracks:
            if isinstance(track, GridTrack):
                ya, yb = tr.dy() + y0 * sy, tr.dy() + y1 * sy
                track.y_top = min(ya, yb)
                track.view_height = abs(yb - ya)
                track.y_lo, track.y_hi = y0, y1
        p.save()
        p.resetTransform()
        xa, xb = g.ox + x0 * sx, g.ox + x1 * sx
        ya, yb = g.oy + y0 * sy, g.oy + y1 * sy
        p.setClipRect(QtCore.QRectF(min(xa, xb), min(ya, yb), abs(xb - xa), abs(yb - ya)))
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        for track in self.tracks:
            track.draw(p, g, self.colors)
        p.restore()

    def invalidate(self) -> None:
        for t in self.tracks:
            if hasattr(t, "_cache"):
                t._cache = None
        self.update()
