from __future__ import annotations

from segstudio.gui.main_window import MainWindow


def test_main_window_opens(qtbot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.isVisible()
    assert "segstudio" in window.windowTitle()
