"""What is special about Fast-SCNN: stage strides and widths, the size-aligned fusion, the PPM, the aux heads."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets import fastscnn

torch.set_num_threads(2)


def _after_stride(n: int, stride: int) -> int:
    """Side length after log2(stride) stride-2 convs with padding 1 (each gives ceil(n / 2))."""
    for _ in range(int(math.log2(stride))):
        n = (n + 1) // 2
    return n


@pytest.mark.parametrize("hw", [(64, 64), (361, 479)])
def test_stage_strides_and_channels(hw: tuple[int, int]) -> None:
    model = nets.create("fastscnn", num_classes=3).eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        high = model.downsample(x)
        low = model.global_features(high)
    assert high.shape == (1, 64, _after_stride(hw[0], 8), _after_stride(hw[1], 8))
    assert low.shape == (1, 128, _after_stride(hw[0], 32), _after_stride(hw[1], 32))


def test_fusion_aligns_to_the_eighth_map_at_odd_sizes() -> None:
    model = nets.create("fastscnn", num_classes=3).eval()
    # 361×479: the 1/8 map is 46×60, the 1/32 map 12×15, and 4×(12×15) = 48×60 ≠ 46×60
    x = torch.randn(1, 3, 361, 479)
    with torch.no_grad():
        high = model.downsample(x)
        low = model.global_features(high)
        fused = model.fusion(high, low)
    assert tuple(high.shape[-2:]) == (46, 60) and tuple(low.shape[-2:]) == (12, 15)
    assert fused.shape == (1, 128, 46, 60)


def test_fusion_resizes_with_align_corners_false() -> None:
    torch.manual_seed(0)
    ffm = fastscnn.FeatureFusion().eval()
    high, low = torch.randn(1, 64, 23, 30), torch.randn(1, 128, 6, 8)
    with torch.no_grad():
        got = ffm(high, low)

        def manual(align: bool) -> torch.Tensor:
            up = F.interpolate(low, size=(23, 30), mode="bilinear", align_corners=align)
            return torch.relu(ffm.high_proj(high) + ffm.low_proj(ffm.low_dw(up)))

        assert torch.allclose(got, manual(False), atol=1e-6)
        assert not torch.allclose(got, manual(True), atol=1e-3)


def test_dsconv_has_no_activation_between_depthwise_and_pointwise() -> None:
    block = fastscnn.DSConv(32, 48, 2)
    depthwise, pointwise = block[0], block[1]
    assert isinstance(depthwise[0], nn.Conv2d) and depthwise[0].groups == 32 and depthwise[0].stride == (2, 2)
    assert not any(isinstance(m, nn.ReLU) for m in depthwise.modules())
    assert pointwise[0].kernel_size == (1, 1) and isinstance(pointwise[-1], nn.ReLU)


def test_global_feature_extractor_blocks() -> None:
    gfe = nets.create("fastscnn", num_classes=3).global_features
    blocks = [m for m in gfe if isinstance(m, fastscnn.InvertedResidual)]
    assert len(blocks) == 9
    # expansion 6 of each block's input width; outputs 64, 96, 128 in groups of three
    assert [b.block[0][0].out_channels for b in blocks] == [384] * 4 + [576] * 3 + [768] * 2
    assert [b.block[2][0].out_channels for b in blocks] == [64] * 3 + [96] * 3 + [128] * 3
    strides = [b.block[1][0].stride[0] for b in blocks]
    assert strides == [2, 1, 1, 2, 1, 1, 1, 1, 1]
    assert [b.use_residual for b in blocks] == [False, True, True, False, True, True, False, True, True]
    ppm = gfe[-1]
    assert isinstance(ppm, fastscnn.PyramidPooling) and ppm.bins == (1, 2, 3, 6)
    assert ppm.out[0].in_channels == 256 and ppm.out[0].out_channels == 128


def test_onnx_batch2_where_the_ppm_bins_do_not_divide_the_map() -> None:
    """ONNX equals PyTorch where the 1/32 map (12×15, 2×2) is not divisible by the PPM's 2/3/6 bins."""
    torch.manual_seed(0)
    model = nets.create("fastscnn", num_classes=4, aux=False)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 128, 160))
    model.eval()
    data = export_onnx_bytes(model, in_channels=3, sample_hw=(96, 128))
    diff = onnx_parity(model, data, [(2, 3, 361, 479), (1, 3, 33, 47)])
    assert diff <= 1e-4, f"ONNX Runtime differs from PyTorch by {diff:.2e}"


def test_aux_outputs_only_in_train_mode_and_only_when_enabled() -> None:
    spec = zoo.get_spec("fastscnn")
    assert {a.name: a.weight for a in spec.aux_outputs} == {"aux_downsample": 0.4, "aux_global": 0.4}
    x = torch.randn(2, 3, 96, 128)

    model = nets.create("fastscnn", num_classes=5)  # aux on by default
    calls: list[str] = []
    assert model.aux_downsample is not None and model.aux_global is not None
    model.aux_downsample.register_forward_hook(lambda *_: calls.append("aux_downsample"))
    model.aux_global.register_forward_hook(lambda *_: calls.append("aux_global"))
    out = model.train()(x)
    assert isinstance(out, dict) and set(out) == {"out", "aux_downsample", "aux_global"}
    assert out["aux_downsample"].shape == (2, 5, 12, 16)  # 1/8
    assert out["aux_global"].shape == (2, 5, 3, 4)  # 1/32
    assert sorted(calls) == ["aux_downsample", "aux_global"]
    calls.clear()
    with torch.no_grad():
        logits = model.eval()(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 5, 96, 128)
    assert calls == [], "eval mode must not compute the auxiliary heads"

    plain = nets.create("fastscnn", num_classes=5, aux=False)
    assert plain.aux_downsample is None and plain.aux_global is None
    out = plain.train()(x)
    assert isinstance(out, dict) and set(out) == {"out"}


def test_parameter_counts() -> None:
    """Tramac's 1,138,051 (19 classes, no aux) less the two biases before BN we drop; aux adds mmseg's two heads."""
    def count(**options: bool) -> int:
        return sum(p.numel() for p in nets.create("fastscnn", num_classes=19, **options).parameters())

    without = count(aux=False)
    assert without == 1_138_051 - 2 * 128
    head = lambda cin: cin * 32 * 9 + 2 * 32 + 32 * 19 + 19  # noqa: E731  3×3 conv, BN, 1×1 classifier
    assert count(aux=True) == without + head(64) + head(128)


def test_eval_logits_identical_with_and_without_aux_weights() -> None:
    """The aux heads are side branches: the same trunk weights give the same eval logits."""
    torch.manual_seed(0)
    with_aux = nets.create("fastscnn", num_classes=3, aux=True).eval()
    plain = nets.create("fastscnn", num_classes=3, aux=False).eval()
    missing, unexpected = plain.load_state_dict(with_aux.state_dict(), strict=False)
    assert not missing and all(k.startswith("aux_") for k in unexpected)
    x = torch.randn(1, 3, 75, 107)
    with torch.no_grad():
        assert torch.equal(with_aux(x), plain(x))
