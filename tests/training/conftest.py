"""Synthetic data for the training tests: bright blobs on dark noise, learnable in a few steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import write_mask
from segstudio.core.project import Project
from segstudio.training.data import TrainData, make_sample, sparsify

torch.set_num_threads(1)

CLASSES = ["background", "blob"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def blob_scene(rng: np.random.Generator, h: int = 48, w: int = 64, channels: int = 3
               ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image H×W×C, label H×W): 0 = dark background, 1 = a bright rectangle."""
    image = rng.integers(0, 70, (h, w, channels), dtype=np.uint8)
    label = np.zeros((h, w), np.uint8)
    bh, bw = rng.integers(h // 4, h // 2), rng.integers(w // 4, w // 2)
    y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
    image[y:y + bh, x:x + bw] = rng.integers(150, 250, (bh, bw, channels), dtype=np.uint8)
    label[y:y + bh, x:x + bw] = 1
    return image, label


def blob_data(n: int = 4, seed: int = 0, sparse: float | None = None, channels: int = 3) -> TrainData:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        image, label = blob_scene(rng, channels=channels)
        if sparse:
            label = sparsify(label, sparse, rng)
        samples.append(make_sample(f"img{i}", image, label))
    return TrainData(ClassTable.from_names(CLASSES), samples, source=f"{n} synthetic blob images")


def write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image[:, :, ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    assert cv2.imwrite(str(path), arr)


def make_project(root: Path, n: int = 4, seed: int = 0, strokes: bool = True) -> Project:
    """A project of ``n`` blob images; labels are sparse strokes (a few rows and columns) or full masks."""
    rng = np.random.default_rng(seed)
    labels = {}
    for i in range(n):
        image, labels[f"img{i}.png"] = blob_scene(rng)
        write_png(root / f"img{i}.png", image)
    project = Project.create(root, classes=ClassTable.from_names(CLASSES))
    for e in project.images:
        label = labels[e.path]
        if strokes:
            painted = np.full_like(label, 255)
            painted[::7] = label[::7]  # a few horizontal strokes through both classes
            label = painted
        project.save_label(e, label)
    project.save()
    return project


def make_folders(root: Path, n: int = 4, seed: int = 0, binary: bool = False) -> tuple[Path, Path]:
    """images/ and masks/ folders; masks as 0/1 class indices, or 0/255 with ``binary``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, label = blob_scene(rng)
        write_png(root / "images" / f"s{i:02d}.png", image)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        write_mask(root / "masks" / f"s{i:02d}.png", (label * 255).astype(np.uint8) if binary else label)
    return root / "images", root / "masks"


@pytest.fixture
def blob_project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")
