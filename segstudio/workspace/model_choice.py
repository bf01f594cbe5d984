"""What the model panel chooses and loads: a model file or an untrained zoo network, a backend, the class fit.

Qt-free: :func:`load_choice` and :func:`detect_runtimes` run in worker threads,
the class arithmetic is plain numpy, and the tests use all of it without a window.

Decisions (see docs/GUI_ARCHITECTURE.md):

- An **untrained network** from the zoo is a starting point for training from
  scratch, never a model: it has random weights, so Segment stays off for it.
- **Backends** are the four choices of the backend registry
  (:mod:`segstudio.inference.backends`: titles, what each runs on, why one is
  unavailable); "auto" is the registry's rule (CUDA if there is one, else ONNX
  Runtime, else PyTorch on the CPU).
- **Classes** are matched by name (case and surrounding spaces ignored). A
  model whose classes all exist in the project runs at once, its outputs
  translated to the project's indices. Otherwise the user chooses: *add the
  model's missing classes* to the project (appended: existing labels keep their
  indices), or *adopt the model's class table* (its order and colours, the
  project's other classes kept after it; every mask rewritten by name). Both
  keep every label; neither happens without the user's click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from segstudio.core.classes import ClassTable, LabelClass, mask_dtype, unlabelled_value
from segstudio.inference.backends import CHOICES, Runtimes, detect_runtimes, get_choice, quick_runtimes
from segstudio.inference.model_file import MissingCardError, ModelFile, model_format
from segstudio.inference.predictor import Predictor
from segstudio.zoo import ModelCard
from segstudio.zoo.presets import PRESETS, get_preset

__all__ = [
    "BACKENDS", "BACKEND_TITLES", "ClassFit", "LoadedModel", "ModelChoice", "NeedsClassNames", "Runtimes",
    "adopted", "detect_runtimes", "file_format", "fit_classes", "load_choice", "quick_runtimes",
    "with_missing_added",
]

BACKENDS: dict[str, tuple[str, str]] = {key: (c.engine, c.device) for key, c in CHOICES.items()}
"""The registry's backend choices → (engine, device), for the panels (the registry: ``inference.backends``)."""
BACKEND_TITLES: dict[str, str] = {key: c.title for key, c in CHOICES.items()}
UNTRAINED_REASON = ("an untrained network has random weights and gives no useful segmentation: "
                    "train it on your labels first (fine-tuning), or choose a trained model file")


@dataclass(frozen=True)
class ModelChoice:
    """A model file (``kind="file"``, ``path``) or an untrained zoo network (``kind="network"``, ``network``).

    ``preset`` names a network with settings of its own (:mod:`segstudio.zoo.presets`:
    the small-data U-Net), an explicit choice, never a silent stand-in.
    """

    kind: Literal["file", "network"]
    path: str = ""
    network: str = ""
    preset: str = ""

    @classmethod
    def file(cls, path: Path | str) -> ModelChoice:
        return cls("file", path=str(Path(path)))

    @classmethod
    def untrained(cls, network: str) -> ModelChoice:
        return cls("network", network=network)

    @classmethod
    def preset_network(cls, name: str) -> ModelChoice:
        """A preset of :mod:`segstudio.zoo.presets` (``"small-data"``: the small-data U-Net)."""
        return cls("network", network=get_preset(name).arch, preset=name)

    @property
    def title(self) -> str:
        if self.kind == "file":
            return Path(self.path).name
        return get_preset(self.preset).title if self.preset else f"{self.network} (untrained)"

    def to_json(self) -> dict[str, str]:
        d = {"kind": self.kind, "path": self.path, "network": self.network}
        return {**d, "preset": self.preset} if self.preset else d

    @classmethod
    def from_json(cls, d: object) -> ModelChoice | None:
        """The choice stored by :meth:`to_json`, or None for anything else."""
        if not isinstance(d, dict):
            return None
        kind = d.get("kind")
        if kind == "file" and isinstance(d.get("path"), str) and d["path"]:
            return cls.file(d["path"])
        if kind == "network" and isinstance(d.get("network"), str) and d["network"]:
            preset = d.get("preset")
            if preset in PRESETS:
                return cls.preset_network(str(preset))
            return cls.untrained(d["network"])
        return None


# ---------------------------------------------------------------------- classes

def _key(name: str) -> str:
    return name.strip().casefold()


@dataclass
class ClassFit:
    """How a model's classes fit the project's.

    ``lut[model label]`` is the project's class index (a lookup table over the
    model's mask dtype, in the project's mask dtype) when every model class has
    a project class of the same name; None otherwise (``missing`` names them).
    """

    lut: np.ndarray | None
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    identical: bool = False
    leading: bool = False
    """The model's classes are the project's first classes, in order (adopting its table changes nothing)."""

    def describe(self) -> str:
        if self.identical:
            return "The model's classes are the project's."
        if self.lut is None:
            return (f"The project lacks {len(self.missing)} of the model's classes: {', '.join(self.missing)}. "
                    "Choose how to fit them before segmenting.")
        text = "The model's classes are matched to the project's by name."
        if self.unused:
            text += f" The model never predicts the project's {', '.join(self.unused)}."
        return text


def fit_classes(model: ClassTable, project: ClassTable) -> ClassFit:
    """Match the model's classes to the project's by name (see the module docstring)."""
    index = {_key(c.name): c.index for c in project}
    model_keys = {_key(c.name) for c in model}
    missing = [c.name for c in model if _key(c.name) not in index]
    unused = [c.name for c in project if _key(c.name) not in model_keys]
    model_order = [_key(n) for n in model.names]
    project_order = [_key(n) for n in project.names]
    identical = not missing and model_order == project_order
    leading = not missing and model_order == project_order[:len(model_order)]
    if missing:
        return ClassFit(None, missing, unused)
    out_dtype = mask_dtype(len(project))
    size = 256 if mask_dtype(len(model)) == np.uint8 else 65536
    lut = np.full(size, unlabelled_value(out_dtype), out_dtype)
    for c in model:
        lut[c.index] = index[_key(c.name)]
    return ClassFit(lut, [], unused, identical, leading)


def with_missing_added(project: ClassTable, model: ClassTable) -> ClassTable:
    """The project's classes, then the model's classes it lacks (with the model's colours)."""
    have = {_key(n) for n in project.names}
    table = project
    for c in model:
        if _key(c.name) not in have:
            table = table.added(c.name, c.colour)
            have.add(_key(c.name))
    return table


def adopted(project: ClassTable, model: ClassTable) -> tuple[ClassTable, np.ndarray]:
    """The model's class table with the project's other classes after it, and ``lut[old index] = new index``."""
    classes = [LabelClass(c.index, c.name, c.colour) for c in model]
    by_key = {_key(c.name): c.index for c in model}
    lut = np.zeros(len(project), np.int64)
    for c in project:
        k = _key(c.name)
        if k not in by_key:
            by_key[k] = len(classes)
            classes.append(LabelClass(len(classes), c.name, c.colour))
        lut[c.index] = by_key[k]
    return ClassTable(classes), lut


# ---------------------------------------------------------------------- loading

@dataclass
class LoadedModel:
    """A model file ready to segment."""

    choice: ModelChoice
    backend: str
    predictor: Predictor
    model_id: str
    """``<file name>:<first 16 hex digits of its SHA-256>``: which model made a prediction."""

    @property
    def card(self) -> ModelCard:
        return self.predictor.card


@dataclass
class NeedsClassNames:
    """The chosen ONNX file has no segstudio card: the user must name its classes."""

    path: str
    out_channels: int | None
    reason: str


def file_format(path: Path | str) -> str | None:
    """"safetensors" or "onnx" from the file's bytes; None when it is neither (or unreadable)."""
    try:
        return model_format(path)
    except ValueError:
        return None


def load_choice(choice: ModelChoice, backend: str, class_names: list[str] | None = None,
                **predictor_options: Any) -> LoadedModel | NeedsClassNames:
    """Open a model file for ``backend`` (a key of :data:`BACKENDS`). Slow (may export to ONNX): a worker runs it.

    The file is read once (:class:`ModelFile`) and passed on to the predictor. Returns
    :class:`NeedsClassNames` for an ONNX file without a card when no ``class_names`` are given.
    Raises ``ModelFileError`` / ``CardError`` / ``ValueError`` with a readable reason.
    """
    if choice.kind != "file":
        raise ValueError(UNTRAINED_REASON)
    chosen = get_choice(backend)
    try:
        model = ModelFile.read(choice.path, class_names)
    except MissingCardError as exc:
        return NeedsClassNames(str(exc.path), exc.out_channels, exc.reason)
    predictor = Predictor.from_file(model, backend=chosen.engine, device=chosen.device, **predictor_options)
    return LoadedModel(choice, backend, predictor, model.model_id)
