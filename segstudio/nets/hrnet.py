"""HRNetV2 for semantic segmentation (Sun et al., "Deep High-Resolution Representation Learning
for Visual Recognition", TPAMI 2020, arXiv:1908.07919).

Architecture, as in the official ``lib/models/seg_hrnet.py`` (HRNet/HRNet-Semantic-Segmentation)
and its yaml configs:

- Stem: two 3×3 stride-2 convs (64 channels) + BN + ReLU → 1/4.
- Stage 1: ``stage1_blocks`` bottlenecks at 64 (output 256 channels).
- Transition 1: a 3×3 conv to ``widths[0]`` (stride 1) and a 3×3 stride-2 conv to ``widths[1]``;
  transitions 2 and 3 add one branch each with a 3×3 stride-2 conv from the lowest-resolution branch.
- Stages 2–4: ``modules[s]`` high-resolution modules with 2, 3, 4 branches at 1/4, 1/8, 1/16, 1/32.
  Each branch is ``blocks`` basic blocks at its width; then every output branch i sums all branches
  j: j > i through a 1×1 conv + BN and a bilinear resize to branch i's exact size; j < i through
  (i − j) 3×3 stride-2 convs (+ BN, ReLU on all but the last); then a ReLU.
- HRNetV2 head: branches 2–4 resized to branch 1's size, concatenated (sum of the widths),
  1×1 conv + BN + ReLU, 1×1 classifier at 1/4, bilinear resize to the input.

Choices (docs/MODEL_NOTES.md §4, §0):

- BN momentum 0.1 (the HRNet-OCR branch and mmseg). Master's 0.01 belongs to InPlaceABNSync over
  large multi-GPU batches and long schedules; the app fine-tunes on few images with small batches,
  where the running statistics must follow the data quickly.
- ``align_corners=False`` everywhere (master's bare ``F.upsample`` and mmseg), identical in train,
  eval and export.
- Conv weights N(0, 0.001) and BN 1/0 as ``init_weights`` in the reference; the classifier N(0, 0.01)
  (``layers.init_head``).
- The head's first 1×1 conv has no bias (the reference's bias there is cancelled by the BN that follows;
  this drops sum(widths) parameters, e.g. 270 for W18-Small-v2).

Odd sizes: a 3×3 stride-2 conv with padding 1 gives ceil(n/2), and both the transitions and the
fuse down-paths are chains of exactly these convs from the same 1/4 map, so branch sizes agree on
every down-path; the up-paths resize to the target branch's exact size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_head, resize_to, seg_outputs

BN_MOMENTUM = 0.1
ALIGN_CORNERS = False


@dataclass(frozen=True)
class HRNetConfig:
    """Stage configuration: stage 1 bottleneck count and, for stages 2–4, modules and blocks per branch."""

    widths: tuple[int, int, int, int]
    stage1_blocks: int
    modules: tuple[int, int, int]
    blocks: tuple[int, int, int]
    stage1_planes: int = 64


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
    """Two 3×3 conv + BN with an identity shortcut (widths never change inside an HRNet branch)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn1 = _bn(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = _bn(ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 (×4 expansion) with BN; a 1×1 conv + BN shortcut when the width changes."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = _bn(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), _bn(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _down_path(in_ch: int, out_ch: int, steps: int) -> nn.Sequential:
    """``steps`` 3×3 stride-2 convs + BN from branch j to branch i = j + steps; ReLU on all but the last."""
    layers = [ConvBNAct(in_ch, in_ch, 3, stride=2, bn_momentum=BN_MOMENTUM) for _ in range(steps - 1)]
    layers.append(ConvBNAct(in_ch, out_ch, 3, stride=2, act=None, bn_momentum=BN_MOMENTUM))
    return nn.Sequential(*layers)


class HRModule(nn.Module):
    """Parallel branches of basic blocks followed by the all-to-all multi-resolution fusion."""

    def __init__(self, widths: tuple[int, ...], blocks: int) -> None:
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(nn.Sequential(*(BasicBlock(w) for _ in range(blocks))) for w in widths)
        # fuse[i][j] carries branch j to branch i; the identity at i == j has no parameters
        fuse: list[nn.ModuleList] = []
        for i in range(n):
            row: list[nn.Module] = []
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False), _bn(widths[i])))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(_down_path(widths[j], widths[i], i - j))
            fuse.append(nn.ModuleList(row))
        self.fuse = nn.ModuleList(fuse)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out: list[Tensor] = []
        for i, row in enumerate(self.fuse):
            y: Tensor | None = None
            for j, (f, x) in enumerate(zip(cast(nn.ModuleList, row), xs)):
                if j == i:
                    t = x
                elif j > i:
                    # resize to branch i's exact size: right for odd sizes, never a fixed ×2^k
                    t = resize_to(f(x), xs[i], align_corners=ALIGN_CORNERS)
                else:
                    t = f(x)
                y = t if y is None else y + t
            assert y is not None
            out.append(self.relu(y))
        return out


class HRNetV2(SegmentationNetwork):
    """HRNetV2 with the concatenation head; ``head_channels`` = sum of the four branch widths."""

    encoder_modules = ("stem", "layer1", "transition1", "transition2", "transition3", "stage2", "stage3", "stage4")

    def __init__(self, num_classes: int, config: HRNetConfig, in_channels: int = 3) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, 64, 3, stride=2, bn_momentum=BN_MOMENTUM),
            ConvBNAct(64, 64, 3, stride=2, bn_momentum=BN_MOMENTUM),
        )
        planes = config.stage1_planes
        stage1 = [Bottleneck(64, planes)]
        stage1 += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(config.stage1_blocks - 1)]
        self.layer1 = nn.Sequential(*stage1)
        stage1_ch = planes * Bottleneck.expansion

        # transition 1 turns the single stage-1 map into branches 1 and 2
        self.transition1 = nn.ModuleList([
            ConvBNAct(stage1_ch, w[0], 3, bn_momentum=BN_MOMENTUM),
            ConvBNAct(stage1_ch, w[1], 3, stride=2, bn_momentum=BN_MOMENTUM),
        ])
        # transitions 2 and 3 add one branch each from the lowest-resolution one
        self.transition2 = ConvBNAct(w[1], w[2], 3, stride=2, bn_momentum=BN_MOMENTUM)
        self.transition3 = ConvBNAct(w[2], w[3], 3, stride=2, bn_momentum=BN_MOMENTUM)
        self.stage2 = nn.ModuleList(HRModule(w[:2], config.blocks[0]) for _ in range(config.modules[0]))
        self.stage3 = nn.ModuleList(HRModule(w[:3], config.blocks[1]) for _ in range(config.modules[1]))
        self.stage4 = nn.ModuleList(HRModule(w, config.blocks[2]) for _ in range(config.modules[2]))

        self.head_channels = sum(w)
        self.head = ConvBNAct(self.head_channels, self.head_channels, 1, bn_momentum=BN_MOMENTUM)
        self.classifier = nn.Conv2d(self.head_channels, num_classes, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        init_head(self.classifier)

    @staticmethod
    def _run(stage: nn.ModuleList, xs: list[Tensor]) -> list[Tensor]:
        for module in stage:
            xs = module(xs)
        return xs

    def features(self, x: Tensor) -> list[Tensor]:
        """The four stage-4 branches at 1/4, 1/8, 1/16, 1/32 (widths ``config.widths``)."""
        x = self.layer1(self.stem(x))
        xs = self._run(self.stage2, [t(x) for t in self.transition1])
        xs = self._run(self.stage3, [*xs, self.transition2(xs[-1])])
        return self._run(self.stage4, [*xs, self.transition3(xs[-1])])

    def head_input(self, x: Tensor) -> Tensor:
        """The concatenated branches at branch 1's size (``head_channels`` channels, 1/4 resolution)."""
        xs = self.features(x)
        return torch.cat([xs[0], *(resize_to(t, xs[0], align_corners=ALIGN_CORNERS) for t in xs[1:])], dim=1)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        logits = self.classifier(self.head(self.head_input(x)))
        return seg_outputs(resize_to(logits, x, align_corners=ALIGN_CORNERS), self.training)


def build_hrnet(num_classes: int, in_channels: int = 3, *, widths: tuple[int, int, int, int], stage1_blocks: int,
                modules: tuple[int, int, int], blocks: tuple[int, int, int]) -> HRNetV2:
    """An HRNetV2 of the stage configuration a variant's spec gives (zoo/catalog/hrnet.py)."""
    config = HRNetConfig(widths=widths, stage1_blocks=stage1_blocks, modules=modules, blocks=blocks)
    return HRNetV2(num_classes, config, in_channels=in_channels)
