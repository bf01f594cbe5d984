"""Test-time augmentation: which views of an image the predictor averages, and which a model gets by default.

- :class:`TTA` names the views: each scale, and at each scale either the image
  and its horizontal mirror (the DeepLabv3 evaluation recipe) or the eight
  symmetries of the square (``dihedral``: four quarter turns, each with and
  without a mirror). The predictor averages the views' probabilities.
- :func:`card_tta` is the default for a model file: the eight symmetries at
  scale 1 for a model whose training recipe turned its crops by quarter turns
  and mirrored them (micrographs, satellite tiles: no "up"). Such a network was
  taught that the eight views are the same image, so averaging them is an
  ensemble that costs no training; on ISBI membranes it added 0.02–0.05 mIoU to
  the small-data U-Net (docs/BENCHMARKS.md). Street-scene models (mirrors only,
  or no recipe) get none: the default costs them nothing.
- :func:`resolve_tta` is how a caller's choice (``None`` the model's default,
  ``False`` none, ``True`` the full multi-scale recipe, or a :class:`TTA`)
  becomes the views used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class View(NamedTuple):
    """One view of an image: H and W swapped first, then mirrored along H (rows), then along W."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False


IDENTITY = View()


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: each scale × the views (a mirror, or the eight symmetries); probabilities averaged."""

    scales: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    flip: bool = True
    dihedral: bool = False
    """The eight symmetries of the square instead of the horizontal mirror (``flip`` is then implied)."""

    def __post_init__(self) -> None:
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(f"TTA scales must be positive, got {self.scales}")

    def views(self) -> Iterator[View]:
        if self.dihedral:
            for t in (False, True):
                for r in (False, True):
                    for c in (False, True):
                        yield View(t, r, c)
        else:
            yield IDENTITY
            if self.flip:
                yield View(flip_cols=True)

    @property
    def passes(self) -> int:
        return len(self.scales) * (8 if self.dihedral else 2 if self.flip else 1)


DIHEDRAL = TTA(scales=(1.0,), dihedral=True)
"""The eight symmetries of the square at the image's own scale."""

TTAChoice = TTA | bool | None
"""``None``: the model's default; ``False``: none; ``True``: :class:`TTA`'s multi-scale mirror recipe."""


def card_tta(recipe: Mapping[str, Any] | None) -> TTA | None:
    """The default views for a model trained with ``recipe`` (its card's): the eight symmetries when its crops
    were turned by quarter turns and mirrored, else none."""
    augment = (recipe or {}).get("augment")
    if not isinstance(augment, Mapping):
        return None
    if augment.get("rot90") and (augment.get("hflip") or augment.get("vflip")):
        return DIHEDRAL
    return None


def resolve_tta(choice: TTAChoice, default: TTA | None) -> TTA | None:
    """The views for a caller's ``choice`` when the model's default is ``default``."""
    if choice is None:
        return default
    if choice is True:
        return TTA()
    if choice is False:
        return None
    return choice
