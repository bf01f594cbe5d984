"""Shared parts of the dilated-ResNet segmenters (PSPNet, DeepLabv3), following mmsegmentation.

mmseg's ``pspnet_r50-d8`` / ``deeplabv3_r50-d8`` configs (docs/MODEL_NOTES.md §6, §7):

- backbone ResNetV1c (deep stem of three 3×3 convs, 32-32-64 channels), stride on
  the 3×3 conv, ``contract_dilation=True``; output stride 8 uses
  ``strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)``, output stride 16 uses
  ``strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)``;
- the decode head reads stage 4 (2048 channels) and ends with Dropout2d(0.1) and
  a 1×1 classifier; its logits (at 1/8 or 1/16) are resized bilinearly with
  ``align_corners=False`` to the input size, the same in train, eval and export;
- the auxiliary FCNHead reads stage 3 (1024 channels): 3×3 conv 1024→256 + BN +
  ReLU, Dropout2d(0.1), 1×1 classifier, loss weight 0.4; it is built only with
  ``aux=True`` and run only in train mode.

One deliberate change from mmseg: the global-pooling branches (PSPNet's 1×1 bin,
DeepLabv3's image pooling) have no BatchNorm. Their input is one value per
channel, so BN in train mode with batch 1 raises ("Expected more than 1 value
per channel") and with small batches normalises over a handful of numbers; mmseg
hides this behind SyncBN over many GPUs. :class:`GlobalPoolBranch` uses a biased
1×1 conv + ReLU instead, as segmentation_models_pytorch does for its PSP 1×1 bin.
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
from segstudio.nets.resnet import ResNet

ALIGN_CORNERS = False
"""mmseg's PSPNet and DeepLabv3 configs use ``align_corners=False`` everywhere."""

MULTI_GRID = (1, 2, 4)
"""The DeepLabv3 paper's best unit rates for stage 4 (and mmseg's D16-MG124 config)."""


def dilated_resnet(depth: int, in_channels: int = 3, output_stride: int = 8,
                   multi_grid: tuple[int, ...] | None = None) -> ResNet:
    """ResNetV1c-``depth`` whose stage-4 features are at 1/``output_stride`` (8 or 16).

    ``multi_grid`` multiplies the stage-4 dilation per block (paper §3.2: at
    output stride 16, (1, 2, 4) gives rates 2·(1, 2, 4) = (2, 4, 8)).
    """
    if output_stride == 8:
        strides, dilations = (1, 2, 1, 1), (1, 1, 2, 4)
    elif output_stride == 16:
        strides, dilations = (1, 2, 2, 1), (1, 1, 1, 2)
    else:
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
    return ResNet(depth, in_channels, deep_stem=True, strides=strides, dilations=dilations,
                  multi_grid=multi_grid, contract_dilation=True)


class GlobalPoolBranch(nn.Module):
    """Global average pool → 1×1 conv (with bias, no BN) → ReLU, broadcast back to the input's H×W.

    No BatchNorm on purpose: see the module docstring. Broadcasting a 1×1 map is
    exactly what a bilinear resize of it gives. The broadcast is materialised in
    the input's memory format: a stride-0 view would make ``torch.cat`` return an
    NCHW tensor and break channels_last for the convolution after it.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self.conv(adaptive_avg_pool2d(x, 1)))
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return y.expand(-1, -1, x.shape[2], x.shape[3]).contiguous(memory_format=fmt)


class FCNHead(nn.Module):
    """mmseg's FCNHead with one conv (``num_convs=1, concat_input=False``): the auxiliary head."""

    def __init__(self, in_ch: int, ch: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_ch, ch, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(ch, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.conv(x)))


class DilatedSegmenter(SegmentationNetwork):
    """Dilated ResNet → ``decode_head`` on stage 4 → logits at the input size; aux FCN head on stage 3.

    ``decode_head`` maps the 2048-channel stage-4 map to class logits at the
    same resolution; its last layer is its ``classifier`` submodule. In train
    mode the output is ``{"out": logits, "aux": aux logits at 1/output_stride}``
    (``"aux"`` only when built with ``aux=True``); in eval mode the logits
    alone, and the auxiliary head is not run.
    """

    encoder_modules = ("backbone",)

    def __init__(self, backbone: ResNet, decode_head: nn.Module, num_classes: int, aux: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head
        self.aux_head = FCNHead(backbone.out_channels[3], 256, num_classes) if aux else None
        # The backbone initialised itself (Kaiming + zero-init residual BN); the heads follow mmseg's
        # ConvModule (Kaiming fan_out) and conv_seg (N(0, 0.01)) initialisation.
        for head in (decode_head, self.aux_head):
            if head is not None:
                init_conv_bn(head)
                init_head(head.get_submodule("classifier"))

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        feats = self.backbone(x)
        out = resize_to(self.decode_head(feats[4]), x, align_corners=ALIGN_CORNERS)
        if self.training and self.aux_head is not None:
            return seg_outputs(out, True, aux=self.aux_head(feats[3]))
        return seg_outputs(out, self.training)
