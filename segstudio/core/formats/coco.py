"""COCO JSON: one file for the whole project, a region per class (RLE, lossless) or per connected part (polygons).

Export writes ``images`` (``file_name`` = the image path relative to the
project), ``categories`` (id = class index + 1, as COCO reserves 0) and
``annotations``. With RLE (default) each class present in an image is one
annotation whose compressed RLE is exactly that class's pixels; pixels not
labelled are in no annotation, so a round trip is lossless. With polygons each
connected region is one annotation (holes cannot be kept, see ``polygons.py``).
Polygon coordinates follow COCO's continuous convention (pixel (x, y) spans
[x, x+1) × [y, y+1)) and are traced so that pycocotools rasterises exactly the
region's pixels.

Import reads RLE (compressed or plain counts) and polygon segmentations,
painting annotations in file order (later ones win), matching ``file_name`` to
project images and category names to classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from segstudio import __version__
from segstudio.core.atomic import SaveError, atomic_write_text
from segstudio.core.classes import ClassTable, mask_dtype
from segstudio.core.formats import rle
from segstudio.core.formats.base import (
    ExportOptions,
    ExportReport,
    FormatError,
    ImportOptions,
    ImportReport,
    ProgressFn,
    Steps,
    check_output_dir,
    exported_masks,
    fill_value,
    import_each,
    read_json_file,
    resolve_class_names,
)
from segstudio.core.formats.polygons import as_polygon_points, fill_polygon, mask_to_shapes
from segstudio.core.project import Project
from segstudio.core.project_file import ImageEntry
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

PIXEL_CENTRE = 0.5
"""COCO coordinates are continuous: pixel (x, y) spans [x, x+1) × [y, y+1), its centre is +0.5."""


def category_id(class_index: int) -> int:
    return class_index + 1


def categories(classes: ClassTable, exclude: Iterable[int] = ()) -> list[dict[str, Any]]:
    skip = set(exclude)
    return [{"id": category_id(c.index), "name": c.name, "supercategory": "", "color": list(c.colour)}
            for c in classes if c.index not in skip]


def mask_to_annotations(mask: np.ndarray, num_classes: int, image_id: int, first_id: int,
                        polygons: bool = False, exclude: Iterable[int] = ()) -> list[dict[str, Any]]:
    """COCO annotations of one class mask; ids count up from ``first_id``."""
    skip = set(exclude)
    classes = [c for c in range(num_classes) if c not in skip]
    anns: list[dict[str, Any]] = []
    if not polygons:
        for c in classes:
            region = mask == c
            if not region.any():
                continue
            anns.append({
                "id": first_id + len(anns), "image_id": image_id, "category_id": category_id(c),
                "segmentation": rle.encode(region), "area": int(np.count_nonzero(region)),
                "bbox": rle.bbox(region), "iscrowd": 0,
            })
        return anns
    for shape in mask_to_shapes(mask, classes, continuous=True):
        pts = as_polygon_points(shape.points)
        # The pixels this polygon covers, for the area and box: rasterised in pixel-index coordinates.
        centre_pts = pts - PIXEL_CENTRE
        x0, y0 = np.floor(centre_pts.min(axis=0) + 0.5)
        x1, y1 = np.floor(centre_pts.max(axis=0) + 0.5)
        local = np.zeros((int(y1 - y0) + 1, int(x1 - x0) + 1), np.uint8)
        fill_polygon(local, centre_pts - (x0, y0), 1)
        anns.append({
            "id": first_id + len(anns), "image_id": image_id, "category_id": category_id(shape.class_index),
            "segmentation": [[float(v) for v in pts.ravel()]],
            "area": int(local.sum()), "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
            "iscrowd": 0,
        })
    return anns


def annotations_to_mask(anns: Iterable[Mapping[str, Any]], shape: tuple[int, int],
                        category_to_class: Mapping[int, int], fill: int, dtype: np.dtype | type) -> np.ndarray:
    """Paint annotations (RLE or polygons) in order onto a mask filled with ``fill``. ``FormatError`` on bad ones."""
    h, w = shape
    mask = np.full(shape, fill, dtype)
    for ann in anns:
        cat = ann.get("category_id")
        if not isinstance(cat, int) or cat not in category_to_class:
            raise FormatError(f"annotation {_shown(ann.get('id'))} has an unknown category_id {_shown(cat)}")
        value = category_to_class[cat]
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            try:
                region = rle.decode(seg, shape=(h, w))  # the size is checked before anything is decoded
            except rle.RleError as exc:
                raise FormatError(f"annotation {_shown(ann.get('id'))}: {exc}") from None
            mask[region] = value
        elif isinstance(seg, list):
            for poly in seg:
                if not isinstance(poly, list) or len(poly) < 2 or len(poly) % 2 or \
                        not all(isinstance(v, (int, float)) for v in poly):
                    raise FormatError(f"annotation {_shown(ann.get('id'))}: a polygon is a flat list of x, y numbers")
                try:
                    fill_polygon(mask, np.asarray(poly, np.float64).reshape(-1, 2) - PIXEL_CENTRE, value)
                except ValueError as exc:
                    raise FormatError(f"annotation {_shown(ann.get('id'))}: {exc}") from None
        else:
            raise FormatError(f"annotation {_shown(ann.get('id'))} has no segmentation (RLE or polygons)")
    return mask


def _shown(value: object) -> str:
    """A value from the file, for a message: short, whatever its type."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def output_file(out: Path) -> Path:
    """``out`` itself when it names a .json file, else ``out/annotations.json``."""
    return out if out.suffix.lower() == ".json" else out / "annotations.json"


def export_project(project: Project, out: Path, options: ExportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ExportReport:
    """Write one COCO JSON for every labelled image (``out`` is a .json path or a folder)."""
    report = ExportReport()
    dest = output_file(out)
    check_output_dir(project, dest.parent)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    n = len(project.classes)
    for entry, mask in exported_masks(project, options, report, Steps(cancel, progress, "exporting")):
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": entry.path, "width": int(mask.shape[1]),
                       "height": int(mask.shape[0])})
        annotations += mask_to_annotations(mask, n, image_id, len(annotations) + 1, options.polygons,
                                           options.exclude)
    doc = {
        "info": {"description": f"exported by segstudio {__version__} from {project.root.name}",
                 "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories(project.classes, options.exclude),
    }
    try:
        atomic_write_text(dest, json.dumps(doc, ensure_ascii=False))
    except SaveError as exc:
        report.errors.append((str(dest), exc.reason))
        return report
    report.written.append(dest)
    if options.polygons:
        report.notes.append("polygons cannot keep holes; regions inside other regions are listed after them")
    return report


def _load(source: Path) -> dict[str, Any]:
    doc = read_json_file(source)
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                    "categories")):
        raise FormatError(f"{source} is not a COCO file (it needs lists 'images', 'annotations', 'categories')")
    return doc


def import_project(project: Project, source: Path, options: ImportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ImportReport:
    """Read a COCO JSON file into the matching project images."""
    if source.is_dir():
        source = output_file(source)
    doc = _load(source)
    report = ImportReport()
    cats = [c for c in doc["categories"] if isinstance(c, dict) and isinstance(c.get("id"), int) and "name" in c]
    indices = resolve_class_names(project, [str(c["name"]) for c in cats], options.add_classes, report)
    category_to_class = {c["id"]: i for c, i in zip(cats, indices)}
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in doc["annotations"]:
        if isinstance(ann, dict) and isinstance(ann.get("image_id"), (int, str)):
            by_image.setdefault(ann.get("image_id"), []).append(ann)
    n = len(project.classes)
    fill = fill_value(project, options)

    def named(images: Iterable[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for img in images:
            if not isinstance(img, dict) or not isinstance(img.get("file_name"), str):
                report.errors.append((str(img)[:60], "an image needs a file_name"))
                continue
            yield img["file_name"], img

    def annotations_of(img: dict[str, Any]) -> list[dict[str, Any]]:
        return by_image.get(img.get("id"), []) if isinstance(img.get("id"), (int, str)) else []

    def to_mask(entry: ImageEntry, img: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
        if (img.get("height"), img.get("width")) != shape and "height" in img:
            raise FormatError(f"COCO says {img.get('width')}×{img.get('height')}, the image is "
                              f"{shape[1]}×{shape[0]}")
        return annotations_to_mask(annotations_of(img), shape, category_to_class, fill, mask_dtype(n))

    return import_each(project, named(Steps(cancel, progress, "importing").over(doc["images"])), to_mask,
                       options, report, match=lambda matcher, name, img: matcher.match_image(name),
                       skip=lambda img: "no annotations" if not annotations_of(img) and options.background is None
                       else None)
