"""The real window driven like a user: open a folder, paint with the mouse, undo, switch classes, reopen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from segstudio.core.image_io import read_mask
from segstudio.core.project import Project, default_classes
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag, open_and_wait, show_image, to_view, wait_saved, write_image


def test_first_launch_shows_the_welcome_page(window: MainWindow) -> None:
    assert window.stack.currentWidget() is window.welcome
    assert window.controller.project is None
    assert window.welcome.samples_button.isVisible()
    text = window.welcome.model_state.text()
    assert "model" in text.lower()
    assert window.windowTitle().replace("[*]", "") == "segstudio"


def test_open_sample_images_makes_a_project_in_the_app_folder(qtbot, window: MainWindow,
                                                             isolated_settings: Path) -> None:
    window.welcome.samples_button.click()
    qtbot.waitUntil(lambda: window.controller.current is not None, timeout=20_000)
    project = window.controller.project
    assert project is not None
    assert project.root == isolated_settings / "home" / "sample-project"
    assert len(project.images) == 6
    assert project.classes.names[0] == "Sky" and len(project.classes) == 11
    assert window.stack.currentWidget() is window.canvas
    assert window.controller.current.shape == (360, 480)
    # the shipped folder itself is never written
    assert not (Path(__file__).resolve().parents[2] / "resources" / "samples" / "segstudio.json").exists()


def test_open_folder_lists_images_with_thumbnails(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    model = window.files.model
    assert model.rowCount() == 4
    qtbot.waitUntil(lambda: len(model.thumbs) == 4, timeout=10_000)
    assert max(model.thumbs["img0.png"].width(), model.thumbs["img0.png"].height()) <= 64 * 2
    assert window.controller.current.path == "img0.png"
    assert "img0.png" in window.windowTitle() and "images" in window.windowTitle()
    assert window.settings.recent()[0] == str(image_folder)


def test_paint_a_stroke_with_the_mouse_and_it_is_saved(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    c = window.canvas
    c.set_zoom(2.0)
    c.centerOn(80, 60)
    window.tools.set_class(1)
    window.tools.set_radius(3)
    drag(qtbot, window, [(40, 30), (60, 30), (80, 40)])
    label = window.controller.current.session.label
    assert label[30, 40] == 1 and label[30, 60] == 1 and label[40, 80] == 1
    assert label[100, 150] == 255 and label[30, 30] == 255
    assert window.isWindowModified()
    wait_saved(qtbot, window)
    assert not window.isWindowModified()
    on_disk = read_mask(image_folder / "labels" / "img0.png")
    assert np.array_equal(on_disk, label)
    assert window.controller.project.entry("img0.png").status == "corrected"
    assert Project.open(image_folder).entry("img0.png").status == "corrected"


def test_undo_redo_across_class_and_tool_changes(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    session = window.controller.current.session
    window.tools.set_radius(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_2)  # class 2 = index 1
    assert window.tools.current_class == 1
    drag(qtbot, window, [(20, 20), (60, 20)])
    after_first = session.label.copy()
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)  # eraser
    assert window.tools.tool_name == "eraser"
    drag(qtbot, window, [(40, 20), (40, 21)])
    assert session.label[20, 40] == 255
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)  # fill with class index 0
    drag(qtbot, window, [(100, 100)])
    assert session.label[100, 100] == 0
    assert window.all_actions.edit.undo.text() == "&Undo fill"
    final = session.label.copy()
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (session.label == 255).all()
    assert not window.all_actions.edit.undo.isEnabled()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(session.label, after_first)
    window.all_actions.edit.redo.trigger()
    window.all_actions.edit.redo.trigger()
    assert np.array_equal(session.label, final)
    assert window.all_actions.edit.redo.isEnabled() is False


def test_each_image_keeps_its_own_history(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    drag(qtbot, window, [(30, 30), (50, 30)])
    first = window.controller.current
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: window.controller.current is not first, timeout=10_000)
    assert window.controller.current.path == "img1.png"
    assert not window.all_actions.edit.undo.isEnabled()
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: window.controller.current is first, timeout=10_000)
    assert window.all_actions.edit.undo.isEnabled()
    window.all_actions.edit.undo.trigger()
    assert (first.session.label == 255).all()


def test_reopen_the_project_and_find_everything_saved(qtbot, image_folder: Path) -> None:
    win = MainWindow()
    win.controller.new_classes = default_classes()  # as if the user had added two classes
    qtbot.addWidget(win)
    win.show()
    open_and_wait(qtbot, win, image_folder)
    win.canvas.set_zoom(2.0)
    win.canvas.centerOn(80, 60)
    win.tools.set_radius(4)
    win.tools.set_class(1)
    drag(qtbot, win, [(30, 30), (70, 50)])
    painted = win.controller.current.session.label.copy()
    win.controller.class_changes.add("road", (10, 20, 30))
    win.controller.class_changes.rename(0, "sky")
    win.controller.class_changes.recolour(1, (1, 2, 3))
    show_image(qtbot, win, "img2.png")
    win.tools.set_class(2)
    drag(qtbot, win, [(10, 10), (12, 10)])
    second = win.controller.current.session.label.copy()
    win.close()  # closing saves what the autosave has not yet written
    assert not win.workers.running()

    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    open_and_wait(qtbot, again, image_folder)
    assert again.controller.classes.names == ["sky", "foreground", "road"]
    assert again.controller.classes[1].colour == (1, 2, 3)
    assert np.array_equal(again.controller.current.session.label, painted)
    show_image(qtbot, again, "img2.png")
    assert np.array_equal(again.controller.current.session.label, second)
    assert again.files.model.entries[2].status == "corrected"
    assert again.class_panel.tree.topLevelItemCount() == 3
    again.close()


def test_drop_a_folder_opens_it(qtbot, window: MainWindow, image_folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_folder))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.controller.current is not None, timeout=10_000)
    assert window.controller.project.root == image_folder


def test_drop_images_on_the_canvas_opens_them(qtbot, window: MainWindow, image_folder: Path,
                                              tmp_path: Path) -> None:
    from PySide6.QtGui import QDragEnterEvent
    from PySide6.QtWidgets import QApplication

    open_and_wait(qtbot, window, image_folder)
    other = write_image(tmp_path / "other" / "x.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    vp = window.canvas.viewport()
    pos = QPointF(50, 50)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, drop)
    qtbot.waitUntil(lambda: window.controller.project is not None
                    and window.controller.project.root == other.parent, timeout=10_000)
    qtbot.waitUntil(lambda: window.controller.current is not None, timeout=10_000)


def test_open_a_set_of_images_and_the_command_line(qtbot, window: MainWindow, tmp_path: Path) -> None:
    a = write_image(tmp_path / "set" / "a.png")
    write_image(tmp_path / "set" / "b.png")
    c = write_image(tmp_path / "set" / "c.png")
    open_and_wait(qtbot, window, a)  # one image, as from the command line
    assert [e.path for e in window.controller.project.images] == ["a.png"]
    window.controller.open_images([c])
    qtbot.waitUntil(lambda: window.controller.project is not None
                    and len(window.controller.project.images) == 2, timeout=10_000)
    assert [e.path for e in window.controller.project.images] == ["a.png", "c.png"]


def test_status_bar_shows_position_and_class_under_cursor(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    window.tools.set_class(1)
    drag(qtbot, window, [(50, 50), (52, 50)])
    qtbot.mouseMove(window.canvas.viewport(), to_view(window, 51, 50))
    assert window.status.position.text().startswith("51, 50")
    assert window.status.pixel_class.text() == "foreground"
    qtbot.mouseMove(window.canvas.viewport(), to_view(window, 10, 100))
    assert window.status.pixel_class.text() == "not labelled"


def test_a_failed_save_on_close_keeps_the_window_and_the_work(qtbot, window: MainWindow, image_folder: Path,
                                                              monkeypatch) -> None:
    import segstudio.gui.controllers.label_saver as saver_module
    from segstudio.core.atomic import SaveError

    open_and_wait(qtbot, window, image_folder)
    window.controller.saver.autosave.setInterval(60_000)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    drag(qtbot, window, [(30, 30), (50, 30)])

    def broken(*args: object) -> None:
        raise SaveError(image_folder / "labels" / "img0.png", "disk full")

    asked: list[list[str]] = []
    with monkeypatch.context() as mp:
        mp.setattr(saver_module, "write_label", broken)
        mp.setattr(window, "ask_after_failed_save",
                   lambda errors: asked.append(errors) or QMessageBox.StandardButton.Cancel)
        window.close()
        assert window.isVisible() and asked and "disk full" in asked[0][0]
        assert window.controller.any_dirty()
    window.close()
    assert not window.isVisible()
    assert read_mask(image_folder / "labels" / "img0.png")[30, 40] == 0
