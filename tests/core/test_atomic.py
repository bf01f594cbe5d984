"""atomic.py: a failed save leaves the old file and no temporary behind; new files get normal permissions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from segstudio.core.atomic import SaveError, atomic_open, atomic_write_bytes, atomic_write_text, atomic_write_with


def test_write_and_replace(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "première")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "première"
    atomic_write_bytes(tmp_path / "a.txt", b"second")
    assert (tmp_path / "a.txt").read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_an_error_midway_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "labels.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.png"]

    def failing_writer(path: Path) -> None:
        path.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(SaveError, match="No space left"):
        atomic_write_with(target, failing_writer)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.png"]


def test_missing_folder_is_a_save_error(tmp_path: Path) -> None:
    with pytest.raises(SaveError) as info:
        atomic_write_bytes(tmp_path / "nope" / "x.bin", b"x")
    assert info.value.path == tmp_path / "nope" / "x.bin"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_files_get_normal_permissions_or_keep_their_own(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "new.png", b"x")
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(tmp_path / "new.png", 0o640)
    atomic_write_bytes(tmp_path / "new.png", b"y")
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o640
