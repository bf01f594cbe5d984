"""The multi-scale attention wrapper: scale order and sizes, option checks, the paper's combination
formulas on a toy base, ONNX parity of the whole multi-scale graph, and every base of the zoo."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets.msa import MultiScaleAttention, scaled_length
from segstudio.zoo import BadOptionError
from tests.nets.bn import calibrate_bn

torch.set_num_threads(2)


class ToyBase(nn.Module):
    """A fixed per-pixel linear map (3 → 3 classes) that records the sizes it is called at."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append((int(x.shape[2]), int(x.shape[3])))
        return self.conv(x)


class FixedAttention(nn.Module):
    """Attention head stand-in: a fixed function of the scaled image (or a constant)."""

    def __init__(self, constant: float | None = None) -> None:
        super().__init__()
        self.constant = constant

    def forward(self, image: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.constant is not None:
            return torch.full_like(logits[:, :1], self.constant)
        return torch.sigmoid(image[:, :1] * 2)


def _toy(scales: tuple[float, ...] = (0.5, 1.0, 2.0), train_scales: tuple[float, ...] = (0.5, 1.0),
         constant: float | None = None) -> MultiScaleAttention:
    torch.manual_seed(0)
    model = MultiScaleAttention(ToyBase(), 3, 3, scales, train_scales, "toy")
    model.head = FixedAttention(constant)  # type: ignore[assignment]
    return model


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


def test_scales_run_in_descending_order_at_half_up_sizes() -> None:
    model = _toy(scales=(1.0, 0.5, 2.0, 0.75)).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 75, 107))
    # 75·0.5 = 37.5 → 38, 107·0.75 = 80.25 → 80
    assert model.base.sizes == [(150, 214), (75, 107), (56, 80), (38, 54)]
    model.base.sizes.clear()
    model.train()(torch.randn(2, 3, 75, 107))
    assert model.base.sizes == [(75, 107), (38, 54)]


def test_scaled_length_is_the_same_for_ints_and_tensors() -> None:
    for s in (0.25, 0.5, 0.75, 1.25, 1.5, 2.0, 0.3, 1.7):
        frac = Fraction(s).limit_denominator(1000)
        ints = [scaled_length(n, frac) for n in range(1, 400)]
        tensors = scaled_length(torch.arange(1, 400), frac)
        assert ints == tensors.tolist()  # type: ignore[union-attr]
        assert all(v == max(1, int(n * s + 0.5 + 1e-9)) for n, v in zip(range(1, 400), ints))


def test_scale_options_are_checked() -> None:
    with pytest.raises(BadOptionError, match=r"must contain 1\.0"):
        nets.create("msa", num_classes=2, scales=(0.5, 2.0))
    with pytest.raises(BadOptionError, match=r"must contain 1\.0"):
        nets.create("msa", num_classes=2, train_scales=(0.5, 0.75))
    with pytest.raises(BadOptionError, match="not allowed"):
        nets.create("msa", num_classes=2, train_scales=(0.3, 1.0))
    with pytest.raises(BadOptionError, match="at least 2"):
        nets.create("msa", num_classes=2, train_scales=(1.0,))
    with pytest.raises(BadOptionError, match="distinct positive"):
        nets.create("msa", num_classes=2, scales=(1.0, -0.5))
    with pytest.raises(BadOptionError, match="unet"):  # the message lists the valid bases
        nets.create("msa", num_classes=2, base="msa")
    with pytest.raises(BadOptionError, match="rtformer_slim"):
        nets.create("msa", num_classes=2, base="no_such_net")
    with pytest.raises(BadOptionError, match="dict"):
        nets.create("msa", num_classes=2, base_options=[("base_width", 8)])
    with pytest.raises(BadOptionError, match="no option"):  # the base's own option check
        nets.create("msa", num_classes=2, base_options={"no_such_option": 1})


def test_inference_combination_follows_the_paper() -> None:
    model = _toy().eval()
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        got = model(x)
        base, head = model.base, model.head
        x2, x05 = _resize(x, (90, 122)), _resize(x, (23, 31))
        p2, p1, p05 = base(x2), base(x), base(x05)
        a1, a05 = head(x, p1), head(x05, p05)
        pred = a1 * p1 + (1 - a1) * _resize(p2, (45, 61))  # s = 1.0 ≥ 1: down(pred)
        pred = _resize(a05 * p05, (45, 61)) + (1 - _resize(a05, (45, 61))) * pred  # s = 0.5: up(attn·p)
    torch.testing.assert_close(got, pred)


def test_attention_extremes_select_one_scale() -> None:
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        ones, zeros = _toy(constant=1.0).eval()(x), _toy(constant=0.0).eval()(x)
        base = _toy().base
        # attention 1 everywhere: the lowest scale wins; 0: the largest scale (whose attention is never used)
        torch.testing.assert_close(ones, _resize(base(_resize(x, (20, 26))), (40, 52)))
        torch.testing.assert_close(zeros, _resize(base(_resize(x, (80, 104))), (40, 52)))


def test_training_joint_and_per_scale_outputs() -> None:
    model = _toy().train()
    x = torch.randn(2, 3, 45, 61)
    outs = model(x)
    assert set(outs) == {"out", "scale_1x", "scale_0.5x"}
    p_lo, p_1x = model.base(_resize(x, (23, 31))), model.base(x)
    attn_lo = model.head(_resize(x, (23, 31)), p_lo)
    joint = _resize(attn_lo * p_lo, (45, 61)) + (1 - _resize(attn_lo, (45, 61))) * p_1x
    torch.testing.assert_close(outs["out"], joint)
    torch.testing.assert_close(outs["scale_0.5x"], p_lo)
    torch.testing.assert_close(outs["scale_1x"], p_1x)


def test_spec_declares_every_output_the_wrapper_can_make() -> None:
    spec = zoo.get_spec("msa")
    declared = {a.name: a for a in spec.aux_outputs}
    assert declared["scale_0.5x"].weight == 0.05 and declared["scale_1x"].weight == 0.05
    for base in nets.available():
        if base == "msa":
            continue
        for aux in zoo.get_spec(base).aux_outputs:
            passed = declared[f"{base}.{aux.name}"]
            assert (passed.weight, passed.kind) == (aux.weight, aux.kind)
    assert "msa" not in (spec.options[0].choices or ())


def test_base_options_and_head_size() -> None:
    small = nets.create("msa", num_classes=5, base="unet", base_options={"base_width": 8})
    assert small.base.segstudio_options["base_width"] == 8
    head = sum(p.numel() for p in small.head.parameters())
    base = sum(p.numel() for p in small.base.parameters())
    assert sum(p.numel() for p in small.parameters()) == base + head
    other = nets.create("msa", num_classes=5, base="rtformer_slim")
    assert sum(p.numel() for p in other.head.parameters()) == head < 100_000  # light, base-independent
    assert head == 60_752 + 576 * 5  # the number in the msa NetSpec's reference note


def test_onnx_parity_of_the_multi_scale_graph() -> None:
    torch.manual_seed(0)
    model = nets.create("msa", num_classes=3, base="unet", base_options={"base_width": 8},
                        scales=(0.5, 1.0, 1.5))
    calibrate_bn(model)
    data = export_onnx_bytes(model, sample_hw=(64, 96))
    # odd sizes where the half-up rounding of every scale matters; batch 1 and 2 from one file
    diff = onnx_parity(model, data, [(1, 3, 75, 107), (2, 3, 57, 83)])
    assert diff <= 1e-4, f"ONNX Runtime differs from PyTorch by {diff:.2e}"


def _bases() -> list[object]:
    return [pytest.param(n, id=n, marks=[pytest.mark.slow] if zoo.get_spec(n).speed == "heavy" else [])
            for n in nets.available() if n != "msa"]


@pytest.mark.parametrize("base", _bases())
def test_works_with_every_base(base: str) -> None:
    torch.manual_seed(0)
    model = nets.create("msa", num_classes=3, base=base)
    declared = {a.name for a in zoo.get_spec("msa").aux_outputs}
    outs = model.train()(torch.randn(2, 3, 64, 64))
    assert isinstance(outs, dict) and outs["out"].shape == (2, 3, 64, 64)
    assert {"scale_0.5x", "scale_1x"} <= set(outs) <= declared | {"out"}
    assert {k for k in outs if k.startswith(base + ".")} == {f"{base}.{a.name}" for a in zoo.get_spec(base).aux_outputs}
    sum((v * torch.randn_like(v)).mean() for v in outs.values()).backward()  # type: ignore[union-attr]
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()
