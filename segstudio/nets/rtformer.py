"""RTFormer Slim and Base (Wang et al., "RTFormer: Efficient Design for Real-Time Semantic
Segmentation with Transformer", NeurIPS 2022, arXiv:2210.07124).

A dual-resolution network (DDRNet lineage). With c = base channels (Slim 32, Base 64):

- stem: two 3×3 s2 convs (with bias) + BN + ReLU → 1/4; stages 1–3 of BasicBlocks
  (c at 1/4, 2c at 1/8, 4c at 1/16); the 1/16 map is compressed (BN-ReLU-1×1) and
  added to the 1/8 map, which goes through one more BasicBlock (the high branch, 2c).
- stages 4 and 5 are RTFormer blocks (:class:`RTFormerBlock`) on the pair (high 2c at 1/8,
  low 4c→8c at 1/16→1/32):
  * low branch: **GPU-friendly attention** — external, learned k (inter×in, 1×1 conv, stride 2
    when the channel count changes) and v (out×inter); "double normalisation": softmax over
    the spatial axis, then division by the sum over the channels of each of the 8 groups;
    then a BN → 3×3 conv → GELU → 3×3 conv MLP; both residual with drop-path.
  * the low branch is compressed (BN-ReLU-1×1) and added to the high branch;
  * high branch: **cross-resolution attention** — k and v (144 = 12×12 tokens each) come from
    the low branch (BN → adaptive max-pool to 12×12 → 1×1 conv to 2·C_h); softmax over the 144
    tokens with scale 144^-1/2; then the same MLP;
  * injection: the high branch is brought down (BN-ReLU-3×3 s2, twice) and added to the low one.
- DAPPM (DDRNet) on the 1/32 map: average pools k5/s2, k9/s4, k17/s8 (padding included in
  the average) and a global pool, each BN-ReLU-1×1 and summed hierarchically through
  BN-ReLU-3×3; concat → BN-ReLU-1×1 plus a BN-ReLU-1×1 shortcut; upsampled to 1/8 and
  concatenated with the high branch; SegHead (BN-ReLU-3×3, BN-ReLU-1×1) → logits → input size.
- Auxiliary SegHead on the stage-3 high branch (loss weight 0.4), train mode only.

Reference code followed: PaddleSeg ``paddleseg/models/rtformer.py`` (commit d7975e7c) and its
Cityscapes configs (docs/MODEL_NOTES.md §14). Deviations, all deliberate:

- The reference runs the cross attention as two convolutions with ``groups=B`` on a
  (1, B·C, H, W) tensor, which freezes the batch size into an exported graph (PaddleSeg
  #3115). Here it is ``F.scaled_dot_product_attention`` with the pixels as queries and the
  per-sample 144 pooled tokens as keys/values (scale 144^-1/2): the same numbers, batched, fused
  on GPU, and dynamic in batch, height and width in ONNX.
- The 12×12 adaptive max-pool goes through ``layers.adaptive_max_pool2d`` so that one ONNX
  file serves every input size.
- BatchNorm momentum (docs/MODEL_NOTES.md §0 P1): PaddleSeg writes ``bn_mom=0.1`` in Paddle's convention
  (weight of the *old* statistics), i.e. PyTorch ``momentum=0.9``. That value was carried over
  from DDRNet's PyTorch code, where 0.1 meant the PyTorch 0.1; copying it literally would make
  the running statistics essentially those of the last batch, which is noisy with the small
  batches of interactive fine-tuning. The default here is PyTorch 0.1 (the apparent intent);
  ``bn_momentum=0.9`` reproduces PaddleSeg exactly.
- The classifier 1×1 convs are initialised N(0, 0.01) (house rule) instead of Kaiming.

``align_corners=False`` everywhere, as in the reference (Paddle's bilinear default).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import DropPath, adaptive_max_pool2d, init_head, resize_to, seg_outputs
from segstudio.zoo.spec import BadOptionError


def _kaiming(module: nn.Module) -> None:
    """Paddle's ``kaiming_normal_init`` (std √(2/fan_in)), zero bias, BN weight 1 / bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _pre_act(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1) -> nn.Sequential:
    """BN → ReLU → conv (no bias): the pre-activation unit of the reference's fusion layers."""
    return nn.Sequential(
        nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
    )


class BasicBlock(nn.Module):
    """ResNet basic block; ``no_relu`` leaves the sum un-activated (last block of a stage)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, no_relu: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
        self.no_relu = no_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out = out + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else F.relu(out)


def _stage(in_ch: int, out_ch: int, blocks: int, stride: int = 1) -> nn.Sequential:
    layers = [BasicBlock(in_ch, out_ch, stride)]
    layers += [BasicBlock(out_ch, out_ch, no_relu=(i == blocks - 1)) for i in range(1, blocks)]
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """BN (eps 1e-6) → 3×3 conv → GELU → 3×3 conv, convs with bias, hidden = in."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=1e-6)
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        _kaiming(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.act(self.conv1(self.norm(x))))


def double_normalize(x: Tensor, groups: int) -> Tensor:
    """RTFormer's grouped double normalisation of an N×C×H×W map.

    Softmax over the spatial positions of every channel, then each channel's value is divided
    by the sum over the C/groups channels of its group (+1e-6). Works on views only, so a
    channels_last input stays channels_last.
    """
    t = x.flatten(2).unflatten(1, (groups, -1))  # N, groups, C/groups, HW
    t = t.softmax(dim=-1)
    t = t / (t.sum(dim=2, keepdim=True) + 1e-6)
    return t.reshape(x.shape)


def cross_attention(x: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Cross-resolution attention of the high branch, batched.

    ``x``: N×C×H×W queries (one per pixel); ``k``, ``v``: N×C×T per-sample tokens.
    Returns N×C×H×W with ``out[n, :, p] = Σ_t softmax_t(k[n,:,t]·x[n,:,p] / √T) v[n,:,t]`` —
    what the reference computes with two ``groups=N`` convolutions.
    """
    tokens = k.shape[-1]
    q = x.flatten(2).transpose(1, 2).unsqueeze(1)  # N, 1, HW, C (a view for channels_last input)
    out = F.scaled_dot_product_attention(
        q, k.transpose(1, 2).unsqueeze(1), v.transpose(1, 2).unsqueeze(1), scale=tokens**-0.5
    )
    return out.squeeze(1).transpose(1, 2).reshape(x.shape)


class ExternalAttention(nn.Module):
    """GPU-friendly attention of the low branch: BN, learned external k and v, double normalisation."""

    def __init__(self, in_ch: int, out_ch: int, heads: int) -> None:
        super().__init__()
        if out_ch % heads:
            raise ValueError(f"{out_ch} channels cannot be split into {heads} groups")
        self.heads = heads
        self.stride = 1 if in_ch == out_ch else 2
        self.norm = nn.BatchNorm2d(in_ch)
        self.k = nn.Parameter(torch.empty(out_ch, in_ch, 1, 1))
        self.v = nn.Parameter(torch.empty(out_ch, out_ch, 1, 1))
        nn.init.normal_(self.k, std=0.001)
        nn.init.normal_(self.v, std=0.001)

    def forward(self, x: Tensor) -> Tensor:
        a = F.conv2d(self.norm(x), self.k, stride=self.stride)
        return F.conv2d(double_normalize(a, self.heads), self.v)


class RTFormerBlock(nn.Module):
    """One RTFormer (EA) block on the (high, low) pair; see the module docstring for the order."""

    def __init__(self, ch_h: int, in_l: int, out_l: int, heads: int, drop_path: float,
                 injection: bool, cross_size: int) -> None:
        super().__init__()
        self.cross_size = cross_size
        self.shortcut_l: nn.Module | None = None
        if in_l != out_l:
            self.shortcut_l = nn.Sequential(nn.BatchNorm2d(in_l), nn.Conv2d(in_l, out_l, 1, 2, bias=False))
            _kaiming(self.shortcut_l)
        self.attn_l = ExternalAttention(in_l, out_l, heads)
        self.mlp_l = MLP(out_l)
        self.drop_path = DropPath(drop_path)
        self.compression = _pre_act(out_l, ch_h)
        _kaiming(self.compression)
        self.norm_h = nn.BatchNorm2d(ch_h)  # the cross attention's input norm
        self.mlp_h = MLP(ch_h)
        # BN → 12×12 max-pool → 1×1 conv to k and v (pooling happens in forward: it is a function)
        self.kv_norm = nn.BatchNorm2d(out_l)
        self.kv_conv = nn.Conv2d(out_l, 2 * ch_h, 1, bias=False)
        nn.init.trunc_normal_(self.kv_conv.weight, std=0.02)
        self.down: nn.Module | None = None
        if injection:
            self.down = nn.Sequential(_pre_act(ch_h, out_l // 2, 3, 2), _pre_act(out_l // 2, out_l, 3, 2))
            _kaiming(self.down)

    def forward(self, x_h: Tensor, x_l: Tensor) -> tuple[Tensor, Tensor]:
        res_l = x_l if self.shortcut_l is None else self.shortcut_l(x_l)
        x_l = res_l + self.drop_path(self.attn_l(x_l))
        x_l = x_l + self.drop_path(self.mlp_l(x_l))

        x_h = x_h + resize_to(self.compression(x_l), x_h)

        kv = self.kv_conv(adaptive_max_pool2d(self.kv_norm(x_l), self.cross_size)).flatten(2)
        k, v = kv.chunk(2, dim=1)  # each N × C_h × cross_size²
        x_h = x_h + self.drop_path(cross_attention(self.norm_h(x_h), k, v))
        x_h = x_h + self.drop_path(self.mlp_h(x_h))

        if self.down is not None:
            x_l = x_l + self.down(x_h)
        return x_h, x_l


class DAPPM(nn.Module):
    """Deep aggregation pyramid pooling (DDRNet), pre-activation units throughout."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        # count_include_pad=True is PyTorch's default and Paddle's exclusive=False
        self.pools = nn.ModuleList(nn.AvgPool2d(k, s, k // 2) for k, s in ((5, 2), (9, 4), (17, 8)))
        self.scales = nn.ModuleList(_pre_act(in_ch, mid_ch) for _ in range(5))  # 0: none, 1-3: pools, 4: global
        self.process = nn.ModuleList(_pre_act(mid_ch, mid_ch, 3) for _ in range(4))
        self.compression = _pre_act(5 * mid_ch, out_ch)
        self.shortcut = _pre_act(in_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        pooled = [pool(x) for pool in self.pools] + [x.mean(dim=(2, 3), keepdim=True)]
        ys = [self.scales[0](x)]
        for i, p in enumerate(pooled):
            ys.append(self.process[i](resize_to(self.scales[i + 1](p), x) + ys[-1]))
        return self.compression(torch.cat(ys, dim=1)) + self.shortcut(x)


class SegHead(nn.Sequential):
    """BN-ReLU-3×3 conv → BN-ReLU-1×1 conv (with bias) to the classes."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True), nn.Conv2d(in_ch, mid_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(mid_ch), nn.ReLU(inplace=True), nn.Conv2d(mid_ch, num_classes, 1),
        )
        _kaiming(self)
        init_head(self[-1])


class RTFormer(SegmentationNetwork):
    """RTFormer: see the module docstring. ``base_channels`` 32 / ``head_channels`` 64 is Slim, 64 / 128 Base."""

    encoder_modules = ("stem", "layer1", "layer2", "layer3", "layer3_", "compression3", "layer4", "layer5")

    def __init__(self, num_classes: int, in_channels: int = 3, *, base_channels: int, head_channels: int,
                 aux_head: bool, drop_path_rate: float, injection: Sequence[bool], cross_size: int,
                 bn_momentum: float, layer_nums: Sequence[int] = (2, 2, 2), spp_channels: int = 128,
                 heads: int = 8) -> None:
        super().__init__()
        if len(injection) != 2 or not all(isinstance(f, bool) for f in injection):
            raise BadOptionError(f"injection needs one True/False per RTFormer stage (2), got {injection!r}")
        if not (isinstance(cross_size, int) and cross_size >= 1):
            raise BadOptionError(f"cross_size must be a positive integer, got {cross_size!r}")
        if not 0.0 < bn_momentum <= 1.0 or not 0.0 <= drop_path_rate < 1.0:
            raise BadOptionError(f"need 0 < bn_momentum ≤ 1 and 0 ≤ drop_path_rate < 1, got {bn_momentum}, "
                                 f"{drop_path_rate}")
        c = base_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
        )
        self.layer1 = _stage(c, c, layer_nums[0])
        self.layer2 = _stage(c, 2 * c, layer_nums[1], stride=2)
        self.layer3 = _stage(2 * c, 4 * c, layer_nums[2], stride=2)
        self.layer3_ = _stage(2 * c, 2 * c, 1)
        self.compression3 = _pre_act(4 * c, 2 * c)
        for part in (self.stem, self.layer1, self.layer2, self.layer3, self.layer3_, self.compression3):
            _kaiming(part)
        self.layer4 = RTFormerBlock(2 * c, 4 * c, 8 * c, heads, drop_path_rate, injection[0], cross_size)
        self.layer5 = RTFormerBlock(2 * c, 8 * c, 8 * c, heads, drop_path_rate, injection[1], cross_size)
        self.spp = DAPPM(8 * c, spp_channels, 2 * c)
        _kaiming(self.spp)
        self.head = SegHead(4 * c, 2 * head_channels, num_classes)
        self.aux_head = SegHead(2 * c, head_channels, num_classes) if aux_head else None
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = bn_momentum

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        x1 = self.layer1(self.stem(x))  # c, 1/4
        x2 = self.layer2(F.relu(x1))  # 2c, 1/8
        x3 = self.layer3(F.relu(x2))  # 4c, 1/16
        x3h = self.layer3_(F.relu(x2 + resize_to(self.compression3(x3), x2)))  # 2c, 1/8
        x4h, x4l = self.layer4(F.relu(x3h), F.relu(x3))  # 2c 1/8, 8c 1/32
        x5h, x5l = self.layer5(F.relu(x4h), F.relu(x4l))  # 2c 1/8, 8c 1/32
        x6 = resize_to(self.spp(x5l), x5h)
        logits = resize_to(self.head(torch.cat([x5h, x6], dim=1)), x)
        if self.training and self.aux_head is not None:
            return seg_outputs(logits, True, aux=self.aux_head(x3h))
        return seg_outputs(logits, self.training)

