"""VOC-style palette PNG: 8-bit indexed PNG whose index is the class and whose palette shows it (lossless).

As in PASCAL VOC ``SegmentationClass``: index = class, 255 = not labelled
(VOC's "void", drawn in VOC's cream (224, 224, 192)). The palette holds the
project's class colours, so the files look right in any viewer, and tools that
read the indices (as VOC tools do) get the classes. Up to 254 classes (a
palette has 256 entries). Import also accepts colour-coded RGB masks whose
colours are the project's class colours.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.atomic import SaveError, atomic_write_bytes
from segstudio.core.classes import MAX_CLASSES_8BIT, UNLABELLED, ClassTable, voc_palette
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
    import_mask_files,
    source_files,
)
from segstudio.core.image_io import ImageReadError, read_image, read_mask
from segstudio.core.masks import apply_value_map
from segstudio.core.project import Project
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

VOID_COLOUR = (224, 224, 192)
"""The colour VOC uses for index 255 (object borders and "difficult" regions)."""


def palette_for(classes: ClassTable) -> list[int]:
    """768 palette bytes: class colours at their indices, VOC colours elsewhere, VOC void at 255."""
    colours = voc_palette(256)
    for c in classes:
        colours[c.index] = c.colour
    colours[UNLABELLED] = VOID_COLOUR
    return [v for rgb in colours for v in rgb]


def encode(mask: np.ndarray, classes: ClassTable) -> bytes:
    """Palette PNG bytes of a uint8 class mask (``FormatError`` beyond 254 classes)."""
    if len(classes) > MAX_CLASSES_8BIT or mask.dtype != np.uint8:
        raise FormatError(f"a VOC palette PNG holds at most {MAX_CLASSES_8BIT} classes (8-bit indices)")
    h, w = mask.shape
    im = Image.frombytes("P", (w, h), np.ascontiguousarray(mask).tobytes())
    im.putpalette(palette_for(classes))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def decode_colours(rgb: np.ndarray, classes: ClassTable) -> np.ndarray:
    """Class mask of an RGB colour-coded mask: class colours → classes, black/void → not labelled.

    Black is "not labelled" only when no class is black. Unknown colours raise
    ``FormatError`` listing them.
    """
    key = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lookup = {}
    for rgb_void in (VOID_COLOUR, (0, 0, 0)):
        lookup[(rgb_void[0] << 16) | (rgb_void[1] << 8) | rgb_void[2]] = UNLABELLED
    for c in classes:
        lookup[(c.colour[0] << 16) | (c.colour[1] << 8) | c.colour[2]] = c.index
    uniq, inverse = np.unique(key, return_inverse=True)
    unknown = [int(u) for u in uniq if int(u) not in lookup]
    if unknown:
        shown = ", ".join(f"({u >> 16}, {(u >> 8) & 255}, {u & 255})" for u in unknown[:6])
        raise FormatError(f"colours {shown}{' …' if len(unknown) > 6 else ''} are no class colour of the project")
    values = np.array([lookup[int(u)] for u in uniq], np.uint8)
    return values[inverse.reshape(key.shape)]


def read_voc(path: Path, classes: ClassTable, options: ImportOptions) -> np.ndarray:
    """Class mask of a VOC palette PNG (indices through ``options.value_map``) or an RGB colour mask."""
    try:
        values = read_mask(path)
    except ImageReadError as exc:
        if "one channel" not in exc.reason:
            raise
        loaded = read_image(path)
        if loaded.channels != 3 or loaded.bit_depth != 8:
            raise ImageReadError(path, "a VOC mask is a palette PNG or an 8-bit RGB colour mask") from None
        return decode_colours(loaded.data, classes)
    return apply_value_map(values, len(classes), options.value_map, options.unmapped)


def import_project(project: Project, source: Path, options: ImportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ImportReport:
    """Read every VOC mask (``.png``) under the folder ``source`` into the matching images."""
    files = Steps(cancel, progress, "importing").over(source_files(source, (".png",)))
    return import_mask_files(project, files, lambda p: read_voc(p, project.classes, options), options)


def export_project(project: Project, out: Path, options: ExportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ExportReport:
    """Write each label as a palette PNG ``out/<label name>.png`` (lossless)."""
    if len(project.classes) > MAX_CLASSES_8BIT:
        raise FormatError(f"VOC palette PNGs hold at most {MAX_CLASSES_8BIT} classes; "
                          f"the project has {len(project.classes)} (export index PNGs instead)")
    report = ExportReport()
    check_output_dir(project, out)
    for entry, mask in exported_masks(project, options, report, Steps(cancel, progress, "exporting")):
        dest = out / export_rel(entry, ".png")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, encode(mask, project.classes))
        except (SaveError, OSError) as exc:
            report.errors.append((entry.path, str(exc)))
            continue
        report.written.append(dest)
    if options.exclude:
        report.notes.append("VOC masks keep every class; --exclude does not apply to this format")
    return report
