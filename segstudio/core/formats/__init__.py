"""Import and export of label formats: index PNG, VOC palette PNG, binary masks, COCO, labelme, YOLO-seg.

Each format is a module with per-mask functions and ``import_project`` /
``export_project`` over a :class:`~segstudio.core.project.Project`;
:data:`FORMATS` lists them for the CLI and the GUI, :func:`get_format` finds one
by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from segstudio.core.formats import binary, coco, index_png, labelme, voc, yolo
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
    "get_format",
]


@dataclass(frozen=True)
class Format:
    """A label format: its name on the command line, what it is, and its project-level functions."""

    name: str
    title: str
    source: str
    lossless: bool
    import_project: Callable[..., ImportReport]
    """``(project, source, options, cancel=NEVER_CANCELLED, progress=None) -> ImportReport``"""
    export_project: Callable[..., ExportReport]
    """``(project, out, options, cancel=NEVER_CANCELLED, progress=None) -> ExportReport``"""


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("index", "index PNG: pixel value = class index, 255 = not labelled",
           "a folder of PNG/TIFF index maps named like the images", True,
           index_png.import_project, index_png.export_project),
    Format("voc", "VOC-style palette PNG: index = class, palette = class colours, 255 = void",
           "a folder of palette PNGs (or RGB colour masks) named like the images", True,
           voc.import_project, voc.export_project),
    Format("binary", "black/white masks: one folder with a value map, or one folder per class",
           "a folder of masks named like the images (needs --map), or sub-folders named after classes", False,
           binary.import_project, binary.export_project),
    Format("coco", "COCO JSON: RLE (lossless) or polygons, one file for the project",
           "a COCO .json file", True,
           coco.import_project, coco.export_project),
    Format("labelme", "labelme JSON: polygons, one file per image",
           "a folder of labelme .json files", False,
           labelme.import_project, labelme.export_project),
    Format("yolo", "YOLO segmentation text: normalised polygons, one .txt per image",
           "a folder of .txt files (with classes.txt or data.yaml for the names)", False,
           yolo.import_project, yolo.export_project),
)}
"""Every format, by the name the CLI uses."""


def get_format(name: str) -> Format:
    """The format called ``name`` (``KeyError`` listing the valid names)."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; formats: {', '.join(FORMATS)}") from None
