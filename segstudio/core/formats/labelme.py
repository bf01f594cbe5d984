"""labelme JSON: one file per image with labelled polygons (polygons in, polygons out).

Export writes ``out/<label name>.json`` with one ``polygon`` shape per
connected region (largest first, see ``polygons.py`` for holes), ``imagePath``
relative to the JSON file and no embedded image data. Import reads
``polygon``, ``rectangle`` and ``circle`` shapes in file order (later ones win);
lines, points and other shape types carry no area and are skipped with a note.
Coordinates are pixel indices, as labelme draws them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segstudio.core.atomic import SaveError, atomic_write_text
from segstudio.core.classes import ClassTable, mask_dtype
from segstudio.core.formats.base import (
    ExportOptions,
    ExportReport,
    FormatError,
    ImageMatcher,
    ImportOptions,
    ImportReport,
    ProgressFn,
    Steps,
    check_output_dir,
    export_rel,
    exported_masks,
    fill_value,
    import_each,
    read_json_file,
    resolve_class_names,
    source_files,
)
from segstudio.core.formats.polygons import as_polygon_points, fill_polygon, mask_to_shapes
from segstudio.core.project import Project
from segstudio.core.project_file import ImageEntry
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

LABELME_VERSION = "5.5.0"
"""The labelme file version written; labelme 4 and 5 read it."""

AREA_SHAPES = ("polygon", "rectangle", "circle")


def mask_to_document(mask: np.ndarray, classes: ClassTable, image_path: str,
                     exclude: Iterable[int] = ()) -> dict[str, Any]:
    """A labelme document for one class mask; ``image_path`` is written as ``imagePath``."""
    skip = set(exclude)
    shapes = mask_to_shapes(mask, [c.index for c in classes if c.index not in skip])
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": [{
            "label": classes[s.class_index].name,
            "points": [[float(x), float(y)] for x, y in as_polygon_points(s.points)],
            "group_id": None,
            "description": "",
            "shape_type": "polygon",
            "flags": {},
            "mask": None,
        } for s in shapes],
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(mask.shape[0]),
        "imageWidth": int(mask.shape[1]),
    }


def shape_labels(doc: Mapping[str, Any]) -> list[str]:
    """The distinct labels of a document's area shapes, in first-seen order."""
    shapes = doc.get("shapes")
    if not isinstance(shapes, list):
        raise FormatError("a labelme file needs a 'shapes' list")
    labels = [str(s.get("label")) for s in shapes
              if isinstance(s, dict) and s.get("shape_type", "polygon") in AREA_SHAPES]
    return list(dict.fromkeys(labels))


def document_to_mask(doc: Mapping[str, Any], shape: tuple[int, int], label_to_class: Mapping[str, int],
                     fill: int, dtype: np.dtype | type) -> tuple[np.ndarray, list[str]]:
    """Rasterise a labelme document; returns the mask and notes on skipped shapes. ``FormatError`` on bad ones."""
    mask = np.full(shape, fill, dtype)
    skipped: dict[str, int] = {}
    for i, s in enumerate(doc.get("shapes") or []):
        if not isinstance(s, dict):
            raise FormatError(f"shape {i} is not an object")
        kind = s.get("shape_type") or "polygon"
        if kind not in AREA_SHAPES:
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        label = str(s.get("label"))
        try:
            pts = np.asarray(s.get("points"), np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise FormatError(f"shape {i} ({label!r}) has points that are not [x, y] pairs") from None
        if not np.isfinite(pts).all() or len(pts) == 0:
            raise FormatError(f"shape {i} ({label!r}) has no usable points")
        value = label_to_class[label]
        if kind == "rectangle":
            if len(pts) < 2:
                raise FormatError(f"rectangle {i} ({label!r}) needs two corners")
            (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
            fill_polygon(mask, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], value)
        elif kind == "circle":
            if len(pts) < 2:
                raise FormatError(f"circle {i} ({label!r}) needs a centre and a point on it")
            fill_circle(mask, pts[0], float(np.hypot(*(pts[1] - pts[0]))), value)
        else:
            fill_polygon(mask, pts, value)
    notes = [f"skipped {n} {kind} shape(s) (no area)" for kind, n in skipped.items()]
    return mask, notes


CV2_COORDINATE_LIMIT = 1 << 20
"""Centres and radii below this go to ``cv2.circle`` (int32 with shift bits); larger ones are computed here."""


def fill_circle(mask: np.ndarray, centre: np.ndarray, radius: float, value: int) -> None:
    """Paint the pixels of a filled circle in place; any finite centre and radius work (1e300 included).

    Ordinary circles are drawn by OpenCV (as before). OpenCV takes int32
    coordinates, so a centre or radius beyond :data:`CV2_COORDINATE_LIMIT` is
    rasterised here instead: the pixels of the mask within ``radius`` of the
    centre, computed in floating point over the part of the mask the circle's
    box covers (never more than the mask).
    """
    h, w = mask.shape[:2]
    cx, cy, r = float(centre[0]), float(centre[1]), max(float(radius), 0.0)
    if max(abs(cx), abs(cy), r) < CV2_COORDINATE_LIMIT:
        cv2.circle(mask, (round(cx), round(cy)), round(r), int(value), -1)
        return
    x0, x1 = max(0.0, np.floor(cx - r)), min(w - 1.0, np.ceil(cx + r))
    y0, y1 = max(0.0, np.floor(cy - r)), min(h - 1.0, np.ceil(cy + r))
    if x0 > x1 or y0 > y1:
        return  # the circle lies beside the mask
    ys, xs = np.ogrid[int(y0):int(y1) + 1, int(x0):int(x1) + 1]
    inside = np.hypot(xs - cx, ys - cy) <= r
    mask[int(y0):int(y1) + 1, int(x0):int(x1) + 1][inside] = value


def export_project(project: Project, out: Path, options: ExportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ExportReport:
    """Write ``out/<label name>.json`` per labelled image."""
    report = ExportReport()
    check_output_dir(project, out)
    for entry, mask in exported_masks(project, options, report, Steps(cancel, progress, "exporting")):
        dest = out / export_rel(entry, ".json")
        try:
            image_rel = Path(os.path.relpath(project.image_path(entry), dest.parent)).as_posix()
        except ValueError:  # Windows: the export is on another drive than the images
            image_rel = project.image_path(entry).resolve().as_posix()
        doc = mask_to_document(mask, project.classes, image_rel, options.exclude)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(dest, json.dumps(doc, indent=2, ensure_ascii=False))
        except (SaveError, OSError) as exc:
            report.errors.append((entry.path, str(exc)))
            continue
        report.written.append(dest)
    report.notes.append("polygons cannot keep holes; regions inside other regions are written after them")
    return report


def import_project(project: Project, source: Path, options: ImportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ImportReport:
    """Read every labelme ``.json`` under the folder ``source`` into the matching images."""
    report = ImportReport()
    docs: list[tuple[str, dict[str, Any]]] = []
    for rel, path in source_files(source, (".json",)):
        try:
            doc = read_json_file(path)
            if not isinstance(doc, dict):
                raise FormatError("not a labelme file")
            shape_labels(doc)
        except FormatError as exc:
            report.errors.append((rel, f"not a readable labelme file ({exc})"))
            continue
        docs.append((rel, doc))
    labels = list(dict.fromkeys(lab for _, d in docs for lab in shape_labels(d)))
    indices = resolve_class_names(project, labels, options.add_classes, report)
    label_to_class = dict(zip(labels, indices))
    fill = fill_value(project, options)
    dtype = mask_dtype(len(project.classes))
    notes: dict[str, int] = {}

    def match(matcher: ImageMatcher, rel: str, doc: dict[str, Any]) -> ImageEntry | None:
        entry = matcher.match(rel)
        image_path = doc.get("imagePath")
        if entry is None and isinstance(image_path, str):
            entry = matcher.match_image(image_path)
        return entry

    def to_mask(entry: ImageEntry, doc: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
        stated = (doc.get("imageHeight"), doc.get("imageWidth"))
        if None not in stated and stated != shape:
            raise FormatError(f"labelme says {stated[1]}×{stated[0]}, the image is {shape[1]}×{shape[0]}")
        mask, doc_notes = document_to_mask(doc, shape, label_to_class, fill, dtype)
        for note in doc_notes:
            notes[note] = notes.get(note, 0) + 1
        return mask

    import_each(project, Steps(cancel, progress, "importing").over(docs), to_mask, options, report, match)
    report.notes += [f"{note} in {n} file(s)" for note, n in notes.items()]
    return report
