"""NetSpec: what a network in the zoo is, readable without importing torch.

The GUI lists networks, the training engine weights auxiliary losses and the
predictor pads inputs from these specs alone; ``segstudio.nets`` builds the
modules with the builder each spec names, its variant's config and its options.
A network's train-mode output is a dict ``{"out": logits, <aux name>: tensor,
...}`` whose aux names are those listed in ``aux_outputs``; its eval-mode
output is the logits tensor alone (N×classes×H×W at the input size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AuxKind = Literal["logits", "presence"]
Speed = Literal["realtime", "fast", "medium", "heavy"]


class UnknownNetworkError(KeyError):
    """An unknown network name; the message lists the valid ones."""

    def __init__(self, name: str, valid: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.valid = valid

    def __str__(self) -> str:
        return f"unknown network {self.name!r}; available networks: {', '.join(self.valid)}"


class BadOptionError(ValueError):
    """An option a network does not have, or a value it does not accept."""


@dataclass(frozen=True)
class Option:
    """A constructor option of a network, with its default and allowed values."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def check(self, value: Any) -> Any:
        if self.choices is not None and value not in self.choices:
            raise BadOptionError(
                f"option {self.name}={value!r} is not one of {', '.join(map(repr, self.choices))}"
            )
        return value


@dataclass(frozen=True)
class AuxOutput:
    """An auxiliary or deep-supervision output present in train mode.

    ``kind="logits"``: N×classes×h×w logits at any resolution; the training
    engine resizes them to the label size and applies the main segmentation
    loss times ``weight``. ``kind="presence"``: N×classes image-level logits
    (e.g. UNet 3+'s classification-guided module), trained with binary
    cross-entropy against "class present in the label".
    """

    name: str
    weight: float
    kind: AuxKind = "logits"
    help: str = ""


MAX_NORMALIZATION_MAGNITUDE = 1e3
"""|mean| and 1/std beyond this cannot come from real data in 0..1: such a card is refused."""


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std in units of the input range (0..1 after dividing by the dtype max).

    Checked when made: as many means as stds (1 to 4), every value finite, each
    std positive and not tiny, each mean of a sane size (``ValueError``
    otherwise), so that a card with ``std=0`` is refused instead of segmenting
    into NaN.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.mean) <= 4 or len(self.std) != len(self.mean):
            raise ValueError(f"normalisation needs 1 to 4 means and as many stds, got {len(self.mean)} means and "
                             f"{len(self.std)} stds")
        values = [*self.mean, *self.std]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ValueError(f"normalisation values must be finite numbers, got mean {list(self.mean)}, "
                             f"std {list(self.std)}")
        if any(s < 1 / MAX_NORMALIZATION_MAGNITUDE for s in self.std):
            raise ValueError(f"normalisation std must be positive (at least {1 / MAX_NORMALIZATION_MAGNITUDE:g}), "
                             f"got {list(self.std)}")
        if any(abs(m) > MAX_NORMALIZATION_MAGNITUDE for m in self.mean):
            raise ValueError(f"normalisation mean {list(self.mean)} is not of the size of data in 0..1")

    def for_channels(self, channels: int) -> Normalization:
        """Mean/std for ``channels`` input channels (1-channel input uses the channel average)."""
        if channels == len(self.mean):
            return self
        if channels == 1:
            return Normalization((sum(self.mean) / len(self.mean),), (sum(self.std) / len(self.std),))
        raise ValueError(f"no normalisation for {channels} channels")

    def to_json(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Normalization:
        return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))


IMAGENET = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""The usual mean/std; networks trained from scratch use it too (it only centres the data)."""


@dataclass(frozen=True)
class NetSpec:
    """Everything about a registered network that does not need torch."""

    name: str
    family: str
    title: str
    paper: str
    output_stride: int
    """Resolution of the main head relative to the input (4: logits made at 1/4, then upsampled)."""
    size_multiple: int
    """Inputs whose sides are multiples of this need no internal resizing; the predictor pads to it."""
    speed: Speed
    description: str
    builder: str
    """What builds it: ``"<module>:<function>"`` (e.g. ``"segstudio.nets.unet:build_unet"``), imported on first
    use and called as ``function(num_classes=, in_channels=, **config, **options)``."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The variant's fixed hyper-parameters (widths, depths…), passed to the builder; not user options."""
    aux_outputs: tuple[AuxOutput, ...] = ()
    options: tuple[Option, ...] = ()
    """The options a user may set, each with its default: the only place a default is written."""
    normalization: Normalization = IMAGENET
    reference_params: int | None = None
    """Parameter count of the reference implementation at 19 classes (docs/MODEL_NOTES.md), if known."""
    reference_options: Mapping[str, Any] = field(default_factory=dict)
    """Options under which ``reference_params`` was counted (e.g. auxiliary heads off)."""
    reference_note: str = ""

    def option_names(self) -> list[str]:
        return [o.name for o in self.options]

    def resolve_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names or bad values raise :class:`BadOptionError`."""
        known = {o.name: o for o in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise BadOptionError(f"{self.name} has no option {', '.join(unknown)}; its options are: {valid}")
        return {name: o.check(given[name]) if name in given else o.default for name, o in known.items()}

    def aux(self, name: str) -> AuxOutput:
        for a in self.aux_outputs:
            if a.name == name:
                return a
        raise KeyError(f"{self.name} has no auxiliary output {name!r}")

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for listings (CLI ``models --json``, the GUI's model panel)."""
        return {
            "name": self.name,
            "family": self.family,
            "title": self.title,
            "paper": self.paper,
            "output_stride": self.output_stride,
            "speed": self.speed,
            "description": self.description,
            "options": {o.name: o.default for o in self.options},
            "aux_outputs": {a.name: a.weight for a in self.aux_outputs},
            "reference_params": self.reference_params,
        }
