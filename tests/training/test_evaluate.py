from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segstudio.core.project import Project
from segstudio.inference.predictor import Predictor
from segstudio.training.data import ProjectData
from segstudio.training.engine import train
from segstudio.training.evaluate import evaluate_on_corrections
from tests.training.conftest import make_project
from tests.training.test_engine import base_model, tiny_config


def test_report_per_image_and_pooled(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=3)
    model = base_model(tmp_path / "m" / "cells.safetensors")
    report = evaluate_on_corrections(model, project, backend="torch", device="cpu")
    assert [s.image for s in report.images] == ["img0.png", "img1.png", "img2.png"]
    # by hand for one image: the predictor's labels against the painted pixels only
    predictor = Predictor.from_file(model, backend="torch", device="cpu")
    from segstudio.core.image_io import read_image
    from segstudio.core.metrics import confusion_matrix, mean_iou

    label = project.load_label("img1.png")
    pred = predictor.predict(read_image(project.image_path("img1.png"))).labels
    expected = mean_iou(confusion_matrix(pred, label, 2))
    assert report.images[1].miou == pytest.approx(expected)
    assert report.images[1].labelled_pixels == int((label != 255).sum())
    assert report.miou is not None and set(report.per_class) == {"background", "blob"}
    assert report.mean_image_miou == pytest.approx(np.mean([s.miou for s in report.images]))
    assert report.to_json()["images"][0]["image"] == "img0.png"


def test_before_and_after_a_round(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=4)
    old = base_model(tmp_path / "m" / "cells.safetensors")
    before = evaluate_on_corrections(old, project, backend="torch", device="cpu")
    events = list(train(tiny_config(tmp_path, init_model=str(old), steps=60), ProjectData(str(project.root))))
    after = evaluate_on_corrections(events[-1].model_path, Project.open(project.root), backend="torch",
                                    device="cpu")
    diff = before.compare(after)
    assert diff["miou"]["after"] > diff["miou"]["before"]
    assert diff["miou"]["change"] == pytest.approx(after.miou - before.miou)
    assert [r["image"] for r in diff["images"]] == ["img0.png", "img1.png", "img2.png", "img3.png"]


def test_unreadable_images_are_listed_not_counted(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=2)
    model = base_model(tmp_path / "m" / "cells.safetensors")
    (project.root / "img0.png").write_bytes(b"broken")
    report = evaluate_on_corrections(model, project.root, backend="torch", device="cpu")
    assert report.images[0].error and report.images[0].miou is None
    assert report.images[1].miou is not None


def test_classes_must_match(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=1)
    model = base_model(tmp_path / "m" / "x.safetensors", ["a", "b"])
    with pytest.raises(ValueError, match="not the project's"):
        evaluate_on_corrections(model, project, backend="torch", device="cpu")
