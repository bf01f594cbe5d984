"""Reading only regular files: a FIFO, a device or a socket is refused before a single byte is read.

Opening a FIFO for reading blocks until a writer appears, and ``/dev/zero``
never ends; a path that names one (an image list, a project, a model chosen by
a user or found in a folder) would hang the reader or fill the memory. Every
file segstudio reads from a user goes through :func:`open_regular`: the file is
opened without blocking (``O_NONBLOCK``), checked with ``fstat`` on the opened
descriptor (so a path swapped after a check cannot slip through), and refused
with :class:`NotRegularFileError` unless it is a regular file. ``max_bytes``
bounds what is read, so a file larger than any sane input of its kind is
refused by its size, not by running out of memory.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class NotRegularFileError(OSError):
    """The path names something other than a regular file (a folder, FIFO, device, socket)."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"it is {kind}, not a regular file", str(path))
        self.kind = kind


class FileTooLargeError(OSError):
    """A file larger than the bound its reader sets (``max_bytes``)."""

    def __init__(self, path: Path | str, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"the file is {size / 1e6:.1f} MB, more than the {limit / 1e6:.0f} MB "
                                      "such a file can sensibly be", str(path))
        self.size = size
        self.limit = limit


def describe_mode(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)", "a character device", …)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path | str, max_bytes: int | None = None) -> BinaryIO:
    """Open ``path`` for binary reading when it is a regular file (symlinks to one are followed).

    Raises :class:`NotRegularFileError` for anything else, :class:`FileTooLargeError`
    when it is larger than ``max_bytes``, and the usual ``OSError`` s otherwise
    (``FileNotFoundError``, ``PermissionError``). Never blocks.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except IsADirectoryError:
        raise NotRegularFileError(p, "a folder") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(p, describe_mode(st.st_mode))
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileTooLargeError(p, st.st_size, max_bytes)
        if _O_NONBLOCK:
            os.set_blocking(fd, True)  # regular files never block; clear the flag for plain reads
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: Path | str, max_bytes: int | None = None) -> bytes:
    """The whole content of a regular file (see :func:`open_regular` for what is refused)."""
    with open_regular(path, max_bytes) as fh:
        data = fh.read()  # sized from fstat: read(max_bytes + 1) would reserve max_bytes up front
    if max_bytes is not None and len(data) > max_bytes:  # it grew while being read
        raise FileTooLargeError(path, len(data), max_bytes)
    return data


def read_regular_text(path: Path | str, max_bytes: int | None = None) -> str:
    """A regular file's content as UTF-8 text (``UnicodeDecodeError`` when it is not)."""
    return read_regular_bytes(path, max_bytes).decode("utf-8")


def regular_file_problem(path: Path | str) -> str | None:
    """Why ``path`` cannot be read as a regular file (``None`` when it can be): for listings and pre-checks."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if stat.S_ISREG(st.st_mode) else f"it is {describe_mode(st.st_mode)}, not a regular file"
