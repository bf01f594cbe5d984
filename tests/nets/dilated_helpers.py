"""Helpers shared by the PSPNet and DeepLabv3 tests: networks on the meta device, ResNet stage inspection."""

from __future__ import annotations

import torch
from torch import nn

from segstudio import nets
from segstudio.nets.resnet import Bottleneck


def meta_net(name: str, num_classes: int = 19, **options: object) -> nn.Module:
    with torch.device("meta"):
        return nets.create(name, num_classes=num_classes, **options)


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def block_dilations(layer: nn.Module) -> list[int]:
    """Dilation of the 3×3 conv of every bottleneck in a ResNet stage."""
    return [int(b.conv2.dilation[0]) for b in layer if isinstance(b, Bottleneck)]


def block_strides(layer: nn.Module) -> list[int]:
    return [int(b.conv2.stride[0]) for b in layer if isinstance(b, Bottleneck)]


def mmseg_resnetv1c(blocks: tuple[int, int, int, int]) -> int:
    """Parameters of mmseg's ResNetV1c (deep stem, bottlenecks, conv-1×1 downsample, BN) without a classifier."""
    total = 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 2 * (32 + 32 + 64)
    in_ch = 64
    for width, n in zip((64, 128, 256, 512), blocks):
        out = 4 * width
        total += in_ch * out + 2 * out  # downsample
        for i in range(n):
            cin = in_ch if i == 0 else out
            total += cin * width + width * width * 9 + width * out + 2 * (width + width + out)
        in_ch = out
    return total
