"""Training in a separate process, as the app runs it: events over a pipe, cancel, kill.

    proc = start_training_process(config, ProjectData("/path/to/project"))
    ...                                   # from a timer on the UI thread:
    for ev in proc.events():              # never blocks
        show(ev)                          # ev.kind == "finished": ev.model_path is the new model file
    proc.cancel()                         # cooperative: honoured within one optimizer step
    proc.kill()                           # SIGKILL: nothing half-written survives, the old model is untouched

The child is started with the ``spawn`` method (a fresh interpreter: no
copy of the app's threads, Qt state or CUDA context) and runs
:func:`~segstudio.training.engine.train`. A crash, an out-of-memory kill or
a CUDA error there cannot take the app or the user's masks down: the parent
sees a ``failed`` event (an exception, with its message) or a ``died`` event
(the process vanished, with its exit code or signal). Every file the child
writes is atomic and new (the model is a new version beside the old one), so
killing it at any moment leaves the previous model file exactly as it was.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from segstudio.core.tasks import CancelToken
from segstudio.training.config import TrainConfig
from segstudio.training.data import DataSpec, TrainData
from segstudio.training.engine import TrainEvent

TERMINAL_KINDS = frozenset({"finished", "stopped", "cancelled", "failed", "died"})
_STEP_EVENTS_PER_S = 10.0


def _child_main(config_json: str, data: DataSpec | TrainData, conn: Connection, cancel_event: Any) -> None:
    """The training process: run, send events (step events at most ~10 per second), report exceptions."""
    from segstudio.training.engine import train

    token = CancelToken()

    def watch() -> None:
        cancel_event.wait()
        token.cancel("cancelled by the user")

    threading.Thread(target=watch, name="segstudio-cancel-watch", daemon=True).start()
    last_step = 0.0
    try:
        config = TrainConfig.from_json(config_json)
        for ev in train(config, data, token):
            now = time.monotonic()
            if ev.kind == "step" and now - last_step < 1.0 / _STEP_EVENTS_PER_S:
                continue
            if ev.kind == "step":
                last_step = now
            conn.send(ev)
    except BaseException as exc:  # report anything, then let the process end with an error status
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with contextlib.suppress(OSError, EOFError):
            conn.send(TrainEvent("failed", message=detail))
        if not isinstance(exc, Exception):
            raise
        raise SystemExit(1) from None
    finally:
        conn.close()


class TrainingProcess:
    """A running training process, seen from the app. Not thread-safe: use it from one thread."""

    def __init__(self, process: Any, conn: Connection, cancel_event: Any) -> None:
        self._process = process
        self._conn = conn
        self._cancel_event = cancel_event
        self._terminal: TrainEvent | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def finished_event(self) -> TrainEvent | None:
        """The last event (finished, stopped, cancelled, failed or died) once it has been received."""
        return self._terminal

    def events(self) -> list[TrainEvent]:
        """Every event that has arrived, without blocking; a ``died`` event if the process vanished silently."""
        out: list[TrainEvent] = []
        if self._terminal is not None and self._terminal.kind == "died":
            return out
        try:
            while self._conn.poll():
                ev = self._conn.recv()
                out.append(ev)
                if ev.kind in TERMINAL_KINDS:
                    self._terminal = ev
        except (EOFError, OSError):
            pass  # the child closed its end (it ended); anything it sent was read above
        if self._terminal is None and not self._process.is_alive():
            self._process.join(timeout=1.0)
            out.append(self._died())
        return out

    def _died(self) -> TrainEvent:
        code = self._process.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit code {code}"
        self._terminal = TrainEvent("died", message=f"training process died ({how}); the previous model file "
                                                    "is unchanged")
        return self._terminal

    def wait_events(self, timeout: float) -> list[TrainEvent]:
        """Like :meth:`events` but waits up to ``timeout`` seconds for the first one (for scripts and tests)."""
        with contextlib.suppress(EOFError, OSError):
            self._conn.poll(timeout)
        return self.events()

    def cancel(self) -> None:
        """Ask the run to stop; it leaves a checkpoint and ends with a ``cancelled`` event."""
        self._cancel_event.set()

    def kill(self) -> None:
        """End the process at once (SIGKILL on POSIX); :meth:`events` then reports ``died``."""
        if self._process.is_alive():
            self._process.kill()

    def is_alive(self) -> bool:
        return bool(self._process.is_alive())

    def join(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end; its exit code (None if still running after ``timeout``)."""
        self._process.join(timeout)
        return self._process.exitcode


def start_training_process(config: TrainConfig, data: DataSpec | TrainData) -> TrainingProcess:
    """Start ``train(config, data)`` in a new ``spawn`` process and return its handle.

    ``data`` is best a data spec (:class:`~segstudio.training.data.ProjectData`,
    :class:`~segstudio.training.data.FolderData`): the child reads the images
    itself (the snapshot of the masks is taken when it starts). The config is
    checked here, so a bad setting raises ``ValueError`` in the caller.
    """
    config.validate()
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    cancel_event = ctx.Event()
    process = ctx.Process(target=_child_main, args=(config.to_json(), data, child_conn, cancel_event),
                          name="segstudio-training", daemon=True)
    process.start()
    child_conn.close()  # the parent keeps only its reading end, so EOF shows when the child is gone
    return TrainingProcess(process, parent_conn, cancel_event)
