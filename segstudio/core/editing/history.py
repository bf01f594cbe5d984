"""Edits as data: bounding-box undo atoms grouped into strokes, and a bounded history.

An :class:`Atom` records one rectangular change of a mask: where, the values
before and the values after (zlib-compressed once the stroke is committed;
label maps compress 20–100×). A :class:`Stroke` is one user action — a brush
drag, a fill, a polygon — and one undo step. :class:`History` keeps strokes
for undo/redo within a memory bound, dropping the oldest first. Never whole-mask
copies: the cost of a step is the area it touched.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Atom:
    """Values of ``mask[y0:y0+h, x0:x0+w]`` before and after one change."""

    y0: int
    x0: int
    shape: tuple[int, int]
    dtype: np.dtype
    _before: bytes | np.ndarray
    _after: bytes | np.ndarray

    @classmethod
    def record(cls, y0: int, x0: int, before: np.ndarray, after: np.ndarray) -> Atom:
        if before.shape != after.shape or before.ndim != 2:
            raise ValueError("an atom needs two 2-D arrays of one shape")
        return cls(y0, x0, (int(before.shape[0]), int(before.shape[1])), before.dtype,
                   before.copy(), after.copy())

    def compress(self) -> None:
        if isinstance(self._before, np.ndarray):
            self._before = zlib.compress(np.ascontiguousarray(self._before).tobytes(), 1)
        if isinstance(self._after, np.ndarray):
            self._after = zlib.compress(np.ascontiguousarray(self._after).tobytes(), 1)

    def _values(self, data: bytes | np.ndarray) -> np.ndarray:
        if isinstance(data, np.ndarray):
            return data
        return np.frombuffer(zlib.decompress(data), dtype=self.dtype).reshape(self.shape)

    @property
    def before(self) -> np.ndarray:
        return self._values(self._before)

    @property
    def after(self) -> np.ndarray:
        return self._values(self._after)

    @property
    def nbytes(self) -> int:
        return sum(len(d) if isinstance(d, bytes) else int(d.nbytes) for d in (self._before, self._after))

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """(y0, x0, height, width)."""
        return self.y0, self.x0, self.shape[0], self.shape[1]

    def apply(self, mask: np.ndarray, forward: bool) -> None:
        h, w = self.shape
        mask[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.after if forward else self.before

    def remap(self, lut: np.ndarray) -> None:
        """Renumber the values before and after through ``lut`` (``lut[old value]`` = new value, new dtype)."""
        compressed = not isinstance(self._before, np.ndarray)
        before, after = lut[self.before], lut[self.after]
        self._before, self._after, self.dtype = before, after, before.dtype
        if compressed:
            self.compress()


@dataclass
class Stroke:
    """One undo step: the atoms of one user action, in the order they were applied."""

    label: str
    atoms: list[Atom] = field(default_factory=list)

    def add(self, atom: Atom | None) -> None:
        if atom is not None:
            self.atoms.append(atom)

    @property
    def empty(self) -> bool:
        return not self.atoms

    def undo(self, mask: np.ndarray) -> None:
        for atom in reversed(self.atoms):
            atom.apply(mask, forward=False)

    def redo(self, mask: np.ndarray) -> None:
        for atom in self.atoms:
            atom.apply(mask, forward=True)

    def compress(self) -> None:
        for atom in self.atoms:
            atom.compress()

    def remap(self, lut: np.ndarray) -> None:
        for atom in self.atoms:
            atom.remap(lut)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.atoms)

    def bounds(self) -> tuple[int, int, int, int] | None:
        """(y0, x0, y1, x1) covering every atom, or None when empty: the area to repaint."""
        if not self.atoms:
            return None
        y0 = min(a.y0 for a in self.atoms)
        x0 = min(a.x0 for a in self.atoms)
        y1 = max(a.y0 + a.shape[0] for a in self.atoms)
        x1 = max(a.x0 + a.shape[1] for a in self.atoms)
        return y0, x0, y1, x1


class History:
    """Undo/redo of strokes on one mask, bounded by memory (oldest steps dropped first).

    ``max_bytes`` bounds the compressed size of all kept steps; at least
    ``min_steps`` recent steps are kept whatever their size, so a huge fill
    can still be undone.
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, min_steps: int = 1) -> None:
        self.max_bytes = max_bytes
        self.min_steps = min_steps
        self._done: list[Stroke] = []
        self._undone: list[Stroke] = []
        self._bytes = 0

    def push(self, stroke: Stroke) -> None:
        """Record an already applied stroke (empty strokes are ignored); clears the redo list."""
        if stroke.empty:
            return
        stroke.compress()
        self._done.append(stroke)
        self._bytes += stroke.nbytes
        for s in self._undone:
            self._bytes -= s.nbytes
        self._undone.clear()
        while self._bytes > self.max_bytes and len(self._done) > self.min_steps:
            self._bytes -= self._done.pop(0).nbytes

    def undo(self, mask: np.ndarray) -> Stroke | None:
        if not self._done:
            return None
        stroke = self._done.pop()
        stroke.undo(mask)
        self._undone.append(stroke)
        return stroke

    def redo(self, mask: np.ndarray) -> Stroke | None:
        if not self._undone:
            return None
        stroke = self._undone.pop()
        stroke.redo(mask)
        self._done.append(stroke)
        return stroke

    def remap(self, lut: np.ndarray) -> None:
        """Renumber every undo and redo step through ``lut`` (a mask renumbered the same way: undo and redo then
        give that mask's earlier and later states, renumbered)."""
        for stroke in (*self._done, *self._undone):
            stroke.remap(lut)
        self._bytes = sum(s.nbytes for s in (*self._done, *self._undone))

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_steps(self) -> int:
        return len(self._done)

    @property
    def redo_steps(self) -> int:
        return len(self._undone)

    @property
    def undo_label(self) -> str | None:
        """The label of the stroke :meth:`undo` would revert (for "Undo brush" menus), or None."""
        return self._done[-1].label if self._done else None

    @property
    def redo_label(self) -> str | None:
        """The label of the stroke :meth:`redo` would re-apply, or None."""
        return self._undone[-1].label if self._undone else None

    @property
    def nbytes(self) -> int:
        return self._bytes
