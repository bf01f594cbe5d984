"""Class changes are transactions: a failed save (a full disk) rolls them back in memory and on disk, and a
move left unfinished is completed before any label is written, so no newer label is ever overwritten."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.atomic import SaveError
from segstudio.core.classes import ClassTable
from segstudio.core.project import PROJECT_FILE, STAGING_DIR, OutsideProjectError, Project

NAMES = ["bg", "a", "b", "c"]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    root.mkdir()
    for name in ("x.png", "y.png"):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(root / name)
    p = Project.create(root, classes=ClassTable.from_names(NAMES))
    p.save_label("x.png", np.array([[0, 1, 2, 3, 255] * 2] * 8, np.uint8))
    p.save_label("y.png", np.full((8, 10), 3, np.uint8))
    p.save_prediction("x.png", np.full((8, 10), 2, np.uint8))
    p.save()
    return p


def _fail_writes_of(monkeypatch: pytest.MonkeyPatch, name: str, times: int = 1, moving_in: bool = False
                    ) -> list[str]:
    """``os.replace`` onto a file called ``name`` fails with ENOSPC (``times`` times): a full disk.

    ``moving_in``: only the move of a staged mask into place fails (not the writes into staging).
    """
    failed: list[str] = []
    real = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        chosen = not moving_in or (STAGING_DIR in str(src) and STAGING_DIR not in str(dst))
        if Path(dst).name == name and chosen and len(failed) < times:
            failed.append(str(dst))
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return failed


def test_a_merge_whose_commit_fails_is_rolled_back_and_a_later_edit_survives(project: Project,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = (project.root / PROJECT_FILE).read_text()
    _fail_writes_of(monkeypatch, PROJECT_FILE)
    with pytest.raises(SaveError, match="No space left on device"):
        project.merge_classes(1, 2)
    monkeypatch.undo()
    # rolled back: classes in memory and on disk, masks, no staging, no flag
    assert project.classes.names == NAMES and not project.dirty
    assert (project.root / PROJECT_FILE).read_text() == before
    assert not (project.root / STAGING_DIR).exists()
    assert project.load_label("y.png").max() == 3
    # The lost edit: a newer label, then a save and a reopen, must keep the newer label.
    newer = np.full((8, 10), 1, np.uint8)
    project.save_label("y.png", newer)
    project.save()
    again = Project.open(project.root)
    assert again.classes.names == NAMES
    np.testing.assert_array_equal(again.load_label("y.png"), newer)


def test_a_class_added_while_the_disk_is_full_is_not_kept(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_writes_of(monkeypatch, PROJECT_FILE)
    with pytest.raises(SaveError):
        project.set_classes(project.classes.added("d"))
    assert project.classes.names == NAMES


def test_a_move_left_unfinished_is_completed_before_a_label_is_written(project: Project,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    failed = _fail_writes_of(monkeypatch, "y.png", moving_in=True)  # the staged y.png cannot be moved in
    with pytest.raises(SaveError):
        project.merge_classes(1, 2)
    monkeypatch.undo()
    assert failed and project.classes.names == ["bg", "b", "c"]  # committed: the new classes hold
    assert (project.root / STAGING_DIR).exists()
    newer = np.full((8, 10), 1, np.uint8)
    project.save_label("y.png", newer)  # finishes the move first, then writes: the stale staged copy is gone
    assert not (project.root / STAGING_DIR).exists()
    project.save()
    again = Project.open(project.root)
    np.testing.assert_array_equal(again.load_label("y.png"), newer)
    np.testing.assert_array_equal(again.load_label("x.png"), [[0, 1, 1, 2, 255] * 2] * 8)
    np.testing.assert_array_equal(again.load_prediction("x.png"), np.full((8, 10), 1, np.uint8))


def test_a_staging_folder_linked_outside_stops_the_change_and_touches_nothing(project: Project,
                                                                              tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, project.root / STAGING_DIR)
    with pytest.raises(OutsideProjectError):
        project.merge_classes(1, 2)
    assert project.classes.names == NAMES and list(outside.iterdir()) == []
    assert project.load_label("y.png").max() == 3


def test_a_project_file_linked_outside_is_neither_read_nor_written(tmp_path: Path) -> None:
    root = tmp_path / "q"
    root.mkdir()
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(root / "x.png")
    Project.create(root).close()
    secret = tmp_path / "secret.json"
    os.replace(root / PROJECT_FILE, secret)
    os.symlink(secret, root / PROJECT_FILE)
    before = secret.read_bytes()
    with pytest.raises(OutsideProjectError):
        Project.open(root)
    assert secret.read_bytes() == before
