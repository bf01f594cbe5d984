"""The contract for anything long-running: progress events and cooperative cancel.

Long work (inference over tiles, batch folders, training) is written as a plain
function or generator that takes a :class:`CancelToken` and reports
:class:`Progress`. The GUI runs such work in a worker thread or process and turns
the events into signals; the CLI prints them. Nothing here knows about Qt.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class Cancelled(Exception):
    """Raised inside long work when its :class:`CancelToken` was cancelled."""


class CancelToken:
    """A thread-safe flag that long work checks between units of work (tiles, steps, files)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled by the user") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; return True early if cancelled."""
        return self._event.wait(timeout)


class LinkedToken(CancelToken):
    """A token cancelled by itself or by any of its ``parents``: e.g. a worker's own token (cancelled when the
    window closes) together with a Cancel button's token, handed to work that checks one token."""

    def __init__(self, *parents: CancelToken) -> None:
        super().__init__()
        self.parents = parents

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or any(p.cancelled for p in self.parents)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)
        for p in self.parents:
            p.raise_if_cancelled()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.cancelled:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._event.wait(min(left, 0.05))
        return True


NEVER_CANCELLED = CancelToken()
"""A token nobody cancels, for callers that do not need cancel."""


@dataclass
class Progress:
    """One progress report: ``done`` of ``total`` units (``total`` 0 when unknown)."""

    done: int
    total: int
    message: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def rate(self, now: float | None = None) -> float:
        """Units per second since ``started``."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self, now: float | None = None) -> float | None:
        r = self.rate(now)
        if not self.total or r <= 0:
            return None
        return max(0.0, (self.total - self.done) / r)


def format_eta(seconds: float | None) -> str:
    """``'1:02:03'`` / ``'4:05'`` / ``'?'`` for an ETA in seconds."""
    if seconds is None:
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
