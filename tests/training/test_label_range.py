"""A label holding a value that is no class is skipped by training with the file and the reason, never an index
error in the middle of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.image_io import write_mask
from segstudio.training.data import ProjectData, load_project
from tests.training.conftest import make_project


def test_training_skips_a_label_beyond_the_classes_and_says_which_and_why(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", n=4)  # held open, as the app holds it: training opens it read-only
    bad = np.zeros((48, 64), np.uint8)
    bad[:3, :3] = 7
    write_mask(project.label_path("img2.png"), bad)
    data = load_project(ProjectData(str(project.root), val_fraction=0.0))
    assert sorted(s.name for s in [*data.train, *data.val]) == ["img0.png", "img1.png", "img3.png"]
    assert len(data.skipped) == 1
    assert data.skipped[0].startswith("img2.png: ") and "mask values 7 (9 px) are not classes" in data.skipped[0]
    assert "labels/img2.png" in data.skipped[0]
    assert all(int(s.label[s.label != 255].max()) < 2 for s in data.train)
