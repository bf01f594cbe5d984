"""The first page: open something (folder, images, project, the samples, a recent one), and the model state."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio import __version__, paths
from segstudio.core.classes import ClassTable
from segstudio.inference.model_file import load_card
from segstudio.paths import DEFAULT_MODEL


def shipped_models(folder: Path) -> list[Path]:
    """Model files shipped in ``folder`` (``models/``), the default one first."""
    return paths.shipped_models(folder)


def sample_classes(model: Path | None) -> ClassTable:
    """The sample project's classes: the default model's (so its result needs no class fitting), else CamVid's
    (the samples are CamVid frames)."""
    if model is not None:
        try:
            return load_card(model).classes
        except (ValueError, OSError):
            pass  # an unreadable model: the model panel says why when it tries to load it
    return ClassTable.camvid()


def model_state_text(folder: Path) -> str:
    """One honest sentence on the trained models this installation has."""
    models = shipped_models(folder)
    if not models:
        return (f"No trained model is installed yet ({folder.name}/{DEFAULT_MODEL}.onnx is missing), so the "
                "sample images open without a segmentation: choose a model file of your own in the Model panel, "
                "or label some images by hand and train a network from the zoo on them.")
    names = ", ".join(p.name for p in models[:3])
    return (f"Trained model files in {folder.name}/: {names}. \"Open sample images\" opens the samples with "
            f"{models[0].name} chosen: press Segment (Ctrl+Return) to see its result.")


class WelcomePage(QWidget):
    """Shown when no project is open. ``recentChosen(path)`` asks to open a recent project."""

    recentChosen = Signal(str)

    def __init__(self, open_folder: QAction, open_images: QAction, open_project: QAction,
                 open_samples: QAction, models_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("segstudio")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 2.4)
        font.setBold(True)
        title.setFont(font)
        subtitle = QLabel(f"Semantic segmentation with a human in the loop · version {__version__}")
        subtitle.setEnabled(False)

        samples = QPushButton("Open sample images")
        samples.setDefault(True)
        samples.setMinimumHeight(40)
        samples.clicked.connect(open_samples.trigger)
        self.samples_button = samples
        row = QHBoxLayout()
        for action, text in ((open_folder, "Open folder…"), (open_images, "Open images…"),
                             (open_project, "Open project…")):
            b = QPushButton(text)
            b.setToolTip(f"{action.toolTip()} ({action.shortcut().toString()})")
            b.clicked.connect(action.trigger)
            row.addWidget(b)
        hint = QLabel("…or drop a folder, a project or images anywhere on this window.")
        hint.setEnabled(False)

        self.model_state = QLabel(model_state_text(models_folder))
        self.model_state.setWordWrap(True)
        self.model_state.setFrameShape(QFrame.Shape.StyledPanel)
        self.model_state.setMargin(8)

        self.recent_title = QLabel("Recent")
        self.recent = QListWidget()
        self.recent.setMaximumHeight(180)
        self.recent.itemActivated.connect(lambda item: self.recentChosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent.itemClicked.connect(lambda item: self.recentChosen.emit(item.data(Qt.ItemDataRole.UserRole)))

        column = QVBoxLayout()
        column.addWidget(title)
        column.addWidget(subtitle)
        column.addSpacing(24)
        column.addWidget(samples)
        column.addSpacing(8)
        column.addLayout(row)
        column.addWidget(hint)
        column.addSpacing(16)
        column.addWidget(self.model_state)
        column.addSpacing(16)
        column.addWidget(self.recent_title)
        column.addWidget(self.recent)
        box = QWidget()
        box.setLayout(column)
        box.setMaximumWidth(560)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        inner = QVBoxLayout()
        inner.addStretch(1)
        inner.addWidget(box)
        inner.addStretch(2)
        outer.addLayout(inner)
        outer.addStretch(1)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(f"{Path(p).name}    —    {p}")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            self.recent.addItem(item)
        self.recent_title.setVisible(bool(paths))
        self.recent.setVisible(bool(paths))
