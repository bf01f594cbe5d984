"""A writer killed with SIGKILL mid-save leaves a project that opens, with every label old or new, never torn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import read_mask
from segstudio.core.project import BACKUP_SUFFIX, PROJECT_FILE, Project

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 24
SIZE = 192
BITS = 12  # the version is written in the first row of each mask, one bit per pixel

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# The writer: rewrites every label with a new version, saves the project file, repeats until killed.
WRITER = f"""
import sys
import numpy as np
from segstudio.core.project import Project

def pattern(i, v):
    base = np.random.default_rng(i).integers(0, 3, ({SIZE}, {SIZE})).astype(np.uint8)
    m = (base + v) % 3
    m[0, :{BITS}] = [(v >> b) & 1 for b in range({BITS})]
    return m

project = Project.open(sys.argv[1])
v = int(sys.argv[2])
print("ready", flush=True)
while True:
    for i, e in enumerate(project.images):
        project.save_label(e, pattern(i, v), status="reviewed" if v % 2 else "corrected")
    project.save()
    print("round", v, flush=True)
    v += 1
"""


def pattern(i: int, v: int) -> np.ndarray:
    base = np.random.default_rng(i).integers(0, 3, (SIZE, SIZE)).astype(np.uint8)
    m = (base + v) % 3
    m[0, :BITS] = [(v >> b) & 1 for b in range(BITS)]
    return m


def version_of(mask: np.ndarray) -> int:
    return sum(int(bit) << b for b, bit in enumerate(mask[0, :BITS]))


def _check(root: Path, highest: int) -> list[int]:
    project = Project.open(root)  # must open: the project file is old or new, never torn
    assert len(project.images) == N_IMAGES
    json.loads((root / (PROJECT_FILE + BACKUP_SUFFIX)).read_text())  # the backup is whole too
    versions = []
    for i, e in enumerate(project.images):
        mask = read_mask(project.label_path(e))  # a valid PNG …
        v = version_of(mask)
        assert 0 <= v <= highest
        np.testing.assert_array_equal(mask, pattern(i, v))  # … equal to one complete version
        assert e.status in ("corrected", "reviewed")
        versions.append(v)
    return versions


def test_sigkill_during_saves_leaves_old_or_new_labels(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    for i in range(N_IMAGES):
        Image.fromarray(np.full((SIZE, SIZE, 3), i, np.uint8)).save(root / f"img{i:02d}.png")
    project = Project.create(root, classes=ClassTable.from_names(["a", "b", "c"]))
    for i, e in enumerate(project.images):
        project.save_label(e, pattern(i, 0))
    project.save()
    project.close()  # one writer per project: the killed writers below take the lock in turn

    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = 1
    mixed_seen = False
    for delay in (0.35, 0.8, 1.3, 0.55):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(start)], stdout=subprocess.PIPE,
                                text=True, env=env, cwd=REPO)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
        rounds = [int(line.split()[1]) for line in proc.stdout if line.startswith("round")] if proc.stdout else []
        highest = start + len(rounds)  # the round under way when killed may have written some labels
        versions = _check(root, highest)
        assert max(versions) >= start - 1
        mixed_seen = mixed_seen or len(set(versions)) > 1
        start = highest + 1
    # The kills should have landed mid-round at least once (labels from two different rounds).
    assert mixed_seen
