"""Which model made a batch output: recorded in the class map itself, checked before a run resumes.

Every class map a batch run writes carries a PNG text chunk
(:data:`MODEL_KEY`) naming the model file and the first 16 hex digits of its
SHA-256 (of the card, for a model in memory). A run into a folder that already
holds finished outputs skips them only when they came from the same model; an
output from another model (or one with no record) stops the run with
:class:`OtherModelError` unless the caller asked to overwrite — the CLI's
``--overwrite``, the GUI's question — so a folder never ends up mixing two
models' results without a word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segstudio.core.png_text import read_text
from segstudio.inference.model_file import ModelFile, file_sha256

if TYPE_CHECKING:
    from segstudio.inference.predictor import Predictor

MODEL_KEY = "segstudio.model"
"""The PNG text key of the model record."""


def file_tag(path: Path | str | ModelFile) -> str:
    """``"<file name> sha256:<16 hex digits>"`` of a model file (raises ``OSError``); a :class:`ModelFile`
    gives its hash, computed once."""
    if isinstance(path, ModelFile):
        return f"{path.path.name} sha256:{path.sha256[:16]}"
    return f"{Path(path).name} sha256:{file_sha256(path)[:16]}"


def model_tag(predictor: Predictor) -> str:
    """:func:`file_tag` of the predictor's model file (or ``"<name> card:<…>"`` for a model in memory)."""
    source = getattr(predictor, "model_file", None) or getattr(predictor, "source", None)
    if source is not None:
        try:
            return file_tag(source)
        except OSError:
            pass  # the file went away after it was loaded: the card still identifies the model
    card = predictor.card
    digest = hashlib.sha256(card.to_json().encode("utf-8")).hexdigest()[:16]
    return f"{card.name or card.arch} card:{digest}"


def _identity(tag: str) -> str:
    return tag.rpartition(" ")[2]  # the digest: a renamed model file is still the same model


def recorded_model(path: Path) -> str | None:
    """The model record of a class map written by a batch run, or None when it has none."""
    return read_text(path).get(MODEL_KEY)


def same_model(recorded: str | None, tag: str) -> bool:
    return recorded is not None and _identity(recorded) == _identity(tag)


class OtherModelError(ValueError):
    """The output folder holds finished results of another model; resuming would mix the two."""

    def __init__(self, out_dir: Path | str, sources: Sequence[Path], recorded: str | None, tag: str) -> None:
        other = f"made with {recorded}" if recorded else "with no record of their model"
        super().__init__(
            f"{out_dir} holds results of {len(sources)} image(s) {other}, e.g. {sources[0].name}; this run uses "
            f"{tag}. Segment again with --overwrite to replace them, or choose another output folder"
        )
        self.out_dir = Path(out_dir)
        self.sources = list(sources)
        self.recorded = recorded
        self.tag = tag
