"""The parts of a run the loop in :mod:`~segstudio.training.engine` leans on: building the network,
the run's resumable state, and the model file written at the end.

The loop is seen here only through :class:`RunView`, the few public things a run offers, so that this
module never imports the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from segstudio import nets
from segstudio.inference.model_file import load_model, save_model
from segstudio.inference.predictor import Predictor
from segstudio.inference.tta import TTA
from segstudio.training.config import TrainConfig
from segstudio.training.data import TrainData
from segstudio.training.netsetup import class_dependent_axes, transfer_weights
from segstudio.training.outputs import CheckpointError, next_version_path, version_base, version_number
from segstudio.zoo import ModelCard, NetSpec, get_spec
from segstudio.zoo.card import UNCERTAINTY_METRIC, now_iso


@dataclass
class NetworkSetup:
    """The module to train, the card it will be saved under (metrics/history filled at the end), and notes."""

    model: nn.Module
    card: ModelCard
    spec: NetSpec
    notes: list[str] = field(default_factory=list)
    init_path: Path | None = None
    head_rebuilt: bool = False

    def predictor(self, model: nn.Module, device: torch.device, precision: str, tta: TTA | None = None
                  ) -> Predictor:
        """A predictor over ``model`` in memory; ``tta``: its default views (None: the image alone)."""
        return Predictor.from_module(model, self.card, device=str(device),
                                     precision=precision if device.type == "cuda" else "fp32", tta=tta)


def build_network(config: TrainConfig, data: TrainData) -> NetworkSetup:
    """A new network for ``config.arch``, or the model in ``config.init_model`` adapted to the data's classes."""
    k = data.num_classes
    if config.init_model:
        path = Path(config.init_model)
        old, old_card = load_model(path, "cpu")
        notes: list[str] = [f"starting from {path.name}"]
        arch, options, in_ch = old_card.arch, dict(old_card.options), old_card.in_channels
        rebuilt = old_card.classes.names != data.classes.names
        if rebuilt:
            model = nets.create(arch, num_classes=k, in_channels=in_ch, **options)
            axes = class_dependent_axes(arch, options, in_ch)
            fresh = transfer_weights(old.state_dict(), model, old_card.classes.names, data.classes.names, axes)
            kept = [n for n in data.classes.names if n in old_card.classes.names]
            notes.append(f"the model's classes ({', '.join(old_card.classes.names)}) differ from the data's: "
                         f"head rebuilt ({len(fresh)} tensors re-initialised"
                         + (f", rows of {', '.join(kept)} kept" if kept else "") + ")")
        else:
            model = old
        if in_ch != data.channels():
            notes.append(f"the model takes {in_ch}-channel input; the {data.channels()}-channel images are converted")
        card = ModelCard(arch=arch, classes=data.classes, in_channels=in_ch, options=options,
                         normalization=old_card.normalization, input_max=data.input_max(),
                         history=list(old_card.history), name=old_card.name, description=old_card.description)
        return NetworkSetup(model, card, get_spec(arch), notes, path, rebuilt)
    in_ch = config.in_channels or data.channels()
    model = nets.create(config.arch, num_classes=k, in_channels=in_ch, **config.options)
    spec = get_spec(config.arch)
    card = ModelCard(arch=config.arch, classes=data.classes, in_channels=in_ch,
                     options=dict(getattr(model, "segstudio_options", config.options)),
                     normalization=spec.normalization.for_channels(in_ch), input_max=data.input_max())
    return NetworkSetup(model, card, spec, [])


@dataclass
class RunState:
    """What changes as a run goes on; everything here (but the timers) survives in the checkpoint."""

    step: int = 0
    elapsed_before: float = 0.0
    step_time: float = 0.0
    last_loss: float | None = None
    last_lr: float | None = None
    last_crop: tuple[int, int] | None = None
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    val_history: list[tuple[int, float]] = field(default_factory=list)
    best_miou: float | None = None
    best_step: int | None = None
    best_per_class: dict[str, float | None] | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    since_best: int = 0
    bad_steps: int = 0
    train_miou: float | None = None
    train_per_class: dict[str, float | None] | None = None
    start_miou: float | None = None
    """Validation mIoU of the starting weights (fine-tuning): the bar the written model never falls below."""
    best_uncertainty: float | None = None
    """Mean uncertainty on the validation images of the best weights (the card's ``UNCERTAINTY_METRIC``)."""
    last_val_uncertainty: float | None = None
    published: list[str] = field(default_factory=list)
    """Model files published by a continuous run, oldest first."""
    last_checkpoint: float = 0.0
    last_val_time: float = 0.0

    def to_checkpoint(self, cfg: TrainConfig, card: ModelCard, elapsed: float) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "elapsed": float(elapsed),
            "arch": card.arch,
            "classes": list(card.classes.names),
            "config": cfg.to_json(),
            "history": json.dumps({"loss": self.loss_history, "val": self.val_history,
                                   "best_miou": self.best_miou, "best_step": self.best_step,
                                   "best_per_class": self.best_per_class, "since_best": self.since_best,
                                   "step_time": self.step_time, "start_miou": self.start_miou,
                                   "best_uncertainty": self.best_uncertainty}),
        }
        if self.best_weights is not None:
            state["best"] = self.best_weights
        return state

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any], cfg: TrainConfig, card: ModelCard) -> RunState:
        if ck.get("arch") != card.arch or list(ck.get("classes", [])) != card.classes.names:
            raise CheckpointError(
                f"the checkpoint in {cfg.output_dir} is from another run ({ck.get('arch')}, classes "
                f"{', '.join(ck.get('classes', []))}); use another output folder or start without resume")
        h = json.loads(ck["history"])
        return cls(step=int(ck["step"]), elapsed_before=float(ck["elapsed"]), step_time=float(h["step_time"]),
                   loss_history=[(int(a), float(b)) for a, b in h["loss"]],
                   val_history=[(int(a), float(b)) for a, b in h["val"]],
                   best_miou=h["best_miou"], best_step=h["best_step"], best_per_class=h["best_per_class"],
                   best_weights=ck.get("best"), since_best=int(h["since_best"]), start_miou=h.get("start_miou"),
                   best_uncertainty=h.get("best_uncertainty"))


class RunView(Protocol):
    """What :func:`final_card` and :func:`write_model` read of a run (the engine's run offers it)."""

    cfg: TrainConfig
    data: TrainData
    net: NetworkSetup
    state: RunState
    out_dir: Path

    def elapsed(self) -> float:
        """Seconds trained, resumed runs included."""
        ...

    def eval_model(self) -> nn.Module:
        """The weights to evaluate and save: the EMA's when there is one, else the model's."""
        ...


def final_card(run: RunView, stop_reason: str) -> ModelCard:
    """The card of the model a run writes: metrics of this run, history extended, recipe."""
    s, data, setup = run.state, run.data, run.net
    base = setup.card
    metrics: list[dict[str, Any]] = []
    if s.best_miou is not None:
        metrics.append({"name": "mIoU", "value": s.best_miou, "data": f"validation: {data.val_source}",
                        "per_class": s.best_per_class or {}, "step": s.best_step})
        if s.best_uncertainty is not None:
            metrics.append({"name": UNCERTAINTY_METRIC, "value": round(s.best_uncertainty, 4),
                            "data": f"validation: {data.val_source}", "step": s.best_step})
    elif s.train_miou is not None:
        metrics.append({"name": "mIoU", "value": s.train_miou,
                        "data": f"training images, no held-out set ({data.val_source})",
                        "per_class": s.train_per_class or {}, "step": s.step})
        if s.last_val_uncertainty is not None:
            metrics.append({"name": UNCERTAINTY_METRIC, "value": round(s.last_val_uncertainty, 4),
                            "data": f"training images, no held-out set ({data.val_source})", "step": s.step})
    entry: dict[str, Any] = {
        "event": "fine-tuned" if setup.init_path else "trained",
        "when": now_iso(),
        "data": data.source,
        "validation": data.val_source,
        "steps": s.step,
        "seconds": round(run.elapsed(), 1),
    }
    if setup.init_path is not None:
        entry["from"] = setup.init_path.name
        entry["head_rebuilt"] = setup.head_rebuilt
    if s.start_miou is not None:
        entry["held_out_before"] = round(s.start_miou, 4)
        entry["held_out_after"] = round(s.best_miou, 4) if s.best_miou is not None else None
        entry["improved"] = bool(s.best_step)
    if stop_reason:
        entry["stopped"] = stop_reason
    return ModelCard(arch=base.arch, classes=base.classes, in_channels=base.in_channels, options=base.options,
                     normalization=base.normalization, input_max=base.input_max,
                     train_resolution=s.last_crop, metrics=metrics, history=[*base.history, entry],
                     recipe=run.cfg.to_dict(), name=base.name, description=base.description)


def write_model(run: RunView, stop_reason: str) -> Path:
    """Save the run's model (best validated weights when there are any) as a new version file."""
    cfg, setup = run.cfg, run.net
    model = run.eval_model()
    if run.state.best_weights is not None:
        model.load_state_dict(run.state.best_weights)
    folder = Path(cfg.model_dir) if cfg.model_dir else run.out_dir
    folder.mkdir(parents=True, exist_ok=True)
    if setup.init_path is not None:
        stem = setup.init_path.stem
        newer = version_number(stem) if version_base(cfg.model_name or stem) == version_base(stem) else 0
        path = next_version_path(folder, cfg.model_name or stem, newer_than=newer)
    else:
        path = next_version_path(folder, cfg.model_name or setup.card.arch)
    card = final_card(run, stop_reason)
    card.name = path.stem
    save_model(path, model, card)
    return path
