"""Editing in the window: brush size keys and wheel, locks, eyedropper, polygon, predictions and accepting them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from segstudio.core.image_io import read_mask
from segstudio.gui.canvas.layers import MaskSource
from segstudio.gui.controllers.tool_controller import LOCK_CLASS, LOCK_UNLABELLED
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag, open_and_wait, to_view, wait_saved


@pytest.fixture
def opened(qtbot, window: MainWindow, image_folder: Path) -> MainWindow:
    open_and_wait(qtbot, window, image_folder)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    return window


def test_brush_size_keys_wheel_and_outline(qtbot, opened: MainWindow) -> None:
    w = opened
    w.tools.set_radius(8)
    qtbot.keyClick(w.canvas, Qt.Key.Key_BracketRight)
    assert w.tools.radius == pytest.approx(10.0)
    qtbot.keyClick(w.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(w.canvas, Qt.Key.Key_BracketLeft)
    assert w.tools.radius < 8
    pos = QPointF(to_view(w, 50, 50))
    wheel = QWheelEvent(pos, w.canvas.mapToGlobal(pos), QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    before, zoom = w.tools.radius, w.canvas.zoom()
    w.canvas.wheelEvent(wheel)
    assert w.tools.radius > before and w.canvas.zoom() == zoom  # Ctrl+wheel sizes the brush, not the view
    assert w.tool_options.radius.value() == pytest.approx(w.tools.radius)
    qtbot.mouseMove(w.canvas.viewport(), to_view(w, 50, 50))
    outline = w.canvas.brush_outline
    assert outline.isVisible() and outline.rect().width() == pytest.approx(2 * w.tools.radius)


def test_locks_only_unlabelled_and_only_over_a_class(qtbot, opened: MainWindow) -> None:
    w = opened
    s = w.controller.current.session
    w.tools.set_radius(3)
    w.tools.set_class(1)
    drag(qtbot, w, [(40, 40), (60, 40)])
    qtbot.keyClick(w.canvas, Qt.Key.Key_U, Qt.KeyboardModifier.AltModifier)
    assert w.tools.lock_mode == LOCK_UNLABELLED
    assert w.tool_options.lock.currentText() == "Unlabelled only"
    w.tools.set_class(0)
    drag(qtbot, w, [(50, 30), (50, 50)])  # crosses the class-1 line
    assert s.label[40, 50] == 1 and s.label[32, 50] == 0
    # only over class 1 (chosen in the box): painting class 2... here class 0 only replaces class 1
    w.tool_options.lock.setCurrentIndex(2 + 1)
    assert w.tools.lock_mode == LOCK_CLASS and w.tools.lock_class == 1
    assert w.all_actions.edit.lock_class.isChecked()
    drag(qtbot, w, [(40, 40), (60, 40)])
    assert s.label[40, 45] == 0 and s.label[100, 100] == 255
    qtbot.keyClick(w.canvas, Qt.Key.Key_0, Qt.KeyboardModifier.AltModifier)
    assert w.tool_options.lock.currentText() == "Anything"


def test_eyedropper_picks_the_class_and_returns_to_the_brush(qtbot, opened: MainWindow) -> None:
    w = opened
    w.tools.set_class(1)
    drag(qtbot, w, [(30, 30), (31, 30)])
    w.tools.set_class(0)
    qtbot.keyClick(w.canvas, Qt.Key.Key_I)
    assert w.tools.tool_name == "eyedropper"
    drag(qtbot, w, [(30, 30)])
    assert w.tools.current_class == 1 and w.tools.tool_name == "brush"
    assert w.class_panel.current_class() == 1


def test_polygon_by_clicks_and_enter(qtbot, opened: MainWindow) -> None:
    w = opened
    s = w.controller.current.session
    w.tools.set_class(1)
    qtbot.keyClick(w.canvas, Qt.Key.Key_P)
    for p in [(20, 20), (60, 20), (60, 50), (20, 50)]:
        drag(qtbot, w, [p])
    assert (s.label == 255).all()  # not closed yet
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    assert s.label[35, 40] == 1 and s.label[10, 10] == 255
    assert s.history.undo_label == "polygon"


def test_a_prediction_is_shown_apart_and_accepted(qtbot, opened: MainWindow, image_folder: Path) -> None:
    w = opened
    doc = w.controller.current
    h, wd = doc.shape
    pred = np.zeros((h, wd), np.uint8)
    pred[:, wd // 2:] = 1
    heat = np.linspace(0, 1, h * wd, dtype=np.float32).reshape(h, wd)
    assert not w.all_actions.edit.accept_prediction.isEnabled()
    w.controller.set_prediction(doc.path, pred, heat)
    qtbot.waitUntil(lambda: not w.workers.running("save prediction"), timeout=5000)
    qtbot.waitUntil(lambda: doc.entry.status == "predicted", timeout=5000)
    assert np.array_equal(read_mask(image_folder / "predictions" / "img0.png"), pred)
    assert w.files.model.entries[0].status == "predicted"
    src = w.canvas.prediction_layer.source
    assert isinstance(src, MaskSource) and src.style == "hatched"
    assert (doc.session.label == 255).all() and not doc.dirty  # a prediction is not the user's label
    # uncertainty heat map
    assert w.all_actions.view.uncertainty.isEnabled()
    qtbot.keyClick(w.canvas, Qt.Key.Key_H)
    assert w.canvas.heat_layer.isVisible()
    qtbot.mouseMove(w.canvas.viewport(), to_view(w, 100, 50))
    assert "(predicted)" in w.status.pixel_class.text() and "uncertainty" in w.status.pixel_class.text()
    # accept inside a lasso, then everywhere else; the user's own stroke survives
    w.tools.set_class(0)
    drag(qtbot, w, [(100, 10), (102, 10)])
    qtbot.keyClick(w.canvas, Qt.Key.Key_A)
    assert w.tools.tool_name == "accept"
    drag(qtbot, w, [(90, 60), (130, 60), (130, 90), (90, 90), (90, 61)])
    assert doc.session.label[75, 110] == 1 and doc.session.label[20, 20] == 255
    qtbot.keyClick(w.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert doc.session.label[20, 20] == 0 and doc.session.label[10, 101] == 0
    assert doc.session.label[100, 150] == 1
    # accepted: the readout under the unmoved pointer says the class, and no hatching is left
    assert "(predicted)" not in w.status.pixel_class.text() and w.status.pixel_class.text().startswith("foreground")
    assert w.canvas.prediction_layer.source.render(0, 0, 0, wd, h) is None
    wait_saved(qtbot, w)
    assert doc.entry.status == "corrected"


def test_two_hundred_strokes_undo_within_the_memory_bound(qtbot, opened: MainWindow) -> None:
    w = opened
    s = w.controller.current.session
    w.controller.saver.autosave.setInterval(60_000)
    w.tools.set_radius(2)
    start = s.label.copy()
    for i in range(210):
        w.tools.set_class(i % 2)  # class changes between strokes do not merge or drop steps
        y = 5 + (i % 100)
        drag(qtbot, w, [(5 + i % 50, y), (60 + i % 50, y + 3)])
    assert s.history.undo_steps == 210
    assert s.history.nbytes < 256 * 1024 * 1024
    for _ in range(210):
        w.all_actions.edit.undo.trigger()
    assert np.array_equal(s.label, start)


def test_view_toggles_overlay_outline_solo_mask_view_and_opacity(qtbot, opened: MainWindow) -> None:
    w = opened
    c = w.canvas
    qtbot.keyClick(c, Qt.Key.Key_V)
    assert not c.label_layer.isVisible()
    qtbot.keyClick(c, Qt.Key.Key_V)
    assert c.label_layer.isVisible()
    qtbot.keyClick(c, Qt.Key.Key_O)
    assert c.label_layer.source.style == "outline" and w.settings.outline()
    qtbot.keyClick(c, Qt.Key.Key_O)
    w.tools.set_class(1)
    qtbot.keyClick(c, Qt.Key.Key_S)
    assert c.solo == 1
    qtbot.keyClick(c, Qt.Key.Key_Period)
    assert w.tools.current_class == 0 and c.solo == 0  # solo follows the current class
    qtbot.keyClick(c, Qt.Key.Key_S)
    assert c.solo is None
    qtbot.keyClick(c, Qt.Key.Key_M)
    assert c.label_layer.source.style == "binary" and c.label_layer.source.binary_class == 0
    qtbot.keyClick(c, Qt.Key.Key_M)
    opacity = c.opacity
    qtbot.keyClick(c, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)
    assert c.opacity == pytest.approx(min(1.0, opacity + 0.1))
    assert w.tool_options.opacity.value() == round(c.opacity * 100)
    w.tool_options.opacity.setValue(20)
    assert c.opacity == pytest.approx(0.2) and w.settings.opacity() == pytest.approx(0.2)
