"""Index PNG, VOC palette PNG and binary masks: lossless round trips, value maps, bad inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from segstudio.core.classes import ClassTable
from segstudio.core.formats import FORMATS, ExportOptions, FormatError, ImportOptions, binary, get_format, voc
from segstudio.core.image_io import read_mask
from segstudio.core.masks import MaskError, apply_value_map, parse_value_map
from segstudio.core.project import Project
from tests.core.format_helpers import CLASSES, IMAGES, blob_mask, fresh_copy, image_folder, labelled_project


def _round_trip(fmt: str, tmp_path: Path, unlabelled: float = 0.0, classes: ClassTable = CLASSES,
                import_options: ImportOptions | None = None) -> tuple[dict[str, np.ndarray], Project, Path]:
    project, masks = labelled_project(tmp_path / "a", unlabelled, classes)
    out = tmp_path / "export"
    report = get_format(fmt).export_project(project, out, ExportOptions())
    assert not report.errors and report.images == len(IMAGES)
    target = fresh_copy(project, tmp_path / "b")
    imported = get_format(fmt).import_project(target, out, import_options or ImportOptions())
    assert not imported.errors, imported.summary()
    assert sorted(imported.imported) == sorted(IMAGES)
    return masks, target, out


def test_every_format_is_registered() -> None:
    assert list(FORMATS) == ["index", "voc", "binary", "coco", "labelme", "yolo"]
    with pytest.raises(KeyError, match="formats: index, voc"):
        get_format("tiff-stack")


# ------------------------------------------------------------------ index PNG


def test_index_png_round_trip_is_lossless(tmp_path: Path) -> None:
    masks, target, out = _round_trip("index", tmp_path, unlabelled=0.25)
    # Exported names follow the label names: sub-folders mirrored, stem collisions kept apart.
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "img0.png", "sub/img1.png", "twin.png", "twin.png.png"]
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)
        assert target.entry(rel).status == "corrected"


def test_index_png_round_trip_with_uint16(tmp_path: Path) -> None:
    classes = ClassTable.from_names([f"c{i}" for i in range(300)])
    project, _ = labelled_project(tmp_path / "a", classes=ClassTable.from_names(["x", "y"]))
    project.set_classes(classes)
    m = np.full((40, 60), 65535, np.uint16)
    m[5:20, 5:50] = 299
    m[25:, :] = 7
    project.save_label("img0.png", m)
    get_format("index").export_project(project, tmp_path / "out", ExportOptions())
    assert read_mask(tmp_path / "out" / "img0.png").dtype == np.uint16
    target = fresh_copy(project, tmp_path / "b")
    get_format("index").import_project(target, tmp_path / "out", ImportOptions())
    np.testing.assert_array_equal(target.load_label("img0.png"), m)


def test_isbi_style_mask_with_a_value_map(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=ClassTable.from_names(["membrane", "cell"]), recursive=True)
    src = tmp_path / "masks"
    (src / "sub").mkdir(parents=True)
    membrane = np.zeros((40, 60), np.uint8)
    membrane[:, ::7] = 1
    foreign = np.where(membrane == 1, 0, 255).astype(np.uint8)  # ISBI: 0 = membrane, 255 = cell
    cv2.imwrite(str(src / "img0.png"), foreign)
    vmap = parse_value_map(["0=membrane,255=cell"], project.classes)
    report = get_format("index").import_project(project, src, ImportOptions(value_map=vmap))
    assert report.imported == ["img0.png"], report.summary()
    np.testing.assert_array_equal(project.load_label("img0.png"), 1 - membrane)


def test_unmapped_values_are_listed_or_made_unlabelled(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=CLASSES, recursive=True)
    src = tmp_path / "masks"
    src.mkdir()
    camvid_like = np.full((40, 60), 11, np.uint8)  # 11 = void in CamVid
    camvid_like[:10] = 2
    cv2.imwrite(str(src / "img0.png"), camvid_like)
    report = get_format("index").import_project(project, src, ImportOptions())
    assert report.imported == [] and "11 (1800 px)" in report.errors[0][1] and "--map" in report.errors[0][1]
    vmap = parse_value_map(["11=void"], project.classes)
    report = get_format("index").import_project(project, src, ImportOptions(value_map=vmap))
    m = project.load_label("img0.png")
    assert m is not None and (m[:10] == 2).all() and (m[10:] == 255).all()
    report = get_format("index").import_project(project, src, ImportOptions(unmapped="unlabelled"))
    assert report.skipped and "already has a label" in report.skipped[0][1]


def test_value_map_parsing() -> None:
    assert parse_value_map(["0=membrane", "255=cell,7=ignore"], ClassTable.from_names(["membrane", "cell"])) == {
        0: 0, 255: 1, 7: None}
    with pytest.raises(KeyError, match="classes are membrane"):
        parse_value_map(["3=nucleus"], ClassTable.from_names(["membrane"]))
    with pytest.raises(ValueError, match="VALUE=CLASS"):
        parse_value_map(["membrane"], ClassTable.from_names(["membrane"]))
    with pytest.raises(ValueError, match="not an integer"):
        parse_value_map(["x=membrane"], ClassTable.from_names(["membrane"]))
    with pytest.raises(MaskError, match="not mapped"):
        apply_value_map(np.array([[40000]], np.int32), 3)
    np.testing.assert_array_equal(apply_value_map(np.array([[40000, 1]], np.int32), 3, {40000: 2}), [[2, 1]])


def test_index_tiff_and_problems_are_reported_per_file(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=CLASSES, recursive=True)
    src = tmp_path / "masks"
    (src / "sub").mkdir(parents=True)
    good = blob_mask((48, 64), 3)
    tifffile.imwrite(src / "sub" / "img1.tif", good.astype(np.uint16))
    cv2.imwrite(str(src / "img0.png"), np.zeros((10, 10), np.uint8))  # wrong size
    (src / "twin.png").write_text("not a png")  # corrupt
    cv2.imwrite(str(src / "stranger.png"), np.zeros((40, 60), np.uint8))  # no such image
    tifffile.imwrite(src / "float.tif", np.zeros((4, 4), np.float32))
    report = get_format("index").import_project(project, src, ImportOptions())
    assert report.imported == ["sub/img1.jpg"]
    np.testing.assert_array_equal(project.load_label("sub/img1.jpg"), good)
    errors = dict(report.errors)
    assert "10×10" in errors["img0.png"] and "60×40" in errors["img0.png"]
    assert "PNG" in errors["twin.png"]
    assert set(report.unmatched) == {"stranger.png", "float.tif"}
    summary = report.summary()
    assert "imported 1 labels" in summary and "2 failed" in summary


def test_import_as_predictions_and_overwrite(tmp_path: Path) -> None:
    project, masks = labelled_project(tmp_path / "a")
    get_format("index").export_project(project, tmp_path / "out", ExportOptions())
    target = fresh_copy(project, tmp_path / "b")
    get_format("index").import_project(target, tmp_path / "out", ImportOptions(as_predictions=True))
    assert all(e.status == "predicted" for e in target.images)
    assert target.load_label("img0.png") is None
    np.testing.assert_array_equal(target.load_prediction("img0.png"), masks["img0.png"])
    target.save_label("img0.png", np.zeros((40, 60), np.uint8))
    report = get_format("index").import_project(target, tmp_path / "out", ImportOptions())
    assert "img0.png" in [p for p, _ in report.skipped]
    np.testing.assert_array_equal(target.load_label("img0.png"), np.zeros((40, 60), np.uint8))
    get_format("index").import_project(target, tmp_path / "out", ImportOptions(overwrite=True))
    np.testing.assert_array_equal(target.load_label("img0.png"), masks["img0.png"])


def test_export_refuses_the_projects_own_folders(tmp_path: Path) -> None:
    project, _ = labelled_project(tmp_path / "a")
    with pytest.raises(FormatError, match="own labels"):
        get_format("index").export_project(project, project.root / "labels", ExportOptions())


def test_export_with_predictions(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=CLASSES, recursive=True)
    project.save_prediction("img0.png", blob_mask((40, 60), 1))
    assert get_format("index").export_project(project, tmp_path / "o1", ExportOptions()).images == 0
    report = get_format("index").export_project(project, tmp_path / "o2", ExportOptions(include_predictions=True))
    assert report.images == 1
    np.testing.assert_array_equal(read_mask(tmp_path / "o2" / "img0.png"), blob_mask((40, 60), 1))


# ------------------------------------------------------------------------ VOC


def test_voc_round_trip_is_lossless_and_shows_class_colours(tmp_path: Path) -> None:
    masks, target, out = _round_trip("voc", tmp_path, unlabelled=0.25)
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)
    with Image.open(out / "img0.png") as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), masks["img0.png"])
        rgb = np.asarray(im.convert("RGB"))
    m = masks["img0.png"]
    assert tuple(rgb[m == 1][0]) == CLASSES[1].colour
    assert tuple(rgb[m == 255][0]) == voc.VOID_COLOUR


def test_voc_reads_rgb_colour_masks(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=CLASSES, recursive=True)
    m = blob_mask((40, 60), 2, unlabelled=0.2)
    lut = CLASSES.lut_rgb()
    src = tmp_path / "colour"
    src.mkdir()
    Image.fromarray(lut[m]).save(src / "img0.png")
    bad = lut[m].copy()
    bad[0, 0] = (1, 2, 3)
    Image.fromarray(bad).save(src / "twin.png")
    report = get_format("voc").import_project(project, src, ImportOptions())
    assert report.imported == ["img0.png"]
    np.testing.assert_array_equal(project.load_label("img0.png"), m)
    assert "(1, 2, 3)" in dict(report.errors)["twin.png"]


def test_voc_refuses_more_than_254_classes(tmp_path: Path) -> None:
    project, _ = labelled_project(tmp_path / "a")
    project.set_classes(ClassTable.from_names([f"c{i}" for i in range(260)]))
    with pytest.raises(FormatError, match="254"):
        get_format("voc").export_project(project, tmp_path / "out", ExportOptions())


# --------------------------------------------------------------------- binary


def test_binary_per_class_round_trip(tmp_path: Path) -> None:
    masks, target, out = _round_trip("binary", tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["background", "cell", "nucleus"]
    on = read_mask(out / "cell" / "sub" / "img1.png")
    assert set(np.unique(on)) <= {0, 255}
    for rel, m in masks.items():
        np.testing.assert_array_equal(target.load_label(rel), m)


def test_binary_export_loses_only_unlabelled(tmp_path: Path) -> None:
    project, masks = labelled_project(tmp_path / "a", unlabelled=0.25)
    report = get_format("binary").export_project(project, tmp_path / "out", ExportOptions(exclude=frozenset({0})))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cell", "nucleus"]
    assert any("not labelled" in n for n in report.notes)
    target = fresh_copy(project, tmp_path / "b")
    get_format("binary").import_project(target, tmp_path / "out", ImportOptions(background=0))
    m = masks["img0.png"].copy()
    m[m == 255] = 0  # not labelled and background both come back as background
    np.testing.assert_array_equal(target.load_label("img0.png"), m)


def test_binary_single_folder_needs_a_map_and_tolerates_jpeg_noise(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "p")
    project = Project.create(root, classes=ClassTable.from_names(["membrane", "cell"]), recursive=True)
    src = tmp_path / "masks"
    src.mkdir()
    cell = np.zeros((40, 60), bool)
    cell[8:32, 10:50] = True
    Image.fromarray(cell.astype(np.uint8)).save(src / "img0.png")  # a 0/1 mask
    cell1 = np.zeros((48, 64), bool)
    cell1[5:40, 20:30] = True
    (src / "sub").mkdir()
    Image.fromarray(np.where(cell1, 255, 0).astype(np.uint8)).save(src / "sub" / "img1.jpg", quality=70)
    with pytest.raises(FormatError, match="value map"):
        get_format("binary").import_project(project, src, ImportOptions())
    vmap = parse_value_map(["0=membrane,255=cell"], project.classes)
    report = get_format("binary").import_project(project, src, ImportOptions(value_map=vmap))
    assert sorted(report.imported) == ["img0.png", "sub/img1.jpg"]
    np.testing.assert_array_equal(project.load_label("img0.png"), cell.astype(np.uint8))
    np.testing.assert_array_equal(project.load_label("sub/img1.jpg"), cell1.astype(np.uint8))


def test_binarise() -> None:
    assert binary.binarise(np.array([[0, 1]], np.uint8)).tolist() == [[False, True]]
    assert binary.binarise(np.array([[3, 200]], np.uint8)).tolist() == [[False, True]]
    assert binary.binarise(np.array([[100, 40000]], np.uint16)).tolist() == [[False, True]]
    assert binary.binarise(np.zeros((1, 2, 3), np.uint8)).shape == (1, 2)


def test_progress_and_cancel(tmp_path: Path) -> None:
    from segstudio.core.tasks import Cancelled, CancelToken, Progress

    project, _ = labelled_project(tmp_path / "a")
    seen: list[tuple[int, int]] = []

    def record(p: Progress) -> None:
        seen.append((p.done, p.total))

    get_format("index").export_project(project, tmp_path / "out", ExportOptions(), progress=record)
    assert seen == [(i, len(IMAGES)) for i in range(1, len(IMAGES) + 1)]
    target = fresh_copy(project, tmp_path / "b")
    token = CancelToken()

    def cancel_after_two(p: Progress) -> None:
        if p.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        get_format("index").import_project(target, tmp_path / "out", ImportOptions(), cancel=token,
                                           progress=cancel_after_two)
    stored = [e.path for e in target.images if target.label_path(e).exists()]
    assert len(stored) == 2  # what was imported before the cancel stays, each label whole
