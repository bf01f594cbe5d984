"""U-Net (Ronneberger et al. 2015) with padded convs and BatchNorm.

Five levels of two 3×3 conv+BN+ReLU (64…1024 channels), 2×2 max-pool down,
2×2 transposed conv up (halving channels), skip concatenation, 1×1 classifier
at full resolution. The up-sampled map is resized to its skip's size, so any
input size works (the paper's valid convs and crops are replaced by padding,
as in every modern reference).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_conv_bn, init_head, resize_to, seg_outputs


class DoubleConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(ConvBNAct(in_ch, out_ch, 3), ConvBNAct(out_ch, out_ch, 3))


class Up(nn.Module):
    """Up-sample ×2 halving the channels, resize to the skip, concat, double conv."""

    def __init__(self, in_ch: int, out_ch: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(in_ch, in_ch // 2, 2, 2)
        else:
            self.up = nn.Conv2d(in_ch, in_ch // 2, 1)
        self.conv = DoubleConv(in_ch // 2 + out_ch, out_ch)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        if self.mode == "transpose":
            x = resize_to(self.up(x), skip)
        else:
            x = self.up(resize_to(x, skip))
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(SegmentationNetwork):
    """The U-Net; ``base_width`` channels at the first level, ``upsample`` "transpose" or "bilinear"."""

    encoder_modules = ("inc", "downs")

    def __init__(self, num_classes: int, in_channels: int = 3, *, base_width: int, upsample: str) -> None:
        super().__init__()
        w = [base_width * 2**i for i in range(5)]
        self.inc = DoubleConv(in_channels, w[0])
        self.pool = nn.MaxPool2d(2)
        self.downs = nn.ModuleList(DoubleConv(w[i], w[i + 1]) for i in range(4))
        self.ups = nn.ModuleList(Up(w[i + 1], w[i], upsample) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], num_classes, 1)
        init_conv_bn(self)
        init_head(self.head)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(self.pool(skips[-1])))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return seg_outputs(self.head(y), self.training)

