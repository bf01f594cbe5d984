"""Index PNG: one grayscale PNG per image whose pixel values are class indices (lossless).

This is the project's own label format (``labels/<name>.png``): uint8 with
255 = not labelled, uint16 with 65535 = not labelled beyond 254 classes.
Importing also reads foreign index maps — 8/16-bit PNG (palette PNGs give their
indices) or single-channel integer TIFF — through a value→class map (CamVid:
``11=unlabelled``; ISBI: ``0=membrane,255=cell``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from segstudio.core.atomic import SaveError
from segstudio.core.formats.base import (
    ExportOptions,
    ExportReport,
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
from segstudio.core.image_io import ImageReadError, encode_mask_png, read_mask, sniff_format, write_mask
from segstudio.core.masks import apply_value_map
from segstudio.core.project import Project
from segstudio.core.regular_file import read_regular_bytes
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

SOURCE_SUFFIXES = (".png", ".tif", ".tiff")


def read_index_map(path: Path) -> np.ndarray:
    """The raw values of a foreign index map (PNG or single-channel integer TIFF), 2-D.

    Raises ``ImageReadError`` with the reason (colour image, float data, unreadable).
    """
    try:
        data = read_regular_bytes(path)
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from None
    if sniff_format(data[:16]) != "tiff":
        return read_mask(path)
    import tifffile

    try:
        arr = np.asarray(tifffile.imread(io.BytesIO(data), key=0))
    except Exception as exc:  # tifffile raises many types for broken files
        raise ImageReadError(path, f"the TIFF data is truncated or corrupt ({exc})") from None
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ImageReadError(path, f"an index map has one channel; this TIFF has shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise ImageReadError(path, f"an index map holds integers; this TIFF holds {arr.dtype}")
    return arr


def decode(values: np.ndarray, num_classes: int, options: ImportOptions) -> np.ndarray:
    """A class mask from raw index-map values (see :func:`segstudio.core.masks.apply_value_map`)."""
    return apply_value_map(values, num_classes, options.value_map, options.unmapped)


def encode(mask: np.ndarray) -> bytes:
    """PNG bytes of a class mask, values unchanged."""
    return encode_mask_png(mask)


def import_project(project: Project, source: Path, options: ImportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ImportReport:
    """Read every index map under the folder ``source`` into the project's matching images."""
    files = Steps(cancel, progress, "importing").over(source_files(source, SOURCE_SUFFIXES))
    n = len(project.classes)
    return import_mask_files(project, files, lambda p: decode(read_index_map(p), n, options), options)


def export_project(project: Project, out: Path, options: ExportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ExportReport:
    """Write each label as ``out/<label name>.png``, exactly as stored (lossless)."""
    report = ExportReport()
    check_output_dir(project, out)
    for entry, mask in exported_masks(project, options, report, Steps(cancel, progress, "exporting")):
        dest = out / export_rel(entry, ".png")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_mask(dest, mask)
        except (SaveError, OSError) as exc:
            report.errors.append((entry.path, str(exc)))
            continue
        report.written.append(dest)
    if options.exclude:
        report.notes.append("index PNGs keep every class; --exclude does not apply to this format")
    return report
