"""One writer per project: the lock names its holder, read-only opening works, a dead holder never blocks,
and two processes racing to save lose no update."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core import project_lock
from segstudio.core.classes import ClassTable
from segstudio.core.project import (
    LOCK_FILE,
    Project,
    ProjectError,
    ProjectLockedError,
    ProjectReadOnlyError,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the holder processes are POSIX scripts")

HOLDER = """
import sys, time
from segstudio.core.project import Project
project = Project.open(sys.argv[1], program="segstudio import")
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 24, 3), i * 40, np.uint8)).save(root / f"{i}.png")
    Project.create(root, classes=ClassTable.from_names(["bg", "fg"])).close()
    return root


def _holder(root: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_one_process_shares_its_lock_and_the_last_close_releases_it(folder: Path) -> None:
    first = Project.open(folder)
    second = Project.open(folder)  # the same process: one writer, its threads kept in step by the project
    assert (folder / LOCK_FILE).exists()
    holder = project_lock.read_holder(folder)
    assert holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname()
    first.close()
    assert (folder / LOCK_FILE).exists() and first.read_only
    with pytest.raises(ProjectReadOnlyError, match="closed"):
        first.save_label("0.png", np.zeros((16, 24), np.uint8))
    second.close()
    assert not (folder / LOCK_FILE).exists()


def test_a_collected_project_releases_its_lock(folder: Path) -> None:
    Project.open(folder)  # not kept: collected at once
    assert not (folder / LOCK_FILE).exists()


def test_another_process_holding_the_project_is_named_and_read_only_opening_works(folder: Path) -> None:
    proc = _holder(folder)
    try:
        with pytest.raises(ProjectLockedError) as caught:
            Project.open(folder)
        message = str(caught.value)
        assert f"PID {proc.pid}" in message and socket.gethostname() in message and "segstudio import" in message
        assert "open the project read-only" in message
        assert caught.value.holder is not None and caught.value.holder.pid == proc.pid
        with pytest.raises(ProjectLockedError):
            Project.open(folder / "segstudio.json")
        before = (folder / "segstudio.json").read_bytes()
        viewer = Project.open(folder, read_only=True)
        assert viewer.read_only and [e.path for e in viewer.images] == ["0.png", "1.png", "2.png"]
        for change in (lambda: viewer.save_label("0.png", np.zeros((16, 24), np.uint8)),
                       lambda: viewer.set_classes(viewer.classes.added("x")),
                       lambda: viewer.save(), lambda: viewer.refresh(), lambda: viewer.delete_label("0.png")):
            with pytest.raises(ProjectReadOnlyError, match="opened read-only; nothing was changed"):
                change()
        assert (folder / "segstudio.json").read_bytes() == before and not (folder / "labels").exists()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_holder_killed_with_sigkill_never_blocks_the_project(folder: Path) -> None:
    proc = _holder(folder)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == proc.pid  # stale, still on disk
    with Project.open(folder) as project:
        holder = project_lock.read_holder(folder)
        assert holder is not None and holder.pid == os.getpid()
        project.save_label("0.png", np.zeros((16, 24), np.uint8))


def test_without_os_locks_the_recorded_holder_decides(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(fd: int) -> None:
        raise OSError(errno.ENOLCK, "no locks on this file system")

    monkeypatch.setattr(project_lock, "_os_lock", unsupported)
    lock = folder / LOCK_FILE
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "program": "segstudio"}))
    with Project.open(folder):  # a holder that is gone: stale, taken over
        assert project_lock.read_holder(folder).pid == os.getpid()  # type: ignore[union-attr]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "program": "segstudio app"}))
        with pytest.raises(ProjectLockedError, match=f"PID {sleeper.pid}"):
            Project.open(folder)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)
    lock.write_text(json.dumps({"pid": 1, "host": "another-machine", "program": "segstudio app"}))
    with pytest.raises(ProjectLockedError, match="if segstudio no longer runs on another-machine, delete"):
        Project.open(folder)


def test_a_lock_file_that_is_a_link_or_a_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("keep me")
    os.symlink(tmp_path / "elsewhere", folder / LOCK_FILE)
    with pytest.raises(ProjectError, match="symbolic link"):
        Project.open(folder)
    assert (tmp_path / "elsewhere").read_text() == "keep me"
    os.unlink(folder / LOCK_FILE)
    (folder / LOCK_FILE).mkdir()
    with pytest.raises(ProjectError):
        Project.open(folder)


RACER = """
import sys, time
from segstudio.core.project import Project, ProjectLockedError
root, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
waits = 0
for k in range(count):
    while True:
        try:
            project = Project.open(root, program=name)
            break
        except ProjectLockedError:
            waits += 1
            time.sleep(0.002)
    with project:
        project.set_classes(project.classes.added(f"{name}-{k}"))
print("waited", waits, flush=True)
"""


@pytest.mark.slow
def test_two_processes_racing_to_save_lose_no_update(folder: Path) -> None:
    per_process = 150
    env = dict(os.environ, PYTHONPATH=str(REPO))
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), name, str(per_process)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
              for name in ("window", "import")]
    for r in racers:
        assert r.stdout is not None and r.stdout.readline().strip() == "ready"
    for r in racers:  # both start at once
        assert r.stdin is not None
        r.stdin.write("go\n")
        r.stdin.flush()
    waits = 0
    for r in racers:
        out, _ = r.communicate(timeout=300)
        assert r.returncode == 0
        waits += int(out.split()[-1])
    names = set(Project.open(folder, read_only=True).classes.names)
    lost = [f"{n}-{k}" for n in ("window", "import") for k in range(per_process) if f"{n}-{k}" not in names]
    assert lost == [], f"{len(lost)} of {2 * per_process} updates lost"
    assert waits > 0  # they really raced: each was turned away while the other held the project
