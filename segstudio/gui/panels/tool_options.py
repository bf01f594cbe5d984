"""Small controls beside the tools: brush radius, the lock's class, overlay opacity."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QWidget

from segstudio.core.classes import ClassTable
from segstudio.gui.editing import MAX_RADIUS, MIN_RADIUS
from segstudio.gui.panels.classes import swatch


class ToolOptions(QWidget):
    """Brush radius, "paint only over" class and overlay opacity, as one toolbar widget."""

    radiusEdited = Signal(float)
    lockClassChosen = Signal(int)
    opacityEdited = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(MIN_RADIUS, MAX_RADIUS)
        self.radius.setDecimals(1)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("Brush radius ([ and ], or Ctrl+wheel)")
        self.radius.valueChanged.connect(self.radiusEdited.emit)
        self.lock_class = QComboBox()
        self.lock_class.setToolTip("The class that 'Paint only over class' protects everything but (Alt+K)")
        self.lock_class.setMinimumContentsLength(10)
        self.lock_class.currentIndexChanged.connect(self._lock_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(120)
        self.opacity.setToolTip("Label overlay opacity (Ctrl+[ and Ctrl+]; V hides the overlay)")
        self.opacity.valueChanged.connect(lambda v: self.opacityEdited.emit(v / 100.0))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("Radius"))
        layout.addWidget(self.radius)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Only over"))
        layout.addWidget(self.lock_class)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Opacity"))
        layout.addWidget(self.opacity)

    def set_radius(self, r: float) -> None:
        with QSignalBlocker(self.radius):
            self.radius.setValue(r)

    def set_opacity(self, value: float) -> None:
        with QSignalBlocker(self.opacity):
            self.opacity.setValue(round(value * 100))

    def set_classes(self, classes: ClassTable, lock_class: int) -> None:
        with QSignalBlocker(self.lock_class):
            self.lock_class.clear()
            for c in classes:
                self.lock_class.addItem(swatch(c.colour), c.name, c.index)
            if len(classes):
                self.lock_class.setCurrentIndex(min(lock_class, len(classes) - 1))

    def _lock_changed(self, row: int) -> None:
        if row >= 0:
            self.lockClassChosen.emit(int(self.lock_class.itemData(row)))
