"""UNet++ (Zhou et al., "UNet++: A Nested U-Net Architecture for Medical Image Segmentation", DLMIA 2018,
arXiv:1807.10165) with deep supervision.

Encoder X^{i,0}, i = 0..4, of two 3×3 conv+BN+ReLU per level (widths 32, 64,
128, 256, 512) with 2×2 max-pool down. Nested nodes
X^{i,j} = DoubleConv(concat(up(X^{i+1,j-1}), X^{i,0}, …, X^{i,j-1})) for
i + j ≤ 4; the up-sampling halves the channels, either bilinear + 1×1 conv
(PaddleSeg ``unet_plusplus.py``, the default) or a 2×2 transposed conv (the
authors' Keras ``Nest_Net``). Four 1×1 classifiers read the top row
X^{0,1..4} (deep supervision).

Training returns every head separately, each trained with its own loss (the
paper's deep supervision; the authors' Keras model sums the four losses):
``{"out": head 4, "head1": …, "head2": …, "head3": …}``. PaddleSeg instead
averages the logits and puts one loss on the average; we do not.

Inference has the paper's two modes (option ``inference``):

* ``"accurate"``: the four heads' class probabilities are averaged (the
  paper averages its sigmoid maps). The network returns the log of the mean
  probability, which is a valid logit vector: softmax of it gives the mean
  probabilities, so argmax and every consumer of logits work unchanged. With
  one class the heads are sigmoid maps and the log-odds of the mean
  probability is returned.
* ``"fast"``: one head, X^{0,L} with L = ``prune_level``; only the nodes it
  depends on (i + j ≤ L) are computed, so the exported ONNX graph holds the
  pruned network alone. The parameters are the same in both modes, so a model
  trained once can be run either way.

Deviations: bias-free convs before BN (BN's shift makes the bias redundant);
in bilinear mode the 1×1 conv runs before the resize (bilinear interpolation
and a 1×1 conv commute exactly, and the conv is then 4× cheaper); every
up-sampled map is resized to its skip's size, so any input size works.
``align_corners=False`` throughout (PaddleSeg's default).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import init_conv_bn, init_head, resize_to, seg_outputs
from segstudio.nets.unet import DoubleConv

WIDTHS = (32, 64, 128, 256, 512)
DEPTH = len(WIDTHS) - 1  # 4: nodes X^{0,1..4} carry the heads


class NestedUp(nn.Module):
    """Halve the channels of a deeper node and bring it to the skip's size."""

    def __init__(self, in_ch: int, out_ch: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "transpose":
            self.proj: nn.Module = nn.ConvTranspose2d(in_ch, out_ch, 2, 2)
        else:
            self.proj = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        # Both orders resize last: the transposed conv must see the low-res map,
        # and for the 1×1 conv resize∘conv == conv∘resize (weights sum to 1).
        return resize_to(self.proj(x), skip)


class UNetPlusPlus(SegmentationNetwork):
    """UNet++ L4 with four deep-supervision heads on X^{0,1..4}; see the module docstring."""

    encoder_modules = ("encoder",)

    def __init__(self, num_classes: int, in_channels: int = 3, *, upsample: str, inference: str,
                 prune_level: int) -> None:
        super().__init__()
        if upsample not in ("bilinear", "transpose"):
            raise ValueError(f"upsample must be 'bilinear' or 'transpose', got {upsample!r}")
        if inference not in ("accurate", "fast"):
            raise ValueError(f"inference must be 'accurate' or 'fast', got {inference!r}")
        if not 1 <= prune_level <= DEPTH:
            raise ValueError(f"prune_level must be in 1..{DEPTH}, got {prune_level}")
        self.num_classes = num_classes
        self.inference = inference
        self.prune_level = prune_level
        w = WIDTHS
        self.pool = nn.MaxPool2d(2)
        self.encoder = nn.ModuleList(
            [DoubleConv(in_channels, w[0])] + [DoubleConv(w[i - 1], w[i]) for i in range(1, DEPTH + 1)]
        )
        # node "i_j" is X^{i,j} for j ≥ 1; its input is up(X^{i+1,j-1}) plus j same-level maps
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, DEPTH + 1):
            for i in range(DEPTH + 1 - j):
                self.ups[f"{i}_{j}"] = NestedUp(w[i + 1], w[i], upsample)
                self.nodes[f"{i}_{j}"] = DoubleConv((j + 1) * w[i], w[i])
        self.heads = nn.ModuleList(nn.Conv2d(w[0], num_classes, 1) for _ in range(DEPTH))
        init_conv_bn(self)
        for head in self.heads:
            init_head(head)

    def _top_row(self, x: Tensor, level: int) -> list[Tensor]:
        """X^{0,1..level}, computing only the nodes with i + j ≤ level."""
        rows: list[list[Tensor]] = [[self.encoder[0](x)]]
        for i in range(1, level + 1):
            rows.append([self.encoder[i](self.pool(rows[-1][0]))])
        for j in range(1, level + 1):
            for i in range(level + 1 - j):
                key = f"{i}_{j}"
                up = self.ups[key](rows[i + 1][j - 1], rows[i][0])
                rows[i].append(self.nodes[key](torch.cat([up, *rows[i]], dim=1)))
        return rows[0][1:]

    def _ensemble(self, logits: list[Tensor]) -> Tensor:
        """Log of the heads' mean probability (log-odds of the mean sigmoid for one class)."""
        stacked = torch.stack(logits, dim=0)
        if self.num_classes == 1:
            # log(mean σ(z)) − log(mean σ(−z)); the 1/n factors cancel
            return torch.logsumexp(F.logsigmoid(stacked), 0) - torch.logsumexp(F.logsigmoid(-stacked), 0)
        return torch.logsumexp(F.log_softmax(stacked, dim=2), 0) - math.log(len(logits))

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        if self.training:
            top = self._top_row(x, DEPTH)
            logits = [head(t) for head, t in zip(self.heads, top)]
            return seg_outputs(logits[-1], True, **{f"head{k + 1}": z for k, z in enumerate(logits[:-1])})
        if self.inference == "fast":
            top = self._top_row(x, self.prune_level)
            return self.heads[self.prune_level - 1](top[-1])
        top = self._top_row(x, DEPTH)
        return self._ensemble([head(t) for head, t in zip(self.heads, top)])

