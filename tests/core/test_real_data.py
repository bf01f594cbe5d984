"""The formats and metrics on the real ISBI and CamVid data (skipped without SEGSTUDIO_DATA, failed in CI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from segstudio import cli
from segstudio.core.classes import ClassTable
from segstudio.core.formats import ExportOptions, ImportOptions, get_format
from segstudio.core.image_io import read_image, read_mask
from segstudio.core.masks import parse_value_map
from segstudio.core.metrics import SegMetrics
from segstudio.core.project import Project

# pycocotools passes copy=False to numpy 2 through an old __array__; harmless, and not ours to fix.
PYCOCOTOOLS_NUMPY2 = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
pytestmark = [pytest.mark.data, PYCOCOTOOLS_NUMPY2]


def test_isbi_import_through_the_cli(isbi_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "image"
    shutil.copytree(isbi_dir / "image", images)
    code = cli.main(["import", "binary", str(isbi_dir / "label"), str(images), "--classes", "membrane,cell",
                     "--map", "0=membrane,255=cell"])
    assert code == 0, capsys.readouterr().err
    project = Project.open(images)
    assert len(project.images) == 20
    metrics = SegMetrics(2)
    for e in project.images:
        truth = (read_mask(isbi_dir / "label" / e.name) == 255).astype(np.uint8)
        label = project.load_label(e)
        assert label is not None
        np.testing.assert_array_equal(label, truth)
        assert read_image(project.image_path(e)).data.shape == (512, 512, 1)
        metrics.update(label, truth)
    assert metrics.miou == 1.0 and metrics.confusion.sum() == 20 * 512 * 512
    # Membrane is the minority class, as in the published data set.
    assert 0.1 < metrics.confusion[0, 0] / metrics.confusion.sum() < 0.4


def test_camvid_index_import_voc_and_coco_round_trips(camvid_dir: Path, tmp_path: Path) -> None:
    names = sorted(p.name for p in (camvid_dir / "train").iterdir())[:6]
    root = tmp_path / "camvid"
    root.mkdir()
    for n in names:
        shutil.copy(camvid_dir / "train" / n, root / n)
    project = Project.create(root, classes=ClassTable.camvid())
    vmap = parse_value_map(["11=void"], project.classes)
    report = get_format("index").import_project(project, camvid_dir / "trainannot", ImportOptions(value_map=vmap))
    assert sorted(report.imported) == names and not report.errors
    assert len(report.unmatched) == len(list((camvid_dir / "trainannot").iterdir())) - len(names)
    truths = {}
    for n in names:
        annot = read_mask(camvid_dir / "trainannot" / n)
        truths[n] = np.where(annot == 11, 255, annot).astype(np.uint8)
        np.testing.assert_array_equal(project.load_label(n), truths[n])
    project.save()

    # VOC palette PNGs show the CamVid colours and come back unchanged.
    get_format("voc").export_project(project, tmp_path / "voc", ExportOptions())
    with Image.open(tmp_path / "voc" / names[0]) as im:
        rgb = np.asarray(im.convert("RGB"))
    road = truths[names[0]] == 3
    assert road.any() and (rgb[road] == (128, 64, 128)).all()
    for fmt, out in (("voc", tmp_path / "voc"), ("coco", tmp_path / "c.json")):
        if fmt == "coco":
            get_format("coco").export_project(project, out, ExportOptions())
        target = Project.create(tmp_path / f"copy-{fmt}", images=None, classes=ClassTable.camvid())
        for n in names:
            shutil.copy(root / n, target.root / n)
        target.refresh()
        get_format(fmt).import_project(target, out, ImportOptions())
        for n in names:
            np.testing.assert_array_equal(target.load_label(n), truths[n])

    # COCO polygons of real street scenes: pycocotools redraws nearly every labelled pixel.
    get_format("coco").export_project(project, tmp_path / "poly.json", ExportOptions(polygons=True))
    coco = COCO(str(tmp_path / "poly.json"))
    for img in coco.loadImgs(coco.getImgIds()):
        truth = truths[img["file_name"]]
        rebuilt = np.full(truth.shape, 255, np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
            rebuilt[coco.annToMask(ann).astype(bool)] = ann["category_id"] - 1
        labelled = truth != 255
        agreement = (rebuilt[labelled] == truth[labelled]).mean()
        assert agreement > 0.999, (img["file_name"], agreement)
