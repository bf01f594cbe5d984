"""HRNetV2: stage configurations, branch widths and strides, fuse layers, head width, odd sizes, counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets, zoo
from segstudio.nets.hrnet import HRModule, HRNetV2

WIDTHS = {"hrnet_w18s": (18, 36, 72, 144), "hrnet_w18": (18, 36, 72, 144), "hrnet_w48": (48, 96, 192, 384)}
# (stage-1 bottlenecks, modules of stages 2/3/4, basic blocks per branch), docs/MODEL_NOTES.md §4 and the W18 config
DEPTHS = {"hrnet_w18s": (2, (1, 3, 2), 2), "hrnet_w18": (4, (1, 4, 3), 4), "hrnet_w48": (4, (1, 4, 3), 4)}
HEAD = {"hrnet_w18s": 270, "hrnet_w18": 270, "hrnet_w48": 720}


def _mark(name: str) -> pytest.MarkDecorator | tuple[()]:
    return pytest.mark.slow if name == "hrnet_w48" else ()


NAMES = [pytest.param(n, id=n, marks=_mark(n)) for n in WIDTHS]


def _ceil_halvings(n: int, times: int) -> int:
    for _ in range(times):
        n = math.ceil(n / 2)
    return n


@pytest.mark.parametrize("name", NAMES)
def test_stage_configuration(name: str) -> None:
    model = nets.create(name, num_classes=19)
    assert isinstance(model, HRNetV2)
    stage1, modules, blocks = DEPTHS[name]
    assert len(model.layer1) == stage1
    assert model.layer1[-1].conv3.out_channels == 256
    for stage, n_modules, n_branches in zip((model.stage2, model.stage3, model.stage4), modules, (2, 3, 4)):
        assert len(stage) == n_modules
        for module in stage:
            assert isinstance(module, HRModule)
            assert [len(b) for b in module.branches] == [blocks] * n_branches
            assert [b[0].conv1.in_channels for b in module.branches] == list(WIDTHS[name][:n_branches])
    assert model.head_channels == HEAD[name]
    assert model.classifier.in_channels == HEAD[name]


SIZE_CASES = [pytest.param("hrnet_w18s", hw, id=f"hrnet_w18s-{hw[0]}x{hw[1]}")
              for hw in [(361, 479), (64, 64), (97, 133)]]
SIZE_CASES += [pytest.param(n, (97, 133), id=f"{n}-97x133", marks=_mark(n)) for n in ("hrnet_w18", "hrnet_w48")]


@pytest.mark.parametrize(("name", "hw"), SIZE_CASES)
def test_branch_widths_strides_and_head_input(name: str, hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = nets.create(name, num_classes=3).eval()
    assert isinstance(model, HRNetV2)
    seen: dict[str, object] = {}
    model.stage4[-1].register_forward_hook(lambda _m, _i, o: seen.__setitem__("branches", o))
    model.head.register_forward_pre_hook(lambda _m, a: seen.__setitem__("head_in", a[0]))
    with torch.no_grad():
        assert model(torch.randn(1, 3, *hw)).shape == (1, 3, *hw)
    branches = seen["branches"]
    head_in = seen["head_in"]
    assert isinstance(branches, list) and isinstance(head_in, torch.Tensor)
    assert [t.shape[1] for t in branches] == list(WIDTHS[name])
    # every branch is a chain of 3×3 stride-2 convs (padding 1): ceil(n / 2) per step, from 1/4 to 1/32
    for level, t in enumerate(branches):
        assert tuple(t.shape[-2:]) == tuple(_ceil_halvings(s, 2 + level) for s in hw)
    assert head_in.shape == (1, HEAD[name], *branches[0].shape[-2:])


def test_fuse_layers_follow_the_rules() -> None:
    module = HRModule((18, 36, 72, 144), blocks=1)
    widths = (18, 36, 72, 144)
    for i in range(4):
        for j in range(4):
            f = module.fuse[i][j]
            if j == i:
                assert isinstance(f, nn.Identity)
            elif j > i:  # 1×1 conv + BN, then a resize in forward
                conv, bn = f
                assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                assert conv.kernel_size == (1, 1) and (conv.in_channels, conv.out_channels) == (widths[j], widths[i])
            else:  # (i − j) 3×3 stride-2 convs, ReLU on all but the last
                assert len(f) == i - j
                for k, step in enumerate(f):
                    conv = step[0]
                    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2)
                    last = k == i - j - 1
                    assert conv.out_channels == (widths[i] if last else widths[j])
                    assert isinstance(step[-1], nn.ReLU) != last


def test_fusion_sums_all_branches_at_odd_sizes() -> None:
    torch.manual_seed(0)
    module = HRModule((4, 8, 16), blocks=1).eval()
    sizes = [(45, 61), (23, 31), (12, 16)]
    xs = [torch.randn(1, c, *s) for c, s in zip((4, 8, 16), sizes)]
    with torch.no_grad():
        out = module(list(xs))
        ys = [b(x) for b, x in zip(module.branches, xs)]
        up = F.interpolate(module.fuse[0][2](ys[2]), size=sizes[0], mode="bilinear", align_corners=False)
        up1 = F.interpolate(module.fuse[0][1](ys[1]), size=sizes[0], mode="bilinear", align_corners=False)
        expected0 = torch.relu(ys[0] + up1 + up)
        expected2 = torch.relu(module.fuse[2][0](ys[0]) + module.fuse[2][1](ys[1]) + ys[2])
    assert [tuple(o.shape[-2:]) for o in out] == sizes
    assert torch.allclose(out[0], expected0, atol=1e-6)
    assert torch.allclose(out[2], expected2, atol=1e-6)


def test_head_and_final_resize_use_align_corners_false() -> None:
    torch.manual_seed(0)
    model = nets.create("hrnet_w18s", num_classes=4).eval()
    seen: dict[str, torch.Tensor] = {}
    model.classifier.register_forward_hook(lambda _m, _i, o: seen.__setitem__("logits", o))
    x = torch.randn(1, 3, 125, 99)
    with torch.no_grad():
        out = model(x)
    assert tuple(seen["logits"].shape[-2:]) == (32, 25)  # 1/4
    assert torch.equal(out, F.interpolate(seen["logits"], size=(125, 99), mode="bilinear", align_corners=False))


def test_init_and_bn_momentum() -> None:
    torch.manual_seed(0)
    model = nets.create("hrnet_w18s", num_classes=19)
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    body = torch.cat([m.weight.flatten() for n, m in model.named_modules()
                      if isinstance(m, nn.Conv2d) and not n.startswith("classifier")])
    assert 0.0008 < body.std().item() < 0.0012  # N(0, 0.001) as the reference's init_weights
    assert 0.008 < model.classifier.weight.std().item() < 0.012  # layers.init_head


@pytest.mark.parametrize(("name", "reference"), [
    ("hrnet_w18s", 3_939_579),  # docs/MODEL_NOTES.md §4
    ("hrnet_w18", 9_641_119),  # seg_hrnet.py built with the HRNetV2-W18 config (see the NetSpec note)
    pytest.param("hrnet_w48", 65_859_379, marks=pytest.mark.slow),  # docs/MODEL_NOTES.md §4
])
def test_parameter_count_is_reference_minus_head_bias(name: str, reference: int) -> None:
    model = nets.create(name, num_classes=19)
    # the only difference: no bias on the head's 1×1 conv, which BN follows
    assert sum(p.numel() for p in model.parameters()) == reference - HEAD[name]


def test_configs_are_distinct() -> None:
    config = {name: zoo.get_spec(name).config for name in WIDTHS}
    assert config["hrnet_w18"]["widths"] == config["hrnet_w18s"]["widths"]
    assert config["hrnet_w18"]["modules"] == config["hrnet_w48"]["modules"]
