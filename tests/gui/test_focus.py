"""Enter or Escape in a spin box hands focus back to the canvas, so class digits work again."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import open_and_wait


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Escape])
def test_enter_or_escape_in_the_radius_box_returns_focus_and_digits_choose_classes(
        qtbot, window: MainWindow, image_folder: Path, key: Qt.Key) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.activateWindow()
    box = window.tool_options.radius
    box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is box, timeout=3000)
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "12")
    qtbot.keyClick(box, key)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    if key == Qt.Key.Key_Return:
        assert window.tools.radius == pytest.approx(12.0)
    window.tools.set_class(0)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_2)  # where the user's next key goes
    assert window.tools.current_class == 1
    assert box.value() != 122
