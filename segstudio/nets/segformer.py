"""SegFormer B0–B5: Mix Transformer (MiT) encoder + all-MLP decoder.

Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation
with Transformers", NeurIPS 2021 (arXiv:2105.15203). Hyper-parameters follow
the released code (NVlabs/SegFormer ``mix_transformer.py`` ``mit_b0..b5`` and
``segformer_head.py``), as surveyed in docs/MODEL_NOTES.md §10:

* Four stages at strides 4, 8, 16, 32. Each begins with an overlapped patch
  embedding (conv 7×7/s4/p3 for stage 1, 3×3/s2/p1 after; LayerNorm eps 1e-5)
  and ends with a LayerNorm (eps 1e-6). There is no positional encoding.
* Block: ``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(MixFFN(LN(x)))``
  (LN eps 1e-6). Efficient self-attention reduces K/V only, with a
  ``Conv2d(C, C, k=r, s=r)`` + LayerNorm (eps 1e-5) where the spatial-reduction
  ratio r (8, 4, 2, 1) is above 1. Mix-FFN: Linear → depth-wise 3×3 (bias) →
  GELU → Linear, expansion 4 in every stage (the paper's Table 6 says 8 for
  early stages of B0–B4; the released weights and counts use 4).
* Stochastic depth rises linearly from 0 to 0.1 over all blocks (training only).
* Decoder: each stage goes through a Linear to E channels (256 for B0/B1, 768
  for B2–B5), is resized to 1/4 (bilinear, ``align_corners=False``), the four
  are concatenated in the order [c4, c3, c2, c1] and fused by a 1×1 conv (no
  bias) + BN + ReLU; Dropout 0.1; 1×1 classifier; logits resized to the input.

Implementation notes (speed and export):

* Tokens are kept as N×H×W×C tensors: Linear and LayerNorm act on the last
  dimension, and ``permute(0, 3, 1, 2)`` gives the convs a channels-last view
  without a copy. No reshape ever names H or W, so ONNX export keeps every
  size dynamic (the reference's ``reshape(B, H, W, -1)`` freezes them).
* Attention is ``F.scaled_dot_product_attention`` (flash / memory-efficient
  kernels on CUDA), scale head_dim^-0.5 as in the reference.
* The fuse conv is linear and so is bilinear resizing, so fuse(concat(resize(
  Linear_i(c_i)))) equals Σ_i resize((W_fuse,i · W_i) c_i + W_fuse,i · b_i):
  the decoder multiplies the small weight matrices and applies each product at
  its stage's own resolution, never building the 4E-channel map at 1/4. The
  parameters (``linear_c1..4``, ``linear_fuse``) and the function are the
  reference's; the 4E→E conv at 1/4 resolution (34 GMAC for B0 at 1024×2048)
  disappears.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import DropPath, init_head, resize_to, seg_outputs

ALIGN_CORNERS = False  # SegFormer head (docs/MODEL_NOTES.md §0.1)
BLOCK_LN_EPS = 1e-6  # block and stage-end norms: partial(nn.LayerNorm, eps=1e-6) in mit_b*
MIN_SIDE = 29  # stage 1 (stride 4) must be at least 8 tokens wide for the 8×8 spatial reduction

HEADS = (1, 2, 5, 8)
SR_RATIOS = (8, 4, 2, 1)
MLP_RATIO = 4
DROP_PATH = 0.1


def _to_nchw(x: Tensor) -> Tensor:
    """N×H×W×C tokens as an N×C×H×W (channels-last strided) view, no copy."""
    return x.permute(0, 3, 1, 2)


def _to_nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


class OverlapPatchEmbed(nn.Module):
    """Strided conv with overlapping windows (kernel > stride), then LayerNorm; N×C×H×W in, N×H×W×C out."""

    def __init__(self, in_ch: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel, stride, kernel // 2)
        self.norm = nn.LayerNorm(dim)  # the reference uses the default eps (1e-5) here

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(_to_nhwc(self.proj(x)))


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a map reduced by ``sr_ratio`` (conv k=s=r + LN)."""

    def __init__(self, dim: int, heads: int, sr_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        # Only reducing stages have the conv and its norm, as in the reference (none in stage 4).
        self.sr: nn.Conv2d | None = None
        self.norm: nn.LayerNorm | None = None
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: N×H×W×C; returns the same shape."""
        # N×H×W×C → N×L×heads×d → N×heads×L×d (a strided view; SDPA takes it as is)
        q = self.q(x).flatten(1, 2).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        if self.sr is not None and self.norm is not None:
            kv_in = self.norm(self.sr(_to_nchw(x)).flatten(2).transpose(1, 2))
        else:
            kv_in = x.flatten(1, 2)
        k, v = self.kv(kv_in).unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # N×heads×L×d
        return self.proj(out.transpose(1, 2).flatten(2)).view_as(x)


class MixFFN(nn.Module):
    """Linear → depth-wise 3×3 conv (the only source of position information) → GELU → Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        h = _to_nhwc(self.dwconv(_to_nchw(self.fc1(x))))
        return self.fc2(F.gelu(h))


class MiTBlock(nn.Module):
    """Pre-norm transformer block: efficient attention and Mix-FFN, each with stochastic depth."""

    def __init__(self, dim: int, heads: int, sr_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_LN_EPS)
        self.attn = EfficientSelfAttention(dim, heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_LN_EPS)
        self.mlp = MixFFN(dim, dim * MLP_RATIO)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class MiTStage(nn.Module):
    def __init__(self, in_ch: int, dim: int, kernel: int, stride: int, heads: int, sr_ratio: int,
                 drop_paths: list[float]) -> None:
        super().__init__()
        self.patch_embed = OverlapPatchEmbed(in_ch, dim, kernel, stride)
        self.blocks = nn.ModuleList(MiTBlock(dim, heads, sr_ratio, p) for p in drop_paths)
        self.norm = nn.LayerNorm(dim, eps=BLOCK_LN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        """N×C×H×W in, N×H'×W'×C' out."""
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class MixTransformer(nn.Module):
    """MiT encoder: returns the four stage outputs as N×H×W×C tensors (strides 4, 8, 16, 32)."""

    def __init__(self, in_channels: int, dims: tuple[int, ...], depths: tuple[int, ...],
                 drop_path: float = DROP_PATH) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path, sum(depths), device="cpu").tolist()
        stages = []
        start = 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            in_ch = in_channels if i == 0 else dims[i - 1]
            kernel, stride = (7, 4) if i == 0 else (3, 2)
            stages.append(MiTStage(in_ch, dim, kernel, stride, HEADS[i], SR_RATIOS[i], rates[start:start + depth]))
            start += depth
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
            x = _to_nchw(x)
        return feats


class AllMLPHead(nn.Module):
    """SegFormer decoder (see the module docstring for why the concat is folded into per-stage products).

    ``linear_fuse`` sees its input channels in the reference order [c4, c3, c2, c1]:
    input-channel slice ``k·E:(k+1)·E`` belongs to stage ``4 - k``.
    """

    def __init__(self, dims: tuple[int, ...], channels: int, num_classes: int) -> None:
        super().__init__()
        self.channels = channels
        self.linear_c = nn.ModuleList(nn.Linear(d, channels) for d in dims)  # c1..c4
        self.linear_fuse = nn.Conv2d(len(dims) * channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def fuse_slice(self, stage: int) -> Tensor:
        """The E×E block of ``linear_fuse`` applied to stage ``stage`` (0-based: c1 → 0)."""
        slot = len(self.linear_c) - 1 - stage  # concat order [c4, c3, c2, c1]
        return self.linear_fuse.weight[:, slot * self.channels:(slot + 1) * self.channels, 0, 0]

    def forward(self, feats: list[Tensor]) -> Tensor:
        """``feats``: the encoder's N×H×W×C stage outputs; returns logits at 1/4 (stage 1's size)."""
        target = _to_nchw(feats[0])
        fused: Tensor | None = None
        for i, feat in enumerate(feats):
            linear = cast(nn.Linear, self.linear_c[i])
            w = self.fuse_slice(i)
            y = _to_nchw(F.linear(feat, w @ linear.weight, w @ linear.bias))
            y = resize_to(y, target, ALIGN_CORNERS)
            fused = y if fused is None else fused + y
        assert fused is not None
        x = F.relu(self.bn(fused), inplace=True)
        return self.classifier(self.dropout(x))


class SegFormer(SegmentationNetwork):
    """MiT encoder + all-MLP decoder; logits at the input size (output stride 4, bilinear up).

    ``dims``, ``depths`` and ``decoder_channels`` are a variant's (B0…B5: zoo/catalog/segformer.py).
    """

    encoder_modules = ("encoder",)

    def __init__(self, num_classes: int, in_channels: int = 3, *, dims: tuple[int, ...], depths: tuple[int, ...],
                 decoder_channels: int) -> None:
        super().__init__()
        self.encoder = MixTransformer(in_channels, dims, depths)
        self.decode_head = AllMLPHead(dims, decoder_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # Reference: Linear trunc-normal(0.02), LayerNorm 1/0, conv N(0, sqrt(2 / fan_out)) with
        # fan_out = k·k·out/groups in the encoder; mmseg ConvModule (Kaiming fan_out) and BN 1/0 for
        # the fuse conv; the head's Linears keep PyTorch's default init; classifier N(0, 0.01).
        for m in self.encoder.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        head = self.decode_head
        nn.init.kaiming_normal_(head.linear_fuse.weight, mode="fan_out", nonlinearity="relu")
        nn.init.ones_(head.bn.weight)
        nn.init.zeros_(head.bn.bias)
        init_head(head.classifier)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()) and min(x.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"SegFormer needs inputs of at least {MIN_SIDE}×{MIN_SIDE} pixels "
                             f"(its 8×8 key/value reduction at stride 4), got {tuple(x.shape[-2:])}")
        logits = self.decode_head(self.encoder(x))
        return seg_outputs(resize_to(logits, x, ALIGN_CORNERS), self.training)

