"""Opening a folder: a read-only folder's project is kept in the user's data folder, an empty folder opens
nothing and writes nothing, a plain folder starts with the classes it is given."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from segstudio.core.classes import ClassTable
from segstudio.core.project import Project
from segstudio.core.project_file import PROJECT_FILE
from segstudio.workspace import opening
from segstudio.workspace.opening import EmptyFolder, open_folder, open_images, project_home


def images(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"im{i}.png"), np.full((8, 10, 3), 40 * i, np.uint8))
    return folder


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder nobody can write to (made read-only, and seen so even by root, who writes anywhere)."""
    folder = images(tmp_path / "share")
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    real = opening.writable
    monkeypatch.setattr(opening, "writable", lambda f: False if Path(f) == folder else real(f))
    yield folder
    folder.chmod(0o755)


def test_a_read_only_folder_opens_with_its_project_in_the_data_folder(read_only: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    project = open_folder(read_only, data, ClassTable.from_names(["a", "b"]))
    assert isinstance(project, Project) and not project.read_only
    assert project.root == project_home(read_only, data) and project.image_folder == read_only
    assert sorted(read_only.iterdir()) == [read_only / "im0.png", read_only / "im1.png"]  # nothing written
    assert [e.path for e in project.images] == ["im0.png", "im1.png"]
    assert project.image_path("im1.png") == read_only / "im1.png"
    project.save_label("im1.png", np.ones((8, 10), np.uint8))
    assert (project.root / "labels").is_dir()
    project.close()
    again = open_folder(read_only, data, ClassTable())  # the same project, its classes and labels kept
    assert isinstance(again, Project) and again.root == project.root
    assert again.classes.names == ["a", "b"] and again.entry("im1.png").status == "corrected"
    again.close()


def test_images_of_a_read_only_folder_open_the_same_way(read_only: Path, tmp_path: Path) -> None:
    project = open_images([read_only / "im0.png"], tmp_path / "data", ClassTable())
    assert project.image_folder == read_only and [e.path for e in project.images] == ["im0.png"]
    project.close()


def test_an_empty_folder_opens_nothing_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    (folder / "sub").mkdir(parents=True)
    result = open_folder(folder, tmp_path / "data", ClassTable())
    assert isinstance(result, EmptyFolder) and "Add images" in result.hint()
    assert list(folder.iterdir()) == [folder / "sub"] and not (tmp_path / "data").exists()


def test_a_plain_folder_starts_with_the_classes_given_even_none(tmp_path: Path) -> None:
    folder = images(tmp_path / "plain")
    project = open_folder(folder, tmp_path / "data", ClassTable())
    assert isinstance(project, Project) and project.root == folder and project.image_folder is None
    assert len(project.classes) == 0 and (folder / PROJECT_FILE).exists()
    project.close()
