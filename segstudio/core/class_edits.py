"""Class changes that rewrite masks and can be undone: delete a class, merge one into another, move one.

A :class:`ClassChange` holds the class tables before and after, the lookup table
between them and — for a deletion or a merge — where the removed class was in
each mask, recorded while the masks are rewritten (a compressed bit plane per
mask that held it, so an undo costs little memory). :func:`apply` runs a change
on a project (the staged, crash-safe transaction of
:meth:`~segstudio.core.project.Project.set_classes`); :func:`undo` reverses it:
the old table, every mask renumbered back, and the removed class's pixels
restored wherever they still hold what the change gave them (a pixel painted
since keeps its new paint; a mask made since is only renumbered).

The same :meth:`ClassChange.forward` / :meth:`ClassChange.backward` rewrite the
masks of images open in the app, so they follow the files exactly.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, field

import numpy as np

from segstudio.core.classes import ClassTable, mask_dtype, unlabelled_value
from segstudio.core.masks import remap_lut, to_mask_dtype
from segstudio.core.project import Project


@dataclass
class ClassChange:
    """One class change that rewrites masks; see the module docstring."""

    what: str
    """For people: "delete class 'Road'", "merge 'Car' into 'Bus'", "move 'Sky' to place 3"."""
    before: ClassTable
    after: ClassTable
    lut: np.ndarray
    """``lut[old index]`` = new index (or the new "not labelled" marker for a deleted class)."""
    removed: int | None = None
    """The old index of the class that went away (deleted or merged), if one did."""
    into: int | None = None
    """The new index its pixels went to (a merge); None: they became "not labelled"."""
    _where: dict[tuple[str, str], tuple[tuple[int, int], bytes]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def recorded_bytes(self) -> int:
        """Memory held by the recorded pixels of the removed class."""
        return sum(len(bits) for _, bits in self._where.values())

    def _forward_lut(self) -> np.ndarray:
        return remap_lut(self.lut, len(self.before), len(self.after))

    def _backward_lut(self) -> np.ndarray:
        inverse = np.full(len(self.after), 0, np.int64)
        for old in range(len(self.before)):
            new = int(self.lut[old])
            if old != self.removed and new < len(self.after):
                inverse[new] = old
        return remap_lut(inverse, len(self.after), len(self.before))

    def forward(self, folder: str, rel: str, mask: np.ndarray) -> np.ndarray:
        """The mask ``<folder>/<rel>`` in the new classes, recording where the removed class was."""
        old = to_mask_dtype(mask, len(self.before))
        if self.removed is not None:
            bits = old == self.removed
            key = (folder, rel)
            if bits.any():
                packed = zlib.compress(np.packbits(bits).tobytes(), 1)
                with self._lock:
                    self._where.setdefault(key, (bits.shape, packed))  # the first look is the one on disk
        return self._forward_lut()[old]

    def backward(self, folder: str, rel: str, mask: np.ndarray) -> np.ndarray:
        """The mask ``<folder>/<rel>`` back in the old classes, the removed class's pixels restored where they
        still hold what the change made of them."""
        new = to_mask_dtype(mask, len(self.after))
        out = self._backward_lut()[new]
        recorded = self._where.get((folder, rel))
        if self.removed is not None and recorded is not None:
            shape, packed = recorded
            if shape == new.shape:
                count = shape[0] * shape[1]
                flat = np.unpackbits(np.frombuffer(zlib.decompress(packed), np.uint8), count=count)
                bits = flat.reshape(shape).astype(bool)
                became = self.into if self.into is not None else unlabelled_value(mask_dtype(len(self.after)))
                out[bits & (new == became)] = self.removed
        return out


def deletion(classes: ClassTable, index: int, into: int | None = None) -> ClassChange:
    """Delete class ``index``; its pixels go to class ``into`` (an index of ``classes``: a merge) or become
    "not labelled" (None)."""
    name = classes[index].name
    if into is None:
        table, lut = classes.removed(index)
        return ClassChange(f"delete class '{name}'", classes, table, lut, removed=index)
    table, lut = classes.merged(index, into)
    return ClassChange(f"merge '{name}' into '{classes[into].name}'", classes, table, lut, removed=index,
                       into=int(lut[into]))


def move(classes: ClassTable, index: int, to: int) -> ClassChange:
    """Move class ``index`` to place ``to`` in the table (its number in every mask changes with it)."""
    table, lut = classes.moved(index, to)
    return ClassChange(f"move '{classes[index].name}' to place {to + 1}", classes, table, lut)


def apply(project: Project, change: ClassChange) -> None:
    """Make ``change`` in ``project`` (staged and crash-safe; ``SaveError`` / ``ProjectError`` leave it as it was)."""
    if project.classes != change.before:
        raise ValueError(f"cannot {change.what}: the classes changed meanwhile")
    project.set_classes(change.after, change.lut, remap=change.forward)


def undo(project: Project, change: ClassChange) -> None:
    """Reverse ``change`` in ``project``: the old classes, the masks renumbered back, the removed pixels restored."""
    if project.classes != change.after:
        raise ValueError(f"cannot undo '{change.what}': the classes changed since")
    inverse = np.arange(len(change.after))  # the partial table set_classes wants; the remap does the work
    project.set_classes(change.before, inverse, remap=change.backward)
