"""Long work off the UI thread: run a function or generator with a CancelToken in a QThread.

The contract (docs/ARCHITECTURE.md, "Long work"): long work is a
plain callable ``work(cancel: CancelToken)``. If it returns a generator, every
value it yields is reported as progress and the generator's ``return`` value is
the result; otherwise the return value is the result. Work that reports
progress through a callback (the predictor's ``progress=``) is started with
``reporting=True`` and called as ``work(cancel, report)``: each ``report(event)``
becomes a progress signal too. The work checks the token
between units (tiles, files, steps) and may raise
:class:`~segstudio.core.tasks.Cancelled`.

:meth:`WorkerPool.start` returns a :class:`Task` whose typed signals are always
delivered on the UI thread: ``progress(object)``, ``finished(object)``,
``failed(str)`` and ``cancelled(str)`` — exactly one of the last three per task.
The pool keeps every running thread and :meth:`WorkerPool.shutdown` cancels and
joins them, so a closed window never leaves a thread behind (the GUI tests
fail if one is left running).
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from segstudio.core.tasks import Cancelled, CancelToken

log = logging.getLogger(__name__)

Work = Callable[..., Any]
"""``work(cancel)`` (or ``work(cancel, report)`` with ``reporting=True``); it may return a generator of events."""


def describe_error(exc: BaseException) -> str:
    """A one-line message for a user: the exception's own text, or its type when it has none."""
    text = str(exc).strip()
    if isinstance(exc, MemoryError):
        return "not enough memory"
    return text if text else type(exc).__name__


class _WorkThread(QThread):
    """Runs one piece of work; its signals are emitted from the work thread and queued to the Task."""

    progressed = Signal(object)
    succeeded = Signal(object)
    errored = Signal(str)
    stopped = Signal(str)

    def __init__(self, work: Work, cancel: CancelToken, name: str, reporting: bool = False) -> None:
        super().__init__()
        self._work = work
        self._cancel = cancel
        self._reporting = reporting
        self.setObjectName(name)

    def run(self) -> None:
        try:
            # a signal emitted from this thread is queued to the Task on the UI thread
            result = self._work(self._cancel, self.progressed.emit) if self._reporting else self._work(self._cancel)
            if inspect.isgenerator(result):
                result = self._drain(result)
            self._cancel.raise_if_cancelled()
        except Cancelled as exc:
            self.stopped.emit(str(exc) or "cancelled")
            return
        except Exception as exc:  # the work's failure is reported, never lost and never kills the app
            log.error("task %s failed:\n%s", self.objectName(), traceback.format_exc())
            self.errored.emit(describe_error(exc))
            return
        self.succeeded.emit(result)

    def _drain(self, gen: Generator[Any, Any, Any]) -> Any:
        try:
            while True:
                self._cancel.raise_if_cancelled()
                self.progressed.emit(next(gen))
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()


class Task(QObject):
    """A handle on running work: its signals arrive on the UI thread; :meth:`cancel` asks it to stop."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)
    done = Signal()  # after any of finished / failed / cancelled

    def __init__(self, name: str, work: Work, parent: QObject | None = None, reporting: bool = False) -> None:
        super().__init__(parent)
        self.name = name
        self.token = CancelToken()
        self.outcome: str | None = None  # "finished", "failed" or "cancelled" once known
        self._thread = _WorkThread(work, self.token, name, reporting)
        self._thread.progressed.connect(self._on_progress)
        self._thread.succeeded.connect(self._on_finished)
        self._thread.errored.connect(self._on_failed)
        self._thread.stopped.connect(self._on_cancelled)

    def start(self) -> None:
        self._thread.start()

    def cancel(self, reason: str = "cancelled") -> None:
        self.token.cancel(reason)

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the thread ends (True) or ``timeout_ms`` passes (False); -1 waits for ever."""
        if timeout_ms < 0:
            return bool(self._thread.wait())
        return bool(self._thread.wait(timeout_ms))

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        if not self.token.cancelled:
            self.progress.emit(event)

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self.outcome = "finished"
        self.finished.emit(result)
        self.done.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.outcome = "failed"
        self.failed.emit(message)
        self.done.emit()

    @Slot(str)
    def _on_cancelled(self, reason: str) -> None:
        self.outcome = "cancelled"
        self.cancelled.emit(reason)
        self.done.emit()


class WorkerPool(QObject):
    """Starts tasks, keeps them until their threads end, and joins them on shutdown."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: list[Task] = []
        self._closed = False

    def start(self, name: str, work: Work,
              on_finished: Callable[[Any], None] | None = None,
              on_failed: Callable[[str], None] | None = None,
              on_progress: Callable[[Any], None] | None = None,
              on_cancelled: Callable[[str], None] | None = None, reporting: bool = False) -> Task:
        """Run ``work`` in a new thread; the callbacks are called on the UI thread.

        ``reporting=True``: ``work(cancel, report)`` is given a thread-safe ``report(event)``
        whose events arrive as progress. Raises ``RuntimeError`` after :meth:`shutdown`:
        a closing window starts nothing new.
        """
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        task = Task(name, work, self, reporting)
        for signal, slot in ((task.finished, on_finished), (task.failed, on_failed),
                             (task.progress, on_progress), (task.cancelled, on_cancelled)):
            if slot is not None:
                signal.connect(slot)
        self._prune()
        self._tasks.append(task)
        task.start()
        return task

    def _prune(self) -> None:
        # A task is dropped once its thread ended and its outcome signal was delivered.
        for t in [t for t in self._tasks if t.outcome is not None and not t.is_running()]:
            self._tasks.remove(t)
            t.deleteLater()

    def running(self, name: str | None = None) -> list[Task]:
        """Tasks whose threads have not ended (all, or those called ``name``)."""
        self._prune()
        return [t for t in self._tasks if t.is_running() and (name is None or t.name == name)]

    def cancel(self, name: str | None = None) -> None:
        for t in self.running(name):
            t.cancel()

    def join(self, name: str | None = None, timeout_ms: int = -1) -> bool:
        """Wait for the running tasks (all, or those called ``name``); True when all ended."""
        ok = True
        for t in list(self.running(name)):
            ok = t.wait(timeout_ms) and ok
        return ok

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel every task and join its thread; afterwards nothing new starts. True when all ended."""
        self._closed = True
        for t in self._tasks:
            t.cancel("the window is closing")
        ok = self.join(timeout_ms=timeout_ms)
        if not ok:
            names = ", ".join(t.name for t in self.running())
            log.error("worker threads still running after %d ms: %s", timeout_ms, names)
        return ok
