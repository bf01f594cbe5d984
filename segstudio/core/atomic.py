"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Every save in segstudio (project file, label PNGs, exports, model files) goes
through here: write to a temporary file in the same folder, flush, fsync,
rename over the target, fsync the folder. A crash or SIGKILL at any point leaves
either the previous version or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


class SaveError(OSError):
    """A save failed (disk full, permission, missing folder); the old file is untouched."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"could not save {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


def _give_mode(tmp: Path, target: Path) -> None:
    # mkstemp creates 0600 files; give the result the mode the target has, or a normal new file's mode.
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_UMASK
    # Some file systems (FAT, network shares) have no modes; the data is what matters.
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the data itself is already synced
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``OSError`` is re-raised as :class:`SaveError` with a readable reason.
    """
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open writes only ('w' or 'wb')")
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SaveError(target, exc.strerror or str(exc)) from exc
    tmp = Path(tmp_name)
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as fh:  # type: ignore[call-overload]
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _give_mode(tmp, target)
        os.replace(tmp, target)
        _fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SaveError(target, exc.strerror or str(exc)) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_with(path: Path | str, write: Callable[[Path], None]) -> None:
    """For libraries that insist on writing to a path themselves (e.g. ``cv2.imwrite``).

    ``write`` receives a temporary path in the same folder (keeping ``path``'s
    suffix so that format detection works); the result is fsynced and renamed.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=folder)
        os.close(fd)
    except OSError as exc:
        raise SaveError(target, exc.strerror or str(exc)) from exc
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _give_mode(tmp, target)
        os.replace(tmp, target)
        _fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SaveError(target, exc.strerror or str(exc)) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
