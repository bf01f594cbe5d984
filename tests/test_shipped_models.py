"""The models shipped in models/: readable cards, size limit, and real segmentations of CamVid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from segstudio import cli
from segstudio.core.image_io import read_image, read_mask
from segstudio.core.metrics import confusion_matrix, mean_iou
from segstudio.inference.model_file import load_card
from segstudio.paths import DEFAULT_MODEL, models_dir, resources_dir

CAMVID = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
          "Bicyclist")
SHIPPED = ("camvid-fastscnn", "camvid-linknet")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_have_full_cards_and_fit_the_size_limit(name: str) -> None:
    for suffix in (".safetensors", ".onnx"):
        path = models_dir() / f"{name}{suffix}"
        assert path.is_file(), f"{path} is missing"
        assert path.stat().st_size < 100 * 2**20
        card = load_card(path)
        assert tuple(card.classes.names) == CAMVID and card.num_classes == 11
        assert card.metric("mIoU") is not None and card.metric("mIoU") > 0.7
        assert card.metric("mIoU (TTA)") is not None
        assert card.recipe["batch_size"] == 16 and card.history[0]["event"] == "trained"
        assert "/root/" not in card.to_json() and "/work/" not in card.to_json()  # no machine paths


def test_the_default_model_is_shipped() -> None:
    assert (models_dir() / f"{DEFAULT_MODEL}.onnx").is_file()


def test_cli_segments_the_samples_with_the_default_model(tmp_path: Path) -> None:
    samples = resources_dir() / "samples"
    out = tmp_path / "out"
    code = cli.main(["segment", str(samples), "-o", str(out)])  # no --model: the shipped default
    assert code == 0
    images = sorted(p for p in samples.iterdir() if p.suffix == ".png")
    maps = sorted((out / "masks").rglob("*.png"))
    assert len(images) >= 5
    for img in images:
        found = [m for m in maps if m.stem == img.stem]
        assert found, f"no class map for {img.name}"
        label = read_mask(found[0])
        assert label.shape == (360, 480)
        # a street scene: the network must find several classes, road and sky among them
        assert len(np.unique(label)) >= 5, img.name


@pytest.mark.parametrize("name,floor", [("camvid-fastscnn", 0.62), ("camvid-linknet", 0.65)])
def test_shipped_models_segment_camvid_val(camvid_dir: Path, name: str, floor: float) -> None:
    """On 12 val images (ONNX Runtime, CPU) the shipped model scores near its card (0.71 / 0.74 on all 101)."""
    from segstudio.inference.predictor import Predictor

    predictor = Predictor.from_file(models_dir() / f"{name}.onnx", backend="onnx")
    files = sorted((camvid_dir / "val").iterdir())[::9][:12]
    cm = np.zeros((11, 11), np.int64)
    for f in files:
        truth = cv2.imread(str(camvid_dir / "valannot" / f.name), cv2.IMREAD_UNCHANGED)
        pred = predictor.predict(read_image(f)).labels
        cm += confusion_matrix(pred, truth, 11, ignore_index=11)
    assert mean_iou(cm) > floor


def test_segment_with_the_default_model_needs_no_torch(tmp_path: Path) -> None:
    """The base install (no torch) segments the samples with the shipped ONNX model."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; from segstudio.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", code, "segment", str(resources_dir() / "samples"), "-o", str(out),
                          "--model", DEFAULT_MODEL],  # a shipped model by name
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "onnxruntime" in res.stdout + res.stderr
    assert len(list((out / "masks").glob("*.png"))) == len(list((resources_dir() / "samples").glob("*.png")))
