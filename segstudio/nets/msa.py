"""Hierarchical multi-scale attention (Tao, Sapra, Catanzaro 2020, arXiv:2005.10821) around any network.

``create("msa", base="hrnet_w18", base_options={...}, scales=(0.5, 1.0, 2.0))`` runs the base
network on the image resized to each scale and merges the predictions with a learned
per-pixel attention ``attn_s`` in [0, 1], lower scales refining higher ones.

Inference (the reference's ``nscale_forward``): scales sorted descending; the largest seeds
``pred`` (its attention is never used, so it is not computed); then for each next scale ``s``

- ``s ≥ 1``: ``pred = attn_s · p_s + (1 − attn_s) · down(pred)``
- ``s < 1``:  ``pred = up(attn_s · p_s) + (1 − up(attn_s)) · pred``

with ``down``/``up`` bilinear resizes (``align_corners=False``, the reference's default) to the
other operand's size. 1.0 must be a scale, so ``pred`` ends at the input's size.

Training (the reference's ``two_scale_forward``, default scales 0.5 and 1.0) is the same
recursion over ``train_scales``: ``joint = up(attn_lo · p_lo) + (1 − up(attn_lo)) · p_1x``. In
train mode the output is ``{"out": joint, "scale_<s>x": p_s for each training scale,
"<base>.<aux>": the base's own aux outputs of the 1.0 pass}``; the names are declared in the
``msa`` NetSpec (``segstudio/zoo/catalog/msa.py``), which explains the naming.

The image at scale ``s`` is ``H_s = floor(H·s + 1/2)`` (at least 1), computed with integer
arithmetic on ``s`` as an exact fraction, so eager PyTorch and an exported ONNX graph, where H
is a tensor, resize to the same sizes for any input.

Deviation from the paper (documented): there the attention head (3×3 conv-BN-ReLU ×2, 1×1 conv
to one channel, sigmoid) sits on the OCR block's 512-channel mid features of HRNet-W48-OCR.
A wrapper around any network of the zoo only has the logits that every network shares, so our
head (:class:`ScaleAttentionHead`) looks at the base's logits plus a light image branch (two
3×3 s2 conv-BN-ReLU, 16 and 32 channels) at 1/4 of the scaled image, then the paper's
3×3-3×3-1×1-sigmoid stack (64 channels instead of 256); the attention map is upsampled to the
logits' size. The base's auxiliary outputs are passed through from the 1.0 pass unchanged
(the paper merges its OCR aux output with the same attention; a generic wrapper cannot,
because aux outputs of other bases are image-level or at arbitrary resolutions).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_conv_bn, init_head, resize_to, seg_outputs
from segstudio.nets.registry import available, create
from segstudio.zoo.catalog.msa import NAME, TRAIN_SCALE_CHOICES, base_aux_name, scale_aux_name
from segstudio.zoo.spec import BadOptionError

IntLike = int | Tensor


def scaled_length(n: IntLike, scale: Fraction) -> IntLike:
    """``max(1, floor(n·scale + 1/2))`` in integer arithmetic: identical for a Python int and a traced tensor."""
    v = (2 * n * scale.numerator + scale.denominator) // (2 * scale.denominator)
    return v.clamp(min=1) if isinstance(v, Tensor) else max(1, v)


def resize_by(x: Tensor, scale: Fraction) -> Tensor:
    """Bilinear resize of ``x`` to its size times ``scale`` (see :func:`scaled_length`)."""
    if scale == 1:
        return x
    size = (scaled_length(x.shape[2], scale), scaled_length(x.shape[3], scale))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # type: ignore[arg-type]


MAX_SCALE = 4.0
"""The largest scale accepted: activations grow with its square (the reference uses at most 2.0)."""


def check_scales(option: str, scales: Sequence[float], allowed: Sequence[float] | None = None,
                 at_least: int = 1) -> tuple[float, ...]:
    """Validate a scale list (positive, distinct, containing 1.0); return it sorted descending."""
    try:
        values = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise BadOptionError(f"option {option} must be a list of numbers, got {scales!r}") from None
    if len(values) < at_least:
        raise BadOptionError(f"option {option} needs at least {at_least} scales, got {list(values)}")
    if 1.0 not in values:
        raise BadOptionError(f"option {option} must contain 1.0 (the output scale), got {list(values)}")
    if len(set(values)) != len(values) or any(not s > 0 for s in values):
        raise BadOptionError(f"option {option} must be distinct positive numbers, got {list(values)}")
    if any(s > MAX_SCALE for s in values):  # a card from a stranger must not ask for 64× the image's memory
        raise BadOptionError(f"option {option}: scales above {MAX_SCALE:g} are not supported, got {list(values)}")
    if allowed is not None:
        bad = [s for s in values if s not in allowed]
        if bad:
            raise BadOptionError(f"option {option}: {bad} not allowed; choose from {', '.join(map(str, allowed))}")
    return tuple(sorted(values, reverse=True))


class ScaleAttentionHead(nn.Module):
    """Per-pixel attention in [0, 1] from the scaled image and the base's logits at that scale."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.image = nn.Sequential(ConvBNAct(in_channels, 16, 3, 2), ConvBNAct(16, 32, 3, 2))
        self.fuse = nn.Sequential(ConvBNAct(32 + num_classes, width, 3), ConvBNAct(width, width, 3))
        self.attn = nn.Conv2d(width, 1, 1, bias=False)
        init_conv_bn(self)
        init_head(self.attn)  # attention ≈ 0.5 at the start: an even blend of the scales

    def forward(self, image: Tensor, logits: Tensor) -> Tensor:
        feats = self.image(image)
        a = self.attn(self.fuse(torch.cat([feats, resize_to(logits, feats)], dim=1)))
        return resize_to(torch.sigmoid(a), logits)


class MultiScaleAttention(SegmentationNetwork):
    """The multi-scale wrapper; ``scales``/``train_scales`` are validated lists containing 1.0.

    Its encoder is its base network's (under ``base.``); the attention head is not part of it.
    """

    def __init__(self, base: nn.Module, num_classes: int, in_channels: int, scales: Sequence[float],
                 train_scales: Sequence[float], base_name: str) -> None:
        super().__init__()
        self.base = base
        self.head = ScaleAttentionHead(in_channels, num_classes)
        self.scales = check_scales("scales", scales)
        self.train_scales = check_scales("train_scales", train_scales, at_least=2)
        self.base_name = base_name

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        scales = self.train_scales if self.training else self.scales
        pred: Tensor | None = None
        aux: dict[str, Tensor] = {}
        for s in scales:
            xs = resize_by(x, Fraction(s).limit_denominator(1000))
            out = self.base(xs)
            if isinstance(out, Tensor):
                p = out
            else:
                p = out["out"]
                if s == 1.0:
                    aux.update({base_aux_name(self.base_name, k): v for k, v in out.items() if k != "out"})
            if self.training:
                aux[scale_aux_name(s)] = p
            if pred is None:
                pred = p
                continue
            a = self.head(xs, p)
            if s >= 1.0:
                pred = a * p + (1 - a) * resize_to(pred, p)
            else:
                pred = resize_to(a * p, pred) + (1 - resize_to(a, pred)) * pred
        assert pred is not None  # scales is never empty
        return seg_outputs(pred, self.training, **aux)

    def encoder_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        if isinstance(self.base, SegmentationNetwork):
            for name, parameter in self.base.encoder_parameters():
                yield f"base.{name}", parameter


def build_msa(num_classes: int, in_channels: int = 3, *, base: str, base_options: Mapping[str, Any] | None,
              scales: Sequence[float], train_scales: Sequence[float]) -> nn.Module:
    """The wrapper around a zoo network built with ``base_options`` (the spec's options, checked here)."""
    valid = [n for n in available() if n != NAME]
    if base not in valid:
        raise BadOptionError(f"msa cannot wrap {base!r}; valid bases: {', '.join(valid)}")
    if base_options is not None and not isinstance(base_options, Mapping):
        raise BadOptionError(f"option base_options must be a dict of {base}'s options, got {base_options!r}")
    check_scales("scales", scales)
    check_scales("train_scales", train_scales, TRAIN_SCALE_CHOICES, at_least=2)
    net = create(base, num_classes=num_classes, in_channels=in_channels, **dict(base_options or {}))
    return MultiScaleAttention(net, num_classes, in_channels, scales, train_scales, base)
