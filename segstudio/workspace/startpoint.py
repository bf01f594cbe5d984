"""Where a training run starts, and the recipe that suits it. Qt-free; the app and the CLI share it.

The rules (issue: fine-tuning that makes the model better):

- A ``.safetensors`` model file is **fine-tuned** with the fine-tuning recipe
  (:func:`segstudio.training.config.finetune_recipe`).
- An ONNX file is fine-tuned through its ``.safetensors`` twin beside it (same
  stem, same card): the shipped default model is an ONNX file with its twin.
  Without a twin it cannot be trained, and the run does not start: nothing is
  put in its place behind the user's back.
- A zoo network is **trained from scratch** — that network, with
  :func:`~segstudio.training.config.network_scratch_recipe`.
- The small-data U-Net is a choice of its own (a preset), trained from scratch
  with :func:`~segstudio.training.config.small_data_recipe`.

Resolving a start point reads model cards only (no torch);
:func:`run_config` builds the engine's config and imports the training
engine (torch): call it where that may take a second (a worker, the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from segstudio.inference.model_file import ModelFileError, load_card, trainable_file
from segstudio.workspace.model_choice import ModelChoice
from segstudio.zoo import CardError, UnknownNetworkError, get_spec
from segstudio.zoo.presets import get_preset

if TYPE_CHECKING:
    from segstudio.training.config import TrainConfig

StartKind = Literal["finetune", "scratch", "none"]
Mode = Literal["rounds", "continuous"]
DEFAULT_SECONDS = {"finetune": 180, "scratch": 600}
"""The default length of a round: fine-tuning 3 minutes (its early stop often ends it sooner); from scratch 10."""


@dataclass(frozen=True)
class StartPoint:
    """What a run starts from. ``kind`` "none" means it cannot start; ``text`` says why, or what will happen."""

    kind: StartKind
    text: str
    init: str | None = None
    """The ``.safetensors`` file fine-tuned."""
    arch: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    preset: str = ""
    card_recipe: dict[str, Any] | None = None
    """The recipe the fine-tuned model was trained with (its card's), which the fine-tuning recipe follows."""

    @property
    def blocked(self) -> str | None:
        return self.text if self.kind == "none" else None


def start_point(choice: ModelChoice | None) -> StartPoint:
    """The start point of a run for the model or network the user chose (see the module docstring)."""
    if choice is None:
        return StartPoint("none", "Choose a model file to fine-tune, or a network to train from scratch, in the "
                                  "Model panel.")
    if choice.kind == "network":
        if choice.preset:
            preset = get_preset(choice.preset)
            return StartPoint("scratch", f"Trains the {preset.title[0].lower()}{preset.title[1:]}: "
                                         f"{preset.description}", arch=preset.arch, options=dict(preset.options),
                              preset=preset.name)
        try:
            spec = get_spec(choice.network)
        except UnknownNetworkError as exc:
            return StartPoint("none", str(exc))
        return StartPoint("scratch", f"Trains {spec.title} ({spec.name}) from scratch on your corrections: it "
                                     "starts from random weights, so it needs many steps before it is useful.",
                          arch=spec.name)
    path = Path(choice.path)
    try:
        trainable = trainable_file(path)
        card = load_card(trainable) if trainable is not None else None
    except (ModelFileError, CardError, OSError) as exc:
        return StartPoint("none", f"{path.name} cannot be trained: {exc}")
    if trainable is None or card is None:
        return StartPoint("none", f"{path.name} is an ONNX file without its .safetensors twin (same name, same "
                                  "model card) beside it, and an ONNX file cannot be trained. Open the .safetensors "
                                  "file, or choose a network to train from scratch.")
    twin = f" (the PyTorch twin of {path.name})" if trainable != path else ""
    return StartPoint("finetune", f"Fine-tunes {trainable.name}{twin}; each new version is kept in the project, "
                                  "and becomes active only when it scores at least as well on your held-out "
                                  "corrections.", init=str(trainable), arch=card.arch, options=dict(card.options),
                      card_recipe=card.recipe)


@dataclass(frozen=True)
class RunSettings:
    """What the user sets for a run; None fields take the recipe's value."""

    seconds: float | None = None
    steps: int | None = None
    lr: float | None = None
    loss: str | None = None
    freeze_encoder: bool | None = None
    mode: Mode = "rounds"

    def with_length(self, seconds: float | None = None, steps: int | None = None) -> RunSettings:
        return replace(self, seconds=seconds, steps=steps)


def run_config(start: StartPoint, settings: RunSettings, output_dir: Path | str, model_dir: Path | str | None = None,
               **engine: Any) -> TrainConfig:
    """The engine's config for a run from ``start`` with ``settings``: the recipe for the start point, then the
    user's values. ``engine``: further settings (``threads``, ``device``, ``seed`` …). Imports the training
    engine (torch). Raises ``ValueError`` for a start point that cannot train."""
    from segstudio.training.config import (
        CONTINUOUS_EMA_DECAY,
        CONTINUOUS_KEEP_PUBLISHED,
        finetune_recipe,
        network_scratch_recipe,
        small_data_recipe,
    )

    if start.blocked is not None:
        raise ValueError(start.blocked)
    seconds = settings.seconds
    if seconds is None and settings.steps is None and settings.mode == "rounds":
        seconds = DEFAULT_SECONDS[start.kind]
    common: dict[str, Any] = {"output_dir": str(output_dir), "max_seconds": seconds, "steps": settings.steps,
                              "continuous": settings.mode == "continuous", **engine}
    if model_dir is not None:
        common["model_dir"] = str(model_dir)
    if start.kind == "finetune":
        assert start.init is not None
        cfg = finetune_recipe(start.init, start.card_recipe, arch=start.arch, **common)
    elif start.preset:
        cfg = small_data_recipe(strokes=True, **common)  # a project's labels are brush strokes
    else:
        assert start.arch is not None
        cfg = network_scratch_recipe(start.arch, start.options, **common)
    if settings.mode == "continuous":
        cfg.max_seconds, cfg.steps, cfg.epochs = None, None, None
        cfg.early_stopping_patience = None
        cfg.val_every_s = cfg.val_every_s or 15.0
        cfg.val_every_epochs = 0.0
        cfg.ema_decay = cfg.ema_decay or CONTINUOUS_EMA_DECAY
        if not cfg.fine_tuning:
            cfg.keep_published = cfg.keep_published or CONTINUOUS_KEEP_PUBLISHED
    if settings.lr is not None:
        cfg.lr = float(settings.lr)
    if settings.loss:
        cfg.loss_stages = ((0.0, settings.loss),)
    if settings.freeze_encoder is not None:
        cfg.freeze_encoder = bool(settings.freeze_encoder)
    if settings.mode == "continuous" and cfg.schedule != "constant":
        # the learning rate (the recipe's or the user's) is a schedule's peak; continuous mode never decays, so it
        # runs at the schedule's mean rate (cosine: halfway between the peak and the floor)
        cfg.lr *= (1.0 + cfg.min_lr_ratio) / 2.0
    cfg.validate()
    return cfg
