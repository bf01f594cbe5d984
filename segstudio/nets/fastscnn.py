"""Fast-SCNN (Poudel, Liwicki, Cipolla 2019, arXiv:1902.04502).

Four modules, all at ≤ 1/8 resolution (docs/MODEL_NOTES.md §12):

* **Learning to downsample** — 3×3 conv s2 (→32) + BN + ReLU, then two
  depthwise-separable convs s2 (32→48, 48→64): a 64-channel map at 1/8.
* **Global feature extractor** — MobileNetV2 inverted residuals (expansion 6):
  64→64 ×3 (first s2), 64→96 ×3 (first s2), 96→128 ×3 → 1/32, then a pyramid
  pooling module (bins 1, 2, 3, 6; 1×1 conv 128→32 each, upsampled and
  concatenated with the input: 256) and a 1×1 conv back to 128.
* **Feature fusion** — the 1/32 map is resized to the 1/8 map's *size* (not a
  fixed ×4, which breaks for inputs not divisible by 32), 3×3 depthwise conv
  + BN + ReLU, 1×1 conv + BN; the 1/8 map gets a 1×1 conv + BN; sum; ReLU.
* **Classifier** — two depthwise-separable convs (128), dropout 0.1, 1×1 conv
  to the classes at 1/8, bilinearly resized to the input.

Optional auxiliary heads (``aux=True``, the default, as in mmseg's
``configs/_base_/models/fast_scnn.py``: two FCN heads at loss weight 0.4): a
3×3 conv (→32) + BN + ReLU + dropout 0.1 + 1×1 conv on the learning-to-
downsample output (1/8, "aux_downsample") and on the global feature extractor
output (1/32, "aux_global"). They exist only in train mode; eval computes
neither.

Choices (deliberate, see the spec sheet's "Tricky" list):

* Depthwise-separable convs put BN after the depthwise conv but *no* ReLU
  between depthwise and pointwise (BN → ReLU only after the pointwise conv).
  The paper follows the MobileNetV2 convention here and mmseg's current
  ``FastSCNN`` uses ``dw_act_cfg=None``; Tramac's code adds a ReLU after the
  depthwise conv too. The parameter count is the same either way.
* ``align_corners=False`` for every resize (PPM, FFM, final), as mmseg's
  Fast-SCNN config; Tramac uses True. False is PyTorch's default, maps to ONNX
  ``half_pixel`` which every runtime (TensorRT included) implements, and is
  what the training engine uses to resize auxiliary logits. The same setting
  is used in train, eval and export.
* The first conv pads by 1 (as mmseg; Tramac pads 0), so every stride-2 step
  gives ceil(n/2) and the 1/8 and 1/32 maps line up for any input size.
* Convs followed by BN carry no bias (Tramac's FFM 1×1 convs have one, which
  BN cancels): 256 parameters fewer than the 1,138,051 of Tramac's code.

Reference code read: Tramac/Fast-SCNN-pytorch ``models/fast_scnn.py`` and
mmsegmentation ``mmseg/models/backbones/fast_scnn.py``; this file is written
from the architecture description, not copied.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import (
    ConvBNAct,
    adaptive_avg_pool2d,
    init_conv_bn,
    init_head,
    resize_to,
    seg_outputs,
)

ALIGN_CORNERS = False


class DSConv(nn.Sequential):
    """Depthwise 3×3 conv + BN (no activation), pointwise 1×1 conv + BN + ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__(
            ConvBNAct(in_ch, in_ch, 3, stride, groups=in_ch, act=None),
            ConvBNAct(in_ch, out_ch, 1),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck: 1×1 expand + BN + ReLU, 3×3 depthwise + BN + ReLU, 1×1 project + BN."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int = 6) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.use_residual = stride == 1 and in_ch == out_ch
        self.block = nn.Sequential(
            ConvBNAct(in_ch, hidden, 1),
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
            ConvBNAct(hidden, out_ch, 1, act=None),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class PyramidPooling(nn.Module):
    """PPM: average pools to 1, 2, 3, 6 bins, 1×1 conv (C→C/4) each, resize back, concat with the input, 1×1 conv."""

    def __init__(self, channels: int, out_ch: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = bins
        self.stages = nn.ModuleList(ConvBNAct(channels, channels // 4, 1) for _ in bins)
        self.out = ConvBNAct(channels + len(bins) * (channels // 4), out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        # layers.adaptive_avg_pool2d: the native op in eager mode, an exact
        # shape-driven equivalent while exporting (bins 2/3/6 do not export
        # for dynamic H×W otherwise, docs/MODEL_NOTES.md §16).
        pooled = [
            resize_to(stage(adaptive_avg_pool2d(x, b)), x, ALIGN_CORNERS) for b, stage in zip(self.bins, self.stages)
        ]
        return self.out(torch.cat([x, *pooled], dim=1))


class GlobalFeatureExtractor(nn.Sequential):
    """Three groups of three inverted residuals (64, 96, 128; strides 2, 2, 1) and the PPM: 1/8 → 1/32."""

    def __init__(self, in_ch: int = 64, widths: tuple[int, int, int] = (64, 96, 128),
                 strides: tuple[int, int, int] = (2, 2, 1), out_ch: int = 128) -> None:
        layers: list[nn.Module] = []
        prev = in_ch
        for width, stride in zip(widths, strides):
            layers += [InvertedResidual(prev, width, stride), InvertedResidual(width, width, 1),
                       InvertedResidual(width, width, 1)]
            prev = width
        layers.append(PyramidPooling(prev, out_ch))
        super().__init__(*layers)


class FeatureFusion(nn.Module):
    """Fuse the 1/8 (64 ch) and 1/32 (128 ch) maps at the 1/8 map's size."""

    def __init__(self, high_ch: int = 64, low_ch: int = 128, out_ch: int = 128) -> None:
        super().__init__()
        self.low_dw = ConvBNAct(low_ch, out_ch, 3, groups=low_ch)
        self.low_proj = ConvBNAct(out_ch, out_ch, 1, act=None)
        self.high_proj = ConvBNAct(high_ch, out_ch, 1, act=None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, high: Tensor, low: Tensor) -> Tensor:
        # Resize to the 1/8 map's actual size: the paper's ×4 only fits inputs divisible by 32.
        low = self.low_proj(self.low_dw(resize_to(low, high, ALIGN_CORNERS)))
        return self.relu(self.high_proj(high) + low)


class AuxHead(nn.Sequential):
    """FCN auxiliary head: 3×3 conv (→32) + BN + ReLU, dropout 0.1, 1×1 conv to the classes."""

    def __init__(self, in_ch: int, num_classes: int, mid_ch: int = 32) -> None:
        super().__init__(ConvBNAct(in_ch, mid_ch, 3), nn.Dropout(0.1), nn.Conv2d(mid_ch, num_classes, 1))


class FastSCNN(SegmentationNetwork):
    """Fast-SCNN; ``aux=True`` adds the two auxiliary heads used in train mode only."""

    encoder_modules = ("downsample", "global_features")

    def __init__(self, num_classes: int, in_channels: int = 3, *, aux: bool) -> None:
        super().__init__()
        self.downsample = nn.Sequential(
            ConvBNAct(in_channels, 32, 3, 2),
            DSConv(32, 48, 2),
            DSConv(48, 64, 2),
        )
        self.global_features = GlobalFeatureExtractor(64, (64, 96, 128), (2, 2, 1), 128)
        self.fusion = FeatureFusion(64, 128, 128)
        self.classifier = nn.Sequential(DSConv(128, 128), DSConv(128, 128), nn.Dropout(0.1))
        self.head = nn.Conv2d(128, num_classes, 1)
        self.aux_downsample = AuxHead(64, num_classes) if aux else None
        self.aux_global = AuxHead(128, num_classes) if aux else None
        init_conv_bn(self)
        init_head(self.head)
        for aux_head in (self.aux_downsample, self.aux_global):
            if aux_head is not None:
                init_head(aux_head[-1])

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        high = self.downsample(x)
        low = self.global_features(high)
        logits = resize_to(self.head(self.classifier(self.fusion(high, low))), x, ALIGN_CORNERS)
        if not self.training or self.aux_downsample is None or self.aux_global is None:
            return seg_outputs(logits, self.training)
        return seg_outputs(logits, True, aux_downsample=self.aux_downsample(high), aux_global=self.aux_global(low))

