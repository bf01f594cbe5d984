"""YOLO segmentation text: one ``.txt`` per image, a line ``class x1 y1 x2 y2 …`` per polygon.

Coordinates are normalised to 0..1 by the image width and height (pixel index
convention, as Ultralytics rasterises them). Class ids are 0..n-1 over the
exported classes; ``classes.txt`` (one name per line) and ``data.yaml``
(``names:``) next to the text files say which is which. Import reads the names
from ``classes.txt`` or ``data.yaml`` in the source folder (or its parent) and
matches them to project classes; without either, ids are project class indices.
Pixels no polygon covers become ``background`` or stay not labelled. Polygons
cannot keep holes (see ``polygons.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segstudio.core.atomic import SaveError, atomic_write_text
from segstudio.core.classes import mask_dtype
from segstudio.core.formats.base import (
    ExportOptions,
    ExportReport,
    FormatError,
    ImportOptions,
    ImportReport,
    ProgressFn,
    Steps,
    check_output_dir,
    export_rel,
    exported_masks,
    fill_value,
    import_each,
    read_text_file,
    resolve_class_names,
    source_files,
)
from segstudio.core.formats.polygons import as_polygon_points, fill_polygon, mask_to_shapes
from segstudio.core.project import Project
from segstudio.core.project_file import ImageEntry
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

NAME_FILES = ("classes.txt", "data.yaml")


def mask_to_text(mask: np.ndarray, yolo_ids: Mapping[int, int]) -> str:
    """The YOLO-seg lines of one class mask; ``yolo_ids`` maps project class → YOLO id (others are skipped)."""
    h, w = mask.shape
    lines = []
    for s in mask_to_shapes(mask, yolo_ids.keys()):
        pts = as_polygon_points(s.points)
        coords = " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in pts)
        lines.append(f"{yolo_ids[s.class_index]} {coords}")
    return "\n".join(lines) + ("\n" if lines else "")


def text_to_mask(text: str, shape: tuple[int, int], yolo_to_class: Mapping[int, int], fill: int,
                 dtype: np.dtype | type) -> np.ndarray:
    """Rasterise YOLO-seg lines in order; ``FormatError`` names the bad line."""
    h, w = shape
    mask = np.full(shape, fill, dtype)
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            yolo_id = int(parts[0])
            coords = np.array([float(v) for v in parts[1:]], np.float64)
        except ValueError:
            raise FormatError(f"line {n} is not 'class x1 y1 x2 y2 …' numbers") from None
        if coords.size < 2 or coords.size % 2:
            raise FormatError(f"line {n} needs pairs of x y coordinates after the class id")
        if yolo_id not in yolo_to_class:
            raise FormatError(f"line {n} has class id {yolo_id}, which no class name or project class matches")
        pts = coords.reshape(-1, 2) * (w, h)
        try:
            fill_polygon(mask, pts, yolo_to_class[yolo_id])
        except ValueError as exc:
            raise FormatError(f"line {n}: {exc}") from None
    return mask


def read_names(folder: Path) -> list[str] | None:
    """Class names from ``classes.txt`` or ``data.yaml`` (``names:`` as a list or an id mapping), or None."""
    for where in (folder, folder.parent):
        txt = where / "classes.txt"
        if txt.is_file():
            return [line.strip() for line in read_text_file(txt).splitlines() if line.strip()]
        yaml = where / "data.yaml"
        if yaml.is_file():
            names = _names_from_yaml(read_text_file(yaml))
            if names is not None:
                return names
    return None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return json.loads(text) if text[0] == '"' else text[1:-1].replace("''", "'")
    return text


def _names_from_yaml(text: str) -> list[str] | None:
    # Just the two shapes of ``names:`` that YOLO data files use; no general YAML.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names:\s*(.*)$", line)
        if not m:
            continue
        rest = m.group(1).strip()
        if rest.startswith("["):
            inner = rest.strip("[]")
            return [_unquote(v) for v in re.findall(r"'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|[^,]+", inner)
                    if v.strip()]
        found: dict[int, str] = {}
        for item in lines[i + 1:]:
            m2 = re.match(r"^\s+(\d+)\s*:\s*(.+)$", item)
            if not m2:
                break
            found[int(m2.group(1))] = _unquote(m2.group(2))
        if found and sorted(found) == list(range(len(found))):
            return [found[k] for k in range(len(found))]
    return None


def names_yaml(names: Sequence[str]) -> str:
    """A ``data.yaml`` naming the classes (JSON-quoted strings are valid YAML)."""
    lines = [f"nc: {len(names)}", "names:"]
    lines += [f"  {i}: {json.dumps(n, ensure_ascii=False)}" for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"


def export_project(project: Project, out: Path, options: ExportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ExportReport:
    """Write ``out/<label name>.txt`` per labelled image, plus ``classes.txt`` and ``data.yaml``."""
    report = ExportReport()
    check_output_dir(project, out)
    kept = [c for c in project.classes if c.index not in options.exclude]
    yolo_ids = {c.index: i for i, c in enumerate(kept)}
    for entry, mask in exported_masks(project, options, report, Steps(cancel, progress, "exporting")):
        dest = out / export_rel(entry, ".txt")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(dest, mask_to_text(mask, yolo_ids))
        except (SaveError, OSError) as exc:
            report.errors.append((entry.path, str(exc)))
            continue
        report.written.append(dest)
    names = [c.name for c in kept]
    for name, text in (("classes.txt", "\n".join(names) + "\n"), ("data.yaml", names_yaml(names))):
        try:
            atomic_write_text(out / name, text)
        except SaveError as exc:
            report.errors.append((name, exc.reason))
            continue
        report.written.append(out / name)
    report.notes.append("polygons cannot keep holes; regions inside other regions are written after them")
    return report


def import_project(project: Project, source: Path, options: ImportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ImportReport:
    """Read every YOLO-seg ``.txt`` under the folder ``source`` into the matching images."""
    report = ImportReport()
    names = read_names(source)
    if names is not None:
        indices = resolve_class_names(project, names, options.add_classes, report)
        yolo_to_class = dict(enumerate(indices))
    else:
        yolo_to_class = {i: i for i in range(len(project.classes))}
        report.notes.append("no classes.txt or data.yaml: YOLO class ids taken as project class indices")
    fill = fill_value(project, options)
    dtype = mask_dtype(len(project.classes))

    def to_mask(entry: ImageEntry, path: Path, shape: tuple[int, int]) -> np.ndarray:
        return text_to_mask(read_text_file(path), shape, yolo_to_class, fill, dtype)

    files = Steps(cancel, progress, "importing").over(source_files(source, (".txt",)))
    return import_each(project, ((rel, path) for rel, path in files if rel not in NAME_FILES), to_mask, options,
                       report)
