from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segstudio.training.losses import (
    SegLoss,
    cross_entropy,
    dice_loss,
    focal_loss,
    median_frequency_weights,
    ohem_cross_entropy,
    parse_loss,
    presence_targets,
)
from segstudio.zoo import AuxOutput, NetSpec


def _data(seed: int = 0, n: int = 2, k: int = 3, h: int = 8, w: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, h, w, generator=g), torch.randint(0, k, (n, h, w), generator=g)


@pytest.mark.parametrize("fn", [cross_entropy, focal_loss, dice_loss, ohem_cross_entropy])
def test_ignored_pixels_do_not_count(fn) -> None:
    logits, target = _data()
    target[:, :4] = 255
    base = fn(logits, target, 255)
    changed = logits.clone()
    changed[:, :, :4] = torch.randn_like(changed[:, :, :4]) * 10  # only where nothing is labelled
    assert torch.allclose(fn(changed, target, 255), base)
    logits.requires_grad_(True)
    fn(logits, target, 255).backward()
    assert logits.grad is not None and logits.grad[:, :, :4].abs().max() == 0


@pytest.mark.parametrize("fn", [cross_entropy, focal_loss, dice_loss, ohem_cross_entropy])
def test_all_ignored_is_a_zero_with_a_gradient_path(fn) -> None:
    logits, target = _data()
    logits.requires_grad_(True)
    target[:] = 255
    loss = fn(logits, target, 255)
    assert loss.item() == 0.0 if not loss.requires_grad else float(loss.detach()) == 0.0
    loss.backward()  # must not raise


def test_class_weights_weigh_the_mean() -> None:
    logits, target = _data()
    w = torch.tensor([1.0, 2.0, 0.5])
    per_pixel = F.cross_entropy(logits, target, reduction="none")
    expected = (per_pixel * w[target]).sum() / w[target].sum()
    assert torch.allclose(cross_entropy(logits, target, 255, w), expected)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits, target = _data()
    assert torch.allclose(focal_loss(logits, target, 255, gamma=0.0), F.cross_entropy(logits, target))
    # with γ > 0 the easy pixels are down-weighted: the loss is smaller
    assert focal_loss(logits, target, 255, gamma=2.0) < F.cross_entropy(logits, target)


def test_dice_is_zero_for_a_confident_right_answer_and_skips_absent_classes() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(logits, target)) < 1e-3  # class 2 is absent from the labels: not averaged in
    wrong = F.one_hot(1 - target, 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(wrong, target)) > 0.9  # not 1: the smoothing term


def test_ohem_keeps_the_hardest_pixels() -> None:
    # 10 pixels, true class 0, with decreasing confidence: p(true) rises with the index
    margins = torch.linspace(-3, 3, 10)
    logits = torch.stack([margins, torch.zeros(10)]).view(1, 2, 1, 10)
    target = torch.zeros(1, 1, 10, dtype=torch.long)
    per_pixel = F.cross_entropy(logits, target, reduction="none").view(10)
    p_true = torch.softmax(logits, 1)[0, 0, 0]
    # with min_kept = 0: exactly the pixels with p(true) <= 0.7
    hard = p_true <= 0.7
    assert 0 < hard.sum() < 10
    assert torch.allclose(ohem_cross_entropy(logits, target, 255, thresh=0.7, min_kept=0), per_pixel[hard].mean())
    # min_kept larger than the hard set: the min_kept least confident pixels
    k = int(hard.sum()) + 2
    hardest = torch.argsort(p_true)[:k]
    assert torch.allclose(ohem_cross_entropy(logits, target, 255, thresh=0.7, min_kept=k),
                          per_pixel[hardest].mean())


def test_parse_loss() -> None:
    assert [(t.name, t.weight) for t in parse_loss("focal+dice")] == [("focal", 1.0), ("dice", 1.0)]
    assert [(t.name, t.weight) for t in parse_loss("0.5*ce + 2*dice")] == [("ce", 0.5), ("dice", 2.0)]
    for bad in ("", "cross", "ce+", "x*ce"):
        with pytest.raises(ValueError, match="focal"):
            parse_loss(bad)


def test_median_frequency_weights() -> None:
    # class 0 is everywhere, class 1 in half the pixels of the images it occurs in, class 2 never
    w = median_frequency_weights(np.array([900, 100, 0]), np.array([1000, 200, 0]))
    freq = np.array([0.9, 0.5])
    np.testing.assert_allclose(w[:2], np.median(freq) / freq, rtol=1e-6)
    assert w[2] == 1.0
    assert w[1] > w[0]  # the rarer class weighs more


def test_presence_targets_on_sparse_labels() -> None:
    target = torch.full((2, 4, 4), 255, dtype=torch.long)
    target[0, 0, :2] = 1  # a sparse stroke of class 1 only
    target[1] = 0
    target[1, 0, 0] = 2  # a complete label with classes 0 and 2
    present, known = presence_targets(target, 3, 255, torch.tensor([False, True]))
    assert present.tolist() == [[0, 1, 0], [1, 0, 1]]
    # sparse image: only the painted class is known; complete image: everything is
    assert known.tolist() == [[False, True, False], [True, True, True]]


def _spec(*aux: AuxOutput) -> NetSpec:
    return NetSpec(name="fake", family="test", title="", paper="", output_stride=1, size_multiple=1,
                   speed="fast", description="", builder="tests.nowhere:fake", aux_outputs=aux)


def test_segloss_weights_aux_outputs_from_the_spec() -> None:
    logits, target = _data(k=2, h=16, w=16)
    low = torch.randn(2, 2, 4, 4)
    cls = torch.randn(2, 2)
    spec = _spec(AuxOutput("low", 0.4, "logits"), AuxOutput("cls", 0.25, "presence"))
    loss = SegLoss("ce", spec, 2, 255)
    complete = torch.tensor([True, True])
    total, parts = loss({"out": logits, "low": low, "cls": cls}, target, complete)
    up = F.interpolate(low, size=(16, 16), mode="bilinear", align_corners=False)
    present, _ = presence_targets(target, 2, 255, complete)
    expected = (F.cross_entropy(logits, target) + 0.4 * F.cross_entropy(up, target)
                + 0.25 * F.binary_cross_entropy_with_logits(cls, present))
    assert torch.allclose(total, expected, atol=1e-6)
    assert set(parts) == {"out", "low", "cls"}


def test_segloss_refuses_an_undeclared_output() -> None:
    logits, target = _data(k=2)
    with pytest.raises(KeyError, match="no auxiliary output 'extra'"):
        SegLoss("ce", _spec(), 2)({"out": logits, "extra": logits}, target)


def test_presence_loss_is_zero_when_nothing_is_known() -> None:
    logits, target = _data(k=2)
    target[:] = 255
    target[:, 0, 0] = 0
    cls = torch.randn(2, 2, requires_grad=True)
    spec = _spec(AuxOutput("cls", 1.0, "presence"))
    _, parts = SegLoss("ce", spec, 2)({"out": logits, "cls": cls}, target)  # sparse: class 1 unknown
    assert parts["cls"] > 0  # class 0 is known present
    target[:] = 255
    _total, parts = SegLoss("ce", spec, 2)({"out": logits, "cls": cls}, target)
    assert parts["cls"] == 0.0
