"""Bootstrap of the desktop app: native libraries, high-DPI, theme, QApplication, main window, event loop."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_app(argv: Sequence[str]) -> int:
    """Start the app; ``argv`` may name a folder, images or a project to open.

    (Importing this module ran ``segstudio/gui/__init__.py``, which loads onnxruntime before Qt.)
    """
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings
    from segstudio.gui.theme import apply_theme

    QCoreApplication.setOrganizationName("segstudio")
    QCoreApplication.setApplicationName("segstudio")
    if QApplication.instance() is None:
        # Fractional scale factors (125 %, 150 %) as they are, not rounded: crisp text and exact canvas pixels.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    assert isinstance(app, QApplication)
    settings = AppSettings()
    apply_theme(app, settings.theme())
    window = MainWindow(settings)
    window.show()
    window.open_paths([a for a in argv if not a.startswith("-")])
    return int(app.exec())
