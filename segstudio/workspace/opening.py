"""What opening a folder or some images means in the app: which project, kept where, with which classes.

- A folder with a ``segstudio.json`` opens that project (read-only when another
  window or command has it open).
- A plain folder of images becomes a new project there, starting with the classes
  the app gives it (an empty table: the window then asks for classes, or takes
  the chosen model's).
- A folder without images (none in its sub-folders either) opens nothing and
  writes nothing: :class:`EmptyFolder` says so.
- A folder the user cannot write to (a system install's samples, a read-only
  share) opens all the same: its project (segstudio.json, labels, predictions)
  is kept in the user's data folder, in a folder keyed by the images' path
  (:func:`project_home`), and the images are read where they are.

Qt-free: the window runs these in a worker and shows the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import IMAGE_SUFFIXES, list_images
from segstudio.core.project import Project, ProjectError, ProjectLockedError
from segstudio.core.project_file import PROJECT_FILE

PROJECTS_DIR = "projects"
"""Where, in the user's data folder, the projects of read-only folders are kept."""


@dataclass
class EmptyFolder:
    """The folder holds no images (nothing was written)."""

    folder: Path

    def hint(self) -> str:
        kinds = ", ".join(s.lstrip(".").upper() for s in IMAGE_SUFFIXES)
        return (f"{self.folder} holds no images yet. Add images ({kinds}) to it and open it again, or drop images "
                "on this window. Nothing was written there.")


def project_home(folder: Path, data_dir: Path) -> Path:
    """The folder in the user's data folder that holds the project of the read-only image folder ``folder``:
    ``<data>/projects/<name>-<12 hex digits of the path's hash>`` (the same folder every time)."""
    absolute = os.path.abspath(folder)
    digest = hashlib.sha1(absolute.encode("utf-8")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(absolute).name).strip("._") or "images"
    return data_dir / PROJECTS_DIR / f"{name}-{digest}"


def writable(folder: Path) -> bool:
    """True when a project file can be created in ``folder`` (checked by creating and removing a file)."""
    probe = folder / f".segstudio-write-test-{os.getpid()}"
    try:
        with open(probe, "xb"):
            pass
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.unlink()
    return True


def open_or_read_only(open_writable: Callable[[], Project], root: Path) -> Project:
    """The project as ``open_writable`` opens it, or read-only when another process holds its lock."""
    try:
        return open_writable()
    except ProjectLockedError as exc:
        who = exc.holder.describe() if exc.holder is not None else "another process"
        return Project.open(root, read_only=True, read_only_reason=f"open in another segstudio window or command "
                                                                   f"({who}), so it was opened read-only")


def open_folder(path: Path, data_dir: Path, new_classes: ClassTable, program: str = "segstudio app"
                ) -> Project | EmptyFolder:
    """Open ``path`` (a project folder, its ``segstudio.json``, or a plain folder of images) as the module
    docstring says. Raises :class:`ProjectError` when it cannot be opened."""
    root = path.parent if path.is_file() else path
    if (root / PROJECT_FILE).exists() or path.is_file():
        if root.is_dir() and not writable(root):
            return Project.open(path, read_only=True, read_only_reason="in a folder you cannot write to, so it was "
                                                                         "opened read-only")
        return open_or_read_only(lambda: Project.open(path, program=program), root)
    if not root.is_dir():
        raise ProjectError(f"{root} does not exist or is not a folder")
    recursive = not list_images(root) and bool(list_images(root, recursive=True))
    if not list_images(root, recursive=recursive):
        return EmptyFolder(root)
    if writable(root):
        def create_here() -> Project:
            try:
                return Project.create(root, classes=new_classes, recursive=recursive, program=program)
            except ProjectError:
                if (root / PROJECT_FILE).exists():  # another window created it meanwhile
                    return Project.open(root, program=program)
                raise
        return open_or_read_only(create_here, root)
    return open_elsewhere(root, data_dir, new_classes, recursive, program)


def open_elsewhere(folder: Path, data_dir: Path, new_classes: ClassTable, recursive: bool,
                   program: str = "segstudio app", images: Sequence[Path] | None = None) -> Project:
    """The project of the read-only image folder ``folder``, kept in ``data_dir`` (created the first time) with
    ``images`` (default: every image of the folder; images that appeared since are added)."""
    home = project_home(folder, data_dir)
    if (home / PROJECT_FILE).exists():
        project = open_or_read_only(lambda: Project.open(home, program=program), home)
        if project.read_only:
            return project
        if images is not None:
            project.add_images(images)
        else:
            project.refresh()
        project.save()
        return project
    found = list(images) if images is not None else list_images(folder, recursive=recursive)
    return Project.create(home, images=found, classes=new_classes, recursive=recursive, program=program,
                          image_folder=folder)


def open_images(images: Sequence[Path], data_dir: Path, new_classes: ClassTable, program: str = "segstudio app"
                ) -> Project:
    """A project in the images' common folder holding them (created there, or in the user's data folder when
    that folder is read-only)."""
    folder = Path(os.path.commonpath([str(p.resolve().parent) for p in images]))

    def open_and_add() -> Project:
        if (folder / PROJECT_FILE).exists():
            project = Project.open(folder, program=program)
            project.add_images(images)
            project.save()
            return project
        return Project.create(folder, images=images, classes=new_classes, program=program)

    if (folder / PROJECT_FILE).exists() or writable(folder):
        return open_or_read_only(open_and_add, folder)
    return open_elsewhere(folder, data_dir, new_classes, recursive=False, program=program,
                          images=[p.resolve() for p in images])
