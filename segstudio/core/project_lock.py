"""One writer per project: a lock file naming the writer (PID, host, program), released when the writer ends.

:meth:`~segstudio.core.project.Project.open` and ``Project.create`` take the
lock; a second process (another app window, a CLI ``import``) gets
:class:`ProjectLockedError`, whose message names the holder, and may open the
project read-only instead. The lock is ``<project>/.segstudio.lock``:

* On POSIX it is held with ``flock`` on the open file, on Windows with
  ``msvcrt.locking``. The operating system drops such a lock when its holder
  exits in any way, SIGKILL included, so a crashed writer never blocks the
  project: the next opener finds the file, takes the free lock and rewrites
  the holder's details (stale-lock recovery without guessing).
* Where the file system refuses locks (some network shares), the file's content
  decides: a holder on another host, or a live process on this host (same PID
  and start time), holds the project; a holder that is gone is stale and the
  lock is taken over.
* A folder that cannot hold the file at all (read-only media) is opened without
  a lock: nothing can be written there, so there is no writer to exclude.

Within one process the lock is re-entrant: ``Project`` objects of one folder
share it (one process is one writer; its threads are serialised by the
project's own lock), and it is released when the last of them is closed or
garbage-collected.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from segstudio.core.project_file import LOCK_FILE, ProjectError
from segstudio.core.regular_file import open_regular

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NO_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_WINDOWS_LOCK_OFFSET = 1 << 20  # Windows locks a byte range: one past the details, so they stay readable


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project: from the lock file (``None`` fields when it could not be read)."""

    pid: int | None
    host: str | None
    program: str | None = None
    since: str | None = None
    started: float | None = None
    """The holder's process start time (seconds since the epoch), to tell a reused PID from the holder."""

    def describe(self) -> str:
        if self.pid is None:
            return "a process whose details cannot be read"
        where = f" on {self.host}" if self.host else ""
        since = f", since {self.since}" if self.since else ""
        return f"{self.program or 'segstudio'} (PID {self.pid}{where}{since})"

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "program": self.program, "since": self.since,
                           "started": self.started})

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        try:
            d = json.loads(text)
            pid = d["pid"]
            if not isinstance(pid, int):
                return None
            started = d.get("started")
            return cls(pid, str(d.get("host") or ""), str(d.get("program") or ""), str(d.get("since") or ""),
                       float(started) if isinstance(started, (int, float)) else None)
        except (ValueError, KeyError, TypeError):
            return None


class ProjectLockedError(ProjectError):
    """Another process has the project open for writing; the message names it and says what to do."""

    def __init__(self, root: Path, holder: LockHolder | None, lock_file: Path) -> None:
        who = holder.describe() if holder is not None else "another process"
        other_host = holder is not None and holder.host not in (None, "", this_host())
        hint = (f"; if segstudio no longer runs on {holder.host}, delete {lock_file}" if other_host and holder
                else "")
        super().__init__(
            f"the project {root} is open in another segstudio window or command: {who}. Close it there first, "
            f"or open the project read-only{hint}"
        )
        self.root = root
        self.holder = holder
        self.lock_file = lock_file


def this_host() -> str:
    return socket.gethostname()


def _process_start(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # psutil missing, no such process, or no permission: the start time is unknown
        return None


def _pid_alive(pid: int) -> bool:
    try:
        import psutil

        return bool(psutil.pid_exists(pid))
    except ImportError:
        pass
    if sys.platform == "win32":
        return True  # cannot tell without psutil: assume it still runs (the safe answer)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_alive(holder: LockHolder) -> bool:
    """True unless the holder is a process of this host that is gone (or whose PID now names another process)."""
    if holder.pid is None or holder.host != this_host():
        return True  # another host's processes cannot be seen from here
    if not _pid_alive(holder.pid):
        return False
    if holder.started is not None:
        now_started = _process_start(holder.pid)
        if now_started is not None and abs(now_started - holder.started) > 1.0:
            return False  # the PID was reused by a newer process
    return True


def _me(program: str) -> LockHolder:
    since = _dt.datetime.now().astimezone().replace(microsecond=0).isoformat()
    return LockHolder(os.getpid(), this_host(), program, since, _process_start(os.getpid()))


def _os_lock(fd: int) -> None:
    """Take the OS lock without waiting: ``BlockingIOError`` when held, another ``OSError`` when unsupported."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except PermissionError:
            raise BlockingIOError(errno.EAGAIN, "locked") from None
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> LockHolder | None:
    try:
        return LockHolder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace")) if hasattr(os, "pread") \
            else None
    except OSError:
        return None


def _write_holder(fd: int, holder: LockHolder) -> None:
    data = holder.to_json().encode("utf-8")
    with contextlib.suppress(OSError):  # the details only inform the message; the OS lock is what counts
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)


@dataclass
class _Held:
    fd: int
    count: int
    path: Path


_held: dict[str, _Held] = {}
_registry = threading.RLock()
"""Re-entrant: a Project dropped without close() releases its lock from a weakref finalizer, which the garbage
collector may run inside acquire() on this same thread (a plain Lock deadlocked there)."""


class ProjectLock:
    """This process's hold on a project's lock; :meth:`release` once per :func:`acquire`."""

    def __init__(self, key: str, first: bool) -> None:
        self._key = key
        self.first = first
        """True when this acquire took the lock (no other holder in this process): every temporary file in
        the project then belongs to an ended writer."""
        self._released = False

    def release(self) -> None:
        with _registry:
            if self._released:
                return
            self._released = True
            held = _held.get(self._key)
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del _held[self._key]
            # Unlink while still locked: an opener that already opened this file finds, once it gets the
            # lock, that the path names another file (or none) and tries again.
            with contextlib.suppress(OSError):
                os.unlink(held.path)
            with contextlib.suppress(OSError):
                os.close(held.fd)


def _open_lock_file(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno in _NO_WRITE:
            return None
        if exc.errno == errno.ELOOP:
            raise ProjectError(f"{path} is a symbolic link; segstudio keeps its lock file only inside the project "
                               "(remove the link)") from None
        raise ProjectError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ProjectError(f"{path} is not a regular file; remove it so that segstudio can lock the project")
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev)


def acquire(root: Path, program: str = "segstudio") -> ProjectLock | None:
    """Take the write lock of the project in ``root`` for this process.

    Returns ``None`` when the folder cannot hold a lock file (not writable).
    Raises :class:`ProjectLockedError` when another process holds it, and
    :class:`ProjectError` when the lock file is a link or not a regular file.
    """
    path = Path(root) / LOCK_FILE
    key = os.path.realpath(root)
    with _registry:
        held = _held.get(key)
        if held is not None:
            held.count += 1
            return ProjectLock(key, first=False)
        for _ in range(20):  # retried only while other processes release and unlink under our feet
            fd = _open_lock_file(path)
            if fd is None:
                return None
            try:
                _os_lock(fd)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise ProjectLockedError(Path(root), holder, path) from None
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise ProjectError(f"cannot lock {path}: {exc.strerror or exc}") from None
                _claim_by_content(fd, Path(root), path)  # no OS locks here: the recorded holder decides
            if not _same_file(fd, path):
                os.close(fd)
                continue
            _write_holder(fd, _me(program))
            _held[key] = _Held(fd, 1, path)
            return ProjectLock(key, first=True)
        raise ProjectError(f"cannot lock {path}: other processes keep taking and releasing it")


def _claim_by_content(fd: int, root: Path, path: Path) -> None:
    holder = _read_holder(fd)
    if holder is not None and holder.pid != os.getpid() and holder_alive(holder):
        os.close(fd)
        raise ProjectLockedError(root, holder, path)


def read_holder(root: Path) -> LockHolder | None:
    """Who holds the project in ``root``, from its lock file (``None`` when there is no readable one)."""
    try:
        with open_regular(Path(root) / LOCK_FILE) as fh:
            return LockHolder.parse(fh.read(4096).decode("utf-8", "replace"))
    except OSError:
        return None
