"""Masks to polygons and back, for the polygon formats (labelme, YOLO-seg, COCO polygons).

Coordinates are pixel indices: the point (x, y) is the centre of pixel
``mask[y, x]``; a polygon covers the pixels on and inside its outline. This is
how labelme (PIL ``ImageDraw.polygon``) and YOLO tools (``cv2.fillPoly``)
rasterise, and :func:`shapes_to_mask` rebuilds regions from
:func:`mask_to_shapes`'s outlines exactly for ordinary label shapes (tested on
synthetic blobs; 99.96–100 % of the labelled pixels of real CamVid labels).
Per-pixel noise (checkerboards, isolated diagonal pixels) can differ by ~1 %.

Polygons cannot carry holes. :func:`mask_to_shapes` orders shapes largest
first, so a region of another class inside a hole is drawn after the region
around it and survives a round trip; a hole that is *not labelled* is filled
by the region around it. Use index PNG, VOC or COCO RLE where that matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Shape:
    """One polygon of one class: ``points`` is N×2 float (x, y) in pixel indices, N ≥ 1."""

    class_index: int
    points: np.ndarray

    @property
    def area(self) -> float:
        return float(cv2.contourArea(self.points.astype(np.float32))) if len(self.points) >= 3 else 0.0


def region_outlines(region: np.ndarray) -> list[np.ndarray]:
    """Outer outlines of the 8-connected regions of a boolean mask (islands inside holes included).

    Each outline is N×2 float (x, y) through the centres of boundary pixels,
    with collinear points dropped (CHAIN_APPROX_SIMPLE keeps the outline exact).
    """
    contours, hierarchy = cv2.findContours(region.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    # RETR_CCOMP: top-level contours (parent -1) are outer boundaries, their children are holes;
    # an island inside a hole is again top level.
    return [c.reshape(-1, 2).astype(np.float64) for c, h in zip(contours, hierarchy[0]) if h[3] < 0]


def mask_to_shapes(mask: np.ndarray, classes: Iterable[int], continuous: bool = False) -> list[Shape]:
    """Polygons of every region of the listed classes, largest area first (see the module note on holes).

    ``continuous=True`` gives COCO-style coordinates instead, where pixel (x, y)
    spans [x, x+1) × [y, y+1): the outline is traced on the mask doubled in size,
    so it runs a quarter pixel inside the region's edge, and rasterisers of
    continuous polygons (pycocotools) cover exactly the region's pixels.
    """
    shapes: list[Shape] = []
    for c in classes:
        region = mask == c
        if not region.any():
            continue
        if continuous:
            doubled = np.repeat(np.repeat(region, 2, axis=0), 2, axis=1)
            shapes.extend(Shape(int(c), (pts + 0.5) / 2) for pts in region_outlines(doubled))
        else:
            shapes.extend(Shape(int(c), pts) for pts in region_outlines(region))
    # Enclosing outlines have the larger area, so they are drawn first when read back.
    shapes.sort(key=lambda s: (-s.area, -len(s.points)))
    return shapes


def as_polygon_points(points: np.ndarray, min_points: int = 3) -> np.ndarray:
    """Repeat the last point so that a single-pixel or line region still forms a polygon."""
    if len(points) >= min_points:
        return points
    pad = np.repeat(points[-1:], min_points - len(points), axis=0)
    return np.concatenate([points, pad])


def fill_polygon(mask: np.ndarray, points: np.ndarray | Sequence[Sequence[float]], value: int) -> None:
    """Paint the pixels on and inside a polygon of pixel-index (x, y) points, in place."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return
    if not np.isfinite(pts).all():
        raise ValueError("polygon coordinates must be finite numbers")
    # cv2 needs int32; clip far-away coordinates so a wild value cannot overflow.
    limit = 4 * max(mask.shape) + 16
    ipts = np.clip(np.floor(pts + 0.5), -limit, limit).astype(np.int32)
    cv2.fillPoly(mask, [ipts], int(value))


def shapes_to_mask(shapes: Iterable[Shape], shape: tuple[int, int], fill: int, dtype: np.dtype | type
                   ) -> np.ndarray:
    """Rasterise shapes in order (later ones paint over earlier ones) onto a mask filled with ``fill``."""
    mask = np.full(shape, fill, dtype=dtype)
    for s in shapes:
        fill_polygon(mask, s.points, s.class_index)
    return mask
