"""Keeping a project's folder and its statuses in order when it is opened: statuses from files, stale temporaries.

Both run when :meth:`~segstudio.core.project.Project.open` opens a project;
they are functions of the folder so that they can be tested on their own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from segstudio.core.project_file import (
    COPIED_IMAGES_DIR,
    LABELS_DIR,
    PREDICTIONS_DIR,
    UNCERTAINTY_DIR,
    ImageEntry,
    OutsideProjectError,
    walk_files,
)

STALE_TEMP_AGE_S = 600.0
"""Temporary files older than this are removed when a project is opened by a process that already has it open
(younger ones may belong to a save under way in that process); the first opener removes them all, since its
lock proves that no other writer exists."""


def reconcile_statuses(root: Path, entries: Sequence[ImageEntry]) -> None:
    """Set each entry's status from the files: files win (a label written just before a crash is real work)."""
    labels = {n.casefold() for n in walk_files(root / LABELS_DIR)}
    predictions = {n.casefold() for n in walk_files(root / PREDICTIONS_DIR)}
    for e in entries:
        key = e.label_name.casefold()
        if key in labels:
            if e.status in ("unlabelled", "predicted"):
                e.status = "corrected"
        elif key in predictions:
            if e.status != "predicted":
                e.status = "predicted"
        else:
            e.status = "unlabelled"


def is_temporary(name: str) -> bool:
    """True for the name of an atomic write's temporary file (``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_temporaries(root: Path, inside: Callable[[Path, str], Path], max_age_s: float) -> int:
    """Remove atomic-write temporaries at least ``max_age_s`` old from the project's folders; returns how many.

    They outlive a crash or SIGKILL of a writer and are never the only copy of
    anything. Folders that a link leads outside the project are left alone.
    """
    removed = 0
    now = time.time()
    folders = [root] + [root / d for d in (LABELS_DIR, PREDICTIONS_DIR, UNCERTAINTY_DIR, COPIED_IMAGES_DIR)]
    for folder in folders:
        try:
            if not folder.is_dir():
                continue
            real = inside(folder, "folder")
        except OutsideProjectError:
            continue  # never delete anything outside the project
        walker = os.walk(real) if folder != root else [(str(real), [], os.listdir(real))]
        for dirpath, _dirs, names in walker:
            for name in names:
                if not is_temporary(name):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    if now - path.lstat().st_mtime >= max_age_s:
                        path.unlink()
                        removed += 1
    return removed
