"""Panels and window services: file list and filter, class table edits, shortcuts, settings, theme, welcome."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QColorDialog, QInputDialog, QMessageBox

from segstudio.core.image_io import read_mask
from segstudio.core.project import Project
from segstudio.gui.actions import shortcut_table
from segstudio.gui.controllers.tool_controller import TOOL_NAMES
from segstudio.gui.main_window import MainWindow
from segstudio.gui.panels.classes import COL_EYE, COL_NAME, COL_SHARE
from segstudio.gui.panels.files import BrokenRole
from segstudio.gui.panels.welcome import model_state_text, shipped_models
from tests.gui.conftest import drag, open_and_wait, show_image, wait_saved


def test_filter_by_status_next_unlabelled_and_counts(qtbot, window: MainWindow, image_folder: Path) -> None:
    project = Project.open(image_folder)
    project.save_label("img1.png", np.zeros((120, 160), np.uint8))
    project.save_prediction("img2.png", np.ones((120, 160), np.uint8))
    project.save()
    open_and_wait(qtbot, window, image_folder)
    files = window.files
    assert [e.status for e in files.model.entries] == ["unlabelled", "corrected", "predicted", "unlabelled"]
    assert files.count.text() == "4 of 4 shown · 1 labelled"
    files.filter.setCurrentIndex(files.filter.findData("unlabelled"))
    assert files.proxy.rowCount() == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)  # next within the filter: img3
    qtbot.waitUntil(lambda: window.controller.current.path == "img3.png", timeout=5000)
    files.filter.setCurrentIndex(0)
    window.all_actions.image.next_unlabelled.trigger()  # wraps round to img0
    qtbot.waitUntil(lambda: window.controller.current.path == "img0.png", timeout=5000)
    show_image(qtbot, window, "img2.png")
    assert window.controller.current.session.prediction is not None
    assert window.all_actions.edit.accept_prediction.isEnabled()


def test_an_unreadable_image_shows_a_message_and_the_rest_works(qtbot, window: MainWindow,
                                                              image_folder: Path) -> None:
    (image_folder / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    open_and_wait(qtbot, window, image_folder)
    qtbot.waitUntil(lambda: len(window.files.model.thumbs) == 3 and "img1.png" in window.files.model.broken,
                    timeout=5000)
    model = window.files.model
    row = model.index(model.rows["img1.png"])
    tip = row.data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("img1.png\nCannot be read: ") and len(tip) > len("img1.png\nCannot be read: ") + 5
    assert row.data(BrokenRole) and model.index(model.rows["img2.png"]).data(BrokenRole) is None
    window.files.list.viewport().repaint()  # the delegate paints the warning icon and the "broken" pill
    window.controller.open_entry("img1.png")
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.message_page, timeout=5000)
    assert "img1.png" in window.message_page.text()
    show_image(qtbot, window, "img2.png")
    assert window.stack.currentWidget() is window.canvas


def test_an_unreadable_label_opens_read_only_and_is_never_overwritten(qtbot, window: MainWindow,
                                                                    image_folder: Path) -> None:
    Project.open(image_folder)
    broken = image_folder / "labels" / "img0.png"
    broken.parent.mkdir(exist_ok=True)
    broken.write_bytes(b"not a png")
    open_and_wait(qtbot, window, image_folder)
    doc = window.controller.current
    assert not doc.editable and "untouched" in doc.read_only_reason
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    drag(qtbot, window, [(30, 30), (60, 30)])
    assert (doc.session.label == 255).all()
    window.close()
    assert broken.read_bytes() == b"not a png"


def test_images_load_in_a_worker_thread(qtbot, window: MainWindow, image_folder: Path, monkeypatch) -> None:
    import threading

    import segstudio.gui.controllers.project_controller as controller_module

    threads: list[threading.Thread] = []
    original = controller_module.load_document

    def spy(*args: object):
        threads.append(threading.current_thread())
        return original(*args)

    monkeypatch.setattr(controller_module, "load_document", spy)
    open_and_wait(qtbot, window, image_folder)
    assert threads and threading.main_thread() not in threads


def test_the_document_cache_closes_old_saved_images_first(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    c = window.controller
    one = c.current.memory_bytes()
    c.session.documents.max_bytes = int(one * 2.5)
    for name in ("img1.png", "img2.png", "img3.png"):
        show_image(qtbot, window, name)
    wait_saved(qtbot, window)
    assert c.document("img0.png") is None and c.document("img1.png") is None
    assert c.document("img3.png") is c.current


def test_class_panel_edits_are_saved_with_the_project(qtbot, window: MainWindow, image_folder: Path,
                                                    monkeypatch) -> None:
    open_and_wait(qtbot, window, image_folder)
    panel = window.class_panel
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("car", True)))
    panel.add_button.click()
    assert window.controller.classes.names == ["background", "foreground", "car"]
    item = panel.tree.topLevelItem(2)
    item.setText(COL_NAME, "vehicle")  # what finishing the in-place editor does
    qtbot.waitUntil(lambda: window.controller.classes.names[2] == "vehicle", timeout=3000)
    panel.tree.setCurrentItem(item)
    assert window.tools.current_class == 2
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor(9, 8, 7)))
    panel.colour_button.click()
    reopened = Project.open(image_folder)
    assert reopened.classes.names == ["background", "foreground", "vehicle"]
    assert reopened.classes[2].colour == (9, 8, 7)
    assert window.tool_options.lock.count() == 2 + 3
    # the eye hides a class in the overlay
    panel.tree.topLevelItem(1).setCheckState(COL_EYE, Qt.CheckState.Unchecked)
    assert window.canvas.hidden == {1}
    assert window.canvas.label_layer.source.lut[1, 3] == 0


def test_pixel_share_follows_the_strokes(qtbot, window: MainWindow, image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    window.tools.set_class(1)
    window.tools.set_radius(0.5)
    drag(qtbot, window, [(10, 10), (10, 10)])  # one pixel of 120*160
    qtbot.waitUntil(lambda: window.class_panel.tree.topLevelItem(1).text(COL_SHARE) == "<0.1%", timeout=3000)
    window.tools.set_tool("fill")
    drag(qtbot, window, [(100, 100)])
    qtbot.waitUntil(lambda: window.class_panel.tree.topLevelItem(1).text(COL_SHARE) == "100.0%", timeout=3000)
    assert window.class_panel.unlabelled.text() == "Not labelled: 0.0%"


def test_merging_classes_rewrites_masks_in_a_worker(qtbot, window: MainWindow, image_folder: Path,
                                                   monkeypatch) -> None:
    open_and_wait(qtbot, window, image_folder)
    c = window.controller
    c.class_changes.add("car")
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    window.tools.set_class(2)
    drag(qtbot, window, [(30, 30), (50, 30)])
    window.class_panel.set_current(2)
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: ("foreground", True)))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    window.canvas.set_zoom(3.0)
    busy: list[bool] = []
    c.busyChanged.connect(busy.append)
    window.class_panel.delete_button.click()
    qtbot.waitUntil(lambda: busy == [True, False], timeout=10_000)
    assert c.classes.names == ["background", "foreground"]
    assert c.current.session.label[30, 40] == 1
    assert not c.current.session.history.can_undo
    assert read_mask(image_folder / "labels" / "img0.png")[30, 40] == 1
    assert window.class_panel.tree.topLevelItemCount() == 2
    assert window.canvas.zoom() == pytest.approx(3.0)  # the view stays where the user had it


def test_every_tool_and_action_has_a_unique_shortcut_listed_under_help(qtbot, window: MainWindow) -> None:
    rows = shortcut_table(window.all_actions)
    texts = {text for _, text, _ in rows}
    for name in TOOL_NAMES:
        assert window.all_actions.tools.tool(name).text().replace("&", "") in texts
    seen: dict[str, str] = {}
    for group in (g for _, g in window.all_actions.groups()):
        for act in group:
            for key in act.shortcuts():
                k = key.toString(QKeySequence.SequenceFormat.PortableText)
                assert k not in seen, f"{k} is bound to both {seen[k]} and {act.text()}"
                seen[k] = act.text()
    without = [a.text() for _, g in window.all_actions.groups() for a in g
               if not a.shortcuts() and a not in window.all_actions.view.themes]
    assert without == ["&About segstudio"]
    dialog = window.show_shortcuts()
    assert dialog.table.rowCount() >= len(rows)
    dialog.close()


def test_settings_are_remembered_between_windows(qtbot, image_folder: Path) -> None:
    first = MainWindow()
    qtbot.addWidget(first)
    first.tools.set_radius(21)
    first._set_opacity(0.8)
    first.all_actions.view.outline.setChecked(True)
    open_and_wait(qtbot, first, image_folder)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.tools.radius == 21 and second.canvas.opacity == pytest.approx(0.8)
    assert second.canvas.outline
    assert second.settings.recent() == [str(image_folder)]
    assert second.welcome.recent.count() == 1
    assert second.menus["recent"].actions()[0].text() == str(image_folder)
    second.open_recent(str(image_folder / "gone"))
    assert second.settings.recent() == [str(image_folder)]
    second.close()


def test_dark_and_light_themes(qtbot, window: MainWindow) -> None:
    window.set_theme("dark")
    app = QApplication.instance()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
    assert window.settings.theme() == "dark"
    window.set_theme("light")
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    window.set_theme("system")
    assert window.all_actions.view.themes[0].isChecked()


def test_welcome_page_states_the_model_honestly(tmp_path: Path) -> None:
    assert "No trained model" in model_state_text(tmp_path / "models")
    models = tmp_path / "models"
    models.mkdir()
    (models / "other.onnx").write_bytes(b"x")
    (models / "camvid-fastscnn.onnx").write_bytes(b"x")
    assert [p.name for p in shipped_models(models)] == ["camvid-fastscnn.onnx", "other.onnx"]
    assert "camvid-fastscnn.onnx" in model_state_text(models)


def test_open_a_project_file_and_rescan_for_new_images(qtbot, window: MainWindow, image_folder: Path) -> None:
    from tests.gui.conftest import write_image

    Project.open(image_folder)
    open_and_wait(qtbot, window, image_folder / "segstudio.json")
    assert window.files.model.rowCount() == 4
    write_image(image_folder / "img9.png", seed=9)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F5)
    assert window.files.model.rowCount() == 5
    assert Project.open(image_folder).entry("img9.png").status == "unlabelled"
    qtbot.waitUntil(lambda: "img9.png" in window.files.model.thumbs, timeout=5000)
