"""What is special about SegFormer: spatial reduction only where r > 1, LayerNorm eps, expansion 4,
decoder widths and concat order, attention equal to the textbook formula, stochastic depth in
training only, a clear error for too-small inputs, ONNX at batch 2 and odd sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets import segformer
from segstudio.nets.layers import DropPath

torch.set_num_threads(2)

ALL = [f"segformer_b{i}" for i in range(6)]


def _meta(name: str) -> segformer.SegFormer:
    with torch.device("meta"):  # structure only: no memory, no init cost
        model = nets.create(name, num_classes=19)
    assert isinstance(model, segformer.SegFormer)
    return model


@pytest.mark.parametrize("name", ALL)
def test_spatial_reduction_conv_only_where_ratio_above_one(name: str) -> None:
    model = _meta(name)
    for stage, ratio in zip(model.encoder.stages, (8, 4, 2, 1)):
        for block in stage.blocks:
            attn = block.attn
            if ratio > 1:
                assert attn.sr is not None and attn.norm is not None
                assert attn.sr.kernel_size == (ratio, ratio) and attn.sr.stride == (ratio, ratio)
                assert attn.sr.padding == (0, 0)
            else:
                assert attn.sr is None and attn.norm is None
    keys = [k for k in model.state_dict() if ".attn.sr." in k or ".attn.norm." in k]
    assert keys and not any(k.startswith("encoder.stages.3.") for k in keys)


@pytest.mark.parametrize("name", ALL)
def test_widths_depths_heads_and_expansion_four(name: str) -> None:
    config = zoo.get_spec(name).config
    dims, depths, channels = config["dims"], config["depths"], config["decoder_channels"]
    model = _meta(name)
    assert [len(s.blocks) for s in model.encoder.stages] == list(depths)
    for stage, dim, heads in zip(model.encoder.stages, dims, (1, 2, 5, 8)):
        for block in stage.blocks:
            assert block.attn.heads == heads and block.attn.q.in_features == dim
            assert block.mlp.fc1.out_features == 4 * dim  # the released code, not the paper's Table 6
            assert block.mlp.dwconv.groups == 4 * dim and block.mlp.dwconv.kernel_size == (3, 3)
    assert model.decode_head.channels == channels == (256 if name in ("segformer_b0", "segformer_b1") else 768)
    assert model.decode_head.linear_fuse.in_channels == 4 * channels
    embeds = [s.patch_embed.proj for s in model.encoder.stages]
    assert [(e.kernel_size, e.stride, e.padding) for e in embeds] == [((7, 7), (4, 4), (3, 3))] + [
        ((3, 3), (2, 2), (1, 1))
    ] * 3


def test_layer_norm_eps_as_released() -> None:
    model = _meta("segformer_b0")
    for stage in model.encoder.stages:
        assert stage.patch_embed.norm.eps == 1e-5 and stage.norm.eps == 1e-6
        for block in stage.blocks:
            assert block.norm1.eps == 1e-6 and block.norm2.eps == 1e-6
            if block.attn.norm is not None:
                assert block.attn.norm.eps == 1e-5


def test_stochastic_depth_linear_schedule_and_training_only() -> None:
    model = nets.create("segformer_b0", num_classes=3)
    rates = [b.drop_path.p for s in model.encoder.stages for b in s.blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.1, 8).tolist())
    model.decode_head.dropout.p = 0.0  # leave stochastic depth as the only source of randomness
    x = torch.randn(2, 3, 64, 64)
    model.train()
    torch.manual_seed(0)
    a = model(x)["out"]
    torch.manual_seed(1)
    b = model(x)["out"]
    assert not torch.equal(a, b), "stochastic depth is not active in training"
    for m in model.modules():
        if isinstance(m, DropPath):
            m.p = 0.0
    assert torch.equal(model(x)["out"], model(x)["out"])
    model.eval()
    for m in model.modules():
        if isinstance(m, DropPath):
            m.p = 0.5
    with torch.no_grad():
        torch.manual_seed(0)
        c = model(x)
        torch.manual_seed(1)
        assert torch.equal(c, model(x)), "stochastic depth must be off in eval"


def test_attention_matches_textbook_formula() -> None:
    torch.manual_seed(0)
    attn = segformer.EfficientSelfAttention(dim=40, heads=5, sr_ratio=2).eval()
    x = torch.randn(2, 7, 9, 40)  # odd token grid: the sr conv floors it to 3×4
    with torch.no_grad():
        got = attn(x)
        n, h, w, c = x.shape
        q = attn.q(x).reshape(n, h * w, 5, 8).transpose(1, 2)
        assert attn.sr is not None and attn.norm is not None
        red = attn.norm(attn.sr(x.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2))
        k, v = attn.kv(red).reshape(n, -1, 2, 5, 8).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-2, -1) * 8**-0.5, dim=-1)
        want = attn.proj((weights @ v).transpose(1, 2).reshape(n, h * w, c)).reshape(n, h, w, c)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def _reference_head(head: segformer.AllMLPHead, feats: list[torch.Tensor], order: list[int]) -> torch.Tensor:
    """The released decoder: Linear per stage, resize to 1/4, concat in ``order``, fuse conv, BN, ReLU, classify."""
    size = feats[0].shape[1:3]
    maps = [F.interpolate(head.linear_c[i](f).permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
            for i, f in enumerate(feats)]
    x = head.linear_fuse(torch.cat([maps[i] for i in order], dim=1))
    return head.classifier(F.relu(head.bn(x)))


def test_decoder_equals_concat_in_order_c4_c3_c2_c1() -> None:
    torch.manual_seed(0)
    model = nets.create("segformer_b0", num_classes=5).eval()
    with torch.no_grad():
        model.decode_head.bn.running_mean.normal_()
        model.decode_head.bn.running_var.uniform_(0.5, 2.0)
        for lin in model.decode_head.linear_c:
            lin.bias.normal_()
        feats = model.encoder(torch.randn(2, 3, 93, 131))
        got = model.decode_head(feats)
        want = _reference_head(model.decode_head, feats, [3, 2, 1, 0])
        wrong = _reference_head(model.decode_head, feats, [0, 1, 2, 3])
    assert got.shape == (2, 5, 24, 33)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert (got - wrong).abs().max() > 1e-2, "the test cannot tell concat orders apart"


def test_decoder_gradients_match_concat_formulation() -> None:
    torch.manual_seed(0)
    model = nets.create("segformer_b0", num_classes=3).train()
    model.decode_head.dropout.p = 0.0
    head = model.decode_head
    feats = [f.detach() for f in model.encoder(torch.randn(2, 3, 64, 96))]
    grads = []
    for fn in (lambda: head(feats), lambda: _reference_head(head, feats, [3, 2, 1, 0])):
        head.zero_grad()
        (fn() ** 2).mean().backward()
        params = (head.linear_fuse.weight, head.linear_c[2].weight, head.linear_c[0].bias)
        grads.append([p.grad.clone() for p in params])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_too_small_input_is_a_clear_error() -> None:
    model = nets.create("segformer_b0", num_classes=2).eval()
    with pytest.raises(ValueError, match="at least 29"):
        model(torch.randn(1, 3, 28, 64))
    with torch.no_grad():
        assert model(torch.randn(1, 3, 29, 33)).shape == (1, 2, 29, 33)


def test_onnx_batch_two_at_odd_sizes() -> None:
    torch.manual_seed(0)
    model = nets.create("segformer_b0", num_classes=4).eval()
    data = export_onnx_bytes(model, in_channels=3, sample_hw=(64, 64))
    assert onnx_parity(model, data, [(2, 3, 97, 131), (2, 3, 33, 200), (1, 3, 161, 47)]) <= 1e-4
