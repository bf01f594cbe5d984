"""The contract every registered network keeps, parametrised over ``nets.available()``.

A network is tested the moment its spec is in the catalogue: one declaration (the
builder the spec names takes exactly the spec's config and options, with no defaults
of its own, and the built network records the spec's defaults), its encoder declared
(and a rest to train), logits at the input's H×W for odd and small sizes, 1- and
3-channel input, train-mode auxiliary outputs that the spec declares, gradients
reaching every parameter, deterministic eval, ONNX export with dynamic batch/H/W
matching PyTorch within 1e-4 at two sizes other than the traced one, the reference parameter count within ±2%, and a
falling loss in a few optimiser steps.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from segstudio import nets, zoo
from segstudio.inference.export import export_onnx_bytes, onnx_parity
from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.registry import builder_of
from tests.nets.bn import calibrate_bn

torch.set_num_threads(1)  # tiny inputs: a second thread buys little, and costs a lot on a busy machine

# Non-default option sets worth testing (name, options); a family adds its own here.
EXTRA_CASES: list[tuple[str, dict[str, Any]]] = [
    ("unet", {"upsample": "bilinear"}),
    ("fastscnn", {"aux": False}),
    ("deeplabv3_r50", {"output_stride": 16, "multi_grid": True}),
    ("unet3p", {"cgm": "off"}),
    ("rtformer_slim", {"aux_head": False, "injection": (False, False), "cross_size": 8}),
    ("msa", {"base": "rtformer_slim"}),
    ("msa", {"base": "fastscnn"}),
    ("msa", {"base": "segformer_b0"}),
    ("msa", {"base": "unet", "base_options": {"base_width": 16}, "scales": (0.75, 1.0, 1.5),
             "train_scales": (0.5, 1.0, 1.25)}),
]


def _marks(name: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if zoo.get_spec(name).speed == "heavy" else []


def _id(name: str, options: dict[str, Any]) -> str:
    return name + "".join(f"-{k}={v}" for k, v in options.items())


CASES = [pytest.param(n, {}, id=n, marks=_marks(n)) for n in nets.available()] + [
    pytest.param(n, o, id=_id(n, o), marks=_marks(n)) for n, o in EXTRA_CASES if n in nets.available()
]
DEFAULT_CASES = [pytest.param(n, id=n, marks=_marks(n)) for n in nets.available()]


def _as_dict(out: Any) -> dict[str, torch.Tensor]:
    assert isinstance(out, dict), "train mode must return a dict {'out': logits, aux...}"
    assert "out" in out, "train-mode output lacks the main logits under 'out'"
    return out


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in nets.available()])
def test_one_declaration_the_spec(name: str) -> None:
    """The spec is the only place a variant's hyper-parameters and an option's default are written."""
    spec = zoo.get_spec(name)
    params = inspect.signature(builder_of(spec)).parameters
    declared = set(spec.config) | set(spec.option_names())
    assert not set(spec.config) & set(spec.option_names()), "a name is both config and option"
    missing = declared - set(params)
    assert not missing, f"{spec.builder} does not take {sorted(missing)}"
    own = [k for k in declared if params[k].default is not inspect.Parameter.empty]
    assert not own, f"{spec.builder} has defaults of its own for {own}: the spec's options hold them"
    required = {k for k, p in params.items() if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    assert required - declared <= {"num_classes"}, f"{spec.builder} needs {sorted(required - declared)}"
    with torch.device("meta"):
        model = nets.create(name, num_classes=3)
    assert model.segstudio_options == {o.name: o.default for o in spec.options}


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in nets.available()])
def test_the_network_declares_its_encoder(name: str) -> None:
    with torch.device("meta"):
        model = nets.create(name, num_classes=3)
    assert isinstance(model, SegmentationNetwork), "a zoo network is a nets.base.SegmentationNetwork"
    children = dict(model.named_children())
    unknown = [m for m in model.encoder_modules if m not in children]
    assert not unknown, f"encoder_modules names no sub-module: {unknown}"
    encoder = {n for n, _ in model.encoder_parameters()}
    everything = {n for n, _ in model.named_parameters()}
    assert encoder and encoder <= everything, "no encoder parameters"
    assert everything - encoder, "everything is encoder: fine-tuning would freeze it all"


@pytest.mark.parametrize(("name", "options"), CASES)
def test_eval_shapes_any_size(name: str, options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = nets.create(name, num_classes=5, **options).eval()
    with torch.no_grad():
        for shape in [(1, 3, 361, 479), (2, 3, 64, 64)]:
            out = model(torch.randn(*shape))
            assert isinstance(out, torch.Tensor), "eval mode must return the logits tensor"
            assert out.shape == (shape[0], 5, *shape[2:])
            assert torch.isfinite(out).all()
    gray = nets.create(name, num_classes=2, in_channels=1, **options).eval()
    with torch.no_grad():
        assert gray(torch.randn(1, 1, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize(("name", "options"), CASES)
def test_deterministic_eval(name: str, options: dict[str, Any]) -> None:
    model = nets.create(name, num_classes=3, **options).eval()
    x = torch.randn(1, 3, 67, 93)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(("name", "options"), CASES)
def test_train_outputs_and_gradients(name: str, options: dict[str, Any]) -> None:
    spec = zoo.get_spec(name)
    torch.manual_seed(0)
    model = nets.create(name, num_classes=4, **options).train()
    outs = _as_dict(model(torch.randn(2, 3, 64, 64)))
    assert outs["out"].shape == (2, 4, 64, 64)
    declared = {a.name: a for a in spec.aux_outputs}
    loss = torch.zeros(())
    for key, value in outs.items():
        if key != "out":
            assert key in declared, f"aux output {key!r} is not declared in the NetSpec ({list(declared)})"
            if declared[key].kind == "presence":
                assert value.shape == (2, 4)
            else:
                assert value.dim() == 4 and value.shape[:2] == (2, 4)
        loss = loss + (value * torch.randn_like(value)).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters that no output depends on: {missing[:10]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(("name", "options"), CASES)
def test_onnx_matches_torch_at_two_sizes(name: str, options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = nets.create(name, num_classes=3, **options)
    calibrate_bn(model)
    data = export_onnx_bytes(model, in_channels=3, sample_hw=(96, 128))
    diff = onnx_parity(model, data, [(1, 3, 64, 96), (2, 3, 75, 107)])
    assert diff <= 1e-4, f"ONNX Runtime differs from PyTorch by {diff:.2e}"


@pytest.mark.parametrize("name", DEFAULT_CASES)
def test_parameter_count_matches_reference(name: str) -> None:
    spec = zoo.get_spec(name)
    if spec.reference_params is None:
        pytest.skip(f"no reference parameter count for {name} ({spec.reference_note or 'unconfirmed'})")
    model = nets.create(name, num_classes=19, **spec.reference_options)
    count = sum(p.numel() for p in model.parameters())
    rel = abs(count - spec.reference_params) / spec.reference_params
    assert rel <= 0.02, f"{name}: {count:,} parameters vs reference {spec.reference_params:,} ({rel:.1%})"


def _weighted_loss(outs: dict[str, torch.Tensor], target: torch.Tensor, spec: zoo.NetSpec) -> torch.Tensor:
    loss = F.cross_entropy(outs["out"], target)
    for key, value in outs.items():
        if key == "out":
            continue
        aux = spec.aux(key)
        if aux.kind == "presence":
            present = torch.stack([(target == c).flatten(1).any(1) for c in range(value.shape[1])], 1)
            loss = loss + aux.weight * F.binary_cross_entropy_with_logits(value, present.float())
        else:
            up = F.interpolate(value, size=target.shape[-2:], mode="bilinear", align_corners=False)
            loss = loss + aux.weight * F.cross_entropy(up, target)
    return loss


@pytest.mark.parametrize("name", DEFAULT_CASES)
def test_loss_falls_in_a_few_steps(name: str) -> None:
    spec = zoo.get_spec(name)
    torch.manual_seed(0)
    model = nets.create(name, num_classes=2).train()
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    target = (((yy // 16) + (xx // 16)) % 2).expand(2, 64, 64).contiguous()
    image = (target.float() * 2 - 1).unsqueeze(1).expand(2, 3, 64, 64) + 0.5 * torch.randn(2, 3, 64, 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = _weighted_loss(_as_dict(model(image)), target, spec)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], f"loss did not fall: {losses}"
