"""Label classes: names, colours and the index each one has in a mask.

A mask pixel holds a class index, or :data:`UNLABELLED` (255) where nobody has
labelled it. With more than 254 classes masks become uint16 and 65535 marks
"not labelled"; :func:`unlabelled_value` gives the marker for a dtype.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

UNLABELLED = 255
"""Mask value of a pixel nobody labelled (uint8 masks). Ignored by training and metrics."""

UNLABELLED_16 = 65535
"""The same marker for uint16 masks (more than 254 classes)."""

MAX_CLASSES_8BIT = 254
"""Up to this many classes masks are uint8 (0..253 for classes, 255 unlabelled)."""

RGB = tuple[int, int, int]


def mask_dtype(num_classes: int) -> np.dtype:
    """uint8 for up to 254 classes, uint16 beyond."""
    return np.dtype(np.uint8) if num_classes <= MAX_CLASSES_8BIT else np.dtype(np.uint16)


def unlabelled_value(dtype: np.dtype | type) -> int:
    return UNLABELLED if np.dtype(dtype) == np.uint8 else UNLABELLED_16


def voc_palette(n: int = 256) -> list[RGB]:
    """The PASCAL VOC colour map (bit-interleaved), as used in VOC palette PNGs."""
    out: list[RGB] = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


# Easily told apart, and visible on dark images (EM, night scenes) and light ones alike: no black, white,
# grey or pale colour (each has a luminance contrast of at least 2 against black and 1.25 against white, and
# a chroma of at least 100, so it also stands out on grey). Beyond these, golden-angle hues, equally visible.
_DISTINCT: list[RGB] = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (170, 210, 30), (255, 105, 180),
    (0, 128, 128), (150, 90, 255), (170, 110, 40), (0, 190, 160), (200, 70, 20),
    (255, 160, 120), (128, 128, 0), (255, 80, 80), (100, 120, 255), (190, 150, 0),
]


def relative_luminance(colour: Sequence[int]) -> float:
    """The WCAG relative luminance of an sRGB colour (0 black … 1 white)."""
    def linear(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(v)) for v in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _golden_hue_colour(index: int) -> RGB:
    hue = (index * 0.618033988749895) % 1.0
    value = 1.0
    while True:
        r, g, b = colorsys.hsv_to_rgb(hue, 0.8, value)
        colour = (round(r * 255), round(g * 255), round(b * 255))
        if relative_luminance(colour) <= 0.6:  # not too pale to see on a white image
            return colour
        value -= 0.05


def default_colour(index: int) -> RGB:
    """A distinct colour for class ``index`` (stable: the same index always gets the same colour), visible
    over dark and light images."""
    if index < len(_DISTINCT):
        return _DISTINCT[index]
    return _golden_hue_colour(index)


CAMVID_CLASSES: list[tuple[str, RGB]] = [
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
]
"""The 11 CamVid classes in the SegNet order with the SegNet colours (index 11 = void)."""


def _check_colour(colour: Sequence[int]) -> RGB:
    if len(colour) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in colour):
        raise ValueError(f"a colour is three integers 0..255, got {colour!r}")
    return (int(colour[0]), int(colour[1]), int(colour[2]))


@dataclass(frozen=True)
class LabelClass:
    """One class: its index in masks, a name and an RGB colour."""

    index: int
    name: str
    colour: RGB

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a class needs a name")
        if self.index < 0 or self.index >= UNLABELLED_16:
            raise ValueError(f"class index {self.index} out of range")
        object.__setattr__(self, "colour", _check_colour(self.colour))

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "colour": list(self.colour)}

    @classmethod
    def from_json(cls, d: dict) -> LabelClass:
        return cls(int(d["index"]), str(d["name"]), tuple(d["colour"]))  # type: ignore[arg-type]


class ClassTable:
    """The ordered classes of a project or model: index i is ``classes[i]``.

    Indices are always 0..n-1 (masks store them directly); renaming or
    recolouring keeps the index, merging rewrites masks (see ``merge_map``).
    """

    def __init__(self, classes: Iterable[LabelClass] = ()) -> None:
        self._classes: list[LabelClass] = list(classes)
        for i, c in enumerate(self._classes):
            if c.index != i:
                raise ValueError(f"class {c.name!r} has index {c.index}, expected {i}")
        names = [c.name for c in self._classes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate class names: {sorted(dup)}")

    @classmethod
    def from_names(cls, names: Sequence[str], colours: Sequence[RGB] | None = None) -> ClassTable:
        cols = list(colours) if colours is not None else [default_colour(i) for i in range(len(names))]
        if len(cols) != len(names):
            raise ValueError("need one colour per class name")
        return cls(LabelClass(i, n, c) for i, (n, c) in enumerate(zip(names, cols)))

    @classmethod
    def camvid(cls) -> ClassTable:
        return cls.from_names([n for n, _ in CAMVID_CLASSES], [c for _, c in CAMVID_CLASSES])

    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self) -> Iterator[LabelClass]:
        return iter(self._classes)

    def __getitem__(self, index: int) -> LabelClass:
        return self._classes[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassTable) and self._classes == other._classes

    def __repr__(self) -> str:
        return f"ClassTable({[c.name for c in self._classes]})"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._classes]

    @property
    def colours(self) -> list[RGB]:
        return [c.colour for c in self._classes]

    def index_of(self, name: str) -> int:
        for c in self._classes:
            if c.name == name:
                return c.index
        raise KeyError(f"no class named {name!r}; classes are {self.names}")

    def added(self, name: str, colour: RGB | None = None) -> ClassTable:
        i = len(self._classes)
        return ClassTable([*self._classes, LabelClass(i, name, colour or default_colour(i))])

    def renamed(self, index: int, name: str) -> ClassTable:
        return self._replace(index, name=name)

    def recoloured(self, index: int, colour: RGB) -> ClassTable:
        return self._replace(index, colour=colour)

    def _replace(self, index: int, name: str | None = None, colour: RGB | None = None) -> ClassTable:
        old = self._classes[index]
        new = LabelClass(index, name if name is not None else old.name, colour or old.colour)
        return ClassTable([new if c.index == index else c for c in self._classes])

    def merged(self, source: int, target: int) -> tuple[ClassTable, np.ndarray]:
        """Merge class ``source`` into ``target``.

        Returns the new table (``source`` removed, later indices shifted down)
        and a lookup table ``lut`` such that ``lut[old_mask]`` is the new mask
        (unlabelled stays unlabelled).
        """
        n = len(self._classes)
        if not (0 <= source < n and 0 <= target < n) or source == target:
            raise ValueError(f"cannot merge class {source} into {target}")
        kept = [c for c in self._classes if c.index != source]
        table = ClassTable(LabelClass(i, c.name, c.colour) for i, c in enumerate(kept))
        size = 65536 if n > MAX_CLASSES_8BIT else 256
        lut = np.arange(size, dtype=np.int64)
        for c in self._classes:
            new_index = target if c.index == source else c.index
            lut[c.index] = new_index - (1 if new_index > source else 0)
        dtype = mask_dtype(len(table))
        return table, lut.astype(dtype if size == 256 else np.uint16)

    def _identity_lut(self) -> np.ndarray:
        return np.arange(65536 if len(self._classes) > MAX_CLASSES_8BIT else 256, dtype=np.int64)

    def removed(self, index: int) -> tuple[ClassTable, np.ndarray]:
        """Delete class ``index``; its pixels become "not labelled" (later indices shift down).

        Returns the new table and the lookup table ``lut[old_mask]`` = new mask, like :meth:`merged`.
        """
        n = len(self._classes)
        if not 0 <= index < n:
            raise ValueError(f"there is no class {index} to delete ({n} classes)")
        kept = [c for c in self._classes if c.index != index]
        table = ClassTable(LabelClass(i, c.name, c.colour) for i, c in enumerate(kept))
        lut = self._identity_lut()
        unl_new = unlabelled_value(mask_dtype(len(table)))
        unl_old = unlabelled_value(mask_dtype(n))
        lut[unl_old] = unl_new
        for c in self._classes:
            lut[c.index] = unl_new if c.index == index else c.index - (1 if c.index > index else 0)
        return table, lut.astype(mask_dtype(len(table)) if lut.size == 256 else np.uint16)

    def moved(self, index: int, to: int) -> tuple[ClassTable, np.ndarray]:
        """Move class ``index`` to position ``to`` (the others keep their order); returns the new table and the
        lookup table that renumbers the masks."""
        n = len(self._classes)
        if not (0 <= index < n and 0 <= to < n):
            raise ValueError(f"cannot move class {index} to {to} ({n} classes)")
        order = [c for c in self._classes if c.index != index]
        order.insert(to, self._classes[index])
        table = ClassTable(LabelClass(i, c.name, c.colour) for i, c in enumerate(order))
        lut = self._identity_lut()
        for new, c in enumerate(order):
            lut[c.index] = new
        return table, lut.astype(mask_dtype(n) if lut.size == 256 else np.uint16)

    def lut_rgb(self, unlabelled: RGB = (0, 0, 0)) -> np.ndarray:
        """A (256 or 65536)×3 uint8 lookup table: ``lut[mask]`` is the colour image."""
        size = 65536 if len(self._classes) > MAX_CLASSES_8BIT else 256
        lut = np.zeros((size, 3), np.uint8)
        lut[:] = unlabelled
        for c in self._classes:
            lut[c.index] = c.colour
        return lut

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self._classes]

    @classmethod
    def from_json(cls, items: Sequence[dict]) -> ClassTable:
        return cls(LabelClass.from_json(d) for d in items)
