"""The edit state of one open image: label mask, prediction, undo history, label version.

Tools run through :class:`EditSession` so that every change becomes one undo
step and reports the rectangle to repaint. A brush drag is
``begin_stroke() … paint(...) … end_stroke()``: one stroke, one undo step,
however many mouse events it took. No Qt here: the canvas calls these methods
and repaints the returned rectangles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from segstudio.core.classes import unlabelled_value
from segstudio.core.editing import tools
from segstudio.core.editing.history import Atom, History, Stroke
from segstudio.core.editing.tools import NO_LOCK, PaintLock, Point

Rect = tuple[int, int, int, int]
"""(y0, x0, y1, x1), end exclusive."""

MaskMap = np.ndarray | Callable[[np.ndarray], np.ndarray]
"""How :meth:`EditSession.remap` renumbers a mask: a lookup table (``lut[old value]`` = new value, one entry
for every value of the mask's dtype, e.g. :func:`~segstudio.core.masks.remap_lut`), or a function from the old
mask to the new one (a change that is no plain table, such as an undone deletion that restores pixels)."""


def _mapped(how: MaskMap, mask: np.ndarray) -> np.ndarray:
    out = how(mask) if callable(how) else how[mask]
    if out.shape != mask.shape:
        raise ValueError(f"a remap gave a {out.shape} mask for a {mask.shape} one")
    return out


def _atom_rect(atom: Atom) -> Rect:
    y0, x0, h, w = atom.rect
    return y0, x0, y0 + h, x0 + w


class EditSession:
    """Label editing on one image with undo/redo.

    ``label`` is the user's mask (255 / 65535 = not labelled); ``prediction``
    the model's suggestion, kept apart until accepted. Each of ``listeners`` is
    called as ``listener(rect)`` after every change with the area to repaint;
    ``label_version`` counts the changes to the label alone (a new prediction
    repaints but leaves it), so that whoever saves the label compares versions.
    """

    def __init__(self, label: np.ndarray, prediction: np.ndarray | None = None,
                 history: History | None = None) -> None:
        if label.ndim != 2:
            raise ValueError("a label mask is 2-D")
        self.label = label
        self.prediction = prediction
        self.history = history or History()
        self._stroke: Stroke | None = None
        self.label_version = 0
        self.listeners: list[Callable[[Rect], None]] = []

    @classmethod
    def blank(cls, height: int, width: int, dtype: np.dtype | type = np.uint8) -> EditSession:
        return cls(np.full((height, width), unlabelled_value(dtype), dtype))

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.label.shape[0]), int(self.label.shape[1])

    def _changed(self, atom: Atom | None) -> Rect | None:
        if atom is None:
            return None
        self.label_version += 1
        rect = _atom_rect(atom)
        for fn in self.listeners:
            fn(rect)
        return rect

    # --- strokes -----------------------------------------------------------------
    def begin_stroke(self, label: str) -> None:
        if self._stroke is not None:
            self.end_stroke()
        self._stroke = Stroke(label)

    def end_stroke(self) -> Stroke | None:
        """Commit the stroke in progress as one undo step; returns it (None if nothing changed)."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke.empty:
            return None
        self.history.push(stroke)
        return stroke

    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    def _record(self, atom: Atom | None, label: str) -> Rect | None:
        if atom is None:
            return None
        if self._stroke is not None:
            self._stroke.add(atom)
        else:
            one = Stroke(label)
            one.add(atom)
            self.history.push(one)
        return self._changed(atom)

    # --- tools -------------------------------------------------------------------
    def paint(self, p0: Point, p1: Point, radius: float, value: int, lock: PaintLock = NO_LOCK) -> Rect | None:
        return self._record(tools.paint_segment(self.label, p0, p1, radius, value, lock), "brush")

    def erase(self, p0: Point, p1: Point, radius: float, lock: PaintLock = NO_LOCK) -> Rect | None:
        return self._record(tools.erase_segment(self.label, p0, p1, radius, lock), "eraser")

    def fill(self, seed: Point, value: int, lock: PaintLock = NO_LOCK) -> Rect | None:
        return self._record(tools.flood_fill(self.label, seed, value, lock), "fill")

    def fill_polygon(self, points: Sequence[Point], value: int, lock: PaintLock = NO_LOCK) -> Rect | None:
        return self._record(tools.fill_polygon(self.label, points, value, lock), "polygon")

    def accept_prediction(self, points: Sequence[Point] | None = None, overwrite: bool = False) -> Rect | None:
        """Take the prediction into the label, everywhere or inside the lasso ``points``."""
        if self.prediction is None:
            return None
        region = None
        if points is not None:
            if len(points) < 3:
                return None
            region = tools.polygon_region(self.shape, np.asarray(points, dtype=np.float64))
        return self._record(tools.accept_prediction(self.label, self.prediction, region, overwrite),
                            "accept prediction")

    def pick(self, point: Point) -> int | None:
        return tools.pick_class(self.label, point)

    # --- history -----------------------------------------------------------------
    def undo(self) -> Rect | None:
        self.end_stroke()
        stroke = self.history.undo(self.label)
        return self._after_history(stroke)

    def redo(self) -> Rect | None:
        self.end_stroke()
        stroke = self.history.redo(self.label)
        return self._after_history(stroke)

    def _after_history(self, stroke: Stroke | None) -> Rect | None:
        if stroke is None:
            return None
        bounds = stroke.bounds()
        if bounds is None:
            return None
        self.label_version += 1
        for fn in self.listeners:
            fn(bounds)
        return bounds

    def remap(self, lut: MaskMap, prediction: MaskMap | None = None, *, keep_history: bool = True) -> None:
        """Renumber the classes of the label and of the prediction (through ``prediction``, else ``lut``).

        The stroke in progress ends first. With ``keep_history`` the undo and
        redo steps are renumbered through the same lookup table, so undo and redo
        still give the label's earlier and later states, in the new numbers; a
        function cannot renumber them, so it needs ``keep_history=False``, which
        starts a new history (same memory bound). The whole image repaints and the
        label's version advances.
        """
        table = lut if isinstance(lut, np.ndarray) else None
        if keep_history and table is None:
            raise ValueError("only a lookup table renumbers the undo steps: pass keep_history=False")
        self.end_stroke()
        label = _mapped(lut, self.label)
        new_prediction = None if self.prediction is None else _mapped(lut if prediction is None else prediction,
                                                                     self.prediction)
        if keep_history and table is not None:
            self.history.remap(table)
        else:
            self.history = History(max_bytes=self.history.max_bytes, min_steps=self.history.min_steps)
        self.label, self.prediction = label, new_prediction
        self.label_version += 1
        h, w = self.shape
        for fn in self.listeners:
            fn((0, 0, h, w))

    def set_prediction(self, prediction: np.ndarray | None) -> None:
        if prediction is not None and prediction.shape != self.label.shape:
            raise ValueError(f"prediction {prediction.shape} does not match the image {self.label.shape}")
        self.prediction = prediction
        h, w = self.shape
        for fn in self.listeners:
            fn((0, 0, h, w))
