"""Synthetic projects for the format tests: a few images (sub-folder, stem collision) with blob labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segstudio.core.classes import ClassTable
from segstudio.core.project import Project

CLASSES = ClassTable.from_names(["background", "cell", "nucleus"])

IMAGES = {"img0.png": (40, 60), "sub/img1.jpg": (48, 64), "twin.jpg": (40, 60), "twin.png": (32, 40)}
"""Relative path → (height, width). twin.jpg and twin.png share a stem on purpose."""


def blob_mask(shape: tuple[int, int], seed: int, k: int = 3, unlabelled: float = 0.0) -> np.ndarray:
    """Smooth random regions of ``k`` classes (no pixel noise), optionally with a not-labelled band."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 4)
    mask = np.digitize(noise, np.quantile(noise, np.linspace(0, 1, k + 1)[1:-1])).astype(np.uint8)
    if unlabelled:
        mask[: int(shape[0] * unlabelled)] = 255
    return mask


def image_folder(root: Path) -> Path:
    for i, (rel, (h, w)) in enumerate(IMAGES.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return root


def labelled_project(root: Path, unlabelled: float = 0.0, classes: ClassTable = CLASSES
                     ) -> tuple[Project, dict[str, np.ndarray]]:
    """A project over :data:`IMAGES` with a blob label on each image."""
    image_folder(root)
    project = Project.create(root, classes=classes, recursive=True)
    masks = {}
    for i, (rel, shape) in enumerate(IMAGES.items()):
        masks[rel] = blob_mask(shape, seed=10 + i, k=len(classes), unlabelled=unlabelled)
        project.save_label(rel, masks[rel])
    project.save()
    return project, masks


def fresh_copy(project: Project, root: Path, classes: ClassTable | None = None) -> Project:
    """A new project over copies of the same images, without labels."""
    for e in project.images:
        dest = root / e.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project.image_path(e), dest)
    return Project.create(root, classes=classes if classes is not None else project.classes, recursive=True)
