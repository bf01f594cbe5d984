"""PSPNet (Zhao et al., Pyramid Scene Parsing Network, CVPR 2017, arXiv:1612.01105) on dilated ResNets.

Layout of mmsegmentation's ``configs/_base_/models/pspnet_r50-d8.py`` and
``decode_heads/psp_head.py`` (docs/MODEL_NOTES.md §6): ResNetV1c-50/101 at output
stride 8 (see :mod:`segstudio.nets.dilated`); a pyramid pooling module on the
2048-channel stage-4 map with bins 1, 2, 3, 6, each branch adaptive average
pool → 1×1 conv to 512 channels → bilinear resize back (``align_corners=False``);
concatenation of the input map and the four branches (2048 + 4·512 channels) →
3×3 conv to 512 + BN + ReLU → Dropout2d(0.1) → 1×1 classifier; auxiliary
FCNHead on stage 3 with loss weight 0.4.

The bins 2, 3 and 6 pool with :func:`segstudio.nets.layers.adaptive_avg_pool2d`,
which computes PyTorch's adaptive bins from the traced shape, so one ONNX file
is right for every H×W (docs/MODEL_NOTES.md §0 P4, §16). The 1-bin branch has no BN
(see :mod:`segstudio.nets.dilated`); the others keep mmseg's conv + BN + ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.dilated import ALIGN_CORNERS, DilatedSegmenter, GlobalPoolBranch, dilated_resnet
from segstudio.nets.layers import ConvBNAct, adaptive_avg_pool2d, resize_to

POOL_SCALES = (1, 2, 3, 6)


class PoolBranch(nn.Module):
    """Adaptive average pool to ``bins``×``bins`` → 1×1 conv + BN + ReLU → bilinear resize to the input."""

    def __init__(self, in_ch: int, out_ch: int, bins: int) -> None:
        super().__init__()
        self.bins = bins
        self.conv = ConvBNAct(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return resize_to(self.conv(adaptive_avg_pool2d(x, self.bins)), x, align_corners=ALIGN_CORNERS)

    def extra_repr(self) -> str:
        return f"bins={self.bins}"


class PSPHead(nn.Module):
    """Pyramid pooling module + 3×3 bottleneck + classifier; logits at the input map's resolution."""

    def __init__(self, in_ch: int, num_classes: int, channels: int = 512,
                 pool_scales: tuple[int, ...] = POOL_SCALES, dropout: float = 0.1) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            GlobalPoolBranch(in_ch, channels) if s == 1 else PoolBranch(in_ch, channels, s) for s in pool_scales
        )
        self.bottleneck = ConvBNAct(in_ch + len(pool_scales) * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.cat([x, *(branch(x) for branch in self.branches)], dim=1)
        return self.classifier(self.dropout(self.bottleneck(y)))


class PSPNet(DilatedSegmenter):
    """PSPNet on a ResNetV1c-``depth`` at output stride 8; ``aux`` adds the stage-3 FCN head (train mode)."""

    def __init__(self, num_classes: int, in_channels: int = 3, *, depth: int, aux: bool) -> None:
        backbone = dilated_resnet(depth, in_channels, output_stride=8)
        super().__init__(backbone, PSPHead(backbone.out_channels[4], num_classes), num_classes, aux)

