"""ResNet encoders (He et al. 2016) for LinkNet, PSPNet, DeepLabv3 and others.

Plain ResNet-18/34/50/101 with optional deep stem (ResNetV1c: three 3×3 convs,
as in mmseg's PSPNet/DeepLabv3 configs), per-stage strides and dilations
(output stride 8 or 16), multi-grid on the last stage and mmseg's
``contract_dilation`` (the first block of a dilated stage uses half the
dilation). ``forward`` returns the five feature maps
``[stem (1/2), layer1 (1/4), layer2, layer3, layer4]``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from segstudio.nets.layers import init_conv_bn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        out_ch = ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        # stride on the 3×3 conv (ResNet v1.5 / torchvision / mmseg "pytorch" style)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_DEPTHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(nn.Module):
    """ResNet without its classifier; ``out_channels`` lists the channels of the five outputs."""

    def __init__(
        self,
        depth: int = 50,
        in_channels: int = 3,
        deep_stem: bool = False,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        multi_grid: Sequence[int] | None = None,
        contract_dilation: bool = False,
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        if depth not in _DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(_DEPTHS)}")
        block, counts = _DEPTHS[depth]
        if deep_stem:
            self.stem: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
            )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._in = 64
        widths = (64, 128, 256, 512)
        layers = []
        for i, (w, n, s, d) in enumerate(zip(widths, counts, strides, dilations)):
            grid = multi_grid if (i == 3 and multi_grid is not None) else None
            layers.append(self._make_layer(block, w, n, s, d, grid, contract_dilation))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_channels = (64, *(w * block.expansion for w in widths))
        init_conv_bn(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], ch: int, n: int, stride: int,
                    dilation: int, grid: Sequence[int] | None, contract: bool) -> nn.Sequential:
        out_ch = ch * block.expansion
        downsample = None
        if stride != 1 or self._in != out_ch:
            downsample = nn.Sequential(nn.Conv2d(self._in, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
        if grid is not None:
            if len(grid) != n:
                raise ValueError(f"multi_grid needs {n} entries for this stage, got {len(grid)}")
            dil = [dilation * g for g in grid]
        else:
            first = dilation // 2 if (contract and dilation > 1) else dilation
            dil = [first] + [dilation] * (n - 1)
        blocks = [block(self._in, ch, stride, dil[0], downsample)]
        self._in = out_ch
        blocks += [block(self._in, ch, 1, dil[i]) for i in range(1, n)]
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        s = self.stem(x)
        c2 = self.layer1(self.maxpool(s))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [s, c2, c3, c4, c5]
