"""Adding images to a project: which given paths lie inside its folder, and copying in those that do not.

Used by :meth:`~segstudio.core.project.Project.add_images`. Images are only
ever read; a copy goes to ``images/`` under a unique name and never replaces a
different file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from segstudio.core.atomic import SaveError, atomic_write_bytes
from segstudio.core.image_io import IMAGE_SUFFIXES
from segstudio.core.project_file import COPIED_IMAGES_DIR, RESERVED_DIRS, ProjectError
from segstudio.core.regular_file import read_regular_bytes


def split_image_paths(root: Path, paths: Iterable[Path | str]) -> tuple[list[str], list[Path]]:
    """(paths relative to ``root`` of the images inside it, absolute paths of those outside).

    Raises :class:`ProjectError` for a name without an image suffix or an image
    inside one of the project's own folders (``labels/``, ``predictions/``, …).
    """
    rels: list[str] = []
    outside: list[Path] = []
    root_abs = Path(os.path.abspath(root))
    for raw in paths:
        p = Path(os.path.abspath(Path(root, raw)))
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
    return rels, outside


def copy_image_in(root: Path, src: Path, inside: Callable[[Path, str], Path]) -> str:
    """Copy ``src`` (a regular file) into ``root/images/``; returns its path relative to ``root``.

    The same image copied before is found again instead of copied twice; a
    different file of the same name gets ``<stem>-2``, ``-3``…
    """
    folder = inside(root / COPIED_IMAGES_DIR, "images folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(folder, exc.strerror or str(exc)) from None
    try:
        data = read_regular_bytes(src)
    except OSError as exc:
        raise ProjectError(f"cannot copy {src}: {exc.strerror or exc}") from None
    name, n = src.name, 1
    while (folder / name).exists():
        try:
            if read_regular_bytes(inside(folder / name, "copied image")) == data:
                return f"{COPIED_IMAGES_DIR}/{name}"  # the same image copied before
        except OSError:
            pass  # unreadable: certainly not the same image; take another name
        n += 1
        name = f"{src.stem}-{n}{src.suffix}"
    atomic_write_bytes(folder / name, data)
    return f"{COPIED_IMAGES_DIR}/{name}"
