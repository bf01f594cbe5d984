"""Where segstudio writes the details of errors: a log file per failed command, one log for the app.

A user never sees a traceback. The CLI prints one line and, for an unexpected
error, the path of a log file holding the details (:func:`write_error_log`);
the app writes everything its workers and event handlers report to
``app.log`` (:func:`app_log_file`) instead of the terminal
(:func:`install_error_log`: without a handler Python would print those
records, tracebacks included, on the terminal; exceptions that escape an event
handler or a thread go there too, with their one line shown in the window).

The folder is ``$SEGSTUDIO_LOG_DIR`` when set, else the platform's place for
such files: ``$XDG_STATE_HOME/segstudio/logs`` (``~/.local/state/…``) on
Linux, ``~/Library/Logs/segstudio`` on macOS, ``%LOCALAPPDATA%\\segstudio\\logs``
on Windows; the system's temporary folder when that cannot be written. Never
the install. Standard library only, so the CLI and the app share it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import logging.handlers
import os
import platform
import sys
import tempfile
import threading
import traceback
import types
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("segstudio")

KEEP_ERROR_LOGS = 50
"""Error logs of the CLI kept in the folder; older ones are removed when a new one is written."""

LOG_BYTES = 2 * 1024 * 1024
"""``app.log`` is rotated at this size (two old files kept)."""


def log_dir() -> Path:
    """The folder for segstudio's logs (not created here)."""
    env = os.environ.get("SEGSTUDIO_LOG_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "segstudio" / "logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "segstudio"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "segstudio" / "logs"


def _writable_dir() -> Path:
    for folder in (log_dir(), Path(tempfile.gettempdir()) / "segstudio-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise OSError(f"no writable folder for logs ({log_dir()})")


def app_log_file() -> Path:
    """The app's log file (its folder created); raises ``OSError`` when no folder can be written."""
    return _writable_dir() / "app.log"


def _prune(folder: Path, keep: int) -> None:
    logs = sorted(folder.glob("error-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-keep] if len(logs) > keep else []:
        with contextlib.suppress(OSError):
            old.unlink()


def write_error_log(exc: BaseException, argv: Sequence[str], what: str = "command") -> Path | None:
    """Write an unexpected error's details (command line, versions, traceback) to a new log file.

    Returns its path, or ``None`` when no log could be written (the caller says so).
    """
    from segstudio import __version__

    try:
        folder = _writable_dir()
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = folder / f"error-{stamp}-{os.getpid()}.log"
        lines = [
            f"segstudio {__version__} {what} failed at {_dt.datetime.now().astimezone().isoformat()}",
            f"command: segstudio {' '.join(argv)}",
            f"python {sys.version.split()[0]} on {platform.platform()}",
            "",
            *traceback.format_exception(type(exc), exc, exc.__traceback__),
        ]
        path.write_text("\n".join(line.rstrip("\n") for line in lines) + "\n", encoding="utf-8")
        _prune(folder, KEEP_ERROR_LOGS)
        return path
    except OSError:
        return None


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (its type when it has none), shortened to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
