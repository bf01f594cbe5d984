"""FC-HarDNet-70 (Chao et al., "HarDNet: A Low Memory Traffic Network", ICCV 2019, arXiv:1909.00948).

Followed: the authors' PingoLH/FCHarDNet ``ptsemseg/models/hardnet.py`` (docs/MODEL_NOTES.md §9).

- ConvLayer = conv (no bias) + BN + ReLU; every harmonic-block layer is 3×3.
- Harmonic dense block: layer k (1-based; layer 0 is the block input) reads the concatenation of
  layers k − 2^i for every i with k mod 2^i == 0 (nearest first), and has
  growth × grmul^(#links − 1) output channels rounded to even as ``int(int(out + 1) / 2) * 2``.
  The block outputs the concatenation of the odd-numbered layers and the last one (not its input).
- Encoder: stem 3×3 s2 (16) → 3×3 (24) → 3×3 s2 (32) → 3×3 (48), stride 4; five blocks with
  growth [10, 16, 18, 24, 32], [4, 4, 8, 8, 8] layers, grmul 1.7; each block is followed by a 1×1
  ConvLayer to [64, 96, 160, 224, 320] channels and, except the last, by a 2×2 average pool — so the
  deepest block runs at 1/64. The first four block outputs (before their 1×1) are the skips.
- Decoder, four times from the deepest skip up: resize to the skip's size, concatenate [up, skip],
  1×1 ConvLayer to half the channels, harmonic block with the matching encoder block's growth and
  depth. A 1×1 classifier (with bias) at 1/4, then a resize to the input.

Choices: ``align_corners=True`` in every resize, as the reference (docs/MODEL_NOTES.md §0.1); BN momentum 0.1
(PyTorch's default, which the reference keeps); weights keep PyTorch's default init as in the reference,
except the classifier (N(0, 0.01), ``layers.init_head``). Sizes: the stem and the 2×2 pools round up
(``ceil_mode``), so every input size works, down to 1×1; the reference's floor-mode pools drop the last
row/column of odd maps and empty the 1/64 map below 61 px. At even sizes the two are identical.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import ConvBNAct, init_head, resize_to, seg_outputs

ALIGN_CORNERS = True

STEM_CHANNELS = (16, 24, 32, 48)
BLOCK_CHANNELS = (64, 96, 160, 224, 320)
GROWTH = (10, 16, 18, 24, 32)
LAYERS = (4, 4, 8, 8, 8)
GRMUL = 1.7


def hard_links(layer: int) -> list[int]:
    """Indices of the layers that layer ``layer`` (1-based) reads: layer − 2^i for each 2^i dividing it."""
    if layer < 1:
        raise ValueError(f"harmonic layers are numbered from 1, got {layer}")
    links = []
    step = 1
    while layer % step == 0:
        links.append(layer - step)
        step *= 2
    return links


def hard_channels(layer: int, growth: int, grmul: float) -> int:
    """Output channels of harmonic layer ``layer``: growth × grmul^(#links − 1), rounded to even.

    The factor is applied by repeated multiplication, exactly as the reference does, so the float
    rounding (and thus the channel count) is identical.
    """
    out = float(growth)
    for _ in range(len(hard_links(layer)) - 1):
        out *= grmul
    return int(int(out + 1) / 2) * 2


class HarDBlock(nn.Module):
    """Harmonic dense block; ``out_channels`` = sum over the odd-numbered layers and the last."""

    def __init__(self, in_ch: int, growth: int, grmul: float, n_layers: int) -> None:
        super().__init__()
        chans = [in_ch]  # chans[k]: channels of layer k (layer 0 = the block input)
        self.links: list[list[int]] = []
        layers = []
        for k in range(1, n_layers + 1):
            link = hard_links(k)
            out_ch = hard_channels(k, growth, grmul)
            layers.append(ConvBNAct(sum(chans[i] for i in link), out_ch, 3))
            self.links.append(link)
            chans.append(out_ch)
        self.layers = nn.ModuleList(layers)
        self.layer_channels = chans
        self.kept = [k for k in range(1, n_layers + 1) if k % 2 == 1 or k == n_layers]
        self.out_channels = sum(chans[k] for k in self.kept)

    def forward(self, x: Tensor) -> Tensor:
        outs = [x]
        for link, layer in zip(self.links, self.layers):
            inp = outs[link[0]] if len(link) == 1 else torch.cat([outs[i] for i in link], dim=1)
            outs.append(layer(inp))
        return torch.cat([outs[k] for k in self.kept], dim=1)


class FCHarDNet(SegmentationNetwork):
    """FC-HarDNet-70 encoder-decoder; logits at 1/4 resized to the input."""

    encoder_modules = ("stem", "enc_blocks", "enc_convs")

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        s = STEM_CHANNELS
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, s[0], 3, stride=2),
            ConvBNAct(s[0], s[1], 3),
            ConvBNAct(s[1], s[2], 3, stride=2),
            ConvBNAct(s[2], s[3], 3),
        )
        ch = s[3]
        self.enc_blocks = nn.ModuleList()
        self.enc_convs = nn.ModuleList()
        skip_channels: list[int] = []
        for growth, n, out_ch in zip(GROWTH, LAYERS, BLOCK_CHANNELS):
            block = HarDBlock(ch, growth, GRMUL, n)
            self.enc_blocks.append(block)
            skip_channels.append(block.out_channels)
            self.enc_convs.append(ConvBNAct(block.out_channels, out_ch, 1))
            ch = out_ch
        # ceil_mode: an odd side keeps its last row/column (the reference's floor mode drops it, and
        # empties the 1/64 map below 61 px); identical to the reference at even sizes.
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True)

        self.dec_convs = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        for i in reversed(range(len(GROWTH) - 1)):
            cat_ch = ch + skip_channels[i]
            self.dec_convs.append(ConvBNAct(cat_ch, cat_ch // 2, 1))
            block = HarDBlock(cat_ch // 2, GROWTH[i], GRMUL, LAYERS[i])
            self.dec_blocks.append(block)
            ch = block.out_channels
        self.classifier = nn.Conv2d(ch, num_classes, 1)
        init_head(self.classifier)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        y = self.stem(x)
        skips: list[Tensor] = []
        last = len(self.enc_blocks) - 1
        for i, (block, conv) in enumerate(zip(self.enc_blocks, self.enc_convs)):
            y = block(y)
            if i < last:
                skips.append(y)
                y = self.pool(conv(y))
            else:
                y = conv(y)
        for conv, block in zip(self.dec_convs, self.dec_blocks):
            skip = skips.pop()
            y = torch.cat([resize_to(y, skip, align_corners=ALIGN_CORNERS), skip], dim=1)
            y = block(conv(y))
        logits = resize_to(self.classifier(y), x, align_corners=ALIGN_CORNERS)
        return seg_outputs(logits, self.training)

