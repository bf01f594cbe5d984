"""COCO (RLE and polygons), labelme and YOLO-seg: round trips, pycocotools reading our output, foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from segstudio.core.classes import ClassTable
from segstudio.core.formats import ExportOptions, FormatError, ImportOptions, get_format, rle
from segstudio.core.formats.coco import annotations_to_mask, mask_to_annotations
from segstudio.core.formats.labelme import document_to_mask, mask_to_document
from segstudio.core.formats.polygons import mask_to_shapes, shapes_to_mask
from segstudio.core.formats.yolo import mask_to_text, read_names, text_to_mask
from segstudio.core.project import Project
from tests.core.format_helpers import CLASSES, IMAGES, blob_mask, fresh_copy, image_folder, labelled_project

# pycocotools passes copy=False to numpy 2 through an old __array__; harmless, and not ours to fix.
PYCOCOTOOLS_NUMPY2 = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
pytestmark = PYCOCOTOOLS_NUMPY2


def _export_import(fmt: str, tmp_path: Path, export: ExportOptions, imp: ImportOptions, unlabelled: float = 0.0
                   ) -> tuple[dict[str, np.ndarray], Project, Path]:
    project, masks = labelled_project(tmp_path / "a", unlabelled)
    out = tmp_path / "export"
    report = get_format(fmt).export_project(project, out, export)
    assert not report.errors and report.images == len(IMAGES)
    target = fresh_copy(project, tmp_path / "b")
    imported = get_format(fmt).import_project(target, out, imp)
    assert not imported.errors, imported.summary()
    assert sorted(imported.imported) == sorted(IMAGES)
    return masks, target, out


# ------------------------------------------------------------------------- RLE


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 60), (257, 130)])
@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 1.0])
def test_rle_matches_pycocotools(shape: tuple[int, int], density: float) -> None:
    m = np.random.default_rng(0).random(shape) < density
    ours = rle.encode(m)
    theirs = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    assert ours["counts"] == theirs["counts"].decode("ascii") and ours["size"] == list(shape)
    np.testing.assert_array_equal(rle.decode(ours), m)
    assert rle.area(ours) == int(m.sum()) == int(coco_mask.area(theirs))


def test_rle_plain_counts_and_errors() -> None:
    m = np.array([[0, 1], [1, 1]], bool)
    np.testing.assert_array_equal(rle.decode({"size": [2, 2], "counts": [1, 3]}), m)
    with pytest.raises(rle.RleError, match="add up"):
        rle.decode({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(rle.RleError, match="cannot appear"):
        rle.decode({"size": [2, 2], "counts": "a b"})
    with pytest.raises(rle.RleError, match="size"):
        rle.decode({"counts": [4]})


# ---------------------------------------------------------------------- shapes


def test_polygons_rebuild_blob_masks_exactly() -> None:
    for seed in range(10):
        m = blob_mask((60, 80), seed, k=4)
        np.testing.assert_array_equal(shapes_to_mask(mask_to_shapes(m, range(4)), m.shape, 255, np.uint8), m)


def test_region_inside_a_hole_survives_but_an_unlabelled_hole_is_filled() -> None:
    m = np.zeros((40, 40), np.uint8)
    m[5:35, 5:35] = 1  # a square of class 1 …
    m[15:25, 15:25] = 2  # … around a square of class 2
    m[18:22, 18:22] = 1  # … around an island of class 1
    shapes = mask_to_shapes(m, [1, 2])
    assert [s.class_index for s in shapes] == [1, 2, 1]  # largest first
    np.testing.assert_array_equal(shapes_to_mask(shapes, m.shape, 0, np.uint8), m)
    m[15:25, 15:25] = 255
    back = shapes_to_mask(mask_to_shapes(m, [1]), m.shape, 255, np.uint8)
    assert (back[15:25, 15:25] == 1).all()


# ------------------------------------------------------------------------ COCO


def test_coco_rle_round_trip_is_lossless(tmp_path: Path) -> None:
    masks, target, _ = _export_import("coco", tmp_path, ExportOptions(), ImportOptions(), unlabelled=0.3)
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)


def test_pycocotools_reads_our_rle_export(tmp_path: Path) -> None:
    project, masks = labelled_project(tmp_path / "a", unlabelled=0.3)
    out = tmp_path / "out.json"
    get_format("coco").export_project(project, out, ExportOptions())
    coco = COCO(str(out))
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(CLASSES.names)
    for img in coco.loadImgs(coco.getImgIds()):
        m = masks[img["file_name"]]
        assert (img["height"], img["width"]) == m.shape
        rebuilt = np.full(m.shape, 255, np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
            region = coco.annToMask(ann).astype(bool)
            assert ann["area"] == region.sum()
            rebuilt[region] = ann["category_id"] - 1
        np.testing.assert_array_equal(rebuilt, m)


def test_pycocotools_reads_our_polygon_export(tmp_path: Path) -> None:
    project, masks = labelled_project(tmp_path / "a")
    out = tmp_path / "poly"
    get_format("coco").export_project(project, out, ExportOptions(polygons=True))
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES.names
    for img in coco.loadImgs(coco.getImgIds()):
        m = masks[img["file_name"]]
        rebuilt = np.full(m.shape, 255, np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):  # file order: enclosing regions first
            region = coco.annToMask(ann).astype(bool)
            assert ann["area"] == region.sum()
            rebuilt[region] = ann["category_id"] - 1
        np.testing.assert_array_equal(rebuilt, m)
    # Our own reader rebuilds them exactly too.
    target = fresh_copy(project, tmp_path / "b")
    get_format("coco").import_project(target, out, ImportOptions())
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)


def test_coco_foreign_file_with_polygons_plain_rle_and_crowds(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=ClassTable.from_names(["background", "car"]), recursive=True)
    crowd = np.zeros((40, 60), bool)
    crowd[30:, :] = True
    plain = coco_mask.frPyObjects({"size": [40, 60], "counts": rle.runs_of(crowd).tolist()}, 40, 60)
    doc = {
        "images": [{"id": 7, "file_name": "data/img0.png", "height": 40, "width": 60},
                   {"id": 8, "file_name": "missing.png", "height": 1, "width": 1},
                   {"id": 9, "file_name": "twin.png", "height": 99, "width": 99}],
        "categories": [{"id": 3, "name": "car"}, {"id": 5, "name": "Person"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
             "segmentation": [[10.0, 10.0, 30.0, 10.0, 30.0, 20.0, 10.0, 20.0]]},
            {"id": 2, "image_id": 7, "category_id": 5, "iscrowd": 1,
             "segmentation": {"size": [40, 60], "counts": rle.runs_of(crowd).tolist()}},
            {"id": 3, "image_id": 9, "category_id": 3, "segmentation": [[0, 0, 5, 0, 5, 5]]},
        ],
    }
    assert coco_mask.area(plain) == crowd.sum()
    (tmp_path / "foreign.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="'Person' are not in the project"):
        get_format("coco").import_project(project, tmp_path / "foreign.json", ImportOptions())
    report = get_format("coco").import_project(project, tmp_path / "foreign.json",
                                               ImportOptions(add_classes=True, background=0))
    assert project.classes.names == ["background", "car", "Person"] and report.added_classes == ["Person"]
    assert report.imported == ["img0.png"] and report.unmatched == ["missing.png"]
    assert "99×99" in dict(report.errors)["twin.png"]
    m = project.load_label("img0.png")
    assert m is not None
    assert (m[10:20, 10:30] == 1).all() and m[9, 9] == 0 and (m[30:] == 2).all() and m[25, 5] == 0


def test_coco_bad_files(tmp_path: Path) -> None:
    project, _ = labelled_project(tmp_path / "a")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        get_format("coco").import_project(project, tmp_path / "x.json", ImportOptions())
    (tmp_path / "y.json").write_text('{"images": []}')
    with pytest.raises(FormatError, match="not a COCO file"):
        get_format("coco").import_project(project, tmp_path / "y.json", ImportOptions())
    with pytest.raises(FormatError, match="unknown category_id"):
        annotations_to_mask([{"id": 1, "category_id": 4, "segmentation": []}], (4, 4), {1: 0}, 255, np.uint8)
    with pytest.raises(FormatError, match="flat list"):
        annotations_to_mask([{"id": 1, "category_id": 1, "segmentation": [[1, 2, 3]]}], (4, 4), {1: 0}, 255,
                            np.uint8)
    with pytest.raises(FormatError, match="the image 4×4"):
        annotations_to_mask([{"id": 1, "category_id": 1, "segmentation": rle.encode(np.zeros((5, 5), bool))}],
                            (4, 4), {1: 0}, 255, np.uint8)


def test_mask_to_annotations_ids_and_boxes() -> None:
    m = np.full((10, 10), 255, np.uint8)
    m[2:5, 3:9] = 1
    anns = mask_to_annotations(m, 2, image_id=4, first_id=11)
    assert len(anns) == 1 and anns[0]["id"] == 11 and anns[0]["image_id"] == 4 and anns[0]["category_id"] == 2
    assert anns[0]["bbox"] == [3.0, 2.0, 6.0, 3.0] and anns[0]["area"] == 18


def test_two_coco_images_for_one_project_image_are_reported(tmp_path: Path) -> None:
    project, _ = labelled_project(tmp_path / "a")
    target = fresh_copy(project, tmp_path / "b")
    doc = {"images": [{"id": 1, "file_name": "img0.png"}, {"id": 2, "file_name": "./img0.png"}],
           "categories": [{"id": 1, "name": "cell"}],
           "annotations": [{"id": 1, "image_id": i, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]]}
                           for i in (1, 2)]}
    (tmp_path / "dup.json").write_text(json.dumps(doc))
    report = get_format("coco").import_project(target, tmp_path / "dup.json", ImportOptions())
    assert report.imported == ["img0.png"] and "also belongs to img0.png" in report.errors[0][1]


# --------------------------------------------------------------------- labelme


def test_labelme_round_trip(tmp_path: Path) -> None:
    masks, target, out = _export_import("labelme", tmp_path, ExportOptions(), ImportOptions())
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)
    doc = json.loads((out / "sub" / "img1.json").read_text())
    assert doc["imagePath"] == "../../a/sub/img1.jpg" and doc["imageData"] is None
    assert (doc["imageHeight"], doc["imageWidth"]) == (48, 64)
    assert {s["shape_type"] for s in doc["shapes"]} == {"polygon"}
    assert {s["label"] for s in doc["shapes"]} == set(CLASSES.names)


def test_labelme_foreign_shapes(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=ClassTable.from_names(["background", "dog"]), recursive=True)
    src = tmp_path / "lm"
    src.mkdir()
    doc = {"version": "5.2.1", "imagePath": "../p/img0.png", "imageHeight": 40, "imageWidth": 60, "shapes": [
        {"label": "dog", "shape_type": "rectangle", "points": [[30, 20], [10, 5]]},
        {"label": "cat", "shape_type": "circle", "points": [[45, 25], [45, 30]]},
        {"label": "dog", "shape_type": "line", "points": [[0, 0], [10, 10]]},
        {"label": "dog", "shape_type": "point", "points": [[3, 3]]},
    ]}
    (src / "annotation_of_dog.json").write_text(json.dumps(doc))  # matched through imagePath
    (src / "broken.json").write_text("{")
    report = get_format("labelme").import_project(project, src, ImportOptions(add_classes=True))
    assert report.imported == ["img0.png"] and report.added_classes == ["cat"]
    assert "broken.json" in dict(report.errors)
    assert any("skipped 1 line" in n for n in report.notes) and any("skipped 1 point" in n for n in report.notes)
    m = project.load_label("img0.png")
    assert m is not None
    assert (m[5:21, 10:31] == 1).all() and m[4, 10] == 255 and m[5, 31] == 255
    assert m[25, 45] == 2 and m[25, 49] == 2 and m[25, 51] == 255


def test_labelme_document_helpers() -> None:
    m = blob_mask((30, 40), 1)
    doc = mask_to_document(m, CLASSES, "x.png", exclude=[0])
    assert {s["label"] for s in doc["shapes"]} == {"cell", "nucleus"}
    back, notes = document_to_mask(doc, (30, 40), {"cell": 1, "nucleus": 2}, 0, np.uint8)
    np.testing.assert_array_equal(back, m) and not notes  # type: ignore[func-returns-value]
    with pytest.raises(FormatError, match="not \\[x, y\\] pairs"):
        document_to_mask({"shapes": [{"label": "cell", "points": "abc"}]}, (4, 4), {"cell": 1}, 0, np.uint8)


# ------------------------------------------------------------------------ YOLO


def test_yolo_round_trip(tmp_path: Path) -> None:
    masks, target, out = _export_import("yolo", tmp_path, ExportOptions(), ImportOptions())
    assert (out / "classes.txt").read_text() == "background\ncell\nnucleus\n"
    assert read_names(out) == CLASSES.names
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)
    first = (out / "img0.txt").read_text().splitlines()[0].split()
    assert first[0] in ("0", "1", "2") and all(0.0 <= float(v) < 1.0 for v in first[1:])


def test_yolo_without_background_class(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "a")
    project = Project.create(root, classes=CLASSES, recursive=True)
    m = np.zeros((40, 60), np.uint8)
    m[5:15, 5:25] = 1
    m[20:35, 30:55] = 2
    m[22:30, 8:12] = 1
    project.save_label("img0.png", m)
    get_format("yolo").export_project(project, tmp_path / "out", ExportOptions(exclude=frozenset({0})))
    assert (tmp_path / "out" / "data.yaml").read_text() == 'nc: 2\nnames:\n  0: "cell"\n  1: "nucleus"\n'
    assert len((tmp_path / "out" / "img0.txt").read_text().splitlines()) == 3
    target = fresh_copy(project, tmp_path / "b")
    get_format("yolo").import_project(target, tmp_path / "out", ImportOptions(background=0))
    np.testing.assert_array_equal(target.load_label("img0.png"), m)


def test_yolo_names_from_data_yaml_and_bad_lines(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=ClassTable.from_names(["bg", "person", "car"]), recursive=True)
    src = tmp_path / "labels" / "train"
    src.mkdir(parents=True)
    (tmp_path / "labels" / "data.yaml").write_text("path: .\nnames: ['car', \"person\"]\n")
    (src / "img0.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n1 0.6 0.6 0.9 0.6 0.9 0.9\n")
    (src / "twin.txt").write_text("0 0.1 0.2 0.3\n")
    report = get_format("yolo").import_project(project, src, ImportOptions())
    assert report.imported == ["img0.png"]
    assert "pairs" in dict(report.errors)["twin.txt"]
    m = project.load_label("img0.png")
    assert m is not None and m[10, 15] == 2 and m[30, 50] == 1 and m[0, 0] == 255
    assert read_names(src) == ["car", "person"]
    (tmp_path / "labels" / "data.yaml").write_text("names:\n  0: car\n  1: 'bus stop'\n")
    assert read_names(src) == ["car", "bus stop"]


def test_yolo_text_helpers() -> None:
    m = blob_mask((30, 40), 2)
    text = mask_to_text(m, {0: 0, 1: 1, 2: 2})
    np.testing.assert_array_equal(text_to_mask(text, (30, 40), {0: 0, 1: 1, 2: 2}, 255, np.uint8), m)
    with pytest.raises(FormatError, match="class id 5"):
        text_to_mask("5 0 0 1 0 1 1", (4, 4), {0: 0}, 255, np.uint8)
    with pytest.raises(FormatError, match="line 2"):
        text_to_mask("0 0 0 1 0 1 1\nzero 1 1", (4, 4), {0: 0}, 255, np.uint8)


def test_polygon_formats_warn_about_holes(tmp_path: Path) -> None:
    project, _ = labelled_project(tmp_path / "a")
    for fmt in ("labelme", "yolo"):
        report = get_format(fmt).export_project(project, tmp_path / fmt, ExportOptions())
        assert any("holes" in n for n in report.notes)
