"""Segmentation losses with "not labelled" pixels ignored, and their generic use on any network's outputs.

Terms (each takes N×K×H×W logits and N×H×W int64 targets, pixels equal to
``ignore_index`` ignored, and returns a scalar):

- ``ce``: cross-entropy, optional per-class weights (median frequency, :func:`median_frequency_weights`);
- ``focal``: focal loss (Lin et al. 2017), γ = 2, optional class weights as α;
- ``dice``: soft Dice over the labelled pixels, averaged over the classes present in the batch's labels;
- ``ohem``: cross-entropy over the hard pixels only (true-class probability below ``thresh``,
  at least ``min_kept`` of the hardest kept), as in mmseg's ``OHEMPixelSampler``.

A loss is written as a weighted sum, e.g. ``"focal+dice"`` or ``"0.5*ce+dice"``
(:func:`parse_loss`). :class:`SegLoss` applies it to a network's train-mode
output dict: the main ``"out"`` logits, then every auxiliary output weighted
and treated as its :class:`~segstudio.zoo.AuxOutput` says — ``"logits"``
outputs are resized (bilinear) to the label size and get the same loss,
``"presence"`` outputs get binary cross-entropy against "class present in the
label" (see :func:`presence_targets` for sparse labels).

An all-ignored batch gives a zero loss that still has a gradient path, so a
training step never divides by zero. Masks are applied as weights, never by
boolean indexing, so a loss never waits for the GPU to report a count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from segstudio.zoo import NetSpec

LOSS_TERMS = ("ce", "focal", "dice", "ohem")


def _valid(target: Tensor, ignore_index: int) -> Tensor:
    return target != ignore_index


def _masked_mean(values: Tensor, weights: Tensor) -> Tensor:
    """``sum(values · weights) / sum(weights)``, 0 when the weights sum to 0 (still a gradient path)."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = 255, weight: Tensor | None = None) -> Tensor:
    """Mean cross-entropy over labelled pixels (weighted mean with ``weight``); 0 when none is labelled."""
    valid = _valid(target, ignore_index)
    t = torch.where(valid, target, 0)
    per_pixel = F.cross_entropy(logits.float(), t, reduction="none")
    w = valid.float() if weight is None else weight[t] * valid
    return _masked_mean(per_pixel, w)


def focal_loss(logits: Tensor, target: Tensor, ignore_index: int = 255, gamma: float = 2.0,
               weight: Tensor | None = None) -> Tensor:
    """Focal loss ``-α_t (1 - p_t)^γ log p_t``, mean over labelled pixels (α = class weights or 1)."""
    valid = _valid(target, ignore_index)
    logp = F.log_softmax(logits.float(), dim=1)
    t = torch.where(valid, target, 0)
    logp_t = logp.gather(1, t.unsqueeze(1)).squeeze(1)
    p_t = logp_t.exp()
    loss = -((1.0 - p_t) ** gamma) * logp_t
    if weight is not None:
        loss = loss * weight[t]
    return _masked_mean(loss, valid.float())


def dice_loss(logits: Tensor, target: Tensor, ignore_index: int = 255, smooth: float = 1.0) -> Tensor:
    """1 − soft Dice over labelled pixels, averaged over the classes that occur in ``target``.

    Classes absent from the labels are left out (their Dice is undefined and
    would push the whole class to zero); false positives of such a class are
    still penalised through the classes that are present. 0 when no pixel is labelled.
    """
    valid = _valid(target, ignore_index)
    k = logits.shape[1]
    probs = F.softmax(logits.float(), dim=1) * valid.unsqueeze(1)
    t = torch.where(valid, target, 0)
    onehot = F.one_hot(t, k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    card = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (card + smooth)
    present = (onehot.sum(dims) > 0).float()
    return _masked_mean(1.0 - dice, present)


def ohem_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = 255, thresh: float = 0.7,
                       min_kept: int = 100_000, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy over the hard pixels: true-class probability ≤ the threshold.

    The threshold is ``thresh``, raised to the ``min_kept``-th smallest
    probability when fewer pixels than ``min_kept`` are below it (so at least
    ``min_kept`` of the hardest labelled pixels always count).
    """
    valid = _valid(target, ignore_index)
    logits = logits.float()
    t = torch.where(valid, target, 0)
    with torch.no_grad():
        p_t = F.softmax(logits, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
        threshold = torch.full((), thresh, device=logits.device)
        if min_kept > 0:
            # the min_kept-th smallest probability among labelled pixels, found without leaving the device:
            # unlabelled pixels sort last (2 > any probability), the index is clamped to the labelled count
            ranked = torch.where(valid, p_t, 2.0).flatten().sort().values
            k = valid.sum().clamp(max=min_kept).sub(1).clamp_min(0)
            threshold = torch.maximum(threshold, ranked.gather(0, k.view(1)).squeeze(0).clamp(max=1.0))
        keep = valid & (p_t <= threshold)
    per_pixel = F.cross_entropy(logits, t, reduction="none")
    w = keep.float() if weight is None else weight[t] * keep
    return _masked_mean(per_pixel, w)


def median_frequency_weights(pixel_counts: np.ndarray, image_counts_pixels: np.ndarray) -> np.ndarray:
    """Median-frequency class weights (Eigen & Fergus 2015): ``median(freq) / freq[c]``.

    ``pixel_counts[c]``: labelled pixels of class c; ``image_counts_pixels[c]``:
    labelled pixels of the images in which c occurs. ``freq[c]`` is their ratio.
    Classes that never occur get weight 1 (they have no pixels to weigh).
    """
    counts = np.asarray(pixel_counts, np.float64)
    totals = np.asarray(image_counts_pixels, np.float64)
    present = (counts > 0) & (totals > 0)
    weights = np.ones(len(counts), np.float64)
    if not present.any():
        return weights.astype(np.float32)
    freq = counts[present] / totals[present]
    weights[present] = np.median(freq) / freq
    return weights.astype(np.float32)


@dataclass(frozen=True)
class LossTerm:
    name: str
    weight: float


def parse_loss(text: str) -> tuple[LossTerm, ...]:
    """``"focal+dice"``, ``"0.5*ce + dice"``… → terms; ``ValueError`` naming the valid terms otherwise."""
    terms: list[LossTerm] = []
    for part in text.replace(" ", "").split("+"):
        m = re.fullmatch(r"(?:(\d+(?:\.\d*)?|\.\d+)\*)?([a-z]+)", part)
        if not m or m.group(2) not in LOSS_TERMS:
            raise ValueError(f"cannot read the loss {text!r}: each term is [WEIGHT*]NAME with NAME one of "
                             f"{', '.join(LOSS_TERMS)} (e.g. 'focal+dice', '0.5*ce+dice')")
        terms.append(LossTerm(m.group(2), float(m.group(1)) if m.group(1) else 1.0))
    return tuple(terms)


def presence_targets(target: Tensor, num_classes: int, ignore_index: int, complete: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image class presence (N×K float) and where it is known (N×K bool).

    A class seen in an image's labels is known present. A class not seen is
    known absent only when the image is completely labelled (``complete[n]``);
    in a sparse label an unseen class may simply not have been painted.
    """
    n = target.shape[0]
    valid = _valid(target, ignore_index)
    t = torch.where(valid, target, num_classes)  # an extra bin for ignored pixels
    offsets = torch.arange(n, device=target.device).view(n, 1, 1) * (num_classes + 1)
    counts = torch.bincount((t + offsets).flatten(), minlength=n * (num_classes + 1))
    present = counts.view(n, num_classes + 1)[:, :num_classes] > 0
    known = present | complete.view(n, 1).to(torch.bool)
    return present.float(), known


class SegLoss:
    """A weighted sum of loss terms, applied to a network's train-mode outputs per its NetSpec."""

    def __init__(self, loss: str | Sequence[LossTerm], spec: NetSpec, num_classes: int, ignore_index: int = 255,
                 class_weights: Tensor | None = None, ohem_thresh: float = 0.7, ohem_min_kept: int = 100_000,
                 focal_gamma: float = 2.0) -> None:
        self.terms = parse_loss(loss) if isinstance(loss, str) else tuple(loss)
        if not self.terms:
            raise ValueError("a loss needs at least one term")
        self.spec = spec
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_weights = class_weights
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
        self.focal_gamma = focal_gamma

    def segmentation(self, logits: Tensor, target: Tensor) -> Tensor:
        """The weighted terms on one logits map (resized to the target's size when it differs)."""
        if tuple(logits.shape[-2:]) != tuple(target.shape[-2:]):
            logits = F.interpolate(logits.float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
        w, ign = self.class_weights, self.ignore_index
        total: Tensor | None = None
        for term in self.terms:
            if term.name == "ce":
                value = cross_entropy(logits, target, ign, w)
            elif term.name == "focal":
                value = focal_loss(logits, target, ign, self.focal_gamma, w)
            elif term.name == "dice":
                value = dice_loss(logits, target, ign)
            else:
                value = ohem_cross_entropy(logits, target, ign, self.ohem_thresh, self.ohem_min_kept, w)
            value = value * term.weight
            total = value if total is None else total + value
        assert total is not None
        return total

    def __call__(self, outputs: Tensor | Mapping[str, Tensor], target: Tensor,
                 complete: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """(total loss, {output name: its unweighted loss, detached}) for one batch.

        Nothing here reads a value back to the host (no data-dependent shapes,
        no ``.item()``), so on CUDA the step runs without synchronising.

        ``outputs``: the network's train-mode dict (or bare logits);
        ``complete``: per image, whether its label has no unlabelled pixels
        (for presence outputs; default: all sparse).
        """
        if not isinstance(outputs, Mapping):
            outputs = {"out": outputs}
        if "out" not in outputs:
            raise ValueError(f"{self.spec.name} returned no 'out' in train mode (got {sorted(outputs)})")
        total = self.segmentation(outputs["out"], target)
        parts = {"out": total.detach()}
        for name, value in outputs.items():
            if name == "out":
                continue
            aux = self.spec.aux(name)  # KeyError for an output its spec does not declare: a network bug
            if aux.kind == "presence":
                if complete is None:
                    complete = torch.zeros(target.shape[0], dtype=torch.bool, device=target.device)
                present, known = presence_targets(target, self.num_classes, self.ignore_index, complete)
                bce = F.binary_cross_entropy_with_logits(value.float(), present, reduction="none")
                loss = _masked_mean(bce, known.float())
            else:
                loss = self.segmentation(value, target)
            parts[name] = loss.detach()
            total = total + aux.weight * loss
        return total, parts
