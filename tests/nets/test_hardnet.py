"""FC-HarDNet-70: harmonic links, channel rounding, block outputs, decoder widths, sizes, align_corners."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets
from segstudio.nets.hardnet import FCHarDNet, HarDBlock, hard_channels, hard_links

# Layer k (1-based) links to k - 2^i for every 2^i dividing k, nearest first.
LINKS = {1: [0], 2: [1, 0], 3: [2], 4: [3, 2, 0], 5: [4], 6: [5, 4], 7: [6], 8: [7, 6, 4, 0], 16: [15, 14, 12, 8, 0]}

# Per-layer output channels worked out by hand from growth × 1.7^(#links − 1) and int(int(out + 1) / 2) * 2,
# e.g. growth 10, 3 links: 28.9 → int(29.9) = 29 → 14 → 28; growth 24, 4 links: 117.912 → 118 → 59 → 118.
LAYER_CHANNELS = {
    (10, 4): [10, 18, 10, 28],
    (16, 4): [16, 28, 16, 46],
    (18, 8): [18, 30, 18, 52, 18, 30, 18, 88],
    (24, 8): [24, 40, 24, 70, 24, 40, 24, 118],
    (32, 8): [32, 54, 32, 92, 32, 54, 32, 158],
}
# Odd-numbered layers plus the last one.
BLOCK_OUT = {(10, 4): 48, (16, 4): 78, (18, 8): 160, (24, 8): 214, (32, 8): 286}


@pytest.mark.parametrize(("layer", "links"), list(LINKS.items()))
def test_link_pattern(layer: int, links: list[int]) -> None:
    assert hard_links(layer) == links


def test_link_rejects_layer_zero() -> None:
    with pytest.raises(ValueError, match="numbered from 1"):
        hard_links(0)


@pytest.mark.parametrize(("cfg", "expected"), list(LAYER_CHANNELS.items()))
def test_layer_channels_follow_the_rounding_rule(cfg: tuple[int, int], expected: list[int]) -> None:
    growth, n_layers = cfg
    assert [hard_channels(k, growth, 1.7) for k in range(1, n_layers + 1)] == expected


@pytest.mark.parametrize(("cfg", "expected"), list(LAYER_CHANNELS.items()))
def test_block_convs_and_output_channels(cfg: tuple[int, int], expected: list[int]) -> None:
    growth, n_layers = cfg
    base = 37
    block = HarDBlock(base, growth, 1.7, n_layers)
    chans = [base, *expected]
    for k, layer in enumerate(block.layers, start=1):
        conv = layer[0]
        assert isinstance(conv, nn.Conv2d)
        assert conv.kernel_size == (3, 3) and conv.bias is None
        assert conv.out_channels == expected[k - 1]
        assert conv.in_channels == sum(chans[i] for i in LINKS[k]), f"layer {k} input"
    assert block.out_channels == BLOCK_OUT[cfg]
    out = block(torch.randn(1, base, 9, 11))
    assert out.shape == (1, BLOCK_OUT[cfg], 9, 11)


def test_block_output_is_odd_layers_plus_last() -> None:
    block = HarDBlock(6, 10, 1.7, 4).eval()
    captured: list[torch.Tensor] = []
    for layer in block.layers:
        layer.register_forward_hook(lambda _m, _i, o: captured.append(o))
    with torch.no_grad():
        out = block(torch.randn(1, 6, 8, 8))
    # layers 1, 3 and 4 (the last); layer 2 and the block input are not in the output
    assert torch.equal(out, torch.cat([captured[0], captured[2], captured[3]], dim=1))


def test_encoder_and_decoder_widths() -> None:
    model = FCHarDNet(num_classes=19)
    assert [b.out_channels for b in model.enc_blocks] == [48, 78, 160, 214, 286]
    assert [c[0].out_channels for c in model.enc_convs] == [64, 96, 160, 224, 320]
    # TransitionUp: concat(previous, skip) → 1×1 to half → block of the matching encoder level
    assert [c[0].in_channels for c in model.dec_convs] == [320 + 214, 214 + 160, 160 + 78, 78 + 48]
    assert [c[0].out_channels for c in model.dec_convs] == [267, 187, 119, 63]
    assert [b.out_channels for b in model.dec_blocks] == [214, 160, 78, 48]
    assert model.classifier.in_channels == 48 and model.classifier.bias is not None


def test_parameter_count_is_the_reference_exactly() -> None:
    model = nets.create("hardnet70", num_classes=19)
    assert sum(p.numel() for p in model.parameters()) == 4_119_257


@pytest.mark.parametrize(("hw", "deepest", "head"), [((361, 479), (6, 8), (91, 120)), ((64, 64), (1, 1), (16, 16)),
                                                     ((61, 130), (1, 3), (16, 33)), ((32, 32), (1, 1), (8, 8))])
def test_resolutions_and_align_corners(hw: tuple[int, int], deepest: tuple[int, int], head: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = nets.create("hardnet70", num_classes=3).eval()
    seen: dict[str, torch.Tensor] = {}
    model.enc_blocks[-1].register_forward_pre_hook(lambda _m, a: seen.__setitem__("deepest", a[0]))
    model.classifier.register_forward_hook(lambda _m, _i, o: seen.__setitem__("logits", o))
    with torch.no_grad():
        out = model(torch.randn(1, 3, *hw))
    assert tuple(seen["deepest"].shape[-2:]) == deepest  # 1/64
    assert tuple(seen["logits"].shape[-2:]) == head  # logits made at 1/4
    expected = F.interpolate(seen["logits"], size=hw, mode="bilinear", align_corners=True)
    assert torch.equal(out, expected)


def test_tiny_inputs_work() -> None:
    model = nets.create("hardnet70", num_classes=2).eval()
    with torch.no_grad():
        for hw in [(60, 200), (5, 3), (1, 1)]:
            out = model(torch.randn(1, 3, *hw))
            assert out.shape == (1, 2, *hw) and torch.isfinite(out).all()


def test_bn_momentum_and_conv_bias() -> None:
    model = FCHarDNet(num_classes=2)
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c for c in convs if c.bias is not None] == [model.classifier]
