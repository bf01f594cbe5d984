"""A project: a folder holding ``segstudio.json``, the user's labels and the network's predictions.

Layout on disk (all paths relative to the project folder, ``/``-separated)::

    segstudio.json        schema version, class table, image list with per-image status
    segstudio.json.bak    the previous version of segstudio.json
    labels/<name>.png     the user's labels (index PNG: uint8, uint16 beyond 254 classes;
                          255 / 65535 = not labelled)
    predictions/<name>.png  the network's suggestions, kept apart from the labels
    uncertainty/<name>.png  the network's uncertainty per pixel (0..255), and scores.json

Decisions (the contract other modules rely on):

* **Images** stay where they are and are never written. Their paths in the
  project file are relative to the project folder; a path that escapes it
  (absolute, ``..``) is refused when the file is read. Images outside the
  folder are refused by :meth:`Project.add_images` unless ``copy_outside=True``,
  which copies them into ``images/`` (never moving or changing the originals).
  For images the check is on the path as written, so a symlinked image folder
  inside the project works (images are only ever read).
* **The project's own files** (project file, backup, lock, labels, predictions,
  uncertainty, staging, copies) are read and written only where their path, links
  resolved, lies inside the folder (:meth:`Project.inside`, else
  :class:`OutsideProjectError`); only regular files are read.
* **One writer.** Opening for writing takes the lock (:mod:`segstudio.core.project_lock`;
  :class:`ProjectLockedError` names another holder); ``read_only=True`` refuses every
  change (:class:`ProjectReadOnlyError`). :meth:`Project.close` releases the lock.
* **Label names** mirror the image's sub-folder: ``sub/a.jpg`` → ``labels/sub/a.png``.
  When that name is taken (``a.jpg`` and ``a.png`` side by side, or ``A.jpg`` on
  a case-insensitive disk) the image's full name is used: ``labels/sub/a.png.png``,
  then ``a.png.2.png``… The name is stored per image, so adding images later never
  renames an existing label. Predictions use the same name under ``predictions/``.
* **Status** is one of ``unlabelled``, ``predicted``, ``corrected``, ``reviewed``.
  Files on disk win over the stored status when a project is opened (a label
  saved just before a crash counts as ``corrected`` even if the status was not
  saved yet), so statuses and files never disagree.
* **Saving** is atomic (:mod:`segstudio.core.atomic`); ``save()`` first keeps the
  previous ``segstudio.json`` as ``segstudio.json.bak``. A corrupt or unreadable
  project file raises :class:`ProjectFileError` naming the backup when there is a
  usable one; ``Project.open(path, from_backup=True)`` then opens the backup and
  moves the broken file aside (``segstudio.json.corrupt``), so nothing is
  silently replaced. A file from a newer segstudio is refused, not downgraded.
* **Class changes are transactional.** Those that rewrite masks are staged
  (:mod:`segstudio.core.staged_remap`): old classes with old masks or new with new,
  whatever fails or crashes; a failed commit rolls back in memory and on disk.
* **Loaded masks are checked**: their size against the image's before decoding,
  their values against the classes (a value that is no class raises
  ``ImageReadError`` naming the file).

Thread safety: every method that changes the project or writes files holds one
re-entrant lock, so the GUI may save labels from a worker thread while the UI
thread reads. Reads of ``images``/``classes`` return snapshots and do not block.
Processes are kept apart by the project lock (one writer; readers open
read-only). What survives a crash is described in docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core import staged_remap
from segstudio.core.atomic import SaveError, atomic_write_bytes
from segstudio.core.classes import ClassTable, mask_dtype
from segstudio.core.image_io import ImageReadError, image_size, list_images, read_mask, write_mask
from segstudio.core.masks import MaskError, check_mask, remap_lut
from segstudio.core.project_file import (
    BACKUP_SUFFIX,
    LABELS_DIR,
    LOCK_FILE,
    PREDICTIONS_DIR,
    PROJECT_FILE,
    RESERVED_DIRS,
    SCHEMA_VERSION,
    STAGING_DIR,
    STATUSES,
    UNCERTAINTY_DIR,
    ImageEntry,
    OutsideProjectError,
    ProjectDocument,
    ProjectError,
    ProjectFileError,
    ProjectReadOnlyError,
    Status,
    dump_document,
    inside_root,
    is_project_text,
    is_readable_project_file,
    label_name_for,
    project_root,
    read_document,
    safe_relpath,
)
from segstudio.core.project_images import copy_image_in, split_image_paths
from segstudio.core.project_lock import ProjectLock, ProjectLockedError, acquire
from segstudio.core.project_upkeep import STALE_TEMP_AGE_S, reconcile_statuses, remove_temporaries
from segstudio.core.regular_file import read_regular_text

__all__ = [
    "BACKUP_SUFFIX", "LABELS_DIR", "LOCK_FILE", "PREDICTIONS_DIR", "PROJECT_FILE", "SCHEMA_VERSION", "STAGING_DIR",
    "STATUSES", "UNCERTAINTY_DIR", "ImageEntry", "OutsideProjectError", "Project", "ProjectError",
    "ProjectFileError", "ProjectLockedError", "ProjectReadOnlyError", "RefreshResult", "Status", "default_classes",
    "safe_relpath",
]

def default_classes() -> ClassTable:
    """``background`` and ``foreground``: the smallest table a network can be trained on (colours that show
    on dark and light images alike)."""
    return ClassTable.from_names(["background", "foreground"], [(0, 130, 200), (230, 25, 75)])


@dataclass
class RefreshResult:
    """What :meth:`Project.refresh` found: images new in the folder, and entries whose image is gone."""

    added: list[ImageEntry] = field(default_factory=list)
    missing: list[ImageEntry] = field(default_factory=list)


class Project:
    """An opened project. Create with :meth:`open` or :meth:`create`; see the module docstring for the layout."""

    def __init__(self, root: Path, classes: ClassTable, entries: Sequence[ImageEntry],
                 recursive: bool = False, image_folder: Path | None = None) -> None:
        self.root = Path(root)
        self.image_folder = Path(image_folder) if image_folder is not None else None
        """Where the images are when they are not in the project folder (see :meth:`create`), else None."""
        self._classes = classes
        self._entries: list[ImageEntry] = list(entries)
        self._by_path: dict[str, ImageEntry] = {e.path: e for e in self._entries}
        self.recursive = recursive
        self._lock = threading.RLock()
        self._saved_text: str | None = None
        self._pending_remap = False  # True between committing new classes and moving staged masks in
        self._read_only_reason: str | None = None
        self._release: Callable[[], None] | None = None

    # ----------------------------------------------------------------- opening

    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    @classmethod
    def open(cls, path: Path | str, recursive: bool = False, from_backup: bool = False,
             read_only: bool = False, program: str = "segstudio", read_only_reason: str = "opened read-only"
             ) -> Project:
        """Open a project folder, its ``segstudio.json``, or a plain folder of images.

        A plain folder (no ``segstudio.json``) becomes a project around its images
        (sub-folders too with ``recursive=True``): ``segstudio.json`` is written
        there and the images are not touched. ``from_backup=True`` opens
        ``segstudio.json.bak`` and moves the current file aside first.

        Opening for writing takes the project's lock (``program`` names this
        process in it) and raises :class:`ProjectLockedError` when another
        process holds it; ``read_only=True`` takes no lock, writes nothing and
        refuses changes (``read_only_reason`` says why, in their messages).
        Raises :class:`ProjectError` / :class:`ProjectFileError`.
        """
        root = project_root(Path(path), from_backup)
        file = root / PROJECT_FILE
        if read_only:
            return cls._open_read_only(root, from_backup, read_only_reason)
        lock = acquire(root, program)
        try:
            if from_backup:
                return cls._open_backup(root, lock)
            if not file.exists():
                return cls._create_locked(root, None, None, recursive, False, lock)
            project = cls._load(file)
            project._hold(lock)
            project._finish_staged_remap()
            project._reconcile()
            project._remove_temporaries(everything=lock is None or lock.first)
            return project
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def _open_read_only(cls, root: Path, from_backup: bool, reason: str) -> Project:
        if from_backup:
            raise ProjectError("opening the backup rewrites the project file; it cannot be done read-only")
        file = root / PROJECT_FILE
        if file.exists():
            inside_root(root, file, "project file")
            project = cls._load(file)
        else:  # a plain folder of images: a project in memory, nothing written
            project = cls(root, default_classes(), [])
            project._add_rel(project._scan())
        project._read_only_reason = reason
        project._reconcile()
        return project

    @classmethod
    def create(cls, root: Path | str, images: Iterable[Path | str] | None = None,
               classes: ClassTable | None = None, recursive: bool = False,
               copy_outside: bool = False, program: str = "segstudio", image_folder: Path | str | None = None
               ) -> Project:
        """Create a project in ``root`` (made if missing), save it and hold its lock.

        ``images``: the images to include (default: those in ``root``, found by
        suffix). Images outside ``root`` are refused unless ``copy_outside``,
        which copies them into ``root/images/``. ``image_folder``: the images
        stay in that folder (e.g. a read-only one) and the project in ``root``
        (its labels, predictions, project file) refers to them there; they are
        only ever read. ``classes`` defaults to :func:`default_classes`. Raises
        :class:`ProjectError` if ``root`` already holds a project or cannot be
        written, :class:`ProjectLockedError` if another process is creating or
        has it open.
        """
        root_path = Path(root)
        if (root_path / PROJECT_FILE).exists():
            raise ProjectError(f"{root_path} already holds a project ({PROJECT_FILE}); open it instead")
        try:
            root_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create the project folder {root_path}: {exc.strerror or exc}") from None
        lock = acquire(root_path, program)
        try:
            folder = Path(os.path.abspath(image_folder)) if image_folder is not None else None
            return cls._create_locked(root_path, images, classes, recursive, copy_outside, lock, folder)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def _create_locked(cls, root: Path, images: Iterable[Path | str] | None, classes: ClassTable | None,
                       recursive: bool, copy_outside: bool, lock: ProjectLock | None,
                       image_folder: Path | None = None) -> Project:
        if (root / PROJECT_FILE).exists():  # checked again under the lock: another process may have won
            raise ProjectError(f"{root} already holds a project ({PROJECT_FILE}); open it instead")
        project = cls(root, classes if classes is not None else default_classes(), [], recursive, image_folder)
        project._hold(lock)
        if images is None:
            project._add_rel(project._scan())
        else:
            project.add_images(images, copy_outside=copy_outside)
        try:
            project.save()
        except (SaveError, OutsideProjectError) as exc:
            reason = exc.reason if isinstance(exc, SaveError) else str(exc)
            raise ProjectError(
                f"cannot create a project in {root} ({reason}); choose a project folder you can "
                "write to (images outside it are copied in with copy_outside=True), or make the folder writable"
            ) from None
        return project

    @classmethod
    def _load(cls, file: Path, backup_hint: bool = True) -> Project:
        backup = file.with_name(file.name + BACKUP_SUFFIX) if file.name == PROJECT_FILE else None
        usable = backup if backup_hint and backup is not None and is_readable_project_file(backup) else None
        text, doc = read_document(inside_root(file.parent, file, "project file"), usable)
        project = cls(file.parent, doc.classes, doc.entries, doc.recursive,
                      Path(doc.image_folder) if doc.image_folder is not None else None)
        project._pending_remap = doc.staged_remap
        project._saved_text = text
        return project

    @classmethod
    def _open_backup(cls, root: Path, lock: ProjectLock | None) -> Project:
        file = root / PROJECT_FILE
        backup = root / (PROJECT_FILE + BACKUP_SUFFIX)
        if not backup.is_file():
            raise ProjectError(f"there is no backup {backup} to open")
        project = cls._load(backup, backup_hint=False)
        project.root = root
        project._hold(lock)
        if file.exists():
            aside = root / (PROJECT_FILE + ".corrupt")
            try:
                os.replace(project.inside(file, "project file"), project.inside(aside, "project file"))
            except OSError as exc:
                raise ProjectError(f"cannot move the broken {file} aside: {exc.strerror or exc}") from None
        project._saved_text = None
        project.save()
        project._finish_staged_remap()
        project._reconcile()
        return project

    def _hold(self, lock: ProjectLock | None) -> None:
        # The lock goes with this object: released by close(), or when the object is collected.
        self._release = weakref.finalize(self, lock.release) if lock is not None else None

    # ------------------------------------------------------ read-only, closing, paths

    @property
    def read_only(self) -> bool:
        """True when the project was opened read-only (or closed): every change raises ProjectReadOnlyError."""
        return self._read_only_reason is not None

    @property
    def read_only_reason(self) -> str | None:
        return self._read_only_reason

    def close(self) -> None:
        """Release the project's lock; the object stays readable but refuses changes. Idempotent."""
        with self._lock:
            if self._release is not None:
                self._release()
                self._release = None
            if self._read_only_reason is None:
                self._read_only_reason = "closed"

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_writable(self) -> None:
        if self._read_only_reason is not None:
            raise ProjectReadOnlyError(f"the project {self.root} is {self._read_only_reason}; nothing was changed")

    def inside(self, path: Path, what: str = "file") -> Path:
        """``path`` resolved (symbolic links included), when it lies inside the project folder.

        Every read and write of the project's own files goes through this; raises
        :class:`OutsideProjectError` for a path that a link leads outside.
        """
        return inside_root(self.root, path, what)

    # --------------------------------------------------------------- contents

    @property
    def classes(self) -> ClassTable:
        return self._classes

    @property
    def images(self) -> list[ImageEntry]:
        """A snapshot of the image entries, in project order."""
        return list(self._entries)

    def entry(self, rel: str | ImageEntry) -> ImageEntry:
        """The project's entry for an image path relative to the project, or for an entry with that path.

        An ``ImageEntry`` kept from an earlier ``open`` resolves to this project's
        own entry, so status changes land where :meth:`save` sees them.
        ``KeyError`` if the image is not in the project.
        """
        if isinstance(rel, ImageEntry):
            rel = rel.path
        key = rel.replace("\\", "/") if os.sep == "\\" else rel
        try:
            return self._by_path[key]
        except KeyError:
            raise KeyError(f"{rel!r} is not an image of the project at {self.root}") from None

    @property
    def image_root(self) -> Path:
        """The folder image paths are relative to: the project folder, or its :attr:`image_folder`."""
        return self.image_folder if self.image_folder is not None else self.root

    def image_path(self, entry: ImageEntry | str) -> Path:
        return self.image_root / self.entry(entry).path

    def label_path(self, entry: ImageEntry | str) -> Path:
        return self.root / LABELS_DIR / self.entry(entry).label_name

    def prediction_path(self, entry: ImageEntry | str) -> Path:
        return self.root / PREDICTIONS_DIR / self.entry(entry).label_name

    def image_shape(self, entry: ImageEntry | str) -> tuple[int, int]:
        """(height, width) of the image, from its header (raises ``ImageReadError``)."""
        return image_size(self.image_path(entry))

    # ------------------------------------------------------------------ masks

    def load_label(self, entry: ImageEntry | str) -> np.ndarray | None:
        """The user's label mask (H×W, uint8 or uint16 per the class count), or None if there is none.

        Raises ``ImageReadError`` naming the file when it exists but is unreadable,
        is not the image's size (checked before decoding) or holds a value that is
        no class; ``OutsideProjectError`` when a link leads it outside the project.
        """
        return self._load_mask(LABELS_DIR, self.entry(entry))

    def load_prediction(self, entry: ImageEntry | str) -> np.ndarray | None:
        """The stored prediction mask, or None (checked like :meth:`load_label`)."""
        return self._load_mask(PREDICTIONS_DIR, self.entry(entry))

    def _load_mask(self, folder: str, e: ImageEntry) -> np.ndarray | None:
        path = self.root / folder / e.label_name
        if self._pending_remap and self.read_only:
            # Another process is moving the masks of a class change in; the staged copy is the current one.
            staged = staged_remap.staged_path(self.root, folder, e.label_name)
            if os.path.lexists(staged):
                path = staged
        if not os.path.lexists(path):
            return None
        try:
            real = self.inside(path, "mask")
        except OutsideProjectError as exc:  # reported like any unreadable mask: named, and left alone
            raise ImageReadError(path, str(exc)) from None
        try:
            mask = read_mask(real, self._shape_or_none(e))
        except ImageReadError as exc:
            raise ImageReadError(path, exc.reason) from None
        try:
            return check_mask(mask, len(self._classes))
        except MaskError as exc:
            raise ImageReadError(path, f"{exc}; fix or delete this file") from None

    def save_label(self, entry: ImageEntry | str, mask: np.ndarray, status: Status = "corrected",
                   check_shape: bool = True) -> None:
        """Write the label mask atomically and set the status (``corrected`` unless told otherwise).

        The mask must hold class indices or the "not labelled" marker
        (:class:`~segstudio.core.masks.MaskError` otherwise) and, with
        ``check_shape``, match the image size. The status change is in memory
        until :meth:`save`; a label on disk counts as at least ``corrected`` on reopening.
        """
        if status not in ("corrected", "reviewed"):
            raise ValueError(f"a saved label has status corrected or reviewed, not {status!r}")
        e = self.entry(entry)
        with self._lock:
            self._check_writable()
            mask = check_mask(mask, len(self._classes), self._shape_or_none(e) if check_shape else None)
            self._write_mask(self.label_path(e), mask)
            e.status = status

    def save_prediction(self, entry: ImageEntry | str, mask: np.ndarray, check_shape: bool = True) -> None:
        """Write a prediction atomically; an unlabelled image becomes ``predicted`` (labels are kept)."""
        e = self.entry(entry)
        with self._lock:
            self._check_writable()
            mask = check_mask(mask, len(self._classes), self._shape_or_none(e) if check_shape else None)
            self._write_mask(self.prediction_path(e), mask)
            if e.status == "unlabelled":
                e.status = "predicted"

    def _write_mask(self, path: Path, mask: np.ndarray) -> None:
        # A class change whose masks are not all moved in yet is finished first: a mask written now must
        # never be overwritten later by its stale staged copy.
        self._finish_staged_remap()
        real = self.inside(path, "mask")
        self._ensure_dir(real.parent)
        write_mask(real, mask)

    def accept_prediction(self, entry: ImageEntry | str) -> None:
        """Copy the prediction into the label (status ``corrected``); ``ProjectError`` if there is none."""
        e = self.entry(entry)
        with self._lock:
            self._check_writable()
            mask = self.load_prediction(e)
            if mask is None:
                raise ProjectError(f"{e.path} has no prediction to accept")
            self.save_label(e, mask, check_shape=False)

    def delete_label(self, entry: ImageEntry | str) -> None:
        """Remove the label file; the status falls back to ``predicted`` or ``unlabelled``."""
        e = self.entry(entry)
        with self._lock:
            self._check_writable()
            self._finish_staged_remap()
            path = self.label_path(e)
            try:
                self.inside(path.parent, "labels folder")
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise SaveError(path, exc.strerror or str(exc)) from None
            e.status = "predicted" if self.prediction_path(e).exists() else "unlabelled"

    def set_status(self, entry: ImageEntry | str, status: Status) -> None:
        """Set an image's status; it must agree with the files (``corrected``/``reviewed`` need a label,
        ``predicted`` a prediction), else ``ProjectError``."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        e = self.entry(entry)
        with self._lock:
            self._check_writable()
            has_label = self.label_path(e).exists()
            if status in ("corrected", "reviewed") and not has_label:
                raise ProjectError(f"{e.path} has no label; it cannot be {status}")
            if status == "predicted" and not self.prediction_path(e).exists():
                raise ProjectError(f"{e.path} has no prediction; it cannot be predicted")
            if status in ("unlabelled", "predicted") and has_label:
                raise ProjectError(f"{e.path} has a label; delete it before marking the image {status}")
            e.status = status

    def _shape_or_none(self, e: ImageEntry) -> tuple[int, int] | None:
        try:
            return image_size(self.image_path(e))
        except ImageReadError:
            return None  # the image may be unreadable or gone; the mask itself is still the user's work

    def _ensure_dir(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SaveError(folder, exc.strerror or str(exc)) from None

    # ---------------------------------------------------------------- classes

    def set_classes(self, table: ClassTable, lut: np.ndarray | None = None,
                    remap: staged_remap.MaskRemap | None = None) -> None:
        """Replace the class table; with ``lut`` rewrite every label and prediction as ``lut[old_mask]``.

        Renaming, recolouring and adding classes need no ``lut``; removing
        classes does (see :meth:`merge_classes`). ``remap`` (with ``lut``)
        rewrites each mask file instead of the plain lookup (an undoable class
        change records or restores pixels, :mod:`segstudio.core.class_edits`).
        Masks are rewritten (staged, crash-safe) when ``lut`` is given or the
        mask dtype changes (crossing 254 classes). The project file is saved.
        The change is a transaction: when it fails (``SaveError``,
        ``ProjectError``), the classes in memory and on disk and every mask are
        as they were. A table may be empty (a new project before its first class).
        """
        with self._lock:
            self._check_writable()
            old_n, new_n = len(self._classes), len(table)
            if lut is None and new_n < old_n:
                raise ValueError("removing classes rewrites masks: pass a lookup table (see merge_classes)")
            if lut is None and mask_dtype(old_n) != mask_dtype(new_n):
                lut = np.arange(min(old_n, new_n))
            full_lut = None if lut is None else remap_lut(np.asarray(lut), old_n, new_n)
            self._finish_staged_remap()  # never stage a change over an unfinished one
            old_classes = self._classes
            if full_lut is not None:
                staged_remap.stage_masks(self.root, old_n, remap if remap is not None else full_lut, self.inside)
            self._classes = table
            self._pending_remap = full_lut is not None
            text = dump_document(self.to_json())
            try:
                self.save()  # the commit point
            except BaseException:
                # An atomic save replaced the file or left it; the file says which.
                if self._read_current() != text:
                    self._classes = old_classes
                    self._pending_remap = False
                    if full_lut is not None:
                        staged_remap.discard_staging(self.root, self.inside)
                    raise
            self._finish_staged_remap()

    def merge_classes(self, source: int, target: int) -> None:
        """Merge class ``source`` into ``target`` (later indices shift down), rewriting all masks."""
        with self._lock:
            table, lut = self._classes.merged(source, target)
            self.set_classes(table, lut)

    def _finish_staged_remap(self) -> None:
        if self.read_only:
            return
        if not self._pending_remap:
            staged_remap.discard_staging(self.root, self.inside)  # left over from a crash before the commit
            return
        staged_remap.move_staged(self.root, self.inside)
        self._pending_remap = False
        self.save()

    # ----------------------------------------------------------------- images

    def add_images(self, paths: Iterable[Path | str], copy_outside: bool = False) -> list[ImageEntry]:
        """Add image files (absolute, or relative to the project folder); returns the new entries.

        Images already in the project are skipped. An image outside the project
        folder raises :class:`ProjectError`, or with ``copy_outside`` is copied
        into ``images/`` (its name made unique). Only image suffixes are accepted.
        """
        self._check_writable()
        rels, outside = split_image_paths(self.image_root, paths)
        if outside and self.image_folder is not None:
            raise ProjectError(f"{len(outside)} image(s) lie outside the project's image folder {self.image_folder}, "
                               f"e.g. {outside[0]}")
        if outside and not copy_outside:
            raise ProjectError(
                f"{len(outside)} image(s) lie outside the project folder {self.root}, e.g. {outside[0]}; "
                "choose a project folder that contains them, or copy them in (copy_outside=True)"
            )
        with self._lock:
            rels += [copy_image_in(self.root, src, self.inside) for src in outside]
            return self._add_rel(rels)

    def _add_rel(self, rels: Iterable[str]) -> list[ImageEntry]:
        added: list[ImageEntry] = []
        with self._lock:
            taken = {e.label_name.casefold() for e in self._entries}
            for rel in rels:
                rel = safe_relpath(rel, "image path")
                if rel in self._by_path:
                    continue
                entry = ImageEntry(rel, label_name_for(rel, taken))
                taken.add(entry.label_name.casefold())
                self._entries.append(entry)
                self._by_path[rel] = entry
                added.append(entry)
        return added

    def _scan(self) -> list[str]:
        found = list_images(self.image_root, recursive=self.recursive)
        rels = [p.relative_to(self.image_root).as_posix() for p in found]
        return [r for r in rels if r.split("/")[0] not in RESERVED_DIRS]

    def refresh(self) -> RefreshResult:
        """Add images that appeared in the folder; report entries whose image file is gone (they are kept,
        with their labels, until :meth:`remove_image`)."""
        self._check_writable()
        with self._lock:
            added = self._add_rel(self._scan())
            missing = [e for e in self._entries if not self.image_path(e).is_file()]
            return RefreshResult(added, missing)

    def remove_image(self, entry: ImageEntry | str) -> None:
        """Drop an image from the project; its files (image, label, prediction) stay on disk."""
        e = self.entry(entry)
        with self._lock:
            self._check_writable()
            self._entries.remove(e)
            del self._by_path[e.path]

    def _reconcile(self) -> None:
        reconcile_statuses(self.root, self._entries)

    def _remove_temporaries(self, everything: bool) -> None:
        # Holding the lock first proves that no other writer exists: every temporary belongs to an ended one.
        remove_temporaries(self.root, self.inside, 0.0 if everything else STALE_TEMP_AGE_S)

    # ----------------------------------------------------------------- saving

    def to_json(self) -> dict[str, Any]:
        folder = str(self.image_folder) if self.image_folder is not None else None
        return ProjectDocument(self._classes, self._entries, self.recursive, self._pending_remap, folder).to_json()

    def save(self) -> None:
        """Write ``segstudio.json`` atomically, keeping the previous version as ``segstudio.json.bak``.

        Nothing is written when the content is unchanged. Raises ``SaveError``,
        ``ProjectReadOnlyError`` for a read-only project.
        """
        with self._lock:
            self._check_writable()
            text = dump_document(self.to_json())
            current = self._read_current()
            if current == text:
                self._saved_text = text
                return
            if current is not None and is_project_text(current):
                # The backup is the last good version; a corrupt file never overwrites it.
                backup = self.inside(self.root / (PROJECT_FILE + BACKUP_SUFFIX), "project backup")
                atomic_write_bytes(backup, current.encode("utf-8"))
            atomic_write_bytes(self.inside(self.file, "project file"), text.encode("utf-8"))
            self._saved_text = text

    def _read_current(self) -> str | None:
        try:
            return read_regular_text(self.inside(self.file, "project file"))
        except (OSError, UnicodeDecodeError):
            return None

    @property
    def dirty(self) -> bool:
        """True when the in-memory project differs from what was last saved or loaded."""
        text = dump_document(self.to_json())
        return text != self._saved_text

    def __repr__(self) -> str:
        ro = ", read-only" if self.read_only else ""
        return f"Project({str(self.root)!r}, {len(self._entries)} images, {len(self._classes)} classes{ro})"
