"""Import and export of label formats: index PNG, VOC palette PNG, binary masks, COCO, labelme, YOLO-seg.

:data:`FORMATS` is the one catalogue of formats, read by the command line and
the app alike: a format's name, what it is, where its labels come from, whether
it keeps every pixel, and the module that implements it. Like the network zoo,
the catalogue is pure metadata (standard library only): a format's module
(``segstudio.core.formats.<module>``, with ``import_project`` /
``export_project`` over a :class:`~segstudio.core.project.Project`) is imported
the first time one of its functions is asked for, so that ``segstudio --help``
lists the formats without loading numpy or OpenCV. :func:`get_format` finds one
by name.

Add a format by writing its module and one :class:`Format` line here
(CONTRIBUTING.md, "Adding a format").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segstudio.core.formats.base import (
        ExportOptions,
        ExportReport,
        FormatError,
        ImportOptions,
        ImportReport,
    )

__all__ = [
    "FORMATS",
    "ExportOptions",
    "ExportReport",
    "Format",
    "FormatError",
    "ImportOptions",
    "ImportReport",
    "format_names",
    "get_format",
]


@dataclass(frozen=True)
class Format:
    """A label format: its name on the command line, what it is, and the module that reads and writes it."""

    name: str
    title: str
    """One line for listings and ``--help``."""
    source: str
    """What the import reads."""
    lossless: bool
    """Whether an export keeps every pixel (and "not labelled") exactly."""
    module: str
    """The module under ``segstudio.core.formats`` with ``import_project`` and ``export_project``."""

    def implementation(self) -> ModuleType:
        """The format's module, imported now."""
        return importlib.import_module(f"{__name__}.{self.module}")

    @property
    def import_project(self) -> Callable[..., ImportReport]:
        """``(project, source, options, cancel=NEVER_CANCELLED, progress=None) -> ImportReport``"""
        function: Callable[..., ImportReport] = self.implementation().import_project
        return function

    @property
    def export_project(self) -> Callable[..., ExportReport]:
        """``(project, out, options, cancel=NEVER_CANCELLED, progress=None) -> ExportReport``"""
        function: Callable[..., ExportReport] = self.implementation().export_project
        return function


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("index", "index PNG: pixel value = class index, 255 = not labelled",
           "a folder of PNG/TIFF index maps named like the images", True, "index_png"),
    Format("voc", "VOC-style palette PNG: index = class, palette = class colours, 255 = void",
           "a folder of palette PNGs (or RGB colour masks) named like the images", True, "voc"),
    Format("binary", "black/white masks: one folder with a value map, or one folder per class",
           "a folder of masks named like the images (needs --map), or sub-folders named after classes", False,
           "binary"),
    Format("coco", "COCO JSON: RLE (lossless) or polygons, one file for the project",
           "a COCO .json file", True, "coco"),
    Format("labelme", "labelme JSON: polygons, one file per image",
           "a folder of labelme .json files", False, "labelme"),
    Format("yolo", "YOLO segmentation text: normalised polygons, one .txt per image",
           "a folder of .txt files (with classes.txt or data.yaml for the names)", False, "yolo"),
)}
"""Every format, by the name the CLI uses, in the order they are listed."""


def format_names() -> list[str]:
    """The formats' names, in catalogue order."""
    return list(FORMATS)


def get_format(name: str) -> Format:
    """The format called ``name`` (``KeyError`` listing the valid names)."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; formats: {', '.join(FORMATS)}") from None


_FROM_BASE = frozenset({"ExportOptions", "ExportReport", "FormatError", "ImportOptions", "ImportReport"})


def __getattr__(name: str) -> Any:
    """The options, reports and error of :mod:`~segstudio.core.formats.base`, imported when first asked for."""
    if name in _FROM_BASE:
        from segstudio.core.formats import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
