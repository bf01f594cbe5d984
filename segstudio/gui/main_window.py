"""The main window: composes the panels, actions and workers."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMainWindow

from segstudio import __version__


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"segstudio {__version__}")
        self.resize(1280, 800)
        welcome = QLabel("segstudio\n\nOpen a folder of images to start.")
        welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setCentralWidget(welcome)
