"""Small controls beside the tools: brush radius, what the tools may paint over, overlay opacity."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QWidget

from segstudio.core.classes import ClassTable
from segstudio.gui.controllers.tool_controller import LOCK_CLASS, LOCK_NONE, LOCK_UNLABELLED, MAX_RADIUS, MIN_RADIUS
from segstudio.gui.panels.classes import swatch


class ToolOptions(QWidget):
    """Brush radius, the paint lock ("paint over: anything / unlabelled only / only class X"), opacity."""

    radiusEdited = Signal(float)
    lockChosen = Signal(str, int)  # mode, class (for LOCK_CLASS)
    opacityEdited = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(MIN_RADIUS, MAX_RADIUS)
        self.radius.setDecimals(1)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("Brush radius ([ and ], or Ctrl+wheel)")
        self.radius.valueChanged.connect(self.radiusEdited.emit)
        self.lock = QComboBox()
        self.lock.setToolTip("Which pixels the tools may change (Alt+0 anything, Alt+U unlabelled only, "
                             "Alt+K only the class chosen here)")
        self.lock.setMinimumContentsLength(14)
        self.lock.currentIndexChanged.connect(self._lock_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(120)
        self.opacity.setToolTip("Label overlay opacity (Ctrl+[ and Ctrl+]; V hides the overlay)")
        self.opacity.valueChanged.connect(lambda v: self.opacityEdited.emit(v / 100.0))
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)  # no gaps in a wide tool bar
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("Radius"))
        layout.addWidget(self.radius)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Paint over"))
        layout.addWidget(self.lock)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Opacity"))
        layout.addWidget(self.opacity)

    def set_radius(self, r: float) -> None:
        with QSignalBlocker(self.radius):
            self.radius.setValue(r)

    def set_opacity(self, value: float) -> None:
        with QSignalBlocker(self.opacity):
            self.opacity.setValue(round(value * 100))

    def set_lock(self, classes: ClassTable, mode: str, lock_class: int) -> None:
        """List the lock choices for ``classes`` and show the current one."""
        with QSignalBlocker(self.lock):
            self.lock.clear()
            self.lock.addItem("Anything", (LOCK_NONE, 0))
            self.lock.addItem("Unlabelled only", (LOCK_UNLABELLED, 0))
            for c in classes:
                self.lock.addItem(swatch(c.colour), f"Only {c.name}", (LOCK_CLASS, c.index))
            if mode == LOCK_CLASS and lock_class < len(classes):
                self.lock.setCurrentIndex(2 + lock_class)
            else:
                self.lock.setCurrentIndex(1 if mode == LOCK_UNLABELLED else 0)

    def _lock_changed(self, row: int) -> None:
        if row >= 0:
            mode, index = self.lock.itemData(row)
            self.lockChosen.emit(mode, int(index))
