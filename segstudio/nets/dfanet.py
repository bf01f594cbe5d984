"""DFANet A and B (Li, Xiong, Fan, Sun, CVPR 2019, arXiv:1904.02216).

No official code exists, and the two public PyTorch versions disagree, so this
follows the paper: Table 1 for the backbones, Figure 3 and §3 for the
aggregation and the decoder (docs/MODEL_NOTES.md §13).

**Backbone** (the paper's modified Xception + "FC attention"). conv1: a plain
3×3 conv s2 (→8) + BN + ReLU. enc2/enc3/enc4: 4/6/4 Xception blocks; a block
is three 3×3 depthwise-separable convs with widths c/4, c/4, c and a residual
(1×1 conv + BN where the shape changes); the first block of each stage has
stride 2. Widths c per stage (Table 1): XceptionA 48/96/192, XceptionB
32/64/128. FC attention: global average pool → fc (c4→1000) → 1×1 conv
(1000→c4) → multiply the enc4 features channel-wise.

**Sub-network aggregation.** The FC-attention output of backbone k is resized
to the size of its own enc2 output (×4) and concatenated with it; that is the
input of backbone k+1, which has no conv1 and starts at enc2 (stride 2), so the
three backbones run at successively lower resolution (enc2 at 1/4, 1/8, 1/16;
FC attention at 1/16, 1/32, 1/64).

**Sub-stage aggregation.** enc3 of backbone k+1 takes concat(its enc2 output,
enc3 output of backbone k); enc4 likewise takes concat(its enc3, enc4 of
backbone k). The stride-2 convs make the concatenated maps the same size for
any input size.

**Decoder** (Figure 3): the three enc2 outputs each get a 1×1 conv + BN + ReLU
(→64), are resized to the first enc2's size (1/4) and summed, then a further
1×1 conv + BN + ReLU; the three FC-attention outputs each get a 1×1 conv + BN
+ ReLU (→64), resized to 1/4 and added; a 1×1 conv gives the class logits at
1/4, bilinearly resized to the input.

Decisions (the paper does not say, or we deviate on purpose):

* The three backbones have the same architecture and **separate weights**
  (both public versions do the same; the paper's "replicate backbones").
* The FC layer keeps the paper's 1000 units although we train from scratch and
  its ImageNet meaning is gone: with no nonlinearity between fc and the 1×1
  conv the pair is one linear map of rank ≤ c4, so the width changes neither
  capacity nor (on an N×c vector) speed; it costs 385k (A) / 257k (B)
  parameters per backbone. No sigmoid: the paper multiplies by the conv output
  directly, and the BN layers that follow absorb its scale.
* Decoder width 64 (the paper draws the convs without a width); stride 2 sits
  on the first separable conv of a block (cheapest, as in the jandylin code);
  no BN or ReLU between a separable conv's depthwise and pointwise parts
  (Xception's finding), ReLU between the three separable convs and after the
  residual sum.
* ``align_corners=False`` everywhere (no reference exists; PyTorch's default,
  ONNX ``half_pixel``), identical in train, eval and export.
* Initialisation: Kaiming convs, BN 1/0, and zero-init residual (the last BN
  scale of every Xception block starts at 0, as segstudio's ResNet does). The
  three cascaded backbones stack 42 residual blocks; with every branch active
  at initialisation the network is chaotic (a float32 forward differs from
  float64 by ~1e-3 relative at the logits), which hurts training from
  scratch. Starting each block as its shortcut keeps the untrained cascade
  well conditioned.

Reference code read to understand (not copied): huaifeng1993/DFANet and
jandylin/DFANet_PyTorch, whose decoder is incomplete (docs/MODEL_NOTES.md §13).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_conv_bn, init_head, resize_to, seg_outputs

ALIGN_CORNERS = False
STAGE_BLOCKS = (4, 6, 4)
STEM_WIDTH = 8
FC_WIDTH = 1000
DECODER_WIDTH = 64
NUM_BACKBONES = 3


class SeparableConv(nn.Module):
    """3×3 depthwise conv (stride ``stride``) → 1×1 pointwise conv → BN."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pointwise(self.depthwise(x)))


class XceptionBlock(nn.Module):
    """Three separable convs (c/4, c/4, c) with ReLUs between, a residual, ReLU after the sum."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        mid = out_ch // 4
        self.sep1 = SeparableConv(in_ch, mid, stride)
        self.sep2 = SeparableConv(mid, mid)
        self.sep3 = SeparableConv(mid, out_ch)
        self.skip: nn.Module = (
            ConvBNAct(in_ch, out_ch, 1, stride, act=None) if stride != 1 or in_ch != out_ch else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.sep3(self.relu(self.sep2(self.relu(self.sep1(x)))))
        return self.relu(out + self.skip(x))


class Stage(nn.Sequential):
    """``blocks`` Xception blocks, the first with stride 2."""

    def __init__(self, in_ch: int, out_ch: int, blocks: int) -> None:
        super().__init__(XceptionBlock(in_ch, out_ch, 2), *(XceptionBlock(out_ch, out_ch) for _ in range(blocks - 1)))


class FCAttention(nn.Module):
    """Global average pool → fc (c→1000) → 1×1 conv (1000→c) → channel-wise product with the input."""

    def __init__(self, channels: int, hidden: int = FC_WIDTH) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, hidden)
        self.conv = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        code = self.fc(x.mean(dim=(2, 3)))[:, :, None, None]
        return x * self.conv(code)


class Backbone(nn.Module):
    """One XceptionA/B sub-network; the first has conv1, the others take the previous one's features.

    ``forward`` returns ``(enc2, enc3, enc4, fc_attention)`` outputs.
    """

    def __init__(self, widths: tuple[int, int, int], in_channels: int | None) -> None:
        super().__init__()
        c2, c3, c4 = widths
        self.conv1: nn.Module | None
        if in_channels is not None:  # the first backbone reads the image
            self.conv1 = ConvBNAct(in_channels, STEM_WIDTH, 3, 2)
            ins = (STEM_WIDTH, c2, c3)
        else:  # sub-network aggregation (enc2) and sub-stage aggregation (enc3, enc4) inputs
            self.conv1 = None
            ins = (c2 + c4, c2 + c3, c3 + c4)
        self.enc2 = Stage(ins[0], c2, STAGE_BLOCKS[0])
        self.enc3 = Stage(ins[1], c3, STAGE_BLOCKS[1])
        self.enc4 = Stage(ins[2], c4, STAGE_BLOCKS[2])
        self.attention = FCAttention(c4)

    def forward(self, x: Tensor, prev: tuple[Tensor, ...] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if prev is None:
            assert self.conv1 is not None
            e2 = self.enc2(self.conv1(x))
            e3 = self.enc3(e2)
            e4 = self.enc4(e3)
        else:
            p2, p3, p4, pfc = prev
            # upsample the previous FC-attention output to the previous enc2's size (×4) and concatenate
            e2 = self.enc2(torch.cat([p2, resize_to(pfc, p2, ALIGN_CORNERS)], dim=1))
            e3 = self.enc3(torch.cat([e2, p3], dim=1))
            e4 = self.enc4(torch.cat([e3, p4], dim=1))
        return e2, e3, e4, self.attention(e4)


class Decoder(nn.Module):
    """Figure 3's decoder: low-level (enc2 ×3) and high-level (FC attention ×3) paths summed at 1/4."""

    def __init__(self, widths: tuple[int, int, int], num_classes: int, width: int = DECODER_WIDTH) -> None:
        super().__init__()
        c2, _, c4 = widths
        self.low = nn.ModuleList(ConvBNAct(c2, width, 1) for _ in range(NUM_BACKBONES))
        self.low_merge = ConvBNAct(width, width, 1)
        self.high = nn.ModuleList(ConvBNAct(c4, width, 1) for _ in range(NUM_BACKBONES))
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, low: list[Tensor], high: list[Tensor]) -> Tensor:
        ref = low[0]
        # convs run before the resize, at each map's own (lower) resolution
        low_sum = self.low[0](ref)
        for conv, feat in zip(self.low[1:], low[1:]):
            low_sum = low_sum + resize_to(conv(feat), ref, ALIGN_CORNERS)
        fused = self.low_merge(low_sum)
        for conv, feat in zip(self.high, high):
            fused = fused + resize_to(conv(feat), ref, ALIGN_CORNERS)
        return self.head(fused)


class DFANet(SegmentationNetwork):
    """DFANet with three backbones whose enc2/enc3/enc4 stages output ``widths`` channels: (48, 96, 192) for
    XceptionA, (32, 64, 128) for XceptionB (paper Table 1; the variants' specs give them)."""

    encoder_modules = ("backbones",)

    def __init__(self, num_classes: int, in_channels: int = 3, *, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.widths = widths
        self.backbones = nn.ModuleList(
            Backbone(widths, in_channels if k == 0 else None) for k in range(NUM_BACKBONES)
        )
        self.decoder = Decoder(widths, num_classes)
        init_conv_bn(self)
        for m in self.modules():
            if isinstance(m, XceptionBlock):
                # zero-init residual: every block starts as its shortcut (as segstudio's ResNet)
                nn.init.zeros_(m.sep3.bn.weight)
        init_head(self.decoder.head)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        feats: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        low: list[Tensor] = []
        high: list[Tensor] = []
        for backbone in self.backbones:
            feats = backbone(x, feats)
            low.append(feats[0])
            high.append(feats[3])
        logits = resize_to(self.decoder(low, high), x, ALIGN_CORNERS)
        return seg_outputs(logits, self.training)

