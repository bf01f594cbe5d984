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
  The check is on the path as written (no symlink resolution), so a symlinked
  image folder inside the project works.
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
* **Class changes** that rewrite masks (merging, crossing the 254-class uint8
  limit) are staged: rewritten masks go to ``.segstudio-staging/`` first, then the
  project file records the new classes, then the files are moved in. A crash at
  any point leaves old classes with old masks or new classes with new masks;
  opening the project finishes an interrupted move.

Thread safety: every method that changes the project or writes files holds one
re-entrant lock, so the GUI may save labels from a worker thread while the UI
thread reads. Reads of ``images``/``classes`` return snapshots and do not block.
Two processes writing the same project are not coordinated (last save wins,
each file stays whole).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.atomic import SaveError, atomic_write_bytes
from segstudio.core.classes import ClassTable, mask_dtype
from segstudio.core.image_io import IMAGE_SUFFIXES, ImageReadError, image_size, list_images, read_mask, write_mask
from segstudio.core.masks import MaskError, check_mask, remap_lut, to_mask_dtype
from segstudio.core.project_file import (
    BACKUP_SUFFIX,
    COPIED_IMAGES_DIR,
    LABELS_DIR,
    PREDICTIONS_DIR,
    PROJECT_FILE,
    RESERVED_DIRS,
    SCHEMA_VERSION,
    STAGING_DIR,
    STATUSES,
    UNCERTAINTY_DIR,
    ImageEntry,
    ProjectDocument,
    ProjectError,
    ProjectFileError,
    Status,
    dump_document,
    is_project_text,
    is_readable_project_file,
    label_name_for,
    read_document,
    safe_relpath,
    walk_files,
)

__all__ = [
    "BACKUP_SUFFIX", "LABELS_DIR", "PREDICTIONS_DIR", "PROJECT_FILE", "SCHEMA_VERSION", "STAGING_DIR", "STATUSES",
    "UNCERTAINTY_DIR", "ImageEntry", "Project", "ProjectError", "ProjectFileError", "RefreshResult", "Status",
    "default_classes", "safe_relpath",
]

STALE_TEMP_AGE_S = 600.0
"""Temporary files of interrupted saves older than this are removed when a project is opened."""


def default_classes() -> ClassTable:
    """``background`` and ``foreground``: the smallest table a network can be trained on."""
    return ClassTable.from_names(["background", "foreground"], [(0, 0, 0), (230, 25, 75)])


@dataclass
class RefreshResult:
    """What :meth:`Project.refresh` found: images new in the folder, and entries whose image is gone."""

    added: list[ImageEntry] = field(default_factory=list)
    missing: list[ImageEntry] = field(default_factory=list)


class Project:
    """An opened project. Create with :meth:`open` or :meth:`create`; see the module docstring for the layout."""

    def __init__(self, root: Path, classes: ClassTable, entries: Sequence[ImageEntry],
                 recursive: bool = False) -> None:
        self.root = Path(root)
        self._classes = classes
        self._entries: list[ImageEntry] = list(entries)
        self._by_path: dict[str, ImageEntry] = {e.path: e for e in self._entries}
        self.recursive = recursive
        self._lock = threading.RLock()
        self._saved_text: str | None = None
        self._pending_remap = False  # True between committing new classes and moving staged masks in

    # ----------------------------------------------------------------- opening

    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    @classmethod
    def open(cls, path: Path | str, recursive: bool = False, from_backup: bool = False) -> Project:
        """Open a project folder, its ``segstudio.json``, or a plain folder of images.

        A plain folder (no ``segstudio.json``) becomes a project around its images
        (sub-folders too with ``recursive=True``): ``segstudio.json`` is written
        there and the images are not touched. ``from_backup=True`` opens
        ``segstudio.json.bak`` and moves the current file aside first.
        Raises :class:`ProjectError` / :class:`ProjectFileError`.
        """
        p = Path(path)
        if p.is_file() and p.suffix.lower() != ".json":
            raise ProjectError(f"{p} is a file; open the folder that holds the images, or its {PROJECT_FILE}")
        if p.is_file() or p.suffix.lower() == ".json":
            if p.name != PROJECT_FILE:
                raise ProjectError(f"{p} is not a project file ({PROJECT_FILE}); open the project folder instead")
            if not p.is_file() and not from_backup:
                raise ProjectError(f"{p} does not exist")
            root = p.parent
        elif p.is_dir():
            root = p
        else:
            raise ProjectError(f"{p} does not exist; choose a folder of images or a segstudio.json")
        file = root / PROJECT_FILE
        if from_backup:
            return cls._open_backup(root)
        if not file.exists():
            return cls.create(root, recursive=recursive)
        project = cls._load(file)
        project._finish_staged_remap()
        project._reconcile()
        project._remove_stale_temporaries()
        return project

    @classmethod
    def create(cls, root: Path | str, images: Iterable[Path | str] | None = None,
               classes: ClassTable | None = None, recursive: bool = False,
               copy_outside: bool = False) -> Project:
        """Create a project in ``root`` (made if missing) and save it.

        ``images``: the images to include (default: those in ``root``, found by
        suffix). Images outside ``root`` are refused unless ``copy_outside``,
        which copies them into ``root/images/``. ``classes`` defaults to
        :func:`default_classes`. Raises :class:`ProjectError` if ``root`` already
        holds a project or cannot be written.
        """
        root_path = Path(root)
        if (root_path / PROJECT_FILE).exists():
            raise ProjectError(f"{root_path} already holds a project ({PROJECT_FILE}); open it instead")
        try:
            root_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create the project folder {root_path}: {exc.strerror or exc}") from None
        project = cls(root_path, classes if classes is not None else default_classes(), [], recursive)
        if images is None:
            project._add_rel(project._scan())
        else:
            project.add_images(images, copy_outside=copy_outside)
        try:
            project.save()
        except SaveError as exc:
            raise ProjectError(
                f"cannot create a project in {root_path} ({exc.reason}); choose a project folder you can "
                "write to (images outside it are copied in with copy_outside=True), or make the folder writable"
            ) from None
        return project

    @classmethod
    def _load(cls, file: Path, backup_hint: bool = True) -> Project:
        backup = file.with_name(file.name + BACKUP_SUFFIX) if file.name == PROJECT_FILE else None
        usable = backup if backup_hint and backup is not None and is_readable_project_file(backup) else None
        text, doc = read_document(file, usable)
        project = cls(file.parent, doc.classes, doc.entries, doc.recursive)
        project._pending_remap = doc.staged_remap
        project._saved_text = text
        return project

    @classmethod
    def _open_backup(cls, root: Path) -> Project:
        file = root / PROJECT_FILE
        backup = root / (PROJECT_FILE + BACKUP_SUFFIX)
        if not backup.is_file():
            raise ProjectError(f"there is no backup {backup} to open")
        project = cls._load(backup, backup_hint=False)
        project.root = root
        if file.exists():
            aside = root / (PROJECT_FILE + ".corrupt")
            try:
                os.replace(file, aside)
            except OSError as exc:
                raise ProjectError(f"cannot move the broken {file} aside: {exc.strerror or exc}") from None
        project._saved_text = None
        project.save()
        project._finish_staged_remap()
        project._reconcile()
        return project

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

    def image_path(self, entry: ImageEntry | str) -> Path:
        return self.root / self.entry(entry).path

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

        Raises ``ImageReadError`` when the file exists but is unreadable.
        """
        return self._load_mask(self.label_path(entry))

    def load_prediction(self, entry: ImageEntry | str) -> np.ndarray | None:
        """The stored prediction mask, or None."""
        return self._load_mask(self.prediction_path(entry))

    def _load_mask(self, path: Path) -> np.ndarray | None:
        if not path.exists():
            return None
        mask = read_mask(path)
        try:
            return to_mask_dtype(mask, len(self._classes))
        except MaskError as exc:
            raise ImageReadError(path, str(exc)) from None

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
            mask = check_mask(mask, len(self._classes), self._shape_or_none(e) if check_shape else None)
            path = self.label_path(e)
            self._ensure_dir(path.parent)
            write_mask(path, mask)
            e.status = status

    def save_prediction(self, entry: ImageEntry | str, mask: np.ndarray, check_shape: bool = True) -> None:
        """Write a prediction atomically; an unlabelled image becomes ``predicted`` (labels are kept)."""
        e = self.entry(entry)
        with self._lock:
            mask = check_mask(mask, len(self._classes), self._shape_or_none(e) if check_shape else None)
            path = self.prediction_path(e)
            self._ensure_dir(path.parent)
            write_mask(path, mask)
            if e.status == "unlabelled":
                e.status = "predicted"

    def accept_prediction(self, entry: ImageEntry | str) -> None:
        """Copy the prediction into the label (status ``corrected``); ``ProjectError`` if there is none."""
        e = self.entry(entry)
        with self._lock:
            mask = self.load_prediction(e)
            if mask is None:
                raise ProjectError(f"{e.path} has no prediction to accept")
            self.save_label(e, mask, check_shape=False)

    def delete_label(self, entry: ImageEntry | str) -> None:
        """Remove the label file; the status falls back to ``predicted`` or ``unlabelled``."""
        e = self.entry(entry)
        with self._lock:
            path = self.label_path(e)
            try:
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

    def set_classes(self, table: ClassTable, lut: np.ndarray | None = None) -> None:
        """Replace the class table; with ``lut`` rewrite every label and prediction as ``lut[old_mask]``.

        Renaming, recolouring and adding classes need no ``lut``; removing
        classes does (see :meth:`merge_classes`). Masks are rewritten (staged,
        crash-safe) when ``lut`` is given or the mask dtype changes (crossing 254
        classes). The project file is saved.
        """
        if len(table) < 1:
            raise ValueError("a project needs at least one class")
        with self._lock:
            old_n, new_n = len(self._classes), len(table)
            if lut is None and new_n < old_n:
                raise ValueError("removing classes rewrites masks: pass a lookup table (see merge_classes)")
            if lut is None and mask_dtype(old_n) != mask_dtype(new_n):
                lut = np.arange(min(old_n, new_n))
            if lut is None:
                self._classes = table
                self.save()
                return
            self._remap_masks(table, remap_lut(np.asarray(lut), old_n, new_n))

    def merge_classes(self, source: int, target: int) -> None:
        """Merge class ``source`` into ``target`` (later indices shift down), rewriting all masks."""
        with self._lock:
            table, lut = self._classes.merged(source, target)
            self.set_classes(table, lut)

    def _remap_masks(self, table: ClassTable, full_lut: np.ndarray) -> None:
        staging = self.root / STAGING_DIR
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        old_n = len(self._classes)
        # 1. Every rewritten mask goes to the staging folder; the originals are untouched.
        for folder in (LABELS_DIR, PREDICTIONS_DIR):
            for rel in sorted(walk_files(self.root / folder)):
                if not rel.endswith(".png"):
                    continue
                try:
                    mask = to_mask_dtype(read_mask(self.root / folder / rel), old_n)
                except (ImageReadError, MaskError) as exc:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise ProjectError(f"cannot rewrite {folder}/{rel}: {exc}; nothing was changed") from None
                dest = staging / folder / rel
                self._ensure_dir(dest.parent)
                write_mask(dest, full_lut[mask])
        # 2. The project file commits to the new classes; from here on opening finishes the move.
        self._classes = table
        self._pending_remap = True
        self.save()
        self._finish_staged_remap()

    def _finish_staged_remap(self) -> None:
        staging = self.root / STAGING_DIR
        if not self._pending_remap:
            if staging.exists():  # left over from a crash before the commit: the old masks still hold
                shutil.rmtree(staging, ignore_errors=True)
            return
        for folder in (LABELS_DIR, PREDICTIONS_DIR):
            for rel in sorted(walk_files(staging / folder)):
                dest = self.root / folder / rel
                self._ensure_dir(dest.parent)
                try:
                    os.replace(staging / folder / rel, dest)
                except OSError as exc:
                    raise SaveError(dest, exc.strerror or str(exc)) from None
        shutil.rmtree(staging, ignore_errors=True)
        self._pending_remap = False
        self.save()

    # ----------------------------------------------------------------- images

    def add_images(self, paths: Iterable[Path | str], copy_outside: bool = False) -> list[ImageEntry]:
        """Add image files (absolute, or relative to the project folder); returns the new entries.

        Images already in the project are skipped. An image outside the project
        folder raises :class:`ProjectError`, or with ``copy_outside`` is copied
        into ``images/`` (its name made unique). Only image suffixes are accepted.
        """
        rels: list[str] = []
        outside: list[Path] = []
        root_abs = Path(os.path.abspath(self.root))
        for raw in paths:
            p = Path(os.path.abspath(Path(self.root, raw)))
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise ProjectError(f"{raw} is not an image file ({', '.join(IMAGE_SUFFIXES)})")
            try:
                rel = p.relative_to(root_abs).as_posix()
            except ValueError:
                outside.append(p)
                continue
            if rel.split("/")[0] in RESERVED_DIRS:
                raise ProjectError(f"{raw} lies in {rel.split('/')[0]}/, which the project keeps for its own files")
            rels.append(rel)
        if outside and not copy_outside:
            raise ProjectError(
                f"{len(outside)} image(s) lie outside the project folder {self.root}, e.g. {outside[0]}; "
                "choose a project folder that contains them, or copy them in (copy_outside=True)"
            )
        with self._lock:
            for src in outside:
                rels.append(self._copy_in(src))
            return self._add_rel(rels)

    def _copy_in(self, src: Path) -> str:
        folder = self.root / COPIED_IMAGES_DIR
        self._ensure_dir(folder)
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise ProjectError(f"cannot copy {src}: {exc.strerror or exc}") from None
        name, n = src.name, 1
        while (folder / name).exists():
            if (folder / name).read_bytes() == data:
                return f"{COPIED_IMAGES_DIR}/{name}"  # the same image copied before
            n += 1
            name = f"{src.stem}-{n}{src.suffix}"
        atomic_write_bytes(folder / name, data)
        return f"{COPIED_IMAGES_DIR}/{name}"

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
        found = list_images(self.root, recursive=self.recursive)
        rels = [p.relative_to(self.root).as_posix() for p in found]
        return [r for r in rels if r.split("/")[0] not in RESERVED_DIRS]

    def refresh(self) -> RefreshResult:
        """Add images that appeared in the folder; report entries whose image file is gone (they are kept,
        with their labels, until :meth:`remove_image`)."""
        with self._lock:
            added = self._add_rel(self._scan())
            missing = [e for e in self._entries if not self.image_path(e).is_file()]
            return RefreshResult(added, missing)

    def remove_image(self, entry: ImageEntry | str) -> None:
        """Drop an image from the project; its files (image, label, prediction) stay on disk."""
        e = self.entry(entry)
        with self._lock:
            self._entries.remove(e)
            del self._by_path[e.path]

    def _reconcile(self) -> None:
        # Files win over the stored status: a label written just before a crash is real work.
        labels = {n.casefold() for n in walk_files(self.root / LABELS_DIR)}
        predictions = {n.casefold() for n in walk_files(self.root / PREDICTIONS_DIR)}
        for e in self._entries:
            key = e.label_name.casefold()
            if key in labels:
                if e.status in ("unlabelled", "predicted"):
                    e.status = "corrected"
            elif key in predictions:
                if e.status != "predicted":
                    e.status = "predicted"
            else:
                e.status = "unlabelled"

    def _remove_stale_temporaries(self, max_age_s: float = STALE_TEMP_AGE_S) -> None:
        # Temporaries of atomic writes (".<name>.<random>.tmp") outlive a crash or SIGKILL. They are
        # never the only copy of anything; old ones cannot belong to a write still under way.
        now = time.time()
        folders = [self.root] + [self.root / d for d in (LABELS_DIR, PREDICTIONS_DIR, UNCERTAINTY_DIR,
                                                          COPIED_IMAGES_DIR)]
        for folder in folders:
            if not folder.is_dir():
                continue
            walker = os.walk(folder) if folder != self.root else [(str(folder), [], os.listdir(folder))]
            for dirpath, _dirs, names in walker:
                for name in names:
                    if not (name.startswith(".") and name.endswith(".tmp")):
                        continue
                    path = Path(dirpath) / name
                    with contextlib.suppress(OSError):
                        if now - path.stat().st_mtime > max_age_s:
                            path.unlink()

    # ----------------------------------------------------------------- saving

    def to_json(self) -> dict[str, Any]:
        return ProjectDocument(self._classes, self._entries, self.recursive, self._pending_remap).to_json()

    def save(self) -> None:
        """Write ``segstudio.json`` atomically, keeping the previous version as ``segstudio.json.bak``.

        Nothing is written when the content is unchanged. Raises ``SaveError``.
        """
        with self._lock:
            text = dump_document(self.to_json())
            current = self._read_current()
            if current == text:
                self._saved_text = text
                return
            if current is not None and is_project_text(current):
                # The backup is the last good version; a corrupt file never overwrites it.
                atomic_write_bytes(self.root / (PROJECT_FILE + BACKUP_SUFFIX), current.encode("utf-8"))
            atomic_write_bytes(self.file, text.encode("utf-8"))
            self._saved_text = text

    def _read_current(self) -> str | None:
        try:
            return self.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    @property
    def dirty(self) -> bool:
        """True when the in-memory project differs from what was last saved or loaded."""
        text = dump_document(self.to_json())
        return text != self._saved_text

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, {len(self._entries)} images, {len(self._classes)} classes)"



