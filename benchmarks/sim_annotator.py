"""A simulated annotator who corrects a model's predictions with brush strokes, and what that costs in time.

The user of RootPainter's simulation (Smith et al., 2022), made multi-class:
shown a prediction, they find the largest wrong regions and paint each with
one straight brush stroke of the true class through the region's interior.

- **Where a stroke goes.** Error pixels (prediction ≠ truth) more than
  ``boundary`` px from a class boundary of the truth are grouped into
  connected regions per true class; the largest come first. A stroke stays
  inside the true class region shrunk by the brush radius, so it never paints
  the wrong class: it runs along the region's long axis, clipped to that shrunk
  region. Regions too thin to hold the brush are skipped (a real user would
  zoom; this one does not).
- **What it costs** (:class:`TimeModel`): about 400 px/s painting, 800 px/s
  moving between strokes, 200 ms to find each error, 200 ms to check an image.

With no prediction yet (a network trained from scratch has none), every
pixel counts as wrong, so the first strokes go to the largest regions of each
class. Pure numpy/OpenCV; the benchmark and its test use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UNLABELLED = 255


@dataclass(frozen=True)
class TimeModel:
    paint_px_s: float = 400.0
    move_px_s: float = 800.0
    find_s: float = 0.2
    check_s: float = 0.2


@dataclass(frozen=True)
class Stroke:
    """A straight brush stroke from ``start`` to ``end`` ((x, y) pixels) of class ``cls``."""

    cls: int
    start: tuple[int, int]
    end: tuple[int, int]

    @property
    def length(self) -> float:
        return float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def away_from_boundaries(truth: np.ndarray, px: int) -> np.ndarray:
    """Pixels more than ``px`` from a boundary between two classes (or with "not labelled") of ``truth``."""
    if px <= 0:
        return np.ones(truth.shape, bool)
    kernel = _disc(px)
    grown = cv2.dilate(truth, kernel)
    shrunk = cv2.erode(truth, kernel)
    return grown == shrunk


def _stroke_in(region: np.ndarray, cls: int) -> Stroke | None:
    """The longest straight stroke along the principal axis of ``region`` (a bool mask) that stays inside it."""
    ys, xs = np.nonzero(region)
    if xs.size < 2:
        return None if xs.size == 0 else Stroke(cls, (int(xs[0]), int(ys[0])), (int(xs[0]), int(ys[0])))
    cx, cy = xs.mean(), ys.mean()
    cov = np.cov(np.stack([xs - cx, ys - cy]))
    _, vecs = np.linalg.eigh(cov)
    dx, dy = vecs[:, -1]
    t = (xs - cx) * dx + (ys - cy) * dy
    samples = np.arange(np.floor(t.min()), np.ceil(t.max()) + 1)
    px = np.rint(cx + samples * dx).astype(int)
    py = np.rint(cy + samples * dy).astype(int)
    h, w = region.shape
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    inside[inside] = region[py[inside], px[inside]]
    if not inside.any():  # a curved region whose axis misses it: one dab at its most central pixel
        i = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
        return Stroke(cls, (int(xs[i]), int(ys[i])), (int(xs[i]), int(ys[i])))
    # the longest run of consecutive samples inside the region
    best: tuple[int, int] = (0, 0)
    start: int | None = None
    for i, ok in enumerate(np.append(inside, False)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    a, b = best[0], best[1] - 1
    return Stroke(cls, (int(px[a]), int(py[a])), (int(px[b]), int(py[b])))


def corrective_strokes(prediction: np.ndarray | None, truth: np.ndarray, radius: int, boundary: int = 2,
                       max_strokes: int = 10, min_area: int = 20) -> list[Stroke]:
    """The strokes the annotator paints on one image, largest error first (see the module docstring)."""
    labelled = truth != UNLABELLED
    wrong = labelled if prediction is None else labelled & (prediction != truth)
    wrong &= away_from_boundaries(truth, boundary)
    candidates: list[tuple[int, np.ndarray, int]] = []
    kernel = _disc(radius)
    for cls in np.unique(truth[wrong]):
        cls = int(cls)
        room = cv2.erode((truth == cls).astype(np.uint8), kernel).astype(bool)
        errors = (wrong & (truth == cls)).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(errors, connectivity=8)
        for i in range(1, n):
            area = int(stats[i, cv2.CC_STAT_AREA])
            if area < min_area:
                continue
            x, y, w, h = (int(v) for v in stats[i, :4])
            region = np.zeros(truth.shape, bool)
            sub = comp[y:y + h, x:x + w] == i
            region[y:y + h, x:x + w] = sub & room[y:y + h, x:x + w]
            if region.any():
                candidates.append((area, region, cls))
    candidates.sort(key=lambda c: -c[0])
    strokes = []
    for _, region, cls in candidates[:max_strokes]:
        s = _stroke_in(region, cls)
        if s is not None:
            strokes.append(s)
    return strokes


def paint(label: np.ndarray, stroke: Stroke, radius: int) -> None:
    """Rasterise ``stroke`` into ``label`` (in place) with a round brush of ``radius``: the disc swept along the
    stroke's centre line (so it stays inside a region shrunk by the same disc)."""
    centre = np.zeros(label.shape, np.uint8)
    cv2.line(centre, stroke.start, stroke.end, 1, thickness=1, lineType=cv2.LINE_8)
    label[cv2.dilate(centre, _disc(radius)).astype(bool)] = stroke.cls


def image_seconds(strokes: list[Stroke], time_model: TimeModel, start: tuple[int, int] = (0, 0)) -> float:
    """Simulated seconds to paint ``strokes`` on one image and check it."""
    t = time_model.check_s
    at = start
    for s in strokes:
        t += time_model.find_s
        t += float(np.hypot(s.start[0] - at[0], s.start[1] - at[1])) / time_model.move_px_s
        t += s.length / time_model.paint_px_s
        at = s.end
    return t
