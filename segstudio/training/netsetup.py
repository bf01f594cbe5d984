"""Networks for training: new or from a model file, heads rebuilt for new classes, the encoder, EMA.

Generic over the zoo:

- Which parameters depend on the number of classes is found by building the
  network twice on the ``meta`` device (no memory, no compute) with different
  class counts and comparing shapes (:func:`class_dependent_axes`).
- Fine-tuning a model on other classes keeps every other weight and rebuilds
  the class-dependent ones; rows of classes whose *name* the old model knew
  are carried over (:func:`transfer_weights`), so adding a class to a project
  does not throw away what the head knew about the others.
- The encoder (frozen for the first steps of a fine-tuning run, on request) is
  what the network declares (:class:`~segstudio.nets.base.SegmentationNetwork`;
  a wrapper declares its base's). The contract test checks that every network
  declares one and keeps a non-empty rest.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from segstudio import nets
from segstudio.nets.base import SegmentationNetwork


def class_dependent_axes(arch: str, options: dict[str, Any], in_channels: int) -> dict[str, int | None]:
    """``{state key: class axis}`` of the tensors whose shape depends on the number of classes.

    The axis is the one whose length is the class count (``None`` when the
    dependence is not one row per class, e.g. a layer fed with K×something channels).
    """
    k1, k2 = 5, 7
    with torch.device("meta"):
        a = nets.create(arch, num_classes=k1, in_channels=in_channels, **options).state_dict()
        b = nets.create(arch, num_classes=k2, in_channels=in_channels, **options).state_dict()
    out: dict[str, int | None] = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.shape == tb.shape:
            continue
        axes = [i for i, (x, y) in enumerate(zip(ta.shape, tb.shape)) if x != y]
        out[key] = axes[0] if len(axes) == 1 and ta.shape[axes[0]] == k1 and tb.shape[axes[0]] == k2 else None
    return out


def transfer_weights(old: dict[str, Tensor], new_model: nn.Module, old_classes: Sequence[str],
                     new_classes: Sequence[str], class_axes: dict[str, int | None]) -> list[str]:
    """Copy ``old`` weights into ``new_model``; class-dependent tensors get the rows of same-named classes.

    Returns the keys that were (wholly or partly) left freshly initialised.
    """
    state = new_model.state_dict()
    fresh: list[str] = []
    index = {name: i for i, name in enumerate(old_classes)}
    with torch.no_grad():
        for key, target in state.items():
            src = old.get(key)
            if src is None:
                fresh.append(key)
                continue
            if key in class_axes:
                axis = class_axes[key]
                if axis is None or src.shape[axis] != len(old_classes):
                    fresh.append(key)
                    continue
                kept = 0
                for j, name in enumerate(new_classes):
                    i = index.get(name)
                    if i is not None:
                        target.select(axis, j).copy_(src.select(axis, i))
                        kept += 1
                if kept < len(new_classes):
                    fresh.append(key)
            elif src.shape == target.shape:
                target.copy_(src)
            else:
                fresh.append(key)
    return fresh


def encoder_parameter_names(model: nn.Module) -> set[str]:
    """Names (as in ``named_parameters``) of the parameters the network declares as its encoder (none for a
    module that is not a zoo network)."""
    if not isinstance(model, SegmentationNetwork):
        return set()
    return {name for name, _ in model.encoder_parameters()}


def set_encoder_trainable(model: nn.Module, trainable: bool) -> int:
    """Switch gradients of the encoder's parameters on or off; returns how many tensors were affected."""
    return model.set_encoder_trainable(trainable) if isinstance(model, SegmentationNetwork) else 0


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimiser groups: weights with decay; biases and normalisation parameters (1-D) without."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class EMA:
    """Exponential moving average of a model's weights (and a copy of its buffers).

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so that
    the average is not dominated by the initial weights in short runs.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        own, theirs = self.module.state_dict(), model.state_dict()
        keys = list(theirs)
        # the state dicts' tensors share storage with the modules' parameters and buffers: keep them once
        self._float = ([own[k] for k in keys if own[k].dtype.is_floating_point],
                       [theirs[k] for k in keys if own[k].dtype.is_floating_point])
        self._other = ([own[k] for k in keys if not own[k].dtype.is_floating_point],
                       [theirs[k] for k in keys if not own[k].dtype.is_floating_point])

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model`` (the module this EMA was made from); a few fused kernels."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_f, model_f = self._float
        if ema_f:
            torch._foreach_mul_(ema_f, d)
            torch._foreach_add_(ema_f, model_f, alpha=1 - d)
        for target, value in zip(*self._other):
            target.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["weights"])
