"""ModelCard: what a trained model file says about itself.

A model is one ``.safetensors`` file (weights) whose metadata holds the card
as JSON under the key ``"segstudio.card"``; the ONNX export carries the same
JSON in its ``metadata_props``. The card is plain data: reading it never runs
code from the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segstudio import __version__
from segstudio.core import safe_json
from segstudio.core.classes import ClassTable
from segstudio.zoo.catalog import SPECS
from segstudio.zoo.spec import IMAGENET, Normalization

CARD_KEY = "segstudio.card"
CARD_SCHEMA = 1
UNCERTAINTY_METRIC = "mean uncertainty"
"""The metric a training run records beside mIoU: the mean normalised entropy of its predictions (0 sure … 1
uniform) on its validation images, the yardstick the app compares new images with (a domain warning)."""
DEFAULT_SIZE_MULTIPLE = 32
"""Padding multiple for a network the zoo does not know (a foreign ONNX file): safe for strides up to 32."""


class CardError(ValueError):
    """A model card that is missing, not JSON, or lacks required fields."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass
class ModelCard:
    """Architecture, classes, normalisation, metrics and history of one trained model."""

    arch: str
    classes: ClassTable
    in_channels: int = 3
    options: dict[str, Any] = field(default_factory=dict)
    normalization: Normalization = IMAGENET
    input_max: float = 255.0
    """The value that maps to 1.0 before mean/std (255 for 8-bit images, 65535 for 16-bit)."""
    train_resolution: tuple[int, int] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """Each ``{"name": "mIoU", "value": 0.71, "data": "CamVid val (101 images)", "per_class": {...}}``."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Each ``{"event": "trained"|"fine-tuned"|"imported", "when": iso, "from": ..., "data": ...}``."""
    recipe: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    created: str = field(default_factory=now_iso)
    segstudio_version: str = __version__

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def size_multiple(self) -> int:
        """Inputs padded to a multiple of this need no resizing inside the network: the spec's, or
        :data:`DEFAULT_SIZE_MULTIPLE` for a network the zoo does not know."""
        spec = SPECS.get(self.arch)
        return spec.size_multiple if spec is not None else DEFAULT_SIZE_MULTIPLE

    def metric(self, name: str) -> float | None:
        for m in reversed(self.metrics):
            if m.get("name") == name:
                return float(m["value"])
        return None

    def to_json(self) -> str:
        d = {
            "schema": CARD_SCHEMA,
            "name": self.name,
            "description": self.description,
            "arch": self.arch,
            "options": self.options,
            "classes": self.classes.to_json(),
            "in_channels": self.in_channels,
            "normalization": {**self.normalization.to_json(), "input_max": self.input_max},
            "train_resolution": list(self.train_resolution) if self.train_resolution else None,
            "metrics": self.metrics,
            "history": self.history,
            "recipe": self.recipe,
            "created": self.created,
            "segstudio_version": self.segstudio_version,
        }
        return json.dumps(d, sort_keys=False, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        try:
            d = safe_json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"the model card is not valid JSON ({exc})") from None
        if not isinstance(d, Mapping):
            raise CardError("the model card is not a JSON object")
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        schema = d.get("schema", 1)
        if not isinstance(schema, int) or schema > CARD_SCHEMA:
            raise CardError(
                f"model card schema {schema!r} is newer than this segstudio understands ({CARD_SCHEMA})"
            )
        missing = [k for k in ("arch", "classes") if k not in d]
        if missing:
            raise CardError(f"the model card lacks {', '.join(missing)}")
        try:
            norm = d.get("normalization") or {}
            tr = d.get("train_resolution")
            card = cls(
                arch=str(d["arch"]),
                classes=ClassTable.from_json(d["classes"]),
                in_channels=int(d.get("in_channels", 3)),
                options=dict(d.get("options") or {}),
                normalization=Normalization.from_json(norm) if "mean" in norm else IMAGENET,
                input_max=float(norm.get("input_max", 255.0)),
                train_resolution=(int(tr[0]), int(tr[1])) if tr else None,
                metrics=list(d.get("metrics") or []),
                history=list(d.get("history") or []),
                recipe=dict(d.get("recipe") or {}),
                name=str(d.get("name", "")),
                description=str(d.get("description", "")),
                created=str(d.get("created", "")),
                segstudio_version=str(d.get("segstudio_version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError(f"the model card is malformed: {exc}") from None
        card.check()
        return card

    def check(self) -> None:
        """Refuse values no trained model can have (``CardError``): they would build or run a broken network.

        Input channels 1 or 3, a normalisation for them, an ``input_max`` of a
        real image depth, at least one class, options as a plain mapping.
        """
        if self.in_channels not in (1, 3):
            raise CardError(f"the model card says {self.in_channels} input channels; segstudio feeds 1 or 3")
        try:
            self.normalization.for_channels(self.in_channels)
        except ValueError:
            raise CardError(f"the card's normalisation has {len(self.normalization.mean)} values, which do not fit "
                            f"{self.in_channels} input channels") from None
        if not (math.isfinite(self.input_max) and 1.0 <= self.input_max <= 65535.0):
            raise CardError(f"the card's input_max {self.input_max} is no image depth (1 to 65535)")
        if len(self.classes) < 1:
            raise CardError("the model card lists no class")
        if self.train_resolution is not None and not all(0 < v <= 1 << 16 for v in self.train_resolution):
            raise CardError(f"the card's train_resolution {list(self.train_resolution)} is not a size in pixels")
        for what, items in (("metrics", self.metrics), ("history", self.history)):
            if not all(isinstance(item, Mapping) for item in items):
                raise CardError(f"the card's {what} must be a list of objects")
        for m in self.metrics:
            value = m.get("value")
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and math.isfinite(value)):
                raise CardError(f"the card's metric {str(m.get('name'))[:40]!r} has a value that is no number")
