"""LinkNet (Chaurasia & Culurciello, "LinkNet: Exploiting Encoder Representations for Efficient
Semantic Segmentation", VCIP 2017, arXiv:1707.03718) with a ResNet-18 encoder.

Followed: the authors' PyTorch code, e-lab/pytorch-linknet ``models/linknet.py``.

Encoder: ResNet-18 (7×7/2 stem, 3×3/2 max-pool, four stages of two basic
blocks; stages 2–4 halve the size) from :mod:`segstudio.nets.resnet`.
Decoder block (m → n): 1×1 conv m → m/4, 3×3 full (transposed) conv
m/4 → m/4 (×2, or ×1 for the block on stage 1, which does not down-sample),
1×1 conv m/4 → n, each with BN + ReLU. Skips are *added*: d4 = e3 + dec4(e4),
d3 = e2 + dec3(d4), d2 = e1 + dec2(d3), d1 = pool + dec1(d2), where ``pool``
is the max-pool output. Classifier: 3×3 full conv 64 → 32 (×2) + BN + ReLU,
3×3 conv 32 → 32 + BN + ReLU, 2×2 full conv 32 → classes (×2).

Any input size: a ×2 transposed conv always gives 2h × 2w, which is the
encoder map's size or one more (the encoder rounds up); the extra last
row/column is cropped, which keeps the transposed conv's output aligned with
the encoder grid (output 2i is centred on input i, as the stride-2 conv's
output i is centred on input 2i). The crop slices by the skip's runtime shape,
so the ONNX graph stays dynamic.

Deviations: bias-free convs before BN (the reference's classifier convs carry
a redundant bias); no final LogSoftmax (the network returns logits); the
classifier is initialised N(0, 0.01) like every head here. smp's ``Linknet``
is a different layout (five uniform blocks with k4 transposed convs and a 1×1
head, 11,664,371 parameters at 19 classes); this one has 11,535,635, the
paper's "11.5M".
"""

from __future__ import annotations

from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_conv_bn, init_head, seg_outputs
from segstudio.nets.resnet import ResNet


def crop_to(x: Tensor, ref: Tensor) -> Tensor:
    """``x`` cut to ``ref``'s H×W from the top-left (``x`` is at least as large)."""
    return x[:, :, : ref.shape[2], : ref.shape[3]]


class UpConvBN(nn.Module):
    """Transposed conv → crop to the reference map → BN → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        # k3, p1: stride 2 with output_padding 1 gives exactly 2h × 2w; stride 1 keeps the size
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride, 1, output_padding=stride - 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.stride = stride

    def forward(self, x: Tensor, ref: Tensor) -> Tensor:
        y = self.conv(x)
        if self.stride > 1:
            y = crop_to(y, ref)
        return self.relu(self.bn(y))


class DecoderBlock(nn.Module):
    """LinkNet decoder block m → n: 1×1 (m/4), full conv 3×3 (m/4, ×stride), 1×1 (n)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        mid = in_ch // 4
        self.reduce = ConvBNAct(in_ch, mid, 1)
        self.up = UpConvBN(mid, mid, stride)
        self.expand = ConvBNAct(mid, out_ch, 1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return skip + self.expand(self.up(self.reduce(x), skip))


class LinkNet(SegmentationNetwork):
    """LinkNet with a ResNet-18 encoder; see the module docstring."""

    encoder_modules = ("encoder",)

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.encoder = ResNet(18, in_channels=in_channels)
        self.dec4 = DecoderBlock(512, 256, 2)
        self.dec3 = DecoderBlock(256, 128, 2)
        self.dec2 = DecoderBlock(128, 64, 2)
        self.dec1 = DecoderBlock(64, 64, 1)
        self.up1 = UpConvBN(64, 32, 2)
        self.conv = ConvBNAct(32, 32, 3)
        self.classifier = nn.ConvTranspose2d(32, num_classes, 2, 2)
        # the encoder initialised itself (zero-init residual BNs); the decoder gets the same scheme
        for part in (self.dec4, self.dec3, self.dec2, self.dec1, self.up1, self.conv):
            init_conv_bn(part)
        init_head(self.classifier)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        enc = self.encoder
        stem = enc.stem(x)
        pooled = enc.maxpool(stem)
        e1 = enc.layer1(pooled)
        e2 = enc.layer2(e1)
        e3 = enc.layer3(e2)
        e4 = enc.layer4(e3)
        d = self.dec4(e4, e3)
        d = self.dec3(d, e2)
        d = self.dec2(d, e1)
        d = self.dec1(d, pooled)
        y = self.conv(self.up1(d, stem))
        return seg_outputs(crop_to(self.classifier(y), x), self.training)

