"""What is special about the UNet family beyond the network contract.

UNet++: the nested node layout, separate deep-supervision heads in training,
"accurate" inference = mean of the heads' probabilities, "fast" inference =
one head with the deeper nodes pruned (also from the ONNX graph). UNet 3+:
full-scale skip channels, the five heads, and the classification-guided
module's gate for many classes. LinkNet: additive skips, the ResNet-18
encoder, odd sizes.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from segstudio import nets
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets.linknet import LinkNet
from segstudio.nets.unet3p import ABSENT_LOGIT, UNet3Plus
from segstudio.nets.unetpp import UNetPlusPlus

torch.set_num_threads(2)


def _conv_count(data: bytes) -> int:
    graph = onnx.load_from_string(data).graph
    return sum(node.op_type in ("Conv", "ConvTranspose") for node in graph.node)


# --------------------------------------------------------------------- UNet++


def test_unetpp_nodes_and_channels() -> None:
    model = nets.create("unetpp", num_classes=3)
    assert isinstance(model, UNetPlusPlus)
    widths = (32, 64, 128, 256, 512)
    expected = {f"{i}_{j}" for j in range(1, 5) for i in range(5 - j)}
    assert set(model.nodes) == expected and len(expected) == 10
    for key, node in model.nodes.items():
        i, j = map(int, key.split("_"))
        first_conv = node[0][0]
        # up(X^{i+1,j-1}) brings w[i] channels, plus X^{i,0..j-1}: (j + 1)·w[i] in, w[i] out
        assert (first_conv.in_channels, first_conv.out_channels) == ((j + 1) * widths[i], widths[i])
    assert [h.in_channels for h in model.heads] == [32] * 4
    assert [h.out_channels for h in model.heads] == [3] * 4


def test_unetpp_training_returns_each_head_separately() -> None:
    torch.manual_seed(0)
    model = nets.create("unetpp", num_classes=4).train()
    outs = model(torch.randn(2, 3, 32, 40))
    assert set(outs) == {"out", "head1", "head2", "head3"}
    # distinct heads, not one averaged map under four names
    assert not torch.allclose(outs["out"], outs["head1"])
    assert not torch.allclose(outs["head1"], outs["head2"])
    # each head's loss reaches its own classifier: head1's loss alone trains heads[0], not heads[3]
    F.cross_entropy(outs["head1"], torch.zeros(2, 32, 40, dtype=torch.long)).backward()
    assert model.heads[0].weight.grad is not None and model.heads[0].weight.grad.abs().sum() > 0
    assert model.heads[3].weight.grad is None


def _heads_eval(model: UNetPlusPlus, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return [head(t) for head, t in zip(model.heads, model._top_row(x, 4))]


@pytest.mark.parametrize("num_classes", [3, 1])
def test_unetpp_accurate_mode_averages_head_probabilities(num_classes: int) -> None:
    torch.manual_seed(0)
    model = nets.create("unetpp", num_classes=num_classes).eval()
    for head in model.heads:  # larger logits than the init, so that the heads disagree visibly
        torch.nn.init.normal_(head.weight, 0.0, 0.5)
    x = torch.randn(1, 3, 33, 35)
    heads = _heads_eval(model, x)
    with torch.no_grad():
        out = model(x)
    if num_classes == 1:
        mean = torch.stack([torch.sigmoid(h) for h in heads]).mean(0)
        assert torch.allclose(torch.sigmoid(out), mean, atol=1e-5)
    else:
        mean = torch.stack([h.softmax(1) for h in heads]).mean(0)
        assert torch.allclose(out.softmax(1), mean, atol=1e-5)
        assert torch.allclose(out.exp().sum(1), torch.ones(1, 33, 35), atol=1e-5)  # log-probabilities
        assert not torch.allclose(out, torch.stack(heads).mean(0), atol=1e-3)  # not a logit average


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_unetpp_fast_mode_is_one_head_of_the_same_weights(level: int) -> None:
    torch.manual_seed(0)
    full = nets.create("unetpp", num_classes=3).eval()
    fast = nets.create("unetpp", num_classes=3, inference="fast", prune_level=level).eval()
    fast.load_state_dict(full.state_dict())
    x = torch.randn(1, 3, 34, 42)
    with torch.no_grad():
        assert torch.allclose(fast(x), _heads_eval(full, x)[level - 1], atol=1e-5)


def test_unetpp_fast_mode_prunes_deeper_nodes() -> None:
    model = nets.create("unetpp", num_classes=3, inference="fast", prune_level=2).eval()
    ran: set[str] = set()
    for key, node in model.nodes.items():
        node.register_forward_hook(lambda *_, key=key: ran.add(key))
    encoder_ran: list[int] = []
    for i, block in enumerate(model.encoder):
        block.register_forward_hook(lambda *_, i=i: encoder_ran.append(i))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert ran == {"0_1", "1_1", "0_2"}
    assert encoder_ran == [0, 1, 2]
    # the exported graph holds the pruned network only, and is right for other sizes and batches
    data = export_onnx_bytes(model, sample_hw=(64, 64))
    assert onnx_parity(model, data, [(1, 3, 48, 80), (2, 3, 37, 53)]) <= 1e-4
    pruned = _conv_count(data)
    full = _conv_count(export_onnx_bytes(nets.create("unetpp", num_classes=3).eval(), sample_hw=(64, 64)))
    # level 2: encoder 3×2 + nodes 3×2 + ups 3 + one head = 16; full: 5×2 + 10×2 + 10 + 4 = 44
    assert (pruned, full) == (16, 44)


def test_unetpp_transpose_upsampling_and_bad_options() -> None:
    model = nets.create("unetpp", num_classes=2, upsample="transpose").eval()
    assert isinstance(model.ups["0_1"].proj, torch.nn.ConvTranspose2d)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 47)).shape == (1, 2, 33, 47)
    with pytest.raises(ValueError, match="prune_level"):
        nets.create("unetpp", num_classes=2, prune_level=5)


# --------------------------------------------------------------------- UNet 3+


def test_unet3p_full_scale_channels_and_heads() -> None:
    model = nets.create("unet3p", num_classes=5)
    assert isinstance(model, UNet3Plus)
    for d in (1, 2, 3, 4):
        dec = model.decoders[str(d)]
        ins = [b[0].in_channels for b in dec.branches]
        # encoder maps h1..hd keep their widths, deeper decoder maps have 320 channels, hd5 has 1024
        expected = [64, 128, 256, 512][:d] + [320] * (4 - d) + [1024]
        assert ins == expected, (d, ins)
        assert all(b[0].out_channels == 64 for b in dec.branches)
        assert dec.fuse[0].in_channels == dec.fuse[0].out_channels == 320
    assert [h.in_channels for h in model.heads] == [320, 320, 320, 320, 1024]
    assert all(h.kernel_size == (3, 3) for h in model.heads)


def _forced_presence(model: UNet3Plus, presence: list[float]) -> None:
    """Make the CGM output ``presence`` for every image (zero weights, chosen biases)."""
    conv = model.cls[1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor(presence))


def _ungated(model: UNet3Plus, x: torch.Tensor) -> torch.Tensor:
    gate, model.cgm = model.cgm, "loss"
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.cgm = gate


def test_unet3p_cgm_gate_suppresses_absent_classes() -> None:
    torch.manual_seed(0)
    model = nets.create("unet3p", num_classes=4).eval()
    _forced_presence(model, [2.0, -1.0, 0.5, -3.0])
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        gated = model(x)
    raw = _ungated(model, x)
    assert torch.equal(gated[:, [0, 2]], raw[:, [0, 2]])
    assert (gated[:, [1, 3]] == ABSENT_LOGIT).all()
    assert set(gated.argmax(1).unique().tolist()) <= {0, 2}
    assert gated.softmax(1)[:, [1, 3]].max() < 1e-30


def test_unet3p_cgm_keeps_the_most_likely_class_when_none_is_present() -> None:
    torch.manual_seed(0)
    model = nets.create("unet3p", num_classes=3).eval()
    _forced_presence(model, [-4.0, -0.5, -2.0])
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        gated = model(x)
    assert (gated.argmax(1) == 1).all()  # not an emptied (all -1e4) map with an arbitrary argmax


def test_unet3p_cgm_single_class_absent_means_probability_zero() -> None:
    model = nets.create("unet3p", num_classes=1).eval()
    _forced_presence(model, [-1.0])
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert torch.sigmoid(out).max() < 1e-6


def test_unet3p_cgm_options() -> None:
    torch.manual_seed(0)
    loss_only = nets.create("unet3p", num_classes=3, cgm="loss")
    _forced_presence(loss_only, [-4.0, -4.0, -4.0])
    x = torch.randn(1, 3, 32, 32)
    loss_only.eval()
    with torch.no_grad():
        out = loss_only(x)
    assert out.abs().max() < 100  # no gating at inference
    assert "cls" in loss_only.train()(torch.randn(2, 3, 32, 32))
    off = nets.create("unet3p", num_classes=3, cgm="off").train()
    assert off.cls is None
    assert set(off(torch.randn(2, 3, 32, 32))) == {"out", "ds2", "ds3", "ds4", "ds5"}


def _presence(model: UNet3Plus, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        h = model.encoder[0](x)
        for block in model.encoder[1:]:
            h = block(model.pool(h))
        return model.presence_logits(h)


@pytest.mark.slow  # exports a UNet 3+ (a heavy network)
def test_unet3p_gate_is_per_image_and_exports_to_onnx() -> None:
    torch.manual_seed(0)
    model = nets.create("unet3p", num_classes=4).eval()
    _forced_presence(model, [1.0, 0.0, 3.0, -2.0])
    with torch.no_grad():
        model.cls[1].weight[1].normal_()  # class 1's presence now depends on the image
    x = torch.randn(2, 3, 48, 80)
    x[1] *= 3.0
    p = _presence(model, x)[:, 1]
    with torch.no_grad():  # threshold between the two images: one finds class 1, the other does not
        model.cls[1].bias[1] = -float(p.mean())
    p = _presence(model, x)[:, 1]
    assert (p[0] > 0) != (p[1] > 0)
    with torch.no_grad():
        gated = model(x)
    absent = int((p < 0).nonzero()[0, 0])
    assert (gated[absent, 1] == ABSENT_LOGIT).all()
    assert gated[1 - absent, 1].max() > -100
    data = export_onnx_bytes(model, sample_hw=(64, 64))
    assert not any(n.op_type == "Einsum" for n in onnx.load_from_string(data).graph.node)
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    assert np.abs(got - gated.numpy()).max() <= 1e-4
    assert onnx_parity(model, data, [(1, 3, 33, 47)]) <= 1e-4


# --------------------------------------------------------------------- LinkNet


def test_linknet_encoder_and_additive_skips() -> None:
    model = nets.create("linknet", num_classes=3)
    assert isinstance(model, LinkNet)
    assert sum(p.numel() for p in model.encoder.parameters()) == 11_176_512  # ResNet-18 without fc
    pairs = [(model.dec4, 512, 256), (model.dec3, 256, 128), (model.dec2, 128, 64), (model.dec1, 64, 64)]
    for block, m, n in pairs:
        assert block.reduce[0].in_channels == m and block.reduce[0].out_channels == m // 4
        assert block.expand[0].out_channels == n
    assert model.dec1.up.stride == 1 and model.dec4.up.stride == 2
    # d1 = pool + dec1(d2): zeroing dec1's last BN leaves exactly the skip (the max-pool output)
    captured: dict[str, torch.Tensor] = {}
    model.encoder.maxpool.register_forward_hook(lambda _m, _i, o: captured.__setitem__("pool", o))
    model.dec1.register_forward_hook(lambda _m, _i, o: captured.__setitem__("d1", o))
    with torch.no_grad():
        model.dec1.expand[1].weight.zero_()
        model.dec1.expand[1].bias.zero_()
        model.eval()(torch.randn(1, 3, 64, 64))
    assert torch.equal(captured["d1"], captured["pool"])


@pytest.mark.parametrize("hw", [(31, 33), (65, 97), (64, 96), (1, 1), (127, 255)])
def test_linknet_any_size(hw: tuple[int, int]) -> None:
    model = nets.create("linknet", num_classes=2).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *hw))
    assert out.shape == (1, 2, *hw)
    assert np.isfinite(out.numpy()).all()


def test_linknet_flops_match_the_paper() -> None:
    """The paper gives 21.2 GFLOPs at 3×640×360; the authors' layout counts 19.3 G (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = nets.create("linknet", num_classes=11).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 360, 640))
    gflops = counter.get_total_flops() / 1e9
    assert math.isclose(gflops, 21.2, rel_tol=0.1), gflops
