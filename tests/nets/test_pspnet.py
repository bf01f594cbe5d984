"""What is special about PSPNet: the dilated OS-8 ResNetV1c, the pyramid pooling bins, the aux head.

Structure and parameter checks build the networks on the meta device (no
memory, no initialisation cost); forward checks use small inputs or the head
alone with few channels, so this file stays quick on a CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets.dilated import FCNHead, GlobalPoolBranch
from segstudio.nets.pspnet import PSPHead
from tests.nets.dilated_helpers import block_dilations, block_strides, count, meta_net, mmseg_resnetv1c

torch.set_num_threads(2)


@pytest.mark.parametrize(("name", "layer3_blocks"), [("pspnet_r50", 6), ("pspnet_r101", 23)])
def test_backbone_is_resnetv1c_at_output_stride_8(name: str, layer3_blocks: int) -> None:
    bb = meta_net(name).backbone
    convs = [m for m in bb.stem if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (3, 3), (2, 2)), (32, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))
    ], "ResNetV1c deep stem"
    assert [block_strides(layer)[0] for layer in (bb.layer1, bb.layer2, bb.layer3, bb.layer4)] == [1, 2, 1, 1]
    assert block_dilations(bb.layer1) == [1] * 3
    assert block_dilations(bb.layer2) == [1] * 4
    # contract_dilation: the first block of a dilated stage uses half the dilation
    assert block_dilations(bb.layer3) == [1] + [2] * (layer3_blocks - 1)
    assert block_dilations(bb.layer4) == [2, 4, 4]
    for layer in (bb.layer3, bb.layer4):  # padding keeps the size at every dilation
        assert all(b.conv2.padding == b.conv2.dilation for b in layer)


@pytest.fixture(scope="module")
def psp50() -> nn.Module:
    torch.manual_seed(0)
    return nets.create("pspnet_r50", num_classes=3)


@pytest.mark.parametrize("hw", [(64, 96), (67, 93), (41, 17)])
def test_features_and_head_logits_are_at_one_eighth(psp50: nn.Module, hw: tuple[int, int]) -> None:
    feats: dict[str, torch.Tensor] = {}
    hooks = [psp50.decode_head.register_forward_hook(lambda m, i, o: feats.update(c5=i[0], head=o)),
             psp50.aux_head.register_forward_hook(lambda m, i, o: feats.update(c4=i[0], aux=o))]
    try:
        with torch.no_grad():
            out = psp50.train()(torch.randn(2, 3, *hw))
    finally:
        for h in hooks:
            h.remove()
    stride8 = (math.ceil(hw[0] / 8), math.ceil(hw[1] / 8))
    assert feats["c5"].shape == (2, 2048, *stride8)
    assert feats["c4"].shape == (2, 1024, *stride8)
    assert feats["head"].shape == (2, 3, *stride8)
    assert out["aux"].shape == (2, 3, *stride8)
    assert out["out"].shape == (2, 3, *hw)


def test_pyramid_bins_and_channels() -> None:
    head = PSPHead(in_ch=32, num_classes=5, channels=8)
    seen: list[tuple[int, int]] = []
    for branch in head.branches:
        branch.conv.register_forward_pre_hook(lambda m, i: seen.append(tuple(i[0].shape[-2:])))
    x = torch.randn(2, 32, 13, 17)
    y = head.eval()(x)
    assert seen == [(1, 1), (2, 2), (3, 3), (6, 6)]
    assert y.shape == (2, 5, 13, 17)
    assert head.bottleneck[0].in_channels == 32 + 4 * 8
    full = meta_net("pspnet_r50").decode_head
    assert full.bottleneck[0].in_channels == 2048 + 4 * 512 and full.bottleneck[0].out_channels == 512
    assert full.bottleneck[0].kernel_size == (3, 3)
    assert isinstance(full.dropout, nn.Dropout2d) and full.dropout.p == 0.1
    assert full.classifier.in_channels == 512 and full.classifier.out_channels == 19


def test_pool_branches_follow_torch_adaptive_pooling() -> None:
    """Each branch equals pool → conv → bilinear resize (align_corners=False) with PyTorch's own pool."""
    torch.manual_seed(0)
    head = PSPHead(in_ch=16, num_classes=3, channels=4).eval()
    x = torch.randn(2, 16, 11, 7)  # 7 < 2·3 and 11 not divisible by 2, 3 or 6: overlapping, uneven bins
    for branch, bins in zip(head.branches, (1, 2, 3, 6)):
        conv = branch.conv
        want = F.interpolate(conv(F.adaptive_avg_pool2d(x, bins)), size=(11, 7), mode="bilinear",
                             align_corners=False)
        if isinstance(branch, GlobalPoolBranch):
            want = F.relu(want)
        torch.testing.assert_close(branch(x), want, rtol=1e-5, atol=1e-6)


def test_one_bin_branch_has_no_batchnorm_and_trains_at_batch_one() -> None:
    head = PSPHead(in_ch=16, num_classes=3, channels=4).train()
    one = head.branches[0]
    assert isinstance(one, GlobalPoolBranch) and one.conv.bias is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in one.modules())
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in b.modules()) for b in head.branches[1:])
    head(torch.randn(1, 16, 9, 10)).sum().backward()  # BN on a 1×1 map would raise here
    assert one.conv.weight.grad is not None


def test_onnx_head_any_size_batch_two() -> None:
    """The pyramid pooling exports once and stays exact at sizes the bins do not divide (docs/MODEL_NOTES.md §16)."""
    torch.manual_seed(0)
    head = PSPHead(in_ch=24, num_classes=3, channels=8)
    for m in head.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics so BN folding is exercised
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    data = export_onnx_bytes(head, in_channels=24, sample_hw=(12, 12))
    diff = onnx_parity(head, data, [(2, 24, 13, 17), (2, 24, 5, 7), (1, 24, 29, 3), (2, 24, 12, 12)])
    assert diff <= 1e-5


def test_aux_head_only_in_train_mode(psp50: nn.Module) -> None:
    assert isinstance(psp50.aux_head, FCNHead)
    calls: list[int] = []
    hook = psp50.aux_head.register_forward_hook(lambda m, i, o: calls.append(1))
    x = torch.randn(1, 3, 48, 40)
    try:
        with torch.no_grad():
            out = psp50.eval()(x)
            assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 48, 40)
            assert calls == [], "the aux head must not run in eval mode"
            outs = psp50.train()(x)
    finally:
        hook.remove()
    assert set(outs) == {"out", "aux"} and calls == [1]
    assert zoo.get_spec("pspnet_r50").aux("aux").weight == 0.4


def test_aux_off_removes_the_head() -> None:
    with_aux, without = meta_net("pspnet_r50"), meta_net("pspnet_r50", aux=False)
    assert without.aux_head is None
    # mmseg FCNHead(num_convs=1): 3×3 conv 1024→256 + BN, 1×1 256→19 with bias
    assert count(with_aux) - count(without) == 1024 * 256 * 9 + 2 * 256 + 256 * 19 + 19
    model = nets.create("pspnet_r50", num_classes=2, aux=False).train()
    outs = model(torch.randn(1, 3, 32, 32))
    assert set(outs) == {"out"}


def test_parameter_counts_are_mmseg_layout_minus_the_one_bin_bn() -> None:
    k = 19
    psp_head = 4 * (2048 * 512 + 2 * 512) + (4096 * 512 * 9 + 2 * 512) + 512 * k + k
    aux = 1024 * 256 * 9 + 2 * 256 + 256 * k + k
    for name, blocks in (("pspnet_r50", (3, 4, 6, 3)), ("pspnet_r101", (3, 4, 23, 3))):
        model = meta_net(name)
        mmseg = mmseg_resnetv1c(blocks) + psp_head + aux
        # our 1-bin branch: conv with bias (+512) and no BN (-1024)
        assert count(model) == mmseg - 512, name
        assert count(model.backbone) == mmseg_resnetv1c(blocks)
        if name == "pspnet_r50":
            assert zoo.get_spec(name).reference_params == mmseg
    spec = zoo.get_spec("pspnet_r101")
    assert spec.reference_options == {"aux": True}
    # the 68.1M of the SegFormer table (ADE20K, 150 classes) needs the aux head: without it the count is 65.7M
    at_150 = count(meta_net("pspnet_r101", num_classes=150))
    assert round(at_150 / 1e6, 1) == 68.1
    assert abs(count(meta_net("pspnet_r101", num_classes=150, aux=False)) - 68.1e6) / 68.1e6 > 0.02
