"""Generic network handling, checked over the whole registry so that a new network is covered at once."""

from __future__ import annotations

import pytest
import torch

from segstudio import nets
from segstudio.training.losses import SegLoss
from segstudio.training.netsetup import (
    EMA,
    class_dependent_axes,
    encoder_parameter_names,
    parameter_groups,
    transfer_weights,
)
from segstudio.zoo import get_spec

ALL = nets.available()


@pytest.mark.parametrize("arch", ALL)
def test_every_network_has_an_encoder_and_a_rest(arch: str) -> None:
    with torch.device("meta"):
        model = nets.create(arch, num_classes=3)
    names = {n for n, _ in model.named_parameters()}
    enc = encoder_parameter_names(model)
    assert enc, f"{arch}: no parameter under a known encoder module"
    assert names - enc, f"{arch}: everything would be frozen"
    heads = set(class_dependent_axes(arch, {}, 3))
    assert not heads & enc, f"{arch}: class-dependent layers inside the encoder"


@pytest.mark.parametrize("arch", ALL)
def test_class_dependent_tensors_have_a_class_axis(arch: str) -> None:
    axes = class_dependent_axes(arch, {}, 3)
    assert axes, f"{arch}: nothing depends on the class count?"
    assert any(a is not None for a in axes.values())


def test_transfer_keeps_rows_of_known_classes() -> None:
    torch.manual_seed(0)
    old = nets.create("unet", num_classes=2, base_width=4)
    new = nets.create("unet", num_classes=3, base_width=4)
    fresh_row = new.head.weight[2].clone()
    axes = class_dependent_axes("unet", {"base_width": 4}, 3)
    fresh = transfer_weights(old.state_dict(), new, ["background", "cell"], ["cell", "background", "nucleus"],
                             axes)
    assert fresh == ["head.weight", "head.bias"]
    assert torch.equal(new.head.weight[0], old.head.weight[1])
    assert torch.equal(new.head.weight[1], old.head.weight[0])
    assert torch.equal(new.head.weight[2], fresh_row)  # the new class keeps its fresh initialisation
    assert torch.equal(new.inc[0][0].weight, old.inc[0][0].weight)


def test_parameter_groups_exclude_norms_and_biases_from_decay() -> None:
    model = nets.create("unet", num_classes=2, base_width=4)
    decay, no_decay = parameter_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_ema_follows_slowly() -> None:
    model = nets.create("unet", num_classes=2, base_width=4)
    ema = EMA(model, 0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # effective decay min(0.5, 2/11)
    w0 = dict(ema.module.named_parameters())["head.weight"]
    w1 = dict(model.named_parameters())["head.weight"]
    d = 2 / 11
    assert torch.allclose(w0, w1 - d * 1.0, atol=1e-6)


def _train_input(arch: str) -> tuple[torch.Tensor, torch.Tensor]:
    side = max(64, get_spec(arch).size_multiple)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (2, side, side), generator=g)
    y[0, : side // 2] = 255  # one sparse label
    return torch.randn(2, 3, side, side, generator=g), y


@pytest.mark.slow
@pytest.mark.parametrize("arch", ALL)
def test_every_network_trains_one_step_with_its_aux_outputs(arch: str) -> None:
    """Train-mode outputs of every registered network go through SegLoss (aux weights/kinds from its spec)."""
    torch.manual_seed(0)
    model = nets.create(arch, num_classes=3).train()
    x, y = _train_input(arch)
    outputs = model(x)
    assert isinstance(outputs, dict) and "out" in outputs
    spec = get_spec(arch)
    loss, parts = SegLoss("ce+dice", spec, 3, 255)(outputs, y, torch.tensor([False, True]))
    assert set(parts) == set(outputs)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(g is None or torch.isfinite(g).all() for g in grads)
