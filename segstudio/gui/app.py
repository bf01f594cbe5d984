"""Bootstrap of the desktop app: QApplication, main window, event loop."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence


def _preload_native_libs() -> None:
    # onnxruntime (and torch, if present) must load their native libraries before
    # Qt's: on Windows the reverse order can pick up conflicting DLLs.
    # Without onnxruntime, ONNX inference is unavailable; the app still opens images and edits labels.
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401


def run_app(argv: Sequence[str]) -> int:
    """Start the app; ``argv`` may name a folder, images or a project to open."""
    _preload_native_libs()
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("segstudio")
    app.setOrganizationName("segstudio")
    window = MainWindow()
    window.show()
    return int(app.exec())
