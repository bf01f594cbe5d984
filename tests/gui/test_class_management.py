"""Class management in the window: delete (into another class or "not labelled") and Undo, reorder, import a
class table from a file or a model; a new folder starts with no classes and takes the chosen model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import read_mask
from segstudio.core.project import Project
from segstudio.gui.main_window import MainWindow
from segstudio.gui.panels.classes import NOT_LABELLED
from tests.gui.conftest import TOY_CLASSES, choose_model, drag, open_and_wait, toy_scene_folder, wait_saved


def yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))


def paint_class(qtbot, window: MainWindow, index: int) -> None:
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    window.tools.set_class(index)
    drag(qtbot, window, [(30, 30), (50, 30)])
    wait_saved(qtbot, window)


def test_deleting_a_class_makes_its_pixels_not_labelled_and_undo_brings_them_back(
        qtbot, window: MainWindow, image_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, window, image_folder)
    c = window.controller
    paint_class(qtbot, window, 1)
    label = image_folder / "labels" / "img0.png"
    assert read_mask(label)[30, 40] == 1
    window.class_panel.set_current(1)
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: (NOT_LABELLED, True)))
    yes(monkeypatch)
    window.class_panel.delete_button.click()
    qtbot.waitUntil(lambda: c.classes.names == ["background"] and not c.busy, timeout=10_000)
    assert c.current.session.label[30, 40] == 255 and read_mask(label)[30, 40] == 255
    undo = window.all_actions.edit.undo
    assert undo.isEnabled() and "delete class 'foreground'" in undo.text()
    undo.trigger()
    qtbot.waitUntil(lambda: c.classes.names == ["background", "foreground"] and not c.busy, timeout=10_000)
    assert c.current.session.label[30, 40] == 1 and read_mask(label)[30, 40] == 1


def test_moving_a_class_renumbers_the_masks_and_keeps_it_selected(qtbot, window: MainWindow,
                                                                   image_folder: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    c = window.controller
    c.class_changes.add("car")
    paint_class(qtbot, window, 2)
    window.class_panel.set_current(2)
    window.class_panel.up_button.click()
    qtbot.waitUntil(lambda: c.classes.names == ["background", "car", "foreground"] and not c.busy, timeout=10_000)
    assert read_mask(image_folder / "labels" / "img0.png")[30, 40] == 1
    assert window.tools.current_class == 1 and window.class_panel.current_class() == 1
    assert Project.open(image_folder, read_only=True).classes.names == ["background", "car", "foreground"]


def test_importing_a_class_table_from_a_file_renumbers_by_name(qtbot, window: MainWindow, image_folder: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, window, image_folder)
    paint_class(qtbot, window, 1)  # foreground
    legend = tmp_path / "classes.json"
    legend.write_text(json.dumps({"classes": [{"index": 0, "name": "foreground", "colour": [1, 2, 3]},
                                              {"index": 1, "name": "sky"}]}))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(legend), "")))
    yes(monkeypatch)
    window.class_panel.import_button.click()
    c = window.controller
    qtbot.waitUntil(lambda: c.classes.names == ["foreground", "sky", "background"] and not c.busy, timeout=10_000)
    assert c.classes[0].colour == (1, 2, 3)
    assert read_mask(image_folder / "labels" / "img0.png")[30, 40] == 0


def test_a_bad_class_file_is_refused_with_a_reason(qtbot, window: MainWindow, image_folder: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, window, image_folder)
    bad = tmp_path / "names.txt"
    bad.write_text("road\nroad\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda _p, _t, text, *a: warned.append(text)))
    window.class_panel.import_button.click()
    assert warned and "twice: road" in warned[0]
    assert window.controller.classes.names == ["background", "foreground"]


def test_a_new_folder_starts_without_classes_and_takes_the_chosen_models(qtbot, window: MainWindow, tmp_path: Path,
                                                                         model_dir: Path) -> None:
    window.controller.new_classes = ClassTable()  # as a window has it: the fixture gives two
    folder = toy_scene_folder(tmp_path / "fresh", 2)
    open_and_wait(qtbot, window, folder)
    c = window.controller
    assert len(c.classes) == 0 and window.class_panel.empty_hint.isVisibleTo(window.class_panel)
    before = c.current.session.label.copy()
    drag(qtbot, window, [(10, 10), (40, 40)])  # no classes: nothing is painted
    assert np.array_equal(c.current.session.label, before)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    qtbot.waitUntil(lambda: c.classes.names == TOY_CLASSES, timeout=10_000)
    assert Project.open(folder, read_only=True).classes.names == TOY_CLASSES  # no background/foreground extras
    assert not window.class_panel.empty_hint.isVisibleTo(window.class_panel)
    assert window.segment.fit is not None and window.segment.fit.lut is not None
    assert window.all_actions.model.segment.isEnabled()


def test_importing_the_class_table_of_a_model_file(qtbot, window: MainWindow, image_folder: Path,
                                                   model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window.controller.new_classes = ClassTable()
    open_and_wait(qtbot, window, image_folder)
    model = model_dir / "toy.onnx"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(model), "")))
    window.class_panel.import_button.click()  # an empty table: no question asked
    qtbot.waitUntil(lambda: window.controller.classes.names == TOY_CLASSES, timeout=10_000)
