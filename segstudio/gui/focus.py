"""Keyboard focus goes back to the canvas when the user is done with a spin box.

After typing a brush radius (or a training length) the user presses Enter or
Escape and expects the single-key shortcuts — class digits, tool letters — to
work again; while a spin box has focus it takes digits itself, so strokes
would land in the wrong class. :func:`return_focus_to` installs a filter on
every spin box under the given widgets: Enter commits the typed value, Escape
leaves it, and both hand focus to the canvas.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractSpinBox, QWidget

_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)


class ReturnFocus(QObject):
    """The event filter: Enter/Escape in a spin box → focus to ``target``."""

    def __init__(self, target: QWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.target = target

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and event.key() in _KEYS
                and isinstance(watched, QAbstractSpinBox)):
            if event.key() != Qt.Key.Key_Escape:
                watched.interpretText()  # commit what was typed (valueChanged fires as usual)
            if self.target.isVisible():
                self.target.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        return False


def return_focus_to(target: QWidget, widgets: Iterable[QWidget], parent: QObject) -> ReturnFocus:
    """Make Enter/Escape in every spin box under ``widgets`` hand focus to ``target``."""
    spin_filter = ReturnFocus(target, parent)
    for w in widgets:
        boxes = [w] if isinstance(w, QAbstractSpinBox) else []
        for box in [*boxes, *w.findChildren(QAbstractSpinBox)]:
            box.installEventFilter(spin_filter)
    return spin_filter
