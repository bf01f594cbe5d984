"""The window's one voice: a line for the status bar, or an error worth a dialog.

Controllers and panels that have something to tell the user get the window's
:class:`Notifier` (injected: the main window makes one and hands it to each)
and call :meth:`Notifier.say` or :meth:`Notifier.error`; the main window
connects its two signals to the status bar and to a message box. Nothing else
emits messages, so where the user hears of something is decided here and in the
main window's wiring, once.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Notifier(QObject):
    """Messages for the user; see the module docstring."""

    message = Signal(str)  # a line for the status bar
    errorOccurred = Signal(str, str)  # title, message: worth a dialog

    def say(self, text: str) -> None:
        """A line for the status bar."""
        self.message.emit(text)

    def error(self, title: str, text: str) -> None:
        """A problem the user must see (a dialog): ``title`` and what happened (one or a few lines, no traceback)."""
        self.errorOccurred.emit(title, text)
