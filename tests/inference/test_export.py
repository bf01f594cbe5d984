"""ONNX export: verified before it is written, refused when wrong, carries the card; card-less ONNX files."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segstudio import nets
from segstudio.cli import main as cli_main
from segstudio.inference import export as export_mod
from segstudio.inference.export import (
    PARITY_RTOL,
    ExportMismatchError,
    check_export,
    export_onnx_bytes,
    export_verified,
    parity_shapes,
)
from segstudio.inference.model_file import MissingCardError, ModelFileError, load_card, load_model
from segstudio.inference.predictor import Predictor
from tests.inference.conftest import calibrate_bn


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return calibrate_bn(nets.create("unet", num_classes=3, base_width=4))


def test_a_correct_export_passes() -> None:
    model = _model()
    data, report = export_verified(model, 3, 16)
    assert report.ok and report.relative <= PARITY_RTOL and report.argmax_agreement >= 0.999
    assert len(report.shapes) == 2 and report.shapes[1][0] == 2  # two sizes, one with batch 2
    assert data.startswith(b"\x08")  # an ONNX protobuf (ir_version field)


def test_large_logits_are_judged_relative_to_their_scale() -> None:
    model = _model()
    with torch.no_grad():
        model.head.weight.mul_(3000.0)  # logits in the hundreds, as a confident trained model may have
    data = export_onnx_bytes(model, 3)
    report = check_export(model, data, parity_shapes(3, 16))
    assert report.scale > 100
    assert report.ok, report.describe()


def test_a_perturbed_weight_is_refused() -> None:
    model = _model()
    data = export_onnx_bytes(model, 3)
    with torch.no_grad():
        model.downs[1][0][0].weight[0, 0, 1, 1] += 0.05  # one weight, a little
    report = check_export(model, data, parity_shapes(3, 16))
    assert not report.ok, report.describe()


def _perturbing_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the exporter trace a slightly different copy of the model (a broken exporter)."""
    real = export_mod.export_onnx_bytes

    def wrong(model: torch.nn.Module, *args, **kwargs) -> bytes:
        other = copy.deepcopy(model)
        with torch.no_grad():
            other.head.bias.add_(0.5)
        return real(other, *args, **kwargs)

    monkeypatch.setattr(export_mod, "export_onnx_bytes", wrong)


def test_a_wrong_export_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _perturbing_export(monkeypatch)
    with pytest.raises(ExportMismatchError, match="does not match"):
        export_verified(_model(), 3, 16, path=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_onnx_cli(tmp_path: Path, random_model_file: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert cli_main(["export-onnx", str(random_model_file), "-o", str(out)]) == 0
    assert load_card(out).to_json() == load_card(random_model_file).to_json()
    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), np.uint8)
    from_onnx = Predictor.from_file(out).predict(image, confidence=True)
    from_torch = Predictor.from_file(random_model_file, backend="torch").predict(image, confidence=True)
    assert (from_onnx.labels == from_torch.labels).mean() > 0.999
    assert np.abs(from_onnx.confidence.astype(np.float32) - from_torch.confidence).max() < 2e-3
    _perturbing_export(monkeypatch)
    refused = tmp_path / "refused.onnx"
    assert cli_main(["export-onnx", str(random_model_file), "-o", str(refused)]) == 1
    assert "refused" in capsys.readouterr().err
    assert not refused.exists()


@pytest.fixture
def cardless_onnx(tmp_path: Path, random_model_file: Path) -> Path:
    model, _ = load_model(random_model_file)
    path = tmp_path / "foreign.onnx"
    path.write_bytes(export_onnx_bytes(model, 3))  # no metadata: as a file from another tool
    return path


def test_onnx_without_card_needs_class_names(cardless_onnx: Path) -> None:
    with pytest.raises(MissingCardError, match="--classes"):
        load_card(cardless_onnx)
    card = load_card(cardless_onnx, ["sky", "road", "car"])
    assert card.classes.names == ["sky", "road", "car"] and card.in_channels == 3
    with pytest.raises(ModelFileError, match="outputs 3 classes but 2 class names"):
        Predictor.from_file(cardless_onnx, class_names=["sky", "road"]).predict(np.zeros((40, 40, 3), np.uint8))


def test_segment_cli_with_cardless_onnx(tmp_path: Path, cardless_onnx: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((50, 60, 3), 90, np.uint8))
    out = tmp_path / "out"
    assert cli_main(["segment", str(src), "-o", str(out), "--model", str(cardless_onnx)]) == 2
    assert "--classes" in capsys.readouterr().err
    assert cli_main(["segment", str(src), "-o", str(out), "--model", str(cardless_onnx),
                     "--classes", "sky,road,car", "--overlay", "--masks-per-class"]) == 0
    assert (out / "masks" / "a.png").is_file() and (out / "overlays" / "a.png").is_file()
    assert (out / "classes" / "02-car" / "a.png").is_file()
