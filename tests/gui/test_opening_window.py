"""Opening in the window: a read-only folder opens with its project in the user's data folder and the title bar
says where; an empty folder shows an "add images" hint and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from segstudio.core.project_file import PROJECT_FILE
from segstudio.gui.main_window import MainWindow
from segstudio.workspace import opening
from tests.gui.conftest import open_and_wait


def test_a_read_only_folder_opens_and_the_title_says_where_its_project_is(
        qtbot, window: MainWindow, image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = opening.writable
    monkeypatch.setattr(opening, "writable", lambda f: False if Path(f) == image_folder else real(f))
    window.controller.data_dir = tmp_path / "data"
    open_and_wait(qtbot, window, image_folder)
    project = window.controller.project
    assert project is not None and not project.read_only and project.image_folder == image_folder
    assert not (image_folder / PROJECT_FILE).exists()
    assert str(tmp_path / "data") in window.windowTitle() and "read-only" in window.windowTitle()
    assert window.controller.current is not None and window.controller.current.editable


def test_an_empty_folder_shows_an_add_images_hint_and_writes_nothing(qtbot, window: MainWindow,
                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.message_page, timeout=10_000)
    assert "Add images" in window.message_page.text()
    assert list(folder.iterdir()) == [] and window.controller.project is None
