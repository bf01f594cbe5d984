"""The one import loop every format fills in (``formats.base.import_each``): match, claim, make, check, store."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from segstudio.core.formats import base
from segstudio.core.formats.base import FormatError, ImportOptions, import_each
from segstudio.core.project import Project
from tests.core.format_helpers import CLASSES, IMAGES, image_folder

FORMATS_DIR = Path(base.__file__).parent


def test_the_loop_reports_every_kind_of_failure_and_stores_the_rest(tmp_path: Path) -> None:
    project = Project.create(image_folder(tmp_path / "p"), classes=CLASSES, recursive=True)

    def to_mask(entry: object, item: str, shape: tuple[int, int]) -> np.ndarray:
        if item == "bad":
            raise FormatError("no polygons in it")
        if item == "small":
            return np.zeros((shape[0] - 1, shape[1]), np.uint8)
        return np.full(shape, 1, np.uint8)

    items = [("img0.json", "good"), ("nowhere.json", "good"), ("img0.txt", "good"), ("sub/img1.json", "bad"),
             ("twin.png.json", "small")]
    report = import_each(project, items, to_mask, ImportOptions())
    assert report.imported == ["img0.png"]
    assert report.unmatched == ["nowhere.json"]
    errors = dict(report.errors)
    assert "img0.png" in errors["img0.txt"]  # the second annotation for one image names the first
    assert errors["sub/img1.json"] == "no polygons in it"
    assert "the mask is" in errors["twin.png.json"]
    assert (project.load_label("img0.png") == 1).all() and project.load_label("sub/img1.jpg") is None
    assert set(IMAGES) >= set(report.imported)


# binary masks with one folder per class compose several files into one image's mask: a loop of its own
OWN_LOOP = {"binary.py"}


def test_no_format_writes_its_own_loop() -> None:
    """Only base.py claims images and stores them; the formats fill in import_each (or import_mask_files)."""
    for path in sorted(FORMATS_DIR.glob("*.py")):
        if path.name == "base.py" or path.name in OWN_LOOP:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not {"Claims", "claim", "store"} & used, f"{path.name} repeats the import loop; use import_each"
