"""Bootstrap of the desktop app: native libraries, high-DPI, theme, QApplication, main window, event loop."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence


def run_app(argv: Sequence[str]) -> int:
    """Start the app; ``argv`` may name a folder, images or a project to open.

    ``--smoke`` (with its ``--smoke-*`` options) runs the installation check of
    :mod:`segstudio.gui.smoke` instead and returns its verdict.
    (Importing this module ran ``segstudio/gui/__init__.py``, which loads onnxruntime before Qt.)
    """
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings
    from segstudio.gui.smoke import SmokeArgumentError, SmokeRun, isolated_user_state, split_smoke_args
    from segstudio.gui.theme import app_icon, apply_theme
    from segstudio.logs import install_error_log

    try:
        smoke, argv = split_smoke_args(argv)
    except SmokeArgumentError as exc:
        print(f"segstudio: error: {exc}", file=sys.stderr)
        return 2
    QCoreApplication.setOrganizationName("segstudio")
    QCoreApplication.setApplicationName("segstudio")
    if QApplication.instance() is None:
        # Fractional scale factors (125 %, 150 %) as they are, not rounded: crisp text and exact canvas pixels.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    assert isinstance(app, QApplication)
    QGuiApplication.setDesktopFileName("segstudio")  # Wayland matches the window to segstudio.desktop by this
    app.setWindowIcon(app_icon())
    with isolated_user_state() if smoke else contextlib.nullcontext():
        settings = AppSettings()
        apply_theme(app, settings.theme())
        window = MainWindow(settings)
        # Errors go to app.log and the status bar, never the terminal.
        install_error_log(lambda text: window.statusBar().showMessage(text, 15000))
        window.show()
        if smoke is not None:
            run = SmokeRun(window, smoke)
            run.start()
            app.exec()
            return run.exit_code
        window.open_paths([a for a in argv if not a.startswith("-")])
        return int(app.exec())
