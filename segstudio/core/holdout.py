"""Held-out corrections: a fixed, append-only split of a project's labelled images into train and held-out.

Fine-tuning learns from the *train* side; the *held-out* side is never
trained on, so it can tell whether a new model version is better (early
stopping, "how good is it" before → after, and the guard that keeps a worse
version from becoming active). Scores on images a model was trained on say
how well it memorised the user's strokes, not how good it is.

The rule (:func:`side_of`): images are assigned in the order they are first
seen labelled, and the k-th one (1-based) is held out when
``k % HOLDOUT_EVERY == 2`` — the 2nd, 7th, 12th … — so the first correction
always trains, the second already gives a held-out image, and about one in
:data:`HOLDOUT_EVERY` is held out as the project grows. Spreading the held-out
images over the order of correction (rather than drawing them at random)
also spreads them over a video sequence corrected frame after frame.

Append-only: an image's side never changes once assigned, not when other
images are added, not when its label is deleted (labelled again, it returns
to its side), not when the project is reopened. The assignments are kept in
``<project>/.segstudio-training/split.json`` (written atomically); the same
rule applied to a list of folders' images (``segstudio train --images``)
gives the same split as a project whose images were corrected in that order.

Standard library only: the training engine, the app and the command line all
read the split from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from segstudio.core.atomic import atomic_write_text
from segstudio.core.project_file import TRAINING_DIR

Side = Literal["train", "holdout"]
HOLDOUT_EVERY = 5
"""About one labelled image in this many is held out (the 2nd, 7th, 12th …)."""
SPLIT_FILE = "split.json"
SPLIT_KIND = "segstudio held-out split"
MIN_HOLDOUT_TO_JUDGE = 1
"""Held-out images needed before a version can be judged better or worse at all."""
FEW_HOLDOUT = 3
"""Below this many held-out images a judgement is rough, and the app says so."""


def side_of(position: int, every: int = HOLDOUT_EVERY) -> Side:
    """The side of the ``position``-th assigned image (1-based): held out when ``position % every == 2``."""
    if position < 1 or every < 2:
        raise ValueError(f"positions start at 1 and one in at least 2 is held out, got {position}, {every}")
    return "holdout" if position % every == 2 % every else "train"


def split_names(names: Sequence[str], every: int = HOLDOUT_EVERY) -> tuple[list[str], list[str]]:
    """(train, held-out) of ``names`` taken as corrected in this order (the rule of :func:`side_of`)."""
    train: list[str] = []
    held: list[str] = []
    for k, name in enumerate(names, start=1):
        (held if side_of(k, every) == "holdout" else train).append(name)
    return train, held


def split_file(project_root: Path | str) -> Path:
    return Path(project_root) / TRAINING_DIR / SPLIT_FILE


class SplitFileError(ValueError):
    """The split file exists but cannot be read; it is never overwritten silently."""


@dataclass
class HeldOutSplit:
    """The assignments of one project, in assignment order (see the module docstring)."""

    path: Path | None = None
    order: list[str] = field(default_factory=list)
    sides: dict[str, Side] = field(default_factory=dict)
    every: int = HOLDOUT_EVERY

    @classmethod
    def load(cls, project_root: Path | str) -> HeldOutSplit:
        """The project's split (empty when there is none yet). Raises :class:`SplitFileError` for a file that
        cannot be read: replacing it would reassign images, so the caller must say so instead."""
        path = split_file(project_root)
        split = cls(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return split
        except (OSError, UnicodeDecodeError) as exc:
            raise SplitFileError(f"cannot read the held-out split {path}: {exc}") from None
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("kind") != SPLIT_KIND:
                raise ValueError("not a segstudio held-out split")
            split.every = int(doc.get("every", HOLDOUT_EVERY))
            for item in doc["images"]:
                name, side = str(item["image"]), item["side"]
                if side not in ("train", "holdout") or name in split.sides:
                    raise ValueError(f"bad entry {item!r}")
                split.order.append(name)
                split.sides[name] = side
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise SplitFileError(f"the held-out split {path} is damaged ({exc}); move it aside to start a new "
                                 "split (every image will be assigned again)") from None
        return split

    def assign(self, names: Iterable[str]) -> list[str]:
        """Give each new name in ``names`` (in that order) its side; names already assigned keep theirs.
        Returns the names newly assigned."""
        new: list[str] = []
        for name in names:
            if name in self.sides:
                continue
            self.order.append(name)
            self.sides[name] = side_of(len(self.order), self.every)
            new.append(name)
        return new

    def side(self, name: str) -> Side | None:
        return self.sides.get(name)

    def train_names(self, among: Iterable[str] | None = None) -> list[str]:
        return self._names("train", among)

    def holdout_names(self, among: Iterable[str] | None = None) -> list[str]:
        return self._names("holdout", among)

    def _names(self, side: Side, among: Iterable[str] | None) -> list[str]:
        wanted = set(among) if among is not None else None
        return [n for n in self.order if self.sides[n] == side and (wanted is None or n in wanted)]

    def save(self) -> None:
        """Write the split atomically (raises ``SaveError``)."""
        if self.path is None:
            return
        doc = {"kind": SPLIT_KIND, "schema": 1, "every": self.every,
               "images": [{"image": n, "side": self.sides[n]} for n in self.order]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(doc, indent=1) + "\n")


def sync_split(project_root: Path | str, labelled: Sequence[str]) -> HeldOutSplit:
    """Load the project's split, assign the labelled images it does not know yet (in the given order), and
    save it when anything was added."""
    split = HeldOutSplit.load(project_root)
    if split.assign(labelled):
        split.save()
    return split
