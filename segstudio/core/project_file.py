"""``segstudio.json``: what it holds, how it is checked when read, and the names of a project's folders.

The file (schema 1)::

    {"kind": "segstudio project", "schema": 1,
     "classes": [{"index": 0, "name": "background", "colour": [0, 0, 0]}, ...],
     "settings": {"recursive": false},
     "images": [{"path": "sub/a.jpg", "label": "sub/a.png", "status": "unlabelled"}, ...]}

``path`` is relative to the project folder, ``label`` relative to ``labels/``
(and ``predictions/``); both are checked so that nothing read from a file can
point outside the project (see :func:`safe_relpath`). ``staged_remap: true``
appears only while a class change is moving rewritten masks in (see
:mod:`segstudio.core.project`). :class:`~segstudio.core.project.Project` is
the API; this module is its file format.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

from segstudio.core import safe_json
from segstudio.core.classes import ClassTable
from segstudio.core.regular_file import describe_mode, read_regular_text

Status = Literal["unlabelled", "predicted", "corrected", "reviewed"]
STATUSES: tuple[Status, ...] = ("unlabelled", "predicted", "corrected", "reviewed")

SCHEMA_VERSION = 1
PROJECT_FILE = "segstudio.json"
BACKUP_SUFFIX = ".bak"
LABELS_DIR = "labels"
PREDICTIONS_DIR = "predictions"
COPIED_IMAGES_DIR = "images"
STAGING_DIR = ".segstudio-staging"
UNCERTAINTY_DIR = "uncertainty"
"""The model's per-pixel uncertainty beside each prediction (written by the desktop app)."""
TRAINING_DIR = ".segstudio-training"
"""Fine-tuning inside the project: the held-out split, the runs' logs and checkpoint, the model versions."""
RESERVED_DIRS = (LABELS_DIR, PREDICTIONS_DIR, UNCERTAINTY_DIR, STAGING_DIR, TRAINING_DIR)
"""Folders of the project itself; never scanned for images."""

LOCK_FILE = ".segstudio.lock"
"""Held by the one process that may write the project (see :mod:`segstudio.core.project_lock`)."""

KIND = "segstudio project"
MAX_PROJECT_FILE_BYTES = 1 << 30
"""A project file larger than this (1 GB, some ten million images) is refused by its size."""


class ProjectError(Exception):
    """A project that cannot be opened, created or changed; the message says why and what to do."""


class ProjectFileError(ProjectError):
    """``segstudio.json`` is unreadable, corrupt, from a newer segstudio or refers outside the project.

    ``backup`` is the path of a usable ``segstudio.json.bak`` when there is one
    (open it with ``Project.open(path, from_backup=True)``), else ``None``.
    """

    def __init__(self, path: Path, reason: str, backup: Path | None = None) -> None:
        hint = f"; a backup exists: {backup} (open it with from_backup=True)" if backup else ""
        super().__init__(f"cannot open project file {path}: {reason}{hint}")
        self.path = path
        self.reason = reason
        self.backup = backup


@dataclass
class ImageEntry:
    """One image of a project: ``path`` relative to the project folder, its label file name and status."""

    path: str
    label_name: str
    status: Status = "unlabelled"

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "label": self.label_name, "status": self.status}


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relpath(text: object, what: str = "path") -> str:
    """A relative, ``/``-separated path that stays inside its folder; ``ValueError`` otherwise.

    Refuses absolute paths, drive letters, ``..`` components (with either slash)
    and empty or NUL-containing names; drops ``.`` components.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} is empty or not text: {text!r}")
    if "\x00" in text:
        raise ValueError(f"{what} contains a NUL character: {text!r}")
    if text.startswith(("/", "\\")) or _DRIVE.match(text):
        raise ValueError(f"{what} {text!r} is absolute; paths must be relative to the project folder")
    if any(part == ".." for part in re.split(r"[/\\]", text)):
        raise ValueError(f"{what} {text!r} escapes the project folder")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError(f"{what} {text!r} names no file")
    return "/".join(parts)


class ProjectReadOnlyError(ProjectError):
    """A change asked of a project opened read-only (or closed); nothing was changed."""


def project_root(p: Path, from_backup: bool = False) -> Path:
    """The project folder that ``p`` names: the folder itself, or the folder of its ``segstudio.json``.

    ``ProjectError`` for another file, or a path that does not exist (the file may be missing when
    ``from_backup``: its backup is opened).
    """
    if p.is_file() and p.suffix.lower() != ".json":
        raise ProjectError(f"{p} is a file; open the folder that holds the images, or its {PROJECT_FILE}")
    if p.is_file() or p.suffix.lower() == ".json":
        if p.name != PROJECT_FILE:
            raise ProjectError(f"{p} is not a project file ({PROJECT_FILE}); open the project folder instead")
        if not p.is_file() and not from_backup:
            raise ProjectError(f"{p} does not exist")
        return p.parent
    if p.is_dir():
        return p
    if p.exists():  # a FIFO, a device, a socket
        raise ProjectError(f"{p} is {describe_mode(p.stat().st_mode)}; choose a folder of images or a segstudio.json")
    raise ProjectError(f"{p} does not exist; choose a folder of images or a segstudio.json")


class OutsideProjectError(ProjectError):
    """A path the project would read or write resolves (through a symbolic link) outside the project folder."""


def inside_root(root: Path, path: Path, what: str = "path") -> Path:
    """``path`` with every symbolic link resolved, when that lies inside ``root`` (resolved too).

    Raises :class:`OutsideProjectError` otherwise: the project reads and writes
    its own files (project file, labels, predictions, staging, copies) only
    inside its folder, whatever links the folder holds.
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise OutsideProjectError(
            f"the {what} {path} resolves to {real}, outside the project folder {real_root}; segstudio reads and "
            "writes a project's files only inside its folder (remove the symbolic link)"
        )
    return Path(real)


def label_name_for(rel: str, taken: set[str]) -> str:
    """The label file name for image ``rel``, not in ``taken`` (casefolded names already used).

    ``sub/a.jpg`` → ``sub/a.png``; if taken, ``sub/a.jpg.png``; then ``sub/a.jpg.2.png``, …
    """
    candidates = [PurePosixPath(rel).with_suffix(".png").as_posix(), f"{rel}.png"]
    for name in candidates:
        if name.casefold() not in taken:
            return name
    n = 2
    while f"{rel}.{n}.png".casefold() in taken:
        n += 1
    return f"{rel}.{n}.png"


def walk_files(folder: Path) -> set[str]:
    """Relative ``/`` paths of the regular, non-hidden files under ``folder`` (empty if absent)."""
    found: set[str] = set()
    if not folder.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(folder).as_posix()
        for name in filenames:
            if not name.startswith("."):
                found.add(name if rel_dir == "." else f"{rel_dir}/{name}")
    return found


@dataclass
class ProjectDocument:
    """The content of a project file, checked."""

    classes: ClassTable
    entries: Sequence[ImageEntry]
    recursive: bool = False
    staged_remap: bool = False
    image_folder: str | None = None
    """Where the images are, when not in the project folder (absolute: a read-only folder whose project is kept
    in the user's data folder); image paths are relative to it."""

    def to_json(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"recursive": self.recursive}
        if self.image_folder is not None:
            settings["image_folder"] = self.image_folder
        doc: dict[str, Any] = {
            "kind": KIND,
            "schema": SCHEMA_VERSION,
            "classes": self.classes.to_json(),
            "settings": settings,
            "images": [e.to_json() for e in self.entries],
        }
        if self.staged_remap:
            doc["staged_remap"] = True
        return doc


def dump_document(doc: dict[str, Any]) -> str:
    """The text written to disk (stable, so that an unchanged project writes nothing)."""
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def is_project_text(text: str) -> bool:
    """True when ``text`` is JSON that at least claims to be a project file (fit to become the backup)."""
    try:
        doc = safe_json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("kind") == KIND


def is_readable_project_file(path: Path) -> bool:
    try:
        read_document(path, None)
    except ProjectError:
        return False
    return True


def read_document(file: Path, backup: Path | None) -> tuple[str, ProjectDocument]:
    """Read and check a project file: ``(text, document)``.

    Raises :class:`ProjectFileError` (carrying ``backup``) naming the first
    problem: unreadable, not JSON, not a project, newer schema, invalid classes,
    an unsafe or duplicate path, an unknown status.
    """

    def fail(reason: str) -> ProjectFileError:
        return ProjectFileError(file, reason, backup)

    try:
        text = read_regular_text(file, MAX_PROJECT_FILE_BYTES)
    except UnicodeDecodeError:
        raise fail("it is not UTF-8 text") from None
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    try:
        doc = safe_json.loads(text)
    except safe_json.JsonTooDeepError as exc:
        raise fail(f"it is not a project file: its JSON is {exc.msg}") from None
    except json.JSONDecodeError as exc:
        raise fail(f"it is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise fail("it is not a segstudio project file")
    schema = doc.get("schema")
    if not isinstance(schema, int):
        raise fail("it has no schema version")
    if schema > SCHEMA_VERSION:
        raise ProjectFileError(file, f"it was written by a newer segstudio (schema {schema}; this version reads "
                                     f"up to {SCHEMA_VERSION}); update segstudio to open it", None)
    try:
        classes = ClassTable.from_json(doc.get("classes", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"its class table is invalid ({exc})") from None
    raw_images = doc.get("images", [])
    if not isinstance(raw_images, list):
        raise fail("its image list is not a list")
    entries: list[ImageEntry] = []
    seen_paths: set[str] = set()
    seen_labels: set[str] = set()
    for i, item in enumerate(raw_images):
        if not isinstance(item, dict):
            raise fail(f"image entry {i} is not an object")
        try:
            path = safe_relpath(item.get("path"), "image path")
            label = safe_relpath(item.get("label"), "label name")
        except ValueError as exc:
            raise fail(str(exc)) from None
        if PurePosixPath(path).parts[0] in RESERVED_DIRS:
            raise fail(f"image path {path!r} lies in a folder reserved for the project ({path.split('/')[0]}/)")
        if not label.endswith(".png"):
            raise fail(f"label name {label!r} does not end in .png")
        status = item.get("status", "unlabelled")
        if status not in STATUSES:
            raise fail(f"image {path!r} has an unknown status {status!r} (one of {', '.join(STATUSES)})")
        if path in seen_paths:
            raise fail(f"image {path!r} is listed twice")
        if label.casefold() in seen_labels:
            raise fail(f"label name {label!r} is used by two images")
        seen_paths.add(path)
        seen_labels.add(label.casefold())
        entries.append(ImageEntry(path, label, cast(Status, status)))
    settings = doc.get("settings", {})
    recursive = bool(settings.get("recursive", False)) if isinstance(settings, dict) else False
    image_folder = settings.get("image_folder") if isinstance(settings, dict) else None
    if image_folder is not None and (not isinstance(image_folder, str) or not os.path.isabs(image_folder)):
        raise fail(f"its image folder {image_folder!r} is not an absolute path")
    return text, ProjectDocument(classes, entries, recursive, bool(doc.get("staged_remap", False)), image_folder)
