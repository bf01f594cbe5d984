"""Where segstudio's shipped files are: ``resources/`` (sample images, icons) and ``models/`` (trained models).

They sit in one of three places, looked up in this order:

1. a frozen app (PyInstaller): the bundle's data folder, ``sys._MEIPASS``
   (``<app>/_internal`` for a one-folder build);
2. a source checkout: beside the ``segstudio`` package (``<repo>/resources``);
3. an installed wheel: ``<prefix>/share/segstudio/`` (pyproject's ``data-files``),
   where ``<prefix>`` is the environment's ``sys.prefix``, the base prefix, or the
   user base of a ``pip install --user``.

The first candidate that holds a ``resources/`` folder wins; ``models/`` is
taken from the same place (it may be missing or empty: no model shipped yet).
Standard library only, so the CLI, the GUI and the build recipe can all use it.
"""

from __future__ import annotations

import contextlib
import os
import site
import sys
from collections.abc import Sequence
from pathlib import Path

SHARE_SUBDIR = Path("share") / "segstudio"
"""Where a wheel installs resources/ and models/, relative to the install prefix."""

PACKAGE_DIR = Path(__file__).resolve().parent

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)
"""The PNG sizes rendered from the SVG icon (packaging/render_icons.py)."""


def candidate_roots(package_dir: Path, prefixes: Sequence[str | Path], frozen_dir: str | Path | None) -> list[Path]:
    """The folders that may hold ``resources/`` and ``models/``, most specific first (duplicates removed)."""
    roots: list[Path] = []
    if frozen_dir:
        roots.append(Path(frozen_dir))
    roots.append(package_dir.parent)
    roots.extend(Path(p) / SHARE_SUBDIR for p in prefixes if p)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def _holds_our_data(root: Path, beside_package: bool) -> bool:
    if not (root / "resources").is_dir():
        return False
    # An installed package's parent is site-packages, where another distribution may have dropped a
    # top-level resources/ folder: beside the package only a source checkout (with its pyproject) counts.
    return not beside_package or (root / "pyproject.toml").is_file()


def find_data_root(package_dir: Path, prefixes: Sequence[str | Path], frozen_dir: str | Path | None) -> Path:
    """The first candidate root that holds segstudio's ``resources/`` folder, else the first candidate.

    Falling back to a candidate (rather than raising) lets callers report the
    missing folder by its path ("…/resources/samples holds no images").
    """
    roots = candidate_roots(package_dir, prefixes, frozen_dir)
    frozen = Path(frozen_dir) if frozen_dir else None
    for root in roots:
        if _holds_our_data(root, beside_package=root == package_dir.parent and root != frozen):
            return root
    return roots[0]


def _install_prefixes() -> list[str]:
    prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix]
    with contextlib.suppress(AttributeError, OSError):  # some embedded interpreters lack a user site
        prefixes.append(site.getuserbase())
    return prefixes


def data_root() -> Path:
    """The folder holding this installation's ``resources/`` and ``models/``."""
    return find_data_root(PACKAGE_DIR, _install_prefixes(), getattr(sys, "_MEIPASS", None))


def resources_dir() -> Path:
    """The shipped ``resources/`` folder (sample images with their licence, icons)."""
    return data_root() / "resources"


def models_dir() -> Path:
    """The shipped ``models/`` folder (trained model files; may not exist before a model is shipped)."""
    return data_root() / "models"


def icon_path(size: int | None = None) -> Path:
    """The app icon: the SVG, or the PNG rendered at ``size`` pixels (one of :data:`ICON_SIZES`)."""
    name = "segstudio.svg" if size is None else f"segstudio-{size}.png"
    return resources_dir() / "icons" / name


DEFAULT_MODEL = "camvid-fastscnn"
"""The shipped default model: what ``segstudio segment`` uses when no ``--model`` is given, and the model the
sample images open with."""

MODEL_SUFFIXES = (".onnx", ".safetensors")


class ModelNotFoundError(ValueError):
    """``--model`` names neither a model file nor a shipped model; the message lists the shipped ones."""


def shipped_models(folder: Path | None = None) -> list[Path]:
    """The model files shipped in ``models/`` (or ``folder``), the default model's first."""
    where = models_dir() if folder is None else folder
    if not where.is_dir():
        return []
    found = sorted(p for p in where.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES)
    return sorted(found, key=lambda p: p.stem != DEFAULT_MODEL)


def find_model(text: str | Path | None, prefer: Sequence[str] = MODEL_SUFFIXES, folder: Path | None = None) -> Path:
    """The model file ``text`` names: a path to a model file, or the name of a shipped model
    (``camvid-fastscnn``: its file with the first suffix of ``prefer`` that is shipped). ``None``: the
    shipped default model. Raises :class:`ModelNotFoundError` naming the shipped models."""
    name = DEFAULT_MODEL if text is None or str(text) == "" else str(text)
    path = Path(name)
    if os.path.lexists(path) and not path.is_dir():
        return path  # a file (or a FIFO, a device: the model loader refuses those with the reason)
    shipped = shipped_models(folder)
    if path.suffix not in MODEL_SUFFIXES and path.name == name:  # a bare name, not a path that is missing
        for suffix in prefer:
            found = next((p for p in shipped if p.stem == name and p.suffix == suffix), None)
            if found is not None:
                return found
    names = sorted({p.stem for p in shipped})
    listed = f"shipped models: {', '.join(names)}" if names else f"no model is shipped in {folder or models_dir()}"
    if text is None:
        raise ModelNotFoundError(f"no --model given and the default model {DEFAULT_MODEL} is not installed "
                                 f"({listed}); give a model file with --model")
    what = "the model file" if path.suffix in MODEL_SUFFIXES or path.name != name else "no model file or shipped model"
    raise ModelNotFoundError(f"{what} {name} " + ("does not exist" if what == "the model file" else "found")
                             + f" ({listed})")
