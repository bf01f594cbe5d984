"""Sliding windows over a large image and the weights that blend their logits without seams.

Windows are ``tile`` pixels square (smaller when the image is), step
``tile - overlap``, and the last window in each direction is shifted back so
that it ends on the image border (no window sticks out, so no window is mostly
padding). Each window's weight is 1 in its interior and rises as a raised
cosine over ``overlap`` pixels from each side that borders another window
(never along the image border). Two neighbours with an exact ``overlap``-wide
overlap have weights summing to 1 there; the predictor divides by the weight
sum anyway, so larger overlaps (the shifted last window) blend correctly too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_WEIGHT = 1e-3
"""Floor of the blending weights: every covered pixel has a positive weight sum."""


def window_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of size ``min(tile, length)`` covering ``0..length`` with the given overlap."""
    size = min(tile, length)
    if size >= length:
        return [0]
    step = max(1, size - overlap)
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def ramp_profile(size: int, ramp: int, rise_at_start: bool, rise_at_end: bool) -> np.ndarray:
    """1-D weights of length ``size``: a raised-cosine rise over ``ramp`` pixels at the chosen ends."""
    w = np.ones(size, np.float64)
    if ramp <= 0:
        return w.astype(np.float32)
    t = (np.arange(size) + 0.5) / ramp  # distance from the start in ramp units
    rise = np.sin(np.clip(t, 0.0, 1.0) * (np.pi / 2)) ** 2
    if rise_at_start:
        w = np.minimum(w, rise)
    if rise_at_end:
        w = np.minimum(w, rise[::-1])
    return np.maximum(w, MIN_WEIGHT).astype(np.float32)


@dataclass(frozen=True)
class TilePlan:
    """Where the windows of one image are: rows ``ys`` × columns ``xs`` of ``height`` × ``width`` windows."""

    image_height: int
    image_width: int
    height: int
    width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    overlap: int

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def tiled(self) -> bool:
        return self.count > 1

    def weights_y(self, i: int) -> np.ndarray:
        return ramp_profile(self.height, self.overlap, i > 0, i < len(self.ys) - 1)

    def weights_x(self, j: int) -> np.ndarray:
        return ramp_profile(self.width, self.overlap, j > 0, j < len(self.xs) - 1)

    def final_rows(self, i: int) -> int:
        """How many rows of window row ``i`` (from its top) no later window row touches."""
        if i + 1 < len(self.ys):
            return self.ys[i + 1] - self.ys[i]
        return self.height


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> TilePlan:
    """Plan windows for an image; ``tile`` is rounded down to ``multiple`` (at least one multiple).

    ``overlap`` is clamped to half the window so that a window's two ramps never meet.
    """
    if tile < 1:
        raise ValueError(f"tile size must be positive, got {tile}")
    tile = max(multiple, tile - tile % multiple) if multiple > 1 else tile
    h, w = min(tile, height), min(tile, width)
    ov = max(0, min(overlap, min(h, w) // 2))
    return TilePlan(height, width, h, w, tuple(window_starts(height, tile, ov)),
                    tuple(window_starts(width, tile, ov)), ov)
