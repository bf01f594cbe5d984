"""The app's log: worker failures and unexpected exceptions go to ``app.log`` and the status bar, never the terminal.

Workers log a failed task with its traceback (``segstudio.gui.workers``) and
report one line to the window; without a handler Python would print those
records, tracebacks included, on the terminal. :func:`install_error_log` sends
every record to ``app.log`` in the log folder (:mod:`segstudio.logs`) and
routes exceptions that escape an event handler (``sys.excepthook``) or a
thread (``threading.excepthook``) there too, with their one line shown in the
window's message area.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path

from segstudio.logs import app_log_file, one_line

log = logging.getLogger("segstudio")

LOG_BYTES = 2 * 1024 * 1024
"""``app.log`` is rotated at this size (two old files kept)."""


def install_error_log(show: Callable[[str], None] | None = None) -> tuple[Path | None, Callable[[], None]]:
    """Log to ``app.log`` instead of the terminal; ``show(text)`` puts a line in the window's message area.

    Returns the log file (``None`` when no folder can be written: records are
    then dropped rather than printed) and a function that undoes all of it.
    """
    path: Path | None = None
    handler: logging.Handler = logging.NullHandler()
    try:
        file = app_log_file()
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=LOG_BYTES, backupCount=2, encoding="utf-8")
        path = file
    except OSError:
        pass  # no folder can be written: records are dropped rather than printed
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level or logging.INFO, logging.INFO))
    where = f" (details in {path})" if path is not None else ""
    old_hook, old_thread_hook = sys.excepthook, threading.excepthook

    def on_exception(kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            old_hook(kind, exc, tb)
            return
        log.error("unexpected error in the app", exc_info=(kind, exc, tb))
        if show is not None:
            try:
                show(f"Unexpected error: {one_line(exc, 200)}{where}")
            except Exception:  # the window may be gone; the log has it
                log.exception("could not show the error in the window")

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.error("unexpected error in thread %s", args.thread.name if args.thread else "?",
                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception

    def uninstall() -> None:
        sys.excepthook, threading.excepthook = old_hook, old_thread_hook
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()

    return path, uninstall
