"""Training on the shared real data (ISBI, CamVid) and the training benchmark scripts at tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import train_camvid, train_hitl_isbi, train_throughput
from segstudio.inference.model_file import load_card
from segstudio.training.config import small_data_recipe
from segstudio.training.data import FolderData, load_data
from segstudio.training.engine import train


@pytest.mark.data
def test_isbi_a_few_steps_with_the_small_data_recipe(isbi_dir: Path, tmp_path: Path) -> None:
    spec = FolderData(str(isbi_dir / "image"), str(isbi_dir / "label"), classes=("membrane", "cell"),
                      value_map=("0=membrane", "255=cell"), limit=3)
    data = load_data(spec)
    assert len(data.train) == 3 and data.channels() == 1
    membrane = np.mean([(s.label == 0).mean() for s in data.train])
    assert 0.1 < membrane < 0.4  # membranes are the thin minority
    cfg = small_data_recipe(max_seconds=None, steps=3, output_dir=str(tmp_path / "run"))
    events = list(train(cfg, data))
    assert events[-1].kind == "finished"
    card = load_card(events[-1].model_path)
    assert card.in_channels == 1 and card.arch == "unet" and card.options["base_width"] == 8
    assert card.classes.names == ["membrane", "cell"]


@pytest.mark.data
def test_hitl_benchmark_runs_end_to_end(isbi_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hitl.json"
    assert train_hitl_isbi.main(["--data", str(isbi_dir.parent), "--seconds", "4", "--settings", "sparse",
                                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| sparse | unet base_width=8 |" in text
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 1 and rows[0]["wall_s"] < 15 and 0 <= rows[0]["miou_after"] <= 1
    assert rows[0]["load_before"] >= 0 and rows[0]["steps"] >= 1


def test_hitl_helpers() -> None:
    assert train_hitl_isbi.parse_net("unet:base_width=8+upsample=bilinear") == (
        "unet", {"base_width": 8, "upsample": "bilinear"})
    assert train_hitl_isbi.parse_net("linknet") == ("linknet", {})
    assert train_hitl_isbi.config_value("loss_stages", [[0, "ce"]]) == ((0.0, "ce"),)


def test_forest_features() -> None:
    from benchmarks.isbi_forest import features  # scipy: in the test extra

    f = features(np.random.default_rng(0).integers(0, 255, (20, 24), dtype=np.uint8))
    assert f.shape == (20, 24, 31) and np.isfinite(f).all()


def test_forest_is_quiet_when_the_warning_filters_were_emptied() -> None:
    """scikit-learn's thread workers can leave the process with no warning filters; the forest must not then
    warn once per tree (a 1200 s benchmark run printed 280 000 such lines)."""
    import warnings

    pytest.importorskip("sklearn", reason="scikit-learn: the forest baseline's benchmark-only dependency")
    from benchmarks.isbi_forest import fit_forest, predict_forest

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (16, 16), dtype=np.uint8)
    label = (image > 127).astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        forest, seen = fit_forest([image], [label], threads=2, seed=0, max_pixels=10_000, trees=4)
        warnings.resetwarnings()
        pred = predict_forest(forest, image)
    assert seen == 256 and pred.shape == image.shape
    assert not [w for w in caught if "sklearn.utils.parallel.delayed" in str(w.message)]


@pytest.mark.data
def test_camvid_script_tiny_and_resumable(camvid_dir: Path, tmp_path: Path) -> None:
    common = ["--data", str(camvid_dir.parent), "--device", "cpu", "--limit", "3", "--epochs", "2", "--crop", "64",
              "--batch-size", "2", "--val-every", "1", "--threads", "1", "-o", str(tmp_path / "run")]
    first = train_camvid.main([*common, "--minutes", "0.00001"])
    assert first["status"] == "stopped" and first["steps"] == 1
    second = train_camvid.main([*common, "--resume", "--json", str(tmp_path / "r.json")])
    assert second["status"] == "finished" and second["steps"] == 3
    assert second["best_val_miou"] is not None and len(second["per_class_iou"]) == 11
    assert second["wall_s_total"] >= first["wall_s_total"]
    assert json.loads((tmp_path / "r.json").read_text())["network"] == "fastscnn"


def test_throughput_script_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    rows = train_throughput.main(["--device", "cpu", "--nets", "fastscnn", "--steps", "2", "--warmup", "1",
                                  "--crop", "64", "--batch-size", "2", "--images", "2", "--image-size", "80x96",
                                  "--threads", "1"])
    assert rows[0]["images_per_s"] > 0 and rows[0]["steps_timed"] == 2
    assert "| fastscnn | cpu |" in capsys.readouterr().out
