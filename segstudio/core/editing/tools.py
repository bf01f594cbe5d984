"""Editing tools as plain functions on numpy masks (no Qt; the canvas only forwards events).

Every tool changes ``mask`` in place and returns the :class:`~.history.Atom`
that undoes it (``None`` when nothing changed). Coordinates are image pixel
coordinates ``(x, y)``, floats allowed, pixel centres at integers. A
:class:`PaintLock` restricts which pixels a tool may change: only unlabelled
pixels, or only pixels of one class ("paint only over class X").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segstudio.core.classes import unlabelled_value
from segstudio.core.editing.history import Atom

Point = tuple[float, float]


@dataclass(frozen=True)
class PaintLock:
    """Which pixels a tool may overwrite; the default allows all."""

    only_unlabelled: bool = False
    only_class: int | None = None

    def allowed(self, values: np.ndarray) -> np.ndarray | None:
        """Boolean mask of the pixels in ``values`` that may change (None: all)."""
        if self.only_unlabelled:
            return values == unlabelled_value(values.dtype)
        if self.only_class is not None:
            return values == self.only_class
        return None


NO_LOCK = PaintLock()


def _apply(mask: np.ndarray, y0: int, x0: int, region: np.ndarray, value: int | np.ndarray,
           lock: PaintLock) -> Atom | None:
    """Set ``region`` (a boolean block at y0, x0) to ``value`` where the lock allows and the value differs."""
    h, w = region.shape
    block = mask[y0:y0 + h, x0:x0 + w]
    allowed = lock.allowed(block)
    if allowed is not None:
        region = region & allowed
    region = region & (block != value)
    if not region.any():
        return None
    ys, xs = np.nonzero(region)
    ty0, ty1, tx0, tx1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    tight = block[ty0:ty1, tx0:tx1]
    before = tight.copy()
    sub = region[ty0:ty1, tx0:tx1]
    if isinstance(value, np.ndarray):
        tight[sub] = value[ty0:ty1, tx0:tx1][sub]
    else:
        tight[sub] = value
    return Atom.record(y0 + ty0, x0 + tx0, before, tight)


def _clip_box(mask: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
    h, w = mask.shape
    bx0, by0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    bx1, by1 = min(w, math.ceil(x1) + 1), min(h, math.ceil(y1) + 1)
    if bx0 >= bx1 or by0 >= by1:
        return None
    return bx0, by0, bx1, by1


def paint_segment(mask: np.ndarray, p0: Point, p1: Point, radius: float, value: int,
                  lock: PaintLock = NO_LOCK) -> Atom | None:
    """A round brush of ``radius`` swept from ``p0`` to ``p1`` (a dab when they are equal).

    Covers every pixel whose centre lies within ``radius`` of the segment; a
    radius below 0.5 still covers the pixel under the brush.
    """
    r = max(float(radius), 0.5)
    (ax, ay), (bx, by) = p0, p1
    box = _clip_box(mask, min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    # nearest point of the segment to each pixel centre (the segment's start for a dab)
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / seg2, 0.0, 1.0) if seg2 > 0 else np.zeros((1, 1), np.float32)
    px, py = ax + t * dx, ay + t * dy
    region = (xs - px) ** 2 + (ys - py) ** 2 <= r * r + 1e-6
    return _apply(mask, y0, x0, region, value, lock)


def erase_segment(mask: np.ndarray, p0: Point, p1: Point, radius: float, lock: PaintLock = NO_LOCK) -> Atom | None:
    """The eraser: paint "not labelled"."""
    return paint_segment(mask, p0, p1, radius, unlabelled_value(mask.dtype), lock)


def flood_fill(mask: np.ndarray, seed: Point, value: int, lock: PaintLock = NO_LOCK,
               connectivity: int = 4) -> Atom | None:
    """Fill the connected region of pixels equal to the one at ``seed`` with ``value``."""
    h, w = mask.shape
    sx, sy = round(seed[0]), round(seed[1])
    if not (0 <= sx < w and 0 <= sy < h):
        return None
    same = (mask == mask[sy, sx]).astype(np.uint8)
    ff_mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = connectivity | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    _, _, _, rect = cv2.floodFill(same, ff_mask, (sx, sy), 1, 0, 0, flags)
    rx, ry, rw, rh = rect
    region = ff_mask[1 + ry:1 + ry + rh, 1 + rx:1 + rx + rw].astype(bool)
    return _apply(mask, ry, rx, region, value, lock)


def fill_polygon(mask: np.ndarray, points: Sequence[Point], value: int, lock: PaintLock = NO_LOCK) -> Atom | None:
    """Fill the polygon (or freehand lasso) through ``points`` with ``value``."""
    if len(points) < 3:
        return None
    pts = np.asarray(points, dtype=np.float64)
    box = _clip_box(mask, pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
    if box is None:
        return None
    x0, y0, x1, y1 = box
    region = polygon_region((y1 - y0, x1 - x0), pts - (x0, y0))
    return _apply(mask, y0, x0, region, value, lock)


def polygon_region(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` inside the polygon ``points`` ((x, y) rows, pixel centres at integers)."""
    canvas = np.zeros(shape, np.uint8)
    shift = 4  # sub-pixel precision for cv2
    pts = np.round(np.asarray(points) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=shift)
    return canvas.astype(bool)


def accept_prediction(label: np.ndarray, prediction: np.ndarray, region: np.ndarray | None = None,
                      overwrite: bool = False) -> Atom | None:
    """Copy the prediction into the label (inside ``region`` if given).

    By default only unlabelled pixels take the prediction, so the user's own
    strokes survive; ``overwrite=True`` replaces everything in the region.
    """
    if prediction.shape != label.shape:
        raise ValueError(f"prediction {prediction.shape} and label {label.shape} differ in size")
    area = np.ones(label.shape, bool) if region is None else region.astype(bool)
    lock = NO_LOCK if overwrite else PaintLock(only_unlabelled=True)
    return _apply(label, 0, 0, area, prediction.astype(label.dtype, copy=False), lock)


def pick_class(mask: np.ndarray, point: Point) -> int | None:
    """The eyedropper: the class under ``point``, or None if unlabelled or outside."""
    h, w = mask.shape
    x, y = round(point[0]), round(point[1])
    if not (0 <= x < w and 0 <= y < h):
        return None
    v = int(mask[y, x])
    return None if v == unlabelled_value(mask.dtype) else v
