"""Building blocks shared by the networks.

The two pooling functions here exist because ``nn.AdaptiveAvgPool2d(k)`` and
``nn.AdaptiveMaxPool2d(k)`` with k > 1 do not export to ONNX for dynamic input
sizes (docs/MODEL_NOTES.md §16, pytorch#42653). In eager mode they call the native
ops; while tracing for ONNX they compute the exact same bins with shape-driven
masks, so one exported file is right for every H×W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def resize_to(x: Tensor, size: Tensor | tuple[int, int] | torch.Size, align_corners: bool = False) -> Tensor:
    """Bilinear resize of ``x`` to ``size`` (an H×W pair, or a tensor whose last two dims give it).

    Always resize to an explicit size (a skip connection's or the input's),
    never by a fixed scale factor: that is what keeps odd input sizes working.
    """
    hw = size.shape[-2:] if isinstance(size, Tensor) else size
    if not _exporting() and tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=align_corners)


def _bin_mask(n: int | Tensor, bins: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Membership mask (bins × n, bool) and bin sizes of adaptive pooling over a length ``n`` axis.

    Bin i covers [floor(i·n/bins), ceil((i+1)·n/bins)), exactly as PyTorch's adaptive pools.
    """
    i = torch.arange(bins, device=device)
    n_t = torch.as_tensor(n, device=device)
    start = torch.div(i * n_t, bins, rounding_mode="floor")
    end = torch.div((i + 1) * n_t + bins - 1, bins, rounding_mode="floor")
    pos = torch.arange(n_t, device=device)  # type: ignore[call-overload]
    mask = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return mask, end - start


def adaptive_avg_pool2d(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` that exports to ONNX with dynamic H and W."""
    if bins == 1:
        return x.mean(dim=(2, 3), keepdim=True)
    if not _exporting():
        return F.adaptive_avg_pool2d(x, bins)
    mh, nh = _bin_mask(x.shape[2], bins, x.device)
    mw, nw = _bin_mask(x.shape[3], bins, x.device)
    ph = mh.to(x.dtype) / nh[:, None].to(x.dtype)  # bins × H
    pw = mw.to(x.dtype) / nw[:, None].to(x.dtype)  # bins × W
    return torch.matmul(torch.matmul(ph, x), pw.transpose(0, 1))


def adaptive_max_pool2d(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_max_pool2d(x, bins)`` that exports to ONNX with dynamic H and W."""
    if bins == 1:
        return x.amax(dim=(2, 3), keepdim=True)
    if not _exporting():
        return F.adaptive_max_pool2d(x, bins)
    mh, _ = _bin_mask(x.shape[2], bins, x.device)
    mw, _ = _bin_mask(x.shape[3], bins, x.device)
    neg = torch.finfo(x.dtype).min
    # reduce W per column bin: N,C,H,1,W -> N,C,H,bins
    t = x.unsqueeze(3).masked_fill(~mw[None, None, None], neg).amax(dim=-1)
    # reduce H per row bin: N,C,bins_w,1,H -> N,C,bins_w,bins_h
    t = t.transpose(2, 3).unsqueeze(3).masked_fill(~mh[None, None, None], neg).amax(dim=-1)
    return t.transpose(2, 3)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → activation (ReLU by default; ``act=None`` for none)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
        bn_momentum: float = 0.1,
    ) -> None:
        if padding is None:
            padding = dilation * (kernel - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, momentum=bn_momentum),
        ]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act())
        super().__init__(*layers)


class DropPath(nn.Module):
    """Stochastic depth per sample (active only in training)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def init_conv_bn(module: nn.Module) -> None:
    """Kaiming-normal convs (fan_out, ReLU), BN weight 1 / bias 0, linear trunc-normal(0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_head(conv: nn.Module, std: float = 0.01) -> None:
    """Classifier init as in the reference heads (mmseg ``conv_seg``): N(0, 0.01) weights, zero bias.

    Small initial logits keep the first steps stable and the untrained
    network's output in a sane range.
    """
    for m in conv.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def seg_outputs(main: Tensor, training: bool, **aux: Tensor) -> Tensor | dict[str, Tensor]:
    """The output contract: logits alone in eval mode, ``{"out": logits, **aux}`` in train mode."""
    if not training:
        return main
    return {"out": main, **aux}
