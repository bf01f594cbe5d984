"""Project: a folder with segstudio.json, labels/ and predictions/; safe paths, backups, class changes."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import read_mask
from segstudio.core.masks import MaskError
from segstudio.core.project import (
    BACKUP_SUFFIX,
    LOCK_FILE,
    PROJECT_FILE,
    STAGING_DIR,
    ImageEntry,
    Project,
    ProjectError,
    ProjectFileError,
    default_classes,
    safe_relpath,
)


def _image(path: Path, h: int = 16, w: int = 24, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return path


def _mask(h: int = 16, w: int = 24, k: int = 2, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).integers(0, k, (h, w)).astype(np.uint8)
    m[0, :3] = 255
    return m


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i, name in enumerate(("b.png", "a.jpg", "c.tif")):
        _image(root / name, seed=i)
    return root


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}


def test_opening_a_plain_folder_creates_a_project_without_touching_images(folder: Path) -> None:
    before = _snapshot(folder)
    project = Project.open(folder)
    assert (folder / PROJECT_FILE).is_file()
    assert [e.path for e in project.images] == ["a.jpg", "b.png", "c.tif"]
    assert all(e.status == "unlabelled" for e in project.images)
    assert project.classes == default_classes()
    after = {k: v for k, v in _snapshot(folder).items() if k not in (PROJECT_FILE, LOCK_FILE)}
    assert after == before
    doc = json.loads((folder / PROJECT_FILE).read_text())
    assert doc["schema"] == 1 and doc["kind"] == "segstudio project"
    assert doc["images"][0] == {"path": "a.jpg", "label": "a.png", "status": "unlabelled"}
    assert doc["classes"][1]["name"] == "foreground"
    # Reopening by folder or by file gives the same project.
    for target in (folder, folder / PROJECT_FILE):
        again = Project.open(target)
        assert again.images == project.images and again.classes == project.classes


def test_open_refuses_what_is_no_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "nowhere")
    img = _image(tmp_path / "x.png")
    with pytest.raises(ProjectError, match="is a file"):
        Project.open(img)
    (tmp_path / "instances.json").write_text("{}")
    with pytest.raises(ProjectError, match="not a project file"):
        Project.open(tmp_path / "instances.json")
    assert not (tmp_path / PROJECT_FILE).exists()
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(tmp_path)
        Project.create(tmp_path)


def test_labels_and_predictions_are_kept_apart(folder: Path) -> None:
    project = Project.open(folder)
    e = project.entry("b.png")
    assert project.load_label(e) is None and project.load_prediction(e) is None
    pred = _mask(seed=1)
    project.save_prediction(e, pred)
    assert e.status == "predicted"
    assert project.prediction_path(e) == folder / "predictions" / "b.png"
    assert project.load_label(e) is None
    label = _mask(seed=2)
    project.save_label(e, label)
    assert e.status == "corrected"
    np.testing.assert_array_equal(project.load_label(e), label)
    np.testing.assert_array_equal(project.load_prediction(e), pred)
    project.save_prediction(e, _mask(seed=3))  # a new suggestion does not demote a corrected image
    assert e.status == "corrected"
    project.set_status(e, "reviewed")
    project.save()
    again = Project.open(folder)
    assert again.entry("b.png").status == "reviewed"
    np.testing.assert_array_equal(again.load_label("b.png"), label)


def test_accept_and_delete(folder: Path) -> None:
    project = Project.open(folder)
    e = project.entry("a.jpg")
    with pytest.raises(ProjectError, match="no prediction"):
        project.accept_prediction(e)
    project.save_prediction(e, _mask(seed=4))
    project.accept_prediction(e)
    assert e.status == "corrected"
    np.testing.assert_array_equal(project.load_label(e), _mask(seed=4))
    project.delete_label(e)
    assert e.status == "predicted" and project.load_label(e) is None


def test_status_must_agree_with_files(folder: Path) -> None:
    project = Project.open(folder)
    e = project.entry("a.jpg")
    with pytest.raises(ProjectError, match="no label"):
        project.set_status(e, "reviewed")
    with pytest.raises(ProjectError, match="no prediction"):
        project.set_status(e, "predicted")
    with pytest.raises(ValueError, match="unknown status"):
        project.set_status(e, "done")  # type: ignore[arg-type]
    project.save_label(e, _mask())
    with pytest.raises(ProjectError, match="has a label"):
        project.set_status(e, "unlabelled")


def test_bad_masks_are_refused_and_nothing_is_written(folder: Path) -> None:
    project = Project.open(folder)
    e = project.entry("a.jpg")
    with pytest.raises(MaskError, match="24×16"):
        project.save_label(e, np.zeros((10, 10), np.uint8))
    with pytest.raises(MaskError, match="not classes"):
        project.save_label(e, np.full((16, 24), 7, np.uint8))
    with pytest.raises(MaskError):
        project.save_label(e, np.zeros((16, 24), np.float32))
    assert not project.label_path(e).exists() and e.status == "unlabelled"


def test_label_names_for_sub_folders_and_stem_collisions(tmp_path: Path) -> None:
    root = tmp_path / "p"
    for rel in ("a.jpg", "a.png", "A.tif", "sub/a.jpg", "sub/deeper/a.jpg"):
        _image(root / rel)
    project = Project.open(root, recursive=True)
    names = {e.path: e.label_name for e in project.images}
    assert names == {
        "A.tif": "A.png",
        "a.jpg": "a.jpg.png",
        "a.png": "a.png.png",
        "sub/a.jpg": "sub/a.png",
        "sub/deeper/a.jpg": "sub/deeper/a.png",
    }
    assert len({n.casefold() for n in names.values()}) == len(names)
    for i, e in enumerate(project.images):
        project.save_label(e, _mask(seed=i))
    for i, e in enumerate(project.images):
        np.testing.assert_array_equal(project.load_label(e), _mask(seed=i))
    # Adding a colliding image later never renames an existing label.
    _image(root / "sub/a.bmp")
    project.save()
    added = project.refresh().added
    assert [(e.path, e.label_name) for e in added] == [("sub/a.bmp", "sub/a.bmp.png")]
    assert project.entry("sub/a.jpg").label_name == "sub/a.png"


def test_project_folders_are_not_scanned_as_images(folder: Path) -> None:
    project = Project.open(folder, recursive=True)
    project.save_label("a.jpg", _mask())
    project.save_prediction("b.png", _mask())
    project.save()
    assert project.refresh().added == []
    assert [e.path for e in Project.open(folder).images] == ["a.jpg", "b.png", "c.tif"]


def test_refresh_adds_new_and_reports_missing(folder: Path) -> None:
    project = Project.open(folder)
    project.save_label("c.tif", _mask())
    _image(folder / "d.png")
    (folder / "c.tif").unlink()
    result = project.refresh()
    assert [e.path for e in result.added] == ["d.png"]
    assert [e.path for e in result.missing] == ["c.tif"]
    assert "c.tif" in [e.path for e in project.images]  # kept, with its label, until removed
    project.remove_image("c.tif")
    assert (folder / "labels" / "c.png").exists()


def test_the_project_folders_are_never_taken_for_images(folder: Path) -> None:
    project = Project.open(folder)
    before = [e.path for e in project.images]
    for sub in ("labels", "predictions", "uncertainty"):
        _image(folder / sub / "x.png")
    assert project.refresh().added == []
    assert [e.path for e in project.images] == before
    with pytest.raises(ProjectError, match="uncertainty/"):
        project.add_images([folder / "uncertainty" / "x.png"])


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "C:/x.png",
                                 "sub/../../x.png", ""])
def test_paths_escaping_the_project_are_refused(folder: Path, bad: str) -> None:
    Project.open(folder)
    doc = json.loads((folder / PROJECT_FILE).read_text())
    doc["images"][0]["path"] = bad
    (folder / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match=r"escapes|absolute|empty"):
        Project.open(folder)


def test_label_names_escaping_are_refused(folder: Path, tmp_path: Path) -> None:
    Project.open(folder)
    doc = json.loads((folder / PROJECT_FILE).read_text())
    doc["images"][0]["label"] = "../../outside.png"
    (folder / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match="escapes"):
        Project.open(folder)
    assert not (tmp_path / "outside.png").exists()


def test_safe_relpath() -> None:
    assert safe_relpath("./a//b/c.png") == "a/b/c.png"
    for bad in ("..", "a/..", "/a", "\\\\server\\x", "a\x00b", "."):
        with pytest.raises(ValueError):
            safe_relpath(bad)


def test_images_outside_the_project_are_refused_or_copied(tmp_path: Path) -> None:
    outside = _image(tmp_path / "elsewhere" / "x.png")
    with pytest.raises(ProjectError, match="outside the project folder"):
        Project.create(tmp_path / "proj", images=[outside])
    assert not (tmp_path / "proj" / PROJECT_FILE).exists()
    project = Project.create(tmp_path / "proj", images=[outside], copy_outside=True)
    assert [e.path for e in project.images] == ["images/x.png"]
    assert (tmp_path / "proj/images/x.png").read_bytes() == outside.read_bytes()
    assert outside.exists()
    # The same file again is not copied twice; a different file with the same name gets a new name.
    project.add_images([outside], copy_outside=True)
    other = _image(tmp_path / "elsewhere2" / "x.png", seed=9)
    project.add_images([other], copy_outside=True)
    assert [e.path for e in project.images] == ["images/x.png", "images/x-2.png"]


def test_create_with_chosen_images_and_classes(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _image(root / "data" / "one.png")
    _image(root / "data" / "two.png")
    _image(root / "skip.png")
    classes = ClassTable.from_names(["membrane", "cell"])
    project = Project.create(root, images=[root / "data" / "one.png", "data/two.png"], classes=classes)
    assert [e.path for e in project.images] == ["data/one.png", "data/two.png"]
    assert Project.open(root).classes.names == ["membrane", "cell"]
    with pytest.raises(ProjectError, match="not an image"):
        project.add_images([root / "notes.txt"])


def test_backup_keeps_the_previous_version(folder: Path) -> None:
    project = Project.open(folder)
    first = (folder / PROJECT_FILE).read_text()
    project.save()  # nothing changed: nothing written, the backup (if any) untouched
    assert not (folder / (PROJECT_FILE + BACKUP_SUFFIX)).exists()
    project.save_label("a.jpg", _mask())
    project.save()
    assert (folder / (PROJECT_FILE + BACKUP_SUFFIX)).read_text() == first
    second = (folder / PROJECT_FILE).read_text()
    project.set_status("a.jpg", "reviewed")
    project.save()
    assert (folder / (PROJECT_FILE + BACKUP_SUFFIX)).read_text() == second
    assert not project.dirty


def test_corrupt_project_file_offers_the_backup(folder: Path) -> None:
    project = Project.open(folder)
    project.save_label("a.jpg", _mask())
    project.save()  # the backup is the first version; the current file has a corrected image
    (folder / PROJECT_FILE).write_text('{"kind": "segstudio project", "schema": 1, "images": [')
    with pytest.raises(ProjectFileError) as info:
        Project.open(folder)
    assert "not valid JSON" in str(info.value)
    assert info.value.backup == folder / (PROJECT_FILE + BACKUP_SUFFIX)
    restored = Project.open(folder, from_backup=True)
    assert (folder / (PROJECT_FILE + ".corrupt")).exists()  # the broken file is kept, not deleted
    # The label saved after the backup was written still counts: files win over stored status.
    assert restored.entry("a.jpg").status == "corrected"
    assert Project.open(folder).entry("a.jpg").status == "corrected"


@pytest.mark.parametrize("content,reason", [
    ("\xff\xfe garbage", "not valid JSON"),
    ('{"some": "other file"}', "not a segstudio project"),
    ('{"kind": "segstudio project"}', "no schema version"),
    ('{"kind": "segstudio project", "schema": 1, "classes": [{"index": 3}]}', "class table"),
    ('{"kind": "segstudio project", "schema": 1, "images": [{"path": "a.png", "label": "a.png", '
     '"status": "finished"}]}', "unknown status"),
    ('{"kind": "segstudio project", "schema": 1, "images": [{"path": "a.png", "label": "a.png"}, '
     '{"path": "b.png", "label": "A.png"}]}', "used by two images"),
])
def test_invalid_project_files(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / PROJECT_FILE).write_text(content)
    with pytest.raises(ProjectFileError, match=reason) as info:
        Project.open(tmp_path)
    assert info.value.backup is None


def test_newer_schema_is_refused(folder: Path) -> None:
    Project.open(folder)
    doc = json.loads((folder / PROJECT_FILE).read_text())
    doc["schema"] = 99
    (folder / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match="newer segstudio"):
        Project.open(folder)


def test_label_written_before_a_crash_counts_on_reopen(folder: Path) -> None:
    project = Project.open(folder)
    project.save_label("b.png", _mask())  # status only in memory: the "crash" comes before save()
    project.save_prediction("c.tif", _mask())
    assert json.loads((folder / PROJECT_FILE).read_text())["images"][1]["status"] == "unlabelled"
    again = Project.open(folder)
    assert again.entry("b.png").status == "corrected"
    assert again.entry("c.tif").status == "predicted"
    (folder / "labels" / "b.png").unlink()
    assert Project.open(folder).entry("b.png").status == "unlabelled"


def test_renaming_and_adding_classes_keep_masks(folder: Path) -> None:
    project = Project.open(folder)
    project.save_label("a.jpg", _mask())
    project.set_classes(project.classes.renamed(1, "cell").added("nucleus"))
    again = Project.open(folder)
    assert again.classes.names == ["background", "cell", "nucleus"]
    np.testing.assert_array_equal(again.load_label("a.jpg"), _mask())
    with pytest.raises(ValueError, match="lookup table"):
        project.set_classes(ClassTable.from_names(["only"]))


def test_merging_classes_rewrites_labels_and_predictions(folder: Path) -> None:
    project = Project.open(folder)
    project.set_classes(ClassTable.from_names(["bg", "a", "b", "c"]))
    label = _mask(k=4, seed=5)
    pred = _mask(k=4, seed=6)
    project.save_label("a.jpg", label)
    project.save_prediction("b.png", pred)
    project.merge_classes(1, 3)  # a → c; b, c shift down
    assert project.classes.names == ["bg", "b", "c"]
    lut = np.array([0, 2, 1, 2] + [0] * 251 + [255], np.uint8)
    again = Project.open(folder)
    np.testing.assert_array_equal(again.load_label("a.jpg"), lut[label])
    np.testing.assert_array_equal(again.load_prediction("b.png"), lut[pred])
    assert not (folder / STAGING_DIR).exists()


def test_more_than_254_classes_uses_uint16_masks(folder: Path) -> None:
    project = Project.open(folder)
    project.save_label("a.jpg", _mask())
    big = ClassTable.from_names([f"c{i}" for i in range(300)])
    project.set_classes(big)
    stored = read_mask(project.label_path("a.jpg"))
    assert stored.dtype == np.uint16
    expected = _mask().astype(np.uint16)
    expected[_mask() == 255] = 65535
    np.testing.assert_array_equal(stored, expected)
    m = np.full((16, 24), 65535, np.uint16)
    m[4:8, 4:8] = 299
    project.save_label("b.png", m)
    np.testing.assert_array_equal(Project.open(folder).load_label("b.png"), m)
    with pytest.raises(MaskError):
        project.save_label("b.png", np.full((16, 24), 300, np.uint16))
    # And back below the limit: uint8 again, 65535 → 255.
    lut = np.arange(300)
    lut[3:] = 0  # classes 3..299 merged into class 0
    project.set_classes(ClassTable(list(project.classes)[:3]), lut)
    back = Project.open(folder).load_label("b.png")
    assert back is not None and back.dtype == np.uint8
    assert back[0, 0] == 255 and back[5, 5] == 0


@pytest.mark.parametrize("crash_in", ["staging", "moving"])
def test_interrupted_class_remap_leaves_old_or_new(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                   crash_in: str) -> None:
    project = Project.open(folder)
    project.set_classes(ClassTable.from_names(["bg", "a", "b"]))
    masks = {name: _mask(k=3, seed=i) for i, name in enumerate(("a.jpg", "b.png", "c.tif"))}
    for name, m in masks.items():
        project.save_label(name, m)
    project.save()
    real_replace = os.replace
    moved: list[str] = []

    def crash_after_one(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        # "staging": the second rewritten mask fails to land in the staging folder (before the commit);
        # "moving": the second staged mask fails to move into labels/ (after the commit).
        into_staging = STAGING_DIR in str(dst)
        if STAGING_DIR in str(src) and into_staging == (crash_in == "staging"):
            if moved:
                raise KeyboardInterrupt("simulated crash")
            moved.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        project.merge_classes(1, 2)
    monkeypatch.setattr(os, "replace", real_replace)
    if crash_in == "staging":  # before the commit: rolled back at once, in memory and on disk
        assert not (folder / STAGING_DIR).exists()
        assert project.classes.names == ["bg", "a", "b"]
    else:  # after the commit: the rest is moved in on the next open (or the next save)
        assert (folder / STAGING_DIR).exists()
    again = Project.open(folder)
    if crash_in == "staging":
        assert again.classes.names == ["bg", "a", "b"]
        lut = np.arange(256).astype(np.uint8)
    else:
        assert again.classes.names == ["bg", "b"]
        lut = np.array([0, 1, 1] + [0] * 252 + [255], np.uint8)
    for name, m in masks.items():
        np.testing.assert_array_equal(again.load_label(name), lut[m])
    assert not (folder / STAGING_DIR).exists()


def test_leftover_staging_before_commit_is_discarded(folder: Path) -> None:
    project = Project.open(folder)
    project.save_label("a.jpg", _mask())
    project.save()
    stray = folder / STAGING_DIR / "labels" / "a.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half-written")
    again = Project.open(folder)
    np.testing.assert_array_equal(again.load_label("a.jpg"), _mask())
    assert not (folder / STAGING_DIR).exists()


def test_saving_from_several_threads(tmp_path: Path) -> None:
    root = tmp_path / "p"
    for i in range(12):
        _image(root / f"{i:02d}.png", seed=i)
    project = Project.open(root)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for e in project.images[offset::4]:
                project.save_label(e, _mask(seed=int(e.stem)))
                project.save()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    again = Project.open(root)
    assert all(e.status == "corrected" for e in again.images)
    for e in again.images:
        np.testing.assert_array_equal(again.load_label(e), _mask(seed=int(e.stem)))


def test_unreadable_label_gives_a_clear_error(folder: Path) -> None:
    from segstudio.core.image_io import ImageReadError

    project = Project.open(folder)
    project.label_path("a.jpg").parent.mkdir()
    project.label_path("a.jpg").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="must be a PNG"):
        project.load_label("a.jpg")


def test_stale_temporaries_of_interrupted_saves_are_removed(folder: Path) -> None:
    Project.open(folder).close()
    (folder / "labels").mkdir()
    old = folder / "labels" / ".a.png.k2j4.tmp"
    fresh = folder / "labels" / ".b.png.x9z1.tmp"
    old_json = folder / ".segstudio.json.abcd.tmp"

    def leave_temporaries() -> None:
        for p in (old, fresh, old_json):
            p.write_bytes(b"partial")
        past = time.time() - 3600
        for p in (old, old_json):
            os.utime(p, (past, past))

    leave_temporaries()
    first = Project.open(folder)
    # The first writer holds the lock, so no other writer exists: every temporary is a crashed one's.
    assert not old.exists() and not old_json.exists() and not fresh.exists()
    leave_temporaries()
    Project.open(folder)  # a second opener in the same process: fresh ones may be its own saves under way
    assert not old.exists() and not old_json.exists()
    assert fresh.exists()
    first.close()


def test_a_folder_that_cannot_be_written_gives_a_project_error(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segstudio.core import project as project_module
    from segstudio.core.atomic import SaveError

    def read_only(path: Path, data: bytes) -> None:
        raise SaveError(path, "Read-only file system")

    monkeypatch.setattr(project_module, "atomic_write_bytes", read_only)
    with pytest.raises(ProjectError, match=r"Read-only file system.*copy_outside"):
        Project.open(folder)
    assert not (folder / PROJECT_FILE).exists()


def test_entries_from_an_earlier_open_resolve_to_this_project(folder: Path) -> None:
    old_entry = Project.open(folder).entry("a.jpg")
    project = Project.open(folder)
    project.save_label(old_entry, _mask())
    assert project.entry("a.jpg").status == "corrected"
    with pytest.raises(KeyError, match="not an image of the project"):
        project.entry(ImageEntry("zzz.png", "zzz.png"))
