"""DeepLabv3 (Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, arXiv:1706.05587).

Layout of mmsegmentation's ``configs/_base_/models/deeplabv3_r50-d8.py`` and
``decode_heads/aspp_head.py`` (docs/MODEL_NOTES.md §7): ResNetV1c-50/101 (see
:mod:`segstudio.nets.dilated`) at output stride 8 or 16; ASPP on the
2048-channel stage-4 map with five parallel branches of 512 channels — image
pooling, a 1×1 conv and three 3×3 convs with rates (12, 24, 36) at output
stride 8 or (6, 12, 18) at 16 (the paper doubles the rates when the stride
halves) — each conv + BN + ReLU; concatenation (2560 channels) → 3×3 conv to
512 + BN + ReLU → Dropout2d(0.1) → 1×1 classifier; auxiliary FCNHead on stage 3
with loss weight 0.4.

Multi-grid (paper §3.2, mmseg's ``deeplabv3_r101-d16-mg124`` config) sets the
unit rates (1, 2, 4) of the three stage-4 blocks. Here they multiply the
stage's dilation as the paper says — rates (2, 4, 8) at output stride 16 and
(4, 8, 16) at 8 — whereas mmseg's ``ResLayer`` uses the unit rates as absolute
dilations (1, 2, 4). The parameter count is the same either way.

The image-pooling branch has no BN (see :mod:`segstudio.nets.dilated`): mmseg,
torchvision and smp put BN on the 1×1 pooled map, which fails in train mode at
batch 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.dilated import MULTI_GRID, DilatedSegmenter, GlobalPoolBranch, dilated_resnet
from segstudio.nets.layers import ConvBNAct

OS16_RATES = (6, 12, 18)


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """The three atrous rates of the 3×3 ASPP branches: (6, 12, 18) at output stride 16, doubled at 8."""
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
    return tuple(r * 16 // output_stride for r in OS16_RATES)


class ASPPHead(nn.Module):
    """Atrous spatial pyramid pooling with image pooling + 3×3 bottleneck + classifier (mmseg ASPPHead)."""

    def __init__(self, in_ch: int, num_classes: int, rates: tuple[int, ...], channels: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.image_pool = GlobalPoolBranch(in_ch, channels)
        self.branches = nn.ModuleList(
            [ConvBNAct(in_ch, channels, 1)] + [ConvBNAct(in_ch, channels, 3, dilation=r) for r in rates]
        )
        self.bottleneck = ConvBNAct((len(rates) + 2) * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.cat([self.image_pool(x), *(branch(x) for branch in self.branches)], dim=1)
        return self.classifier(self.dropout(self.bottleneck(y)))


class DeepLabV3(DilatedSegmenter):
    """DeepLabv3 on a ResNetV1c-``depth``; ``multi_grid`` gives stage 4 the unit rates (1, 2, 4)."""

    def __init__(self, num_classes: int, in_channels: int = 3, *, depth: int, output_stride: int, multi_grid: bool,
                 aux: bool) -> None:
        backbone = dilated_resnet(depth, in_channels, output_stride, MULTI_GRID if multi_grid else None)
        head = ASPPHead(backbone.out_channels[4], num_classes, aspp_rates(output_stride))
        super().__init__(backbone, head, num_classes, aux)
        self.output_stride = output_stride

