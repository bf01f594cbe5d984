"""SegNeXt T/S/B/L: MSCAN encoder + light Hamburger head with NMF.

Guo et al., "SegNeXt: Rethinking Convolutional Attention Design for Semantic
Segmentation", NeurIPS 2022 (arXiv:2209.08575). Hyper-parameters follow the
released code (Visual-Attention-Network/SegNeXt ``mscan.py``, configs
``local_configs/segnext/*``; mmseg ``ham_head.py``), as surveyed in docs/MODEL_NOTES.md §11:

* MSCAN: a stem (conv 3×3/s2 → C/2, BN, GELU, conv 3×3/s2 → C, BN), then
  conv 3×3/s2 + BN patch embeddings for stages 2–4; every stage ends with a
  LayerNorm over channels. Block = BN → spatial attention → layer scale (1e-2)
  residual, then BN → MLP (1×1 → depth-wise 3×3 → GELU → 1×1, ratios 8,8,4,4)
  → layer scale residual, both with stochastic depth (training only).
* Spatial attention = 1×1 → GELU → MSCA → 1×1, plus the input. MSCA: a
  depth-wise 5×5, three depth-wise strip branches (1×7/7×1, 1×11/11×1,
  1×21/21×1) summed with the 5×5 output, a 1×1, and the result multiplies the
  input.
* LightHamHead: stages 2–4 resized to 1/8 (bilinear, ``align_corners=False``)
  and concatenated; ``squeeze`` 1×1 + GN(32) + ReLU; Hamburger = ``ham_in``
  1×1 (bias) → ReLU → NMF → ``ham_out`` 1×1 + GN, output ReLU(x + ham);
  ``align`` 1×1 + GN + ReLU; Dropout 0.1; classifier. Logits at 1/8, resized
  to the input.
* NMF (rank R = 16 for T/S, 64 for B/L): coef = softmax(xᵀB) (inv_t = 1),
  then multiplicative updates — 6 in training, 7 in evaluation —
  coef ← coef ⊙ xᵀB / (coef BᵀB + 1e-6), B ← B ⊙ x·coef / (B coefᵀcoef + 1e-6),
  one last coef update, reconstruction B·coefᵀ. Gradients flow through all
  steps, as in the released code.

Deviations, on purpose:

* The reference draws the NMF bases with ``torch.rand`` on every forward (and
  on ``.cuda()``), so one image gives different logits on two runs and the
  ONNX export is random or fails on CPU (docs/MODEL_NOTES.md §0 P6, §11, §16). Here the
  bases are a buffer drawn once from a private generator with a fixed seed
  (``NMF_SEED``), independent of the global RNG: every freshly built model, in
  any process, has the same bases, training and inference use them alike, and
  they are saved with the weights. This is the reference's ``rand_init=False``
  path, minus its lazy buffer creation.
* The NMF runs in float32 with autocast off: its sums over H·W positions
  overflow float16 at 1024×2048. It is a few small matmuls, so this costs little.
* ``squeeze`` is linear and commutes with bilinear resizing, so each stage is
  squeezed by its slice of the weight at its own resolution and the results are
  resized and summed: the same function and parameters as conv(concat(...)),
  without the 960-channel map at 1/8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.layers import DropPath, init_head, resize_to, seg_outputs

ALIGN_CORNERS = False  # SegNeXt head (docs/MODEL_NOTES.md §0.1)
NMF_SEED = 220908575  # the paper's arXiv number; any fixed value would do
NMF_EPS = 1e-6
LAYER_SCALE_INIT = 1e-2
GN_GROUPS = 32

MLP_RATIOS = (8, 8, 4, 4)


class MSCA(nn.Module):
    """Multi-scale convolutional attention: DW 5×5, three DW strip-conv branches, 1×1; gates the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.strips = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, (1, k), padding=(0, k // 2), groups=dim),
                nn.Conv2d(dim, dim, (k, 1), padding=(k // 2, 0), groups=dim),
            )
            for k in (7, 11, 21)
        )
        self.conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        attn = self.conv0(x)
        total = attn
        for strip in self.strips:
            total = total + strip(attn)
        return self.conv3(total) * x


class SpatialAttention(nn.Module):
    """1×1 → GELU → MSCA → 1×1, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.spatial_gating_unit = MSCA(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.spatial_gating_unit(F.gelu(self.proj_1(x)))) + x


class ConvMlp(nn.Module):
    """1×1 → depth-wise 3×3 (bias) → GELU → 1×1."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.dwconv(self.fc1(x))))


class MSCABlock(nn.Module):
    """BN → spatial attention and BN → MLP, each scaled per channel (layer scale) and added with stochastic depth."""

    def __init__(self, dim: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = SpatialAttention(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, dim * mlp_ratio)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


def _stem(in_ch: int, dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, dim // 2, 3, 2, 1), nn.BatchNorm2d(dim // 2), nn.GELU(),
        nn.Conv2d(dim // 2, dim, 3, 2, 1), nn.BatchNorm2d(dim),
    )


class MSCANStage(nn.Module):
    def __init__(self, patch_embed: nn.Module, dim: int, mlp_ratio: int, drop_paths: list[float]) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(MSCABlock(dim, mlp_ratio, p) for p in drop_paths)
        self.norm = nn.LayerNorm(dim)  # default eps (1e-5), as the reference's nn.LayerNorm(embed_dims[i])

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        # channel LayerNorm through an N×H×W×C view: free for channels-last tensors
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MSCAN(nn.Module):
    """MSCAN encoder: the four stage outputs (N×C×H×W, strides 4, 8, 16, 32)."""

    def __init__(self, in_channels: int, dims: tuple[int, ...], depths: tuple[int, ...], drop_path: float) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path, sum(depths), device="cpu").tolist()
        stages = []
        start = 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            embed: nn.Module
            if i == 0:
                embed = _stem(in_channels, dim)
            else:
                embed = nn.Sequential(nn.Conv2d(dims[i - 1], dim, 3, 2, 1), nn.BatchNorm2d(dim))
            stages.append(MSCANStage(embed, dim, MLP_RATIOS[i], rates[start:start + depth]))
            start += depth
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def nmf_reconstruct(x: Tensor, bases: Tensor, steps: int) -> Tensor:
    """Rank-R non-negative reconstruction of ``x`` (N×D×L, non-negative) by multiplicative updates.

    ``bases`` (D×R) is the starting point; ``steps`` update rounds of coef then
    bases, one last coef update, and the result ``bases @ coefᵀ`` (N×D×L).
    """
    xt = x.transpose(1, 2)  # N×L×D
    coef = torch.softmax(xt @ bases, dim=-1)  # inv_t = 1 in NMF2D
    for _ in range(steps):
        coef = _update_coef(xt, bases, coef)
        bases = bases * (x @ coef) / (bases @ (coef.transpose(1, 2) @ coef) + NMF_EPS)
    coef = _update_coef(xt, bases, coef)
    return bases @ coef.transpose(1, 2)


def _update_coef(xt: Tensor, bases: Tensor, coef: Tensor) -> Tensor:
    return coef * (xt @ bases) / (coef @ (bases.transpose(-2, -1) @ bases) + NMF_EPS)


class NMF2D(nn.Module):
    """Matrix decomposition of a non-negative N×C×H×W map with fixed, seeded starting bases (see module docstring)."""

    bases: Tensor

    def __init__(self, channels: int, rank: int, train_steps: int = 6, eval_steps: int = 7) -> None:
        super().__init__()
        self.train_steps = train_steps
        self.eval_steps = eval_steps
        gen = torch.Generator().manual_seed(NMF_SEED)
        # As the reference's _build_bases: uniform [0, 1) then L2-normalised over channels. Always drawn
        # on the CPU generator (then moved with the module), so every device starts from the same bases.
        bases = F.normalize(torch.rand(channels, rank, generator=gen, device="cpu"), dim=0)
        self.register_buffer("bases", bases.to(torch.get_default_device()))

    @property
    def steps(self) -> int:
        return self.train_steps if self.training else self.eval_steps

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            rec = nmf_reconstruct(x.flatten(2).float(), self.bases.float(), self.steps)
        return rec.view_as(x).to(x.dtype)


class ConvGN(nn.Module):
    """1×1 conv (no bias) → GroupNorm(32) → optional ReLU (mmcv ConvModule with GN)."""

    def __init__(self, in_ch: int, out_ch: int, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.gn = nn.GroupNorm(GN_GROUPS, out_ch)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.gn(self.conv(x))
        return F.relu(x, inplace=True) if self.relu else x


class LightHamHead(nn.Module):
    """Squeeze stages 2–4 at 1/8, Hamburger (NMF), align, classify; logits at 1/8.

    ``squeeze.conv`` sees its input channels in the reference order [c2, c3, c4].
    """

    def __init__(self, in_dims: tuple[int, ...], ham_channels: int, rank: int, num_classes: int) -> None:
        super().__init__()
        self.in_dims = in_dims
        self.squeeze = ConvGN(sum(in_dims), ham_channels)
        self.ham_in = nn.Conv2d(ham_channels, ham_channels, 1)
        self.nmf = NMF2D(ham_channels, rank)
        self.ham_out = ConvGN(ham_channels, ham_channels, relu=False)
        self.align = ConvGN(ham_channels, ham_channels)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(ham_channels, num_classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        """``feats``: stages 2, 3, 4 of the encoder."""
        target = feats[0]
        squeezed: Tensor | None = None
        offset = 0
        for feat, dim in zip(feats, self.in_dims):
            # squeeze each stage with its weight slice at its own resolution (see module docstring)
            y = resize_to(F.conv2d(feat, self.squeeze.conv.weight.narrow(1, offset, dim)), target, ALIGN_CORNERS)
            squeezed = y if squeezed is None else squeezed + y
            offset += dim
        assert squeezed is not None
        x = F.relu(self.squeeze.gn(squeezed), inplace=True)
        ham = self.ham_out(self.nmf(F.relu(self.ham_in(x))))
        x = F.relu(x + ham, inplace=True)
        return self.classifier(self.dropout(self.align(x)))


class SegNeXt(SegmentationNetwork):
    """MSCAN encoder + LightHamHead on stages 2–4; logits at the input size (output stride 8, bilinear up).

    ``dims``, ``depths``, ``drop_path``, ``ham_channels`` and ``rank`` are a variant's (T/S/B/L:
    zoo/catalog/segnext.py).
    """

    encoder_modules = ("encoder",)

    def __init__(self, num_classes: int, in_channels: int = 3, *, dims: tuple[int, ...], depths: tuple[int, ...],
                 drop_path: float, ham_channels: int, rank: int) -> None:
        super().__init__()
        self.encoder = MSCAN(in_channels, dims, depths, drop_path)
        self.decode_head = LightHamHead(dims[1:], ham_channels, rank, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # MSCAN.init_weights: conv N(0, sqrt(2 / fan_out)), fan_out = k·k·out/groups, bias 0; norms 1/0.
        # Head: mmcv ConvModule (Kaiming normal, fan_out), GN 1/0; classifier N(0, 0.01).
        for m in self.encoder.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.decode_head.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        init_head(self.decode_head.classifier)

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        feats = self.encoder(x)
        logits = self.decode_head(feats[1:])
        return seg_outputs(resize_to(logits, x, ALIGN_CORNERS), self.training)

