"""UNet 3+ (Huang et al., "UNet 3+: A Full-Scale Connected UNet for Medical Image Segmentation",
ICASSP 2020, arXiv:2004.08790) with deep supervision and the classification-guided module (CGM),
generalised to many classes.

Followed: ZJUGiveLab/UNet-Version ``models/UNet_3Plus.py`` (``UNet_3Plus_DeepSup_CGM``).

Encoder h1..h5: two 3×3 conv+BN+ReLU per level, widths 64…1024, 2×2 max-pool
down; hd5 = h5. Decoder level d = 4, 3, 2, 1 gathers all five scales: each
encoder map h_e (e ≤ d) is max-pooled by 2^(d−e) and each deeper decoder map
hd_e (e > d; 320 channels, or 1024 for hd5) is bilinearly up-sampled to level
d, then each goes through a 3×3 conv (→ CatChannels = 64) + BN + ReLU; the five
are concatenated (UpChannels = 320) and fused by a 3×3 conv + BN + ReLU.

Deep supervision: 3×3 conv heads on hd1..hd4 (320 ch) and on hd5 (1024 ch).
In training the network returns ``{"out": head(hd1), "ds2": …, "ds5": …,
"cls": …}``: the side outputs at their own resolution (the training engine
resizes them and applies the segmentation loss to each), and ``cls``, the
CGM's image-level class-presence logits (N×K), trained with BCE against
"class present in the label".

CGM: Dropout(0.5) → 1×1 conv (1024 → K) on hd5 → global max → presence
logits. The reference is binary (two CGM outputs, argmax, an einsum that only
works for one class) and multiplies the pre-sigmoid maps by 0 or 1, which
turns an absent organ into probability 0.5; zeroing logits under a softmax
does nothing sensible either. Here, at inference (``cgm="gate"``), a class
whose presence logit is below 0 has its logits replaced by −10⁴, so its
softmax probability is 0 and the prediction is restricted to the classes the CGM
finds present; for K > 1 the class with the highest presence logit always
stays (if the CGM finds nothing, the map is not emptied). With one class this
is the reference's behaviour done right (absent → probability 0). It is a
``masked_fill`` with a per-image, per-class mask (ONNX ``Where``): no einsum,
no shape-dependent control flow, exports to ONNX for any batch/H/W. The gate is
applied in eval mode only; training sees the ungated logits, so the
segmentation heads always receive gradients (the reference gates in
training too, through a non-differentiable argmax). ``cgm="loss"`` keeps the
head as an auxiliary training task without gating; ``cgm="off"`` drops it.

Deviations: bias-free convs before BN; BN weights start at 1 (the reference
draws N(1, 0.02)); down-sampling pools use floor mode (the reference's
``ceil_mode=True`` with fixed ×2…×16 up-sampling only works for sizes that are
multiples of 16; floor-mode k×k pooling lands exactly on each level's size,
and is identical for those sizes), and up-sampling resizes to the target
level's size, so any input size works. ``align_corners=False`` (the
reference's ``nn.Upsample`` default).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_conv_bn, init_head, resize_to, seg_outputs
from segstudio.nets.unet import DoubleConv

FILTERS = (64, 128, 256, 512, 1024)
CAT_CHANNELS = 64
UP_CHANNELS = CAT_CHANNELS * len(FILTERS)  # 320
ABSENT_LOGIT = -1e4
"""The logit the CGM gives an absent class: far below any trained logit, exact and finite in fp16."""


class FullScaleDecoder(nn.Module):
    """Decoder level ``d`` (1..4): one conv branch per scale, concatenated and fused."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d
        branches = []
        for e in range(1, len(FILTERS) + 1):
            if e <= d:
                in_ch = FILTERS[e - 1]  # encoder map h_e
            elif e == len(FILTERS):
                in_ch = FILTERS[-1]  # hd5 = h5
            else:
                in_ch = UP_CHANNELS  # decoder map hd_e
            branches.append(ConvBNAct(in_ch, CAT_CHANNELS, 3))
        self.branches = nn.ModuleList(branches)
        self.pools = nn.ModuleList(nn.MaxPool2d(2 ** (d - e), 2 ** (d - e)) for e in range(1, d))
        self.fuse = ConvBNAct(UP_CHANNELS, UP_CHANNELS, 3)

    def forward(self, enc: list[Tensor], dec: dict[int, Tensor]) -> Tensor:
        """``enc`` = [h1..h_d]; ``dec`` = {e: hd_e} for e = d+1..5."""
        target = enc[self.d - 1]
        parts = []
        for e, branch in enumerate(self.branches, start=1):
            if e < self.d:
                src = self.pools[e - 1](enc[e - 1])
            elif e == self.d:
                src = target
            else:
                src = resize_to(dec[e], target)
            parts.append(branch(src))
        return self.fuse(torch.cat(parts, dim=1))


class UNet3Plus(SegmentationNetwork):
    """UNet 3+ with five deep-supervision heads and a multi-class CGM; see the module docstring."""

    encoder_modules = ("encoder",)

    def __init__(self, num_classes: int, in_channels: int = 3, *, cgm: str) -> None:
        super().__init__()
        if cgm not in ("gate", "loss", "off"):
            raise ValueError(f"cgm must be 'gate', 'loss' or 'off', got {cgm!r}")
        self.num_classes = num_classes
        self.cgm = cgm
        self.pool = nn.MaxPool2d(2)
        self.encoder = nn.ModuleList(
            [DoubleConv(in_channels, FILTERS[0])]
            + [DoubleConv(FILTERS[i - 1], FILTERS[i]) for i in range(1, len(FILTERS))]
        )
        self.decoders = nn.ModuleDict({str(d): FullScaleDecoder(d) for d in (4, 3, 2, 1)})
        # heads[0] reads hd1 (the main output); heads[1..3] hd2..hd4; heads[4] hd5 (1024 ch)
        self.heads = nn.ModuleList(
            [nn.Conv2d(UP_CHANNELS, num_classes, 3, padding=1) for _ in range(4)]
            + [nn.Conv2d(FILTERS[-1], num_classes, 3, padding=1)]
        )
        self.cls: nn.Module | None = None
        if cgm != "off":
            self.cls = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(FILTERS[-1], num_classes, 1))
        init_conv_bn(self)
        for head in self.heads:
            init_head(head)
        if self.cls is not None:
            init_head(self.cls)

    def presence_logits(self, hd5: Tensor) -> Tensor:
        """The CGM's N×K class-presence logits (global max of a 1×1 conv over hd5)."""
        assert self.cls is not None
        return self.cls(hd5).amax(dim=(2, 3))

    def _gate(self, logits: Tensor, presence: Tensor) -> Tensor:
        """Lower the logits of the classes the CGM finds absent (see the module docstring)."""
        present = presence > 0
        if self.num_classes > 1:
            present = present | (presence >= presence.amax(dim=1, keepdim=True))
        # a constant rather than a shift: logit − 10⁴ would round to 1e-3 in fp32 and differ between runtimes
        return logits.masked_fill(~present[:, :, None, None], ABSENT_LOGIT)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        enc = [self.encoder[0](x)]
        for block in self.encoder[1:]:
            enc.append(block(self.pool(enc[-1])))
        dec: dict[int, Tensor] = {5: enc[4]}
        for d in (4, 3, 2, 1):
            dec[d] = self.decoders[str(d)](enc[:d], dec)
        out = self.heads[0](dec[1])
        if not self.training:
            if self.cgm == "gate":
                out = self._gate(out, self.presence_logits(dec[5]))
            return out
        aux = {f"ds{d}": self.heads[d - 1](dec[d]) for d in range(2, 6)}
        if self.cls is not None:
            aux["cls"] = self.presence_logits(dec[5])
        return seg_outputs(out, True, **aux)

