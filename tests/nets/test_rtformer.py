"""What is special about RTFormer: the two attention normalisations, the batched cross attention
(equal to the reference's batch-dependent grouped convolutions), the dual-resolution topology,
its options, and one ONNX file serving batch 1 and 3 at odd sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segstudio import nets
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets import rtformer
from segstudio.nets.layers import DropPath
from segstudio.zoo import BadOptionError
from tests.nets.bn import calibrate_bn

torch.set_num_threads(2)


def _paddle_double_norm(x: torch.Tensor, heads: int) -> torch.Tensor:
    """PaddleSeg ``_act_dn``: reshape to (B, heads, C/heads, H·W), softmax axis 3, divide by the sum over axis 2."""
    b, c, h, w = x.shape
    t = x.reshape(b, heads, c // heads, h * w).softmax(dim=3)
    t = t / (t.sum(dim=2, keepdim=True) + 1e-6)
    return t.reshape(b, c, h, w)


def _paddle_cross_attention(x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """PaddleSeg's cross-kv attention with two ``groups=B`` convolutions, written as in the reference."""
    b, c, h, w = x.shape
    tokens = kv.shape[2] * kv.shape[3]
    k, v = kv[:, :c], kv[:, c:]
    cross_k = k.permute(0, 2, 3, 1).reshape(-1, c, 1, 1)  # B·T, C, 1, 1
    cross_v = v.reshape(-1, tokens, 1, 1)  # B·C, T, 1, 1
    y = F.conv2d(x.reshape(1, b * c, h, w), cross_k, groups=b)  # 1, B·T, H, W
    y = (y.reshape(-1, tokens, h, w) * tokens**-0.5).softmax(dim=1).reshape(1, -1, h, w)
    y = F.conv2d(y, cross_v, groups=b)  # 1, B·C, H, W
    return y.reshape(b, c, h, w)


def test_double_normalisation_softmax_over_space_then_channel_groups() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 32, 5, 7)
    got = rtformer.double_normalize(x, 8)
    torch.testing.assert_close(got, _paddle_double_norm(x, 8))
    # after the channel-group step, the 4 channels of every group sum to 1 (less the 1e-6 guard) at every pixel
    sums = got.reshape(2, 8, 4, 35).sum(dim=2)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-4, rtol=0)
    # the wrong order (channel softmax first) or ungrouped normalisation gives other numbers
    assert not torch.allclose(got, _paddle_double_norm(x, 1), atol=1e-4)
    # channels_last input gives the same values
    torch.testing.assert_close(rtformer.double_normalize(x.to(memory_format=torch.channels_last), 8), got)


def test_cross_attention_softmax_over_the_tokens() -> None:
    torch.manual_seed(0)
    x, k, v = torch.randn(2, 16, 6, 5), torch.randn(2, 16, 144), torch.randn(2, 16, 144)
    weights = (torch.einsum("nct,ncp->ntp", k, x.flatten(2)) / 12).softmax(dim=1)  # over the 144 tokens
    expected = torch.einsum("nct,ntp->ncp", v, weights).reshape(2, 16, 6, 5)
    torch.testing.assert_close(rtformer.cross_attention(x, k, v), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_batched_cross_attention_equals_grouped_conv_reference(batch: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, 64, 9, 11)
    kv = torch.randn(batch, 128, 12, 12)
    got = rtformer.cross_attention(x, kv[:, :64].flatten(2), kv[:, 64:].flatten(2))
    ref = _paddle_cross_attention(x, kv)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    # each sample attends to its own tokens only
    single = rtformer.cross_attention(x[-1:], kv[-1:, :64].flatten(2), kv[-1:, 64:].flatten(2))
    torch.testing.assert_close(got[-1:], single, atol=1e-5, rtol=1e-5)


def test_block_matches_grouped_conv_formulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole RTFormer block, with the reference's grouped convs swapped in, gives the same output."""
    torch.manual_seed(0)
    block = rtformer.RTFormerBlock(32, 64, 128, heads=8, drop_path=0.2, injection=True, cross_size=12).eval()
    for m in block.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x_h, x_l = torch.randn(3, 32, 20, 24), torch.randn(3, 64, 10, 12)
    with torch.no_grad():
        ours = block(x_h, x_l)

        def grouped(x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            kv = torch.cat([k, v], dim=1).unflatten(2, (12, 12))
            return _paddle_cross_attention(x, kv)

        monkeypatch.setattr(rtformer, "cross_attention", grouped)
        ref = block(x_h, x_l)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert ours[0].shape == (3, 32, 20, 24) and ours[1].shape == (3, 128, 5, 6)  # low branch: stride 2


def test_low_branch_attention_uses_external_kv_and_double_norm() -> None:
    torch.manual_seed(0)
    attn = rtformer.ExternalAttention(16, 32, heads=8).eval()
    x = torch.randn(2, 16, 8, 10)
    with torch.no_grad():
        a = F.conv2d(attn.norm(x), attn.k, stride=2)
        expected = F.conv2d(_paddle_double_norm(a, 8), attn.v)
        torch.testing.assert_close(attn(x), expected)
    assert rtformer.ExternalAttention(32, 32, heads=8).stride == 1  # stride 2 only when channels change
    assert attn.k.shape == (32, 16, 1, 1) and attn.v.shape == (32, 32, 1, 1)


def _shapes(model: torch.nn.Module, x: torch.Tensor) -> dict[str, list[tuple[int, ...]]]:
    seen: dict[str, list[tuple[int, ...]]] = {}

    def hook(name: str):  # type: ignore[no-untyped-def]
        def record(_m, _inp, out):  # type: ignore[no-untyped-def]
            outs = out if isinstance(out, tuple) else (out,)
            seen[name] = [tuple(o.shape) for o in outs]
        return record

    for name in ("stem", "layer1", "layer2", "layer3", "layer3_", "layer4", "layer5", "spp", "head"):
        getattr(model, name).register_forward_hook(hook(name))
    with torch.no_grad():
        model(x)
    return seen


@pytest.mark.parametrize(("name", "c"), [("rtformer_slim", 32), ("rtformer_base", 64)])
def test_dual_resolution_topology(name: str, c: int) -> None:
    model = nets.create(name, num_classes=7).eval()
    s = _shapes(model, torch.randn(1, 3, 161, 225))  # odd: 81×113 → 41×57 (1/4) → 21×29 → 11×15 → 6×8
    assert s["stem"] == [(1, c, 41, 57)] and s["layer1"] == [(1, c, 41, 57)]
    assert s["layer2"] == [(1, 2 * c, 21, 29)] and s["layer3"] == [(1, 4 * c, 11, 15)]
    assert s["layer3_"] == [(1, 2 * c, 21, 29)]
    assert s["layer4"] == [(1, 2 * c, 21, 29), (1, 8 * c, 6, 8)]
    assert s["layer5"] == [(1, 2 * c, 21, 29), (1, 8 * c, 6, 8)]
    assert s["spp"] == [(1, 2 * c, 6, 8)] and s["head"] == [(1, 7, 21, 29)]
    # no_relu on the last BasicBlock of a multi-block stage only
    assert [b.no_relu for b in model.layer1] == [False, True] and [b.no_relu for b in model.layer3_] == [False]
    assert model.layer4.attn_l.stride == 2 and model.layer5.attn_l.stride == 1


def test_dappm_pools() -> None:
    spp = rtformer.DAPPM(16, 8, 4)
    assert [(p.kernel_size, p.stride, p.padding, p.count_include_pad) for p in spp.pools] == [
        (5, 2, 2, True), (9, 4, 4, True), (17, 8, 8, True)]
    assert spp(torch.randn(2, 16, 7, 9)).shape == (2, 4, 7, 9)


def test_options_injection_cross_size_bn_momentum_aux(monkeypatch: pytest.MonkeyPatch) -> None:
    slim = nets.create("rtformer_slim", num_classes=3)
    base = nets.create("rtformer_base", num_classes=3)
    assert slim.layer4.down is not None and slim.layer5.down is not None  # Cityscapes Slim: [True, True]
    assert base.layer4.down is not None and base.layer5.down is None  # Cityscapes Base: [True, False]
    momenta = {m.momentum for m in slim.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}
    paddle_like = nets.create("rtformer_slim", num_classes=3, bn_momentum=0.9)
    assert {m.momentum for m in paddle_like.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.9}

    seen: list[int] = []
    original = rtformer.cross_attention

    def spy(x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        seen.append(k.shape[-1])
        return original(x, k, v)

    monkeypatch.setattr(rtformer, "cross_attention", spy)
    small = nets.create("rtformer_slim", num_classes=3, cross_size=8).eval()
    with torch.no_grad():
        small(torch.randn(1, 3, 64, 64))
    assert seen == [64, 64]

    outs = slim.train()(torch.randn(2, 3, 64, 96))
    assert set(outs) == {"out", "aux"} and outs["aux"].shape == (2, 3, 8, 12)  # aux head at 1/8
    no_aux = nets.create("rtformer_slim", num_classes=3, aux_head=False).train()
    assert set(no_aux(torch.randn(2, 3, 64, 64))) == {"out"}
    with pytest.raises(BadOptionError, match="per RTFormer stage"):
        nets.create("rtformer_slim", num_classes=3, injection=(True,))
    as_json = nets.create("rtformer_slim", num_classes=3, injection=[True, False])  # options read back from a card
    assert as_json.layer5.down is None
    with pytest.raises(BadOptionError, match="cross_size"):
        nets.create("rtformer_slim", num_classes=3, cross_size=0)
    with pytest.raises(BadOptionError):
        nets.create("rtformer_slim", num_classes=3, heads=4)


def test_drop_path_is_stochastic_in_training_only() -> None:
    x = torch.randn(2, 3, 64, 64)
    model = nets.create("rtformer_slim", num_classes=3, drop_path_rate=0.5, aux_head=False).train()
    drops = [m for m in model.modules() if isinstance(m, DropPath)]
    assert len(drops) == 2 and {m.p for m in drops} == {0.5}  # one per RTFormer block, shared by its 4 branches
    with torch.no_grad():
        assert not torch.equal(model(x)["out"], model(x)["out"])
        for m in drops:
            m.p = 0.0
        assert torch.equal(model(x)["out"], model(x)["out"])


def test_onnx_one_file_batch_1_and_3_at_odd_sizes() -> None:
    torch.manual_seed(0)
    model = nets.create("rtformer_slim", num_classes=4)
    calibrate_bn(model)
    data = export_onnx_bytes(model, sample_hw=(96, 128))
    # 1/32 maps of 3×4 (pool bins repeat cells) and 14×13 (bins overlap) around the 12×12 pool
    diff = onnx_parity(model, data, [(1, 3, 75, 107), (3, 3, 93, 61), (1, 3, 441, 417)])
    assert diff <= 1e-4, f"ONNX Runtime differs from PyTorch by {diff:.2e}"
