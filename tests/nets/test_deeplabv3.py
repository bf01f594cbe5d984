"""What is special about DeepLabv3: dilation rates at OS 8/16 with multi-grid, ASPP rates, image pooling, aux head.

Structure and parameter checks build the networks on the meta device; forward
checks use small inputs or the head alone with few channels.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets.deeplabv3 import ASPPHead, aspp_rates
from segstudio.nets.dilated import GlobalPoolBranch
from segstudio.zoo.spec import BadOptionError
from tests.nets.dilated_helpers import block_dilations, block_strides, count, meta_net, mmseg_resnetv1c

torch.set_num_threads(2)


# (output_stride, multi_grid) -> expected 3×3 dilations of stage 3 (R50: 6 blocks) and stage 4 (3 blocks)
DILATIONS = {
    (8, False): ([1, 2, 2, 2, 2, 2], [2, 4, 4]),  # mmseg D8: contract_dilation halves each stage's first block
    (8, True): ([1, 2, 2, 2, 2, 2], [4, 8, 16]),  # unit rates (1, 2, 4) × stage dilation 4
    (16, False): ([1, 1, 1, 1, 1, 1], [1, 2, 2]),
    (16, True): ([1, 1, 1, 1, 1, 1], [2, 4, 8]),  # the paper's example: 2·(1, 2, 4)
}


@pytest.mark.parametrize(("output_stride", "multi_grid"), list(DILATIONS))
def test_block_dilations_and_strides(output_stride: int, multi_grid: bool) -> None:
    bb = meta_net("deeplabv3_r50", output_stride=output_stride, multi_grid=multi_grid).backbone
    layer3, layer4 = DILATIONS[output_stride, multi_grid]
    assert block_dilations(bb.layer1) == [1] * 3 and block_dilations(bb.layer2) == [1] * 4
    assert block_dilations(bb.layer3) == layer3
    assert block_dilations(bb.layer4) == layer4
    first_strides = [block_strides(layer)[0] for layer in (bb.layer1, bb.layer2, bb.layer3, bb.layer4)]
    assert first_strides == ([1, 2, 1, 1] if output_stride == 8 else [1, 2, 2, 1])
    for layer in (bb.layer3, bb.layer4):
        assert all(b.conv2.padding == b.conv2.dilation for b in layer)


def test_r101_stage_three_dilations() -> None:
    bb = meta_net("deeplabv3_r101").backbone
    assert block_dilations(bb.layer3) == [1] + [2] * 22
    assert block_dilations(meta_net("deeplabv3_r101", output_stride=16, multi_grid=True).backbone.layer4) == [2, 4, 8]


@pytest.mark.parametrize(("output_stride", "rates"), [(8, (12, 24, 36)), (16, (6, 12, 18))])
def test_aspp_rates_double_at_output_stride_8(output_stride: int, rates: tuple[int, ...]) -> None:
    assert aspp_rates(output_stride) == rates
    head = meta_net("deeplabv3_r50", output_stride=output_stride).decode_head
    convs = [branch[0] for branch in head.branches]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (3, 3), (3, 3)]
    assert [c.dilation[0] for c in convs[1:]] == list(rates)
    assert all(c.padding == c.dilation for c in convs[1:])
    assert all((c.in_channels, c.out_channels) == (2048, 512) for c in convs)
    assert (head.image_pool.conv.in_channels, head.image_pool.conv.out_channels) == (2048, 512)
    assert head.bottleneck[0].in_channels == 5 * 512 and head.bottleneck[0].kernel_size == (3, 3)
    assert isinstance(head.dropout, nn.Dropout2d) and head.dropout.p == 0.1


def test_bad_output_stride_is_refused_with_the_choices() -> None:
    with pytest.raises(BadOptionError, match="8, 16"):
        nets.create("deeplabv3_r50", num_classes=2, output_stride=32)
    with pytest.raises(ValueError, match="8 or 16"):
        aspp_rates(4)


@pytest.fixture(scope="module")
def models() -> dict[int, nn.Module]:
    torch.manual_seed(0)
    return {os_: nets.create("deeplabv3_r50", num_classes=3, output_stride=os_, multi_grid=os_ == 16)
            for os_ in (8, 16)}


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("hw", [(64, 96), (67, 93)])
def test_feature_output_stride(models: dict[int, nn.Module], output_stride: int, hw: tuple[int, int]) -> None:
    model = models[output_stride]
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.decode_head.register_forward_hook(lambda m, i, o: seen.update(c5=i[0], head=o)),
             model.aux_head.register_forward_hook(lambda m, i, o: seen.update(aux=o))]
    try:
        with torch.no_grad():
            out = model.train()(torch.randn(2, 3, *hw))
    finally:
        for h in hooks:
            h.remove()
    size = (math.ceil(hw[0] / output_stride), math.ceil(hw[1] / output_stride))
    assert seen["c5"].shape == (2, 2048, *size)
    assert seen["head"].shape == (2, 3, *size)
    assert out["aux"].shape == (2, 3, *size)
    assert out["out"].shape == (2, 3, *hw)


def test_aux_head_only_in_train_mode(models: dict[int, nn.Module]) -> None:
    model = models[16]
    calls: list[int] = []
    hook = model.aux_head.register_forward_hook(lambda m, i, o: calls.append(1))
    x = torch.randn(1, 3, 40, 56)
    try:
        with torch.no_grad():
            out = model.eval()(x)
            assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 40, 56)
            assert calls == [], "the aux head must not run in eval mode"
            outs = model.train()(x)
    finally:
        hook.remove()
    assert set(outs) == {"out", "aux"} and calls == [1]
    assert zoo.get_spec("deeplabv3_r50").aux("aux").weight == 0.4
    plain = nets.create("deeplabv3_r50", num_classes=2, output_stride=16, aux=False)
    assert plain.aux_head is None
    assert set(plain.train()(torch.randn(1, 3, 32, 32))) == {"out"}


def test_image_pool_is_global_mean_without_batchnorm_and_trains_at_batch_one() -> None:
    torch.manual_seed(0)
    head = ASPPHead(in_ch=16, num_classes=3, rates=(1, 2, 3), channels=4).train()
    pool = head.image_pool
    assert isinstance(pool, GlobalPoolBranch) and pool.conv.bias is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in pool.modules())
    x = torch.randn(1, 16, 7, 9)
    want = F.relu(pool.conv(x.mean(dim=(2, 3), keepdim=True))).expand(-1, -1, 7, 9)
    torch.testing.assert_close(pool(x), want)
    head(x).sum().backward()  # BN on the 1×1 pooled map would raise at batch 1
    assert pool.conv.weight.grad is not None


def test_channels_last_survives_the_concatenation() -> None:
    head = ASPPHead(in_ch=16, num_classes=3, rates=(1, 2, 3), channels=4).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 16, 7, 9).to(memory_format=torch.channels_last)
    seen: list[torch.Tensor] = []
    head.bottleneck.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    with torch.no_grad():
        head(x)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_onnx_head_any_size_batch_two() -> None:
    torch.manual_seed(0)
    head = ASPPHead(in_ch=24, num_classes=3, rates=aspp_rates(16), channels=8)
    for m in head.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    data = export_onnx_bytes(head, in_channels=24, sample_hw=(12, 12))
    diff = onnx_parity(head, data, [(2, 24, 13, 17), (2, 24, 5, 7), (1, 24, 29, 3)])
    assert diff <= 1e-5


def test_parameter_counts_are_mmseg_layout_minus_the_image_pool_bn() -> None:
    k = 19
    aspp = (2 * (2048 * 512 + 2 * 512) + 3 * (2048 * 512 * 9 + 2 * 512) + (2560 * 512 * 9 + 2 * 512)
            + 512 * k + k)
    aux = 1024 * 256 * 9 + 2 * 256 + 256 * k + k
    for name, blocks in (("deeplabv3_r50", (3, 4, 6, 3)), ("deeplabv3_r101", (3, 4, 23, 3))):
        mmseg = mmseg_resnetv1c(blocks) + aspp + aux
        for options in ({}, {"output_stride": 16, "multi_grid": True}):
            assert count(meta_net(name, **options)) == mmseg - 512, (name, options)  # bias instead of BN
        assert zoo.get_spec(name).reference_params == mmseg
        assert count(meta_net(name, aux=False)) == mmseg - 512 - aux
