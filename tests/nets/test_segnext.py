"""What is special about SegNeXt: MSCA kernels, layer scale, BN/LN/GN placement, the NMF update rule
and step counts (6 train / 7 eval), deterministic bases (per call, per build, per process), float32
NMF under autocast, the squeeze concat order, output stride 8, ONNX without random ops."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets import segnext

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[2]
ALL = ["segnext_t", "segnext_s", "segnext_b", "segnext_l"]


def _meta(name: str) -> segnext.SegNeXt:
    with torch.device("meta"):
        model = nets.create(name, num_classes=19)
    assert isinstance(model, segnext.SegNeXt)
    return model


def _calibrated(name: str, num_classes: int = 3, seed: int = 0) -> segnext.SegNeXt:
    torch.manual_seed(seed)
    model = nets.create(name, num_classes=num_classes)
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))  # realistic BN statistics
    model.eval()
    assert isinstance(model, segnext.SegNeXt)
    return model


@pytest.mark.parametrize("name", ALL)
def test_encoder_layout(name: str) -> None:
    config = zoo.get_spec(name).config
    dims, depths, drop_path, ham, rank = (config[k] for k in ("dims", "depths", "drop_path", "ham_channels", "rank"))
    model = _meta(name)
    stages = model.encoder.stages
    assert [len(s.blocks) for s in stages] == list(depths)
    stem = stages[0].patch_embed
    assert [type(m) for m in stem] == [nn.Conv2d, nn.BatchNorm2d, nn.GELU, nn.Conv2d, nn.BatchNorm2d]
    assert stem[0].out_channels == dims[0] // 2 and stem[0].stride == (2, 2)
    for stage, dim, ratio in zip(stages, dims, (8, 8, 4, 4)):
        assert isinstance(stage.norm, nn.LayerNorm) and stage.norm.normalized_shape == (dim,)
        if stage is not stages[0]:
            conv, bn = stage.patch_embed
            assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and isinstance(bn, nn.BatchNorm2d)
        for block in stage.blocks:
            assert isinstance(block.norm1, nn.BatchNorm2d) and isinstance(block.norm2, nn.BatchNorm2d)
            assert block.mlp.fc1.out_channels == ratio * dim
            msca = block.attn.spatial_gating_unit
            assert msca.conv0.kernel_size == (5, 5) and msca.conv0.groups == dim
            kernels = [conv.kernel_size for strip in msca.strips for conv in strip]
            assert kernels == [(1, 7), (7, 1), (1, 11), (11, 1), (1, 21), (21, 1)]
            assert all(conv.groups == dim for strip in msca.strips for conv in strip)
    rates = [b.drop_path.p for s in stages for b in s.blocks]
    assert rates == pytest.approx(torch.linspace(0, drop_path, sum(depths)).tolist())
    head = model.decode_head
    assert head.in_dims == dims[1:] and head.squeeze.conv.in_channels == sum(dims[1:])
    assert head.squeeze.conv.out_channels == ham and head.align.conv.out_channels == ham
    assert head.nmf.bases.shape == (ham, rank)
    assert all(m.num_groups == 32 for m in head.modules() if isinstance(m, nn.GroupNorm))
    assert head.ham_in.bias is not None and head.squeeze.conv.bias is None and head.ham_out.conv.bias is None


def test_layer_scale_starts_at_one_percent() -> None:
    model = nets.create("segnext_t", num_classes=2)
    for stage in model.encoder.stages:
        for block in stage.blocks:
            assert torch.equal(block.layer_scale_1, torch.full_like(block.layer_scale_1, 1e-2))
            assert torch.equal(block.layer_scale_2, torch.full_like(block.layer_scale_2, 1e-2))


def _reference_nmf(x: torch.Tensor, bases: torch.Tensor, steps: int) -> torch.Tensor:
    """The LightHamHead NMF written out step by step (docs/MODEL_NOTES.md §11 items 4–6)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h * w)
    bases = bases.unsqueeze(0).repeat(n, 1, 1)
    coef = torch.softmax(torch.bmm(x.transpose(1, 2), bases), dim=-1)
    for _ in range(steps):
        coef = coef * torch.bmm(x.transpose(1, 2), bases) / (coef.bmm(bases.transpose(1, 2).bmm(bases)) + 1e-6)
        bases = bases * torch.bmm(x, coef) / (bases.bmm(coef.transpose(1, 2).bmm(coef)) + 1e-6)
    coef = coef * torch.bmm(x.transpose(1, 2), bases) / (coef.bmm(bases.transpose(1, 2).bmm(bases)) + 1e-6)
    return torch.bmm(bases, coef.transpose(1, 2)).reshape(n, c, h, w)


def test_nmf_takes_six_steps_in_training_and_seven_in_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    nmf = segnext.NMF2D(channels=32, rank=8)
    x = torch.rand(2, 32, 9, 13)
    six = _reference_nmf(x, nmf.bases, 6)
    seven = _reference_nmf(x, nmf.bases, 7)
    assert (six - seven).abs().max() > 1e-5, "6 and 7 steps must be distinguishable for this test to mean anything"
    torch.testing.assert_close(nmf.train()(x), six, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(nmf.eval()(x), seven, atol=1e-5, rtol=1e-4)
    calls: list[int] = []
    real = segnext._update_coef

    def counting(*args: Any) -> torch.Tensor:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(segnext, "_update_coef", counting)
    model = nets.create("segnext_t", num_classes=2)
    model.train()(torch.randn(2, 3, 64, 64))
    assert len(calls) == 6 + 1  # six rounds and the final coefficient update
    calls.clear()
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 64, 64))
    assert len(calls) == 7 + 1


def test_nmf_reconstruction_is_low_rank_and_improves_with_steps() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 32, 3, generator=gen) @ torch.rand(1, 3, 120, generator=gen)  # non-negative, rank 3
    bases = segnext.NMF2D(channels=32, rank=4).bases
    errors = [float((segnext.nmf_reconstruct(x, bases, s) - x).norm() / x.norm()) for s in range(8)]
    # multiplicative updates never increase the Frobenius error (Lee & Seung)
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(errors)), errors
    assert errors[7] < 0.5 * errors[0]
    rec = segnext.NMF2D(channels=32, rank=4).eval()(x.reshape(1, 32, 10, 12))
    assert (rec >= 0).all() and torch.linalg.matrix_rank(rec.flatten(2)[0]) <= 4


def test_same_output_on_every_call_whatever_the_global_rng() -> None:
    model = _calibrated("segnext_t")
    x = torch.randn(2, 3, 75, 101)
    with torch.no_grad():
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(2)
        torch.rand(100)
        b = model(x)
    assert torch.equal(a, b)


def test_bases_do_not_depend_on_the_global_seed_and_builds_agree() -> None:
    torch.manual_seed(0)
    a = nets.create("segnext_t", num_classes=3)
    torch.manual_seed(12345)
    b = nets.create("segnext_t", num_classes=3)
    assert torch.equal(a.decode_head.nmf.bases, b.decode_head.nmf.bases)
    assert (a.decode_head.nmf.bases >= 0).all()
    torch.testing.assert_close(a.decode_head.nmf.bases.norm(dim=0), torch.ones(16))
    assert "decode_head.nmf.bases" in a.state_dict(), "the bases travel with the saved weights"
    # same global seed → same weights and bases → identical logits
    m1, m2 = _calibrated("segnext_t", seed=7), _calibrated("segnext_t", seed=7)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(m1(x), m2(x))


_CHILD = """
import sys, torch
torch.set_num_threads(1)
from segstudio import nets, zoo
torch.manual_seed(7)
model = nets.create("segnext_t", num_classes=3).eval()
x = torch.linspace(-1, 1, 3 * 64 * 96).reshape(1, 3, 64, 96)
with torch.no_grad():
    out = model(x)
torch.save({"bases": model.decode_head.nmf.bases, "out": out}, sys.argv[1])
"""


def test_deterministic_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "child.pt"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    child = torch.load(path, weights_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same kernels as the child, so the comparison can be exact
    try:
        torch.manual_seed(7)
        model = nets.create("segnext_t", num_classes=3).eval()
        with torch.no_grad():
            out = model(torch.linspace(-1, 1, 3 * 64 * 96).reshape(1, 3, 64, 96))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(model.decode_head.nmf.bases, child["bases"])
    assert torch.equal(out, child["out"])


def test_nmf_runs_in_float32_without_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[torch.dtype, bool]] = []
    real = segnext.nmf_reconstruct

    def spy(x: torch.Tensor, bases: torch.Tensor, steps: int) -> torch.Tensor:
        seen.append((x.dtype, torch.is_autocast_enabled("cpu")))
        return real(x, bases, steps)

    monkeypatch.setattr(segnext, "nmf_reconstruct", spy)
    model = nets.create("segnext_t", num_classes=2).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 64, 64))
    assert seen == [(torch.float32, False)]
    assert torch.isfinite(out).all()


def _reference_head(head: segnext.LightHamHead, feats: list[torch.Tensor], order: list[int]) -> torch.Tensor:
    """The released LightHamHead: resize to 1/8, concat in ``order``, squeeze, Hamburger, align, classify."""
    size = feats[0].shape[-2:]
    maps = [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats]
    weight = head.squeeze.conv.weight
    if order != [0, 1, 2]:  # permute the weight's input slices to go with the permuted concat
        cuts = torch.split(weight, list(head.in_dims), dim=1)
        weight = torch.cat([cuts[i] for i in order], dim=1)
    x = F.relu(head.squeeze.gn(F.conv2d(torch.cat([maps[i] for i in order], 1), weight)))
    nmf = _reference_nmf(F.relu(head.ham_in(x)), head.nmf.bases, head.nmf.steps)
    x = F.relu(x + head.ham_out(nmf))
    return head.classifier(head.align(x))


def test_head_equals_concat_in_order_c2_c3_c4_and_works_at_one_eighth() -> None:
    model = _calibrated("segnext_t", num_classes=5)
    with torch.no_grad():
        feats = model.encoder(torch.randn(2, 3, 93, 131))
        got = model.decode_head(feats[1:])
        want = _reference_head(model.decode_head, feats[1:], [0, 1, 2])
        slice_swap = model.decode_head.squeeze.conv.weight.clone()
        model.decode_head.squeeze.conv.weight[:, 64:224] = slice_swap[:, 64:224].flip(1)
        wrong = model.decode_head(feats[1:])
    assert got.shape == (2, 5, 12, 17)  # 1/8 of 93×131, rounded up by the strided convs
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - wrong).abs().max() > 1e-3


def test_onnx_batch_two_odd_sizes_and_no_random_ops() -> None:
    import onnx

    model = _calibrated("segnext_t", num_classes=4)
    data = export_onnx_bytes(model, in_channels=3, sample_hw=(64, 64))
    ops = {node.op_type for node in onnx.load_from_string(data).graph.node}
    assert not ops & {"RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike", "Multinomial"}
    assert onnx_parity(model, data, [(2, 3, 97, 131), (2, 3, 33, 200)]) <= 1e-4
