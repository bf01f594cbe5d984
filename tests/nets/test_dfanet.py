"""What is special about DFANet: three separately weighted backbones, the aggregation widths, A vs B."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from segstudio import nets
from segstudio.inference.export import export_onnx_bytes
from segstudio.nets import dfanet

torch.set_num_threads(2)

WIDTHS = {"dfanet_a": (48, 96, 192), "dfanet_b": (32, 64, 128)}  # paper Table 1


def _after_stride(n: int, stride: int) -> int:
    """Side length after log2(stride) stride-2 convs with padding 1 (each gives ceil(n / 2))."""
    for _ in range(int(math.log2(stride))):
        n = (n + 1) // 2
    return n


def _stage_io(stage: nn.Module) -> tuple[int, int, int]:
    """(input channels, output channels, number of blocks) of an enc stage."""
    blocks = [b for b in stage if isinstance(b, dfanet.XceptionBlock)]
    return blocks[0].sep1.depthwise.in_channels, blocks[-1].sep3.pointwise.out_channels, len(blocks)


@pytest.mark.parametrize("name", ["dfanet_a", "dfanet_b"])
def test_backbone_widths_and_aggregation_channels(name: str) -> None:
    c2, c3, c4 = WIDTHS[name]
    model = nets.create(name, num_classes=3)
    first, second, third = model.backbones
    assert first.conv1 is not None and first.conv1[0].out_channels == 8 and first.conv1[0].stride == (2, 2)
    assert second.conv1 is None and third.conv1 is None
    assert [_stage_io(s) for s in (first.enc2, first.enc3, first.enc4)] == [(8, c2, 4), (c2, c3, 6), (c3, c4, 4)]
    # sub-network aggregation (enc2 + upsampled fc attention) and sub-stage aggregation (enc_k + previous enc_k+1)
    aggregated = [(c2 + c4, c2, 4), (c2 + c3, c3, 6), (c3 + c4, c4, 4)]
    for backbone in (second, third):
        assert [_stage_io(s) for s in (backbone.enc2, backbone.enc3, backbone.enc4)] == aggregated
    for backbone in model.backbones:
        assert backbone.attention.fc.out_features == 1000 and backbone.attention.conv.out_channels == c4
        for block in backbone.modules():
            if isinstance(block, dfanet.XceptionBlock):
                widths = [sep.pointwise.out_channels for sep in (block.sep1, block.sep2, block.sep3)]
                assert widths[0] == widths[1] == widths[2] // 4
    decoder = model.decoder
    assert [c[0].in_channels for c in decoder.low] == [c2] * 3
    assert [c[0].in_channels for c in decoder.high] == [c4] * 3


def test_a_is_wider_than_b() -> None:
    a, b = nets.create("dfanet_a", num_classes=19), nets.create("dfanet_b", num_classes=19)
    assert a.widths == (48, 96, 192) and b.widths == (32, 64, 128)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(b) < 0.7 * count(a)


def test_three_backbones_have_separate_weights() -> None:
    model = nets.create("dfanet_a", num_classes=3).eval()
    ptrs = [{p.data_ptr() for p in b.parameters()} for b in model.backbones]
    assert not (ptrs[0] & ptrs[1]) and not (ptrs[1] & ptrs[2]) and not (ptrs[0] & ptrs[2])
    # backbones 2 and 3 have identical shapes, yet changing one leaves the other alone
    second, third = model.backbones[1], model.backbones[2]
    assert [p.shape for p in second.parameters()] == [p.shape for p in third.parameters()]
    before = [p.detach().clone() for p in third.parameters()]
    with torch.no_grad():
        for p in second.parameters():
            p.add_(1.0)
    assert all(torch.equal(p, q) for p, q in zip(third.parameters(), before))


@pytest.mark.parametrize("hw", [(64, 64), (361, 479)])
def test_backbones_run_at_successively_lower_resolution(hw: tuple[int, int]) -> None:
    model = nets.create("dfanet_b", num_classes=3).eval()
    feats = None
    shapes = []
    with torch.no_grad():
        for backbone in model.backbones:
            feats = backbone(torch.randn(1, 3, *hw), feats)
            shapes.append([tuple(f.shape[-2:]) for f in feats])
    for k, (e2, e3, e4, fca) in enumerate(shapes):
        stride = 4 * 2**k
        assert e2 == (_after_stride(hw[0], stride), _after_stride(hw[1], stride))
        assert e3 == (_after_stride(hw[0], 2 * stride), _after_stride(hw[1], 2 * stride))
        assert e4 == fca == (_after_stride(hw[0], 4 * stride), _after_stride(hw[1], 4 * stride))
    if hw == (64, 64):
        assert shapes[2][3] == (1, 1)  # the third backbone's fc attention runs on a 1×1 map


def test_fc_attention_is_a_channelwise_product() -> None:
    torch.manual_seed(0)
    att = dfanet.FCAttention(16)
    x = torch.randn(2, 16, 5, 7)
    with torch.no_grad():
        code = att.conv(att.fc(x.mean(dim=(2, 3))).reshape(2, 1000, 1, 1))
        assert torch.allclose(att(x), x * code, atol=1e-6)


def test_residual_branches_start_at_zero() -> None:
    """Zero-init residual: each block's last BN scale is 0, so 42 stacked blocks start as their shortcuts."""
    model = nets.create("dfanet_b", num_classes=3)
    blocks = [m for m in model.modules() if isinstance(m, dfanet.XceptionBlock)]
    assert len(blocks) == 3 * (4 + 6 + 4)
    assert all(torch.count_nonzero(b.sep3.bn.weight) == 0 for b in blocks)


def _calibrated(name: str, seed: int) -> nn.Module:
    """A network with every BN scale set to 1 (residual branches active) and running stats from random data."""
    torch.manual_seed(seed)
    model = nets.create(name, num_classes=3)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        nn.init.ones_(m.weight)
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, 96, 128))
    return model.eval()


def test_onnx_with_active_residual_branches_is_as_accurate_as_torch() -> None:
    """ONNX Runtime vs a float64 reference, with every block's residual branch on, batch 2, odd sizes.

    With all 42 residual branches active the random network is chaotic: PyTorch's own float32 result
    is ~1e-4 away from float64. An export mistake (a frozen size, a wrong resize) gives errors of the
    order of the logits; float noise stays within a small multiple of PyTorch's.
    """
    import onnxruntime as ort

    model = _calibrated("dfanet_b", seed=0)
    reference = copy.deepcopy(model).double()
    session = ort.InferenceSession(export_onnx_bytes(model, 3, (96, 128)), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 75, 107), (2, 3, 64, 64)]:
        x = torch.randn(*shape, generator=gen)
        with torch.no_grad():
            exact = reference(x.double()).numpy()
            torch_err = np.abs(model(x).double().numpy() - exact).max()
        onnx_out = session.run(None, {"image": x.numpy()})[0]
        assert onnx_out.shape == (shape[0], 3, *shape[2:])
        onnx_err = np.abs(onnx_out.astype(np.float64) - exact).max()
        scale = np.abs(exact).max()
        assert onnx_err <= 10 * torch_err + 1e-6 * scale, f"ONNX error {onnx_err:.2e} vs torch {torch_err:.2e}"
