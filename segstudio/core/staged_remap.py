"""The file side of a class change that rewrites masks: stage every rewritten mask, then move them all in.

:meth:`~segstudio.core.project.Project.set_classes` runs the transaction:

1. :func:`stage_masks` writes the rewritten version (``lut[mask]``, or a
   :data:`MaskRemap` of each file) of every label and prediction under
   ``.segstudio-staging/``; the originals are untouched. On any failure
   the staging folder is removed and nothing has changed.
2. The project file is saved with the new classes and ``staged_remap: true``:
   the commit point. If that save fails, the project rolls back (old classes in
   memory, staging removed): nothing has changed.
3. :func:`move_staged` renames the staged masks over the originals (each rename
   atomic) and the project file drops the flag. An interruption here is
   finished by the next ``move_staged`` — on the next save or on opening.

So the classes on disk and the masks on disk always agree: old with old
before the commit, new with new after it (a mask still in staging is the new
version of its label). Every path is checked with ``inside`` (symbolic links
resolved, kept inside the project).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segstudio.core.atomic import SaveError
from segstudio.core.image_io import ImageReadError, read_mask, write_mask
from segstudio.core.masks import MaskError, to_mask_dtype
from segstudio.core.project_file import LABELS_DIR, PREDICTIONS_DIR, STAGING_DIR, ProjectError, walk_files

MASK_FOLDERS = (LABELS_DIR, PREDICTIONS_DIR)

Inside = Callable[[Path, str], Path]
"""Checks that a path resolves inside the project and returns it resolved (``Project.inside``)."""

MaskRemap = Callable[[str, str, np.ndarray], np.ndarray]
"""``remap(folder, rel, mask)`` → the new mask of ``<folder>/<rel>`` (``folder``: labels or predictions), in the
new classes' dtype: a lookup table for most changes; a class change that can be undone also restores pixels."""


def discard_staging(root: Path, inside: Inside) -> None:
    """Remove the staging folder (a class change that did not commit, or leftovers)."""
    staging = root / STAGING_DIR
    if os.path.lexists(staging):
        shutil.rmtree(inside(staging, "staging folder"), ignore_errors=True)


def _ensure_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(folder, exc.strerror or str(exc)) from None


def stage_masks(root: Path, old_num_classes: int, remap: np.ndarray | MaskRemap, inside: Inside) -> int:
    """Write the rewritten version of every label and prediction into the staging folder; returns how many.

    ``remap``: a full lookup table (``lut[mask]``) or a :data:`MaskRemap` called once per file.

    Raises :class:`ProjectError` when a mask cannot be read and ``SaveError``
    when one cannot be written; in both cases the staging folder is removed.
    """
    discard_staging(root, inside)
    staging = inside(root / STAGING_DIR, "staging folder")
    count = 0
    try:
        for folder in MASK_FOLDERS:
            source = inside(root / folder, f"{folder} folder")
            for rel in sorted(walk_files(source)):
                if not rel.endswith(".png"):
                    continue
                try:
                    mask = to_mask_dtype(read_mask(inside(source / rel, "mask")), old_num_classes)
                except (ImageReadError, MaskError) as exc:
                    raise ProjectError(f"cannot rewrite {folder}/{rel}: {exc}; nothing was changed") from None
                dest = inside(staging / folder / rel, "staged mask")
                _ensure_dir(dest.parent)
                write_mask(dest, remap(folder, rel, mask) if callable(remap) else remap[mask])
                count += 1
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


def has_staged(root: Path) -> bool:
    """True when the staging folder holds masks waiting to be moved in."""
    staging = root / STAGING_DIR
    return any(walk_files(staging / folder) for folder in MASK_FOLDERS)


def staged_path(root: Path, folder: str, rel: str) -> Path:
    """Where the staged (new) version of ``folder/rel`` is while a class change is being finished."""
    return root / STAGING_DIR / folder / rel


def move_staged(root: Path, inside: Inside) -> None:
    """Rename every staged mask over its original, then remove the staging folder. Raises ``SaveError``.

    Safe to repeat after an interruption: masks already moved are no longer staged.
    """
    staging = root / STAGING_DIR
    if not os.path.lexists(staging):
        return
    staging = inside(staging, "staging folder")
    for folder in MASK_FOLDERS:
        for rel in sorted(walk_files(staging / folder)):
            dest = inside(root / folder / rel, "mask")
            _ensure_dir(dest.parent)
            try:
                os.replace(staging / folder / rel, dest)
            except OSError as exc:
                raise SaveError(dest, exc.strerror or str(exc)) from None
    shutil.rmtree(staging, ignore_errors=True)
