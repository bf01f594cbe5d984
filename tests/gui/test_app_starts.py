from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from segstudio.__main__ import main
from segstudio.gui.main_window import MainWindow


def test_main_window_opens(qtbot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.isVisible()
    assert "segstudio" in window.windowTitle()
    window.close()


def test_the_command_line_opens_a_folder_in_the_app(qtbot, image_folder: Path) -> None:
    seen: dict[str, object] = {}

    def check() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows or windows[0].controller.current is None:
            QTimer.singleShot(20, check)
            return
        seen["root"] = windows[0].controller.project.root
        seen["image"] = windows[0].controller.current.path
        windows[0].close()  # the last window closed ends the event loop

    QTimer.singleShot(20, check)
    assert main([str(image_folder)]) == 0
    assert seen == {"root": image_folder, "image": "img0.png"}
