"""Undoable class changes: delete (pixels to "not labelled" or merged into another class), move; the undo
restores the table and every pixel, keeps what was painted since, and the colours show on any image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core import class_edits
from segstudio.core.classes import ClassTable, default_colour, relative_luminance
from segstudio.core.project import Project, default_classes


def _project(tmp_path: Path) -> Project:
    for i in range(2):
        Image.fromarray(np.full((12, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    project = Project.create(tmp_path, classes=ClassTable.from_names(["sky", "road", "car", "tree"]))
    a = np.full((12, 16), 255, np.uint8)
    a[:4] = 0
    a[4:8] = 2  # car
    a[8:, :8] = 1
    b = np.full((12, 16), 3, np.uint8)
    b[:, :5] = 2  # car
    project.save_label("0.png", a)
    project.save_prediction("1.png", b)
    project.save()
    return project


def test_deleting_a_class_makes_its_pixels_unlabelled_and_undo_restores_them(tmp_path: Path) -> None:
    project = _project(tmp_path)
    label, pred = project.load_label("0.png"), project.load_prediction("1.png")
    change = class_edits.deletion(project.classes, 2)
    class_edits.apply(project, change)
    assert project.classes.names == ["sky", "road", "tree"]
    after = project.load_label("0.png")
    assert (after[4:8] == 255).all() and (after[:4] == 0).all() and (after[8:, :8] == 1).all()
    p = project.load_prediction("1.png")
    assert (p[:, :5] == 255).all() and (p[:, 5:] == 2).all()  # tree renumbered 3 → 2
    assert 0 < change.recorded_bytes < 200
    class_edits.undo(project, change)
    assert project.classes.names == ["sky", "road", "car", "tree"]
    np.testing.assert_array_equal(project.load_label("0.png"), label)
    np.testing.assert_array_equal(project.load_prediction("1.png"), pred)
    assert Project.open(tmp_path, read_only=True).classes.names == ["sky", "road", "car", "tree"]


def test_merging_and_undo_keep_what_was_painted_since(tmp_path: Path) -> None:
    project = _project(tmp_path)
    change = class_edits.deletion(project.classes, 2, into=1)  # car into road
    class_edits.apply(project, change)
    assert project.classes.names == ["sky", "road", "tree"]
    merged = project.load_label("0.png")
    assert (merged[4:8] == 1).all()
    merged[4, :3] = 0  # the user paints sky over three former car pixels after the merge
    project.save_label("0.png", merged)
    class_edits.undo(project, change)
    back = project.load_label("0.png")
    assert (back[4, :3] == 0).all()  # the new paint stays
    assert (back[4, 3:] == 2).all() and (back[5:8] == 2).all()  # the rest is car again
    assert (back[8:, :8] == 1).all()  # road that was road stays road


def test_moving_a_class_renumbers_every_mask_and_undo_moves_it_back(tmp_path: Path) -> None:
    project = _project(tmp_path)
    label = project.load_label("0.png")
    change = class_edits.move(project.classes, 3, 0)
    class_edits.apply(project, change)
    assert project.classes.names == ["tree", "sky", "road", "car"]
    moved = project.load_label("0.png")
    assert (moved[:4] == 1).all() and (moved[4:8] == 3).all() and (moved[8:, :8] == 2).all()
    assert (project.load_prediction("1.png")[:, 5:] == 0).all()
    with pytest.raises(ValueError, match="changed meanwhile"):
        class_edits.apply(project, change)
    class_edits.undo(project, change)
    np.testing.assert_array_equal(project.load_label("0.png"), label)


def test_the_last_class_can_go_and_a_project_can_have_none(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    project = Project.create(tmp_path, classes=ClassTable())
    assert Project.open(tmp_path, read_only=True).classes.names == []
    project.set_classes(ClassTable.from_names(["cell"]))
    project.save_label("a.png", np.zeros((4, 4), np.uint8))
    change = class_edits.deletion(project.classes, 0)
    class_edits.apply(project, change)
    assert project.classes.names == [] and (project.load_label("a.png") == 255).all()
    class_edits.undo(project, change)
    assert (project.load_label("a.png") == 0).all()


def _visible(colour: tuple[int, int, int]) -> bool:
    lum = relative_luminance(colour)
    return (lum + 0.05) / 0.05 >= 2.0 and 1.05 / (lum + 0.05) >= 1.25 and max(colour) - min(colour) >= 100


def test_default_colours_show_on_dark_light_and_grey_images() -> None:
    assert all(_visible(default_colour(i)) for i in range(300))
    assert all(_visible(c.colour) for c in default_classes())  # no black background that vanishes on EM
    assert len({default_colour(i) for i in range(300)}) == 300
