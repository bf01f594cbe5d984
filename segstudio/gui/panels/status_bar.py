"""Status bar fields: cursor position, the class under the cursor, zoom, save state, a busy indicator."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from segstudio.core.classes import ClassTable, unlabelled_value
from segstudio.workspace.document import ImageDocument


def describe_pixel(doc: ImageDocument | None, classes: ClassTable, x: float, y: float) -> tuple[str, str]:
    """("x, y", "class …") for image coordinates, or two empty strings outside the image."""
    if doc is None or x < -0.5 or y < -0.5:
        return "", ""
    h, w = doc.shape
    col, row = round(x), round(y)
    if not (0 <= col < w and 0 <= row < h):
        return "", ""
    label = doc.session.label
    value = int(label[row, col])
    if value != unlabelled_value(label.dtype):
        what = _name(classes, value)
    elif doc.session.prediction is not None:
        what = f"{_name(classes, int(doc.session.prediction[row, col]))} (predicted)"
    else:
        what = "not labelled"
    if doc.uncertainty is not None:
        what += f" · uncertainty {float(doc.uncertainty[row, col]) / 255:.2f}"
    rgb = doc.image.display[row, col] if doc.image.display.ndim == 3 else np.asarray([0, 0, 0])
    return f"{col}, {row}  RGB {int(rgb[0])} {int(rgb[1])} {int(rgb[2])}", what


def _name(classes: ClassTable, value: int) -> str:
    return classes[value].name if 0 <= value < len(classes) else f"value {value}"


class StatusFields:
    """The permanent widgets of the status bar."""

    def __init__(self, bar: QStatusBar) -> None:
        self.position = QLabel()
        self.pixel_class = QLabel()
        self.zoom = QLabel()
        self.saved = QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(14)
        self.busy.setVisible(False)
        for w in (self.busy, self.position, self.pixel_class, self.zoom, self.saved):
            bar.addPermanentWidget(w)
        self.position.setMinimumWidth(190)
        self.pixel_class.setMinimumWidth(160)

    def show_pixel(self, position: str, what: str) -> None:
        self.position.setText(position)
        self.pixel_class.setText(what)

    def show_zoom(self, zoom: float) -> None:
        self.zoom.setText(f"{zoom * 100:.0f}%")

    def show_saved(self, unsaved: bool, saving_error: str | None = None) -> None:
        if saving_error:
            self.saved.setText("⚠ not saved")
            self.saved.setToolTip(saving_error)
        else:
            self.saved.setText("● unsaved" if unsaved else "✓ saved")
            self.saved.setToolTip("")

    def set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
