"""Binary masks: black/white images, one per image (with a value map) or one per class and image.

Two layouts are read:

* **one folder of masks** (e.g. ISBI: 0 = membrane, 255 = cell). Each mask is
  made black/white first — for 8-bit files a pixel is "on" from 128 up (0/1
  masks: from 1 up), so JPEG noise does not matter — and the value map says
  which class "off" (0) and "on" (255) are: ``0=membrane,255=cell``.
* **one folder per class** (``SOURCE/<class name>/<image>.png``, as written by
  export): "on" pixels get that class; where classes overlap the later class in
  the project's order wins; pixels no class covers become ``background`` or
  stay not labelled.

Export writes the second layout, 0/255 uint8 PNGs. Binary masks cannot say
"not labelled": such pixels are "off" in every class mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.atomic import SaveError
from segstudio.core.classes import mask_dtype
from segstudio.core.formats.base import (
    Claims,
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
    folder_name,
    image_shape,
    import_mask_files,
    source_files,
    store,
)
from segstudio.core.image_io import IMAGE_SUFFIXES, ImageReadError, image_size, read_image, write_mask
from segstudio.core.masks import apply_value_map
from segstudio.core.project import Project
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

ON, OFF = 255, 0


def binarise(data: np.ndarray) -> np.ndarray:
    """Boolean "on" pixels of an H×W or H×W×C image (any channel on counts)."""
    a = data if data.ndim == 2 else data.max(axis=2)
    if a.dtype == bool:
        return a
    if a.size and int(a.max()) <= 1:
        return a >= 1
    half = 32768 if a.dtype == np.uint16 else 128
    return a >= half


def read_binary(path: Path) -> np.ndarray:
    """The "on" pixels of a mask file in any format :func:`read_image` reads."""
    return binarise(read_image(path).data)


def decode(on: np.ndarray, num_classes: int, options: ImportOptions) -> np.ndarray:
    """Class mask from "on" pixels through ``options.value_map`` (keys 0 = off, 255 = on)."""
    if not options.value_map:
        raise FormatError("binary masks need a value map saying what 0 and 255 are, e.g. 0=background,255=cell")
    values = np.where(on, np.uint8(ON), np.uint8(OFF))
    return apply_value_map(values, num_classes, options.value_map, options.unmapped)


def encode(mask: np.ndarray, class_index: int) -> np.ndarray:
    """0/255 uint8 mask of one class."""
    return np.where(mask == class_index, np.uint8(ON), np.uint8(OFF))


def _class_folders(project: Project, source: Path) -> dict[int, Path]:
    by_name = {folder_name(n).casefold(): i for i, n in enumerate(project.classes.names)}
    found: dict[int, Path] = {}
    for sub in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        index = by_name.get(sub.name.casefold())
        if index is not None:
            found[index] = sub
    return found


def import_project(project: Project, source: Path, options: ImportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ImportReport:
    """Import binary masks from ``source`` (one folder with a value map, or one folder per class)."""
    if not source.is_dir():
        raise FormatError(f"{source} is not a folder")
    per_class = _class_folders(project, source)
    if per_class and not options.value_map:
        return _import_per_class(project, per_class, options, Steps(cancel, progress, "importing"))
    return _import_single(project, source, options, Steps(cancel, progress, "importing"))


def _import_single(project: Project, source: Path, options: ImportOptions, steps: Steps) -> ImportReport:
    if not options.value_map:
        raise FormatError(
            "binary masks need a value map saying what 0 and 255 are, e.g. 0=background,255=cell "
            f"(or sub-folders named after the classes: {', '.join(project.classes.names)})"
        )
    files = steps.over(source_files(source, IMAGE_SUFFIXES))
    return import_mask_files(project, files, lambda p: decode(read_binary(p), len(project.classes), options), options,
                             size_of=image_size)


def _import_per_class(project: Project, folders: dict[int, Path], options: ImportOptions, steps: Steps
                      ) -> ImportReport:
    report = ImportReport()
    matcher = ImageMatcher(project.images)
    per_entry: dict[str, list[tuple[int, str, Path]]] = {}
    for index, folder in sorted(folders.items()):
        claims = Claims()  # one mask per image in each class folder
        for rel, path in source_files(folder, IMAGE_SUFFIXES):
            entry = matcher.match(rel)
            shown = f"{folder.name}/{rel}"
            if entry is None:
                report.unmatched.append(shown)
                continue
            if not claims.claim(entry, shown, report):
                continue
            per_entry.setdefault(entry.path, []).append((index, shown, path))
    fill = fill_value(project, options)
    dtype = mask_dtype(len(project.classes))
    overlaps = 0
    for entry in steps.over(project.images):
        layers = per_entry.get(entry.path)
        if not layers:
            continue
        try:
            shape = image_shape(project, entry)
        except FormatError as exc:
            report.errors.append((entry.path, str(exc)))
            continue
        mask = np.full(shape, fill, dtype)
        covered = np.zeros(shape, bool)
        failed = False
        for index, shown, path in layers:
            try:
                size = image_size(path)
                if size != shape:  # refused from the header, before the mask is decoded
                    raise ImageReadError(path, f"the mask is {size[1]}×{size[0]} but {entry.path} is "
                                               f"{shape[1]}×{shape[0]}")
                on = read_binary(path)
            except ImageReadError as exc:
                report.errors.append((shown, exc.reason))
                failed = True
                break
            if on.shape != shape:
                report.errors.append((shown, f"the mask is {on.shape[1]}×{on.shape[0]} but {entry.path} is "
                                             f"{shape[1]}×{shape[0]}"))
                failed = True
                break
            overlaps += int(np.count_nonzero(on & covered))
            covered |= on
            mask[on] = index
        if not failed:
            store(project, entry, mask, options, report, entry.path)
    if overlaps:
        report.notes.append(f"{overlaps} pixel(s) were on in more than one class mask; the later class won")
    return report


def export_project(project: Project, out: Path, options: ExportOptions,
                   cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None
                   ) -> ExportReport:
    """Write ``out/<class name>/<label name>.png`` (0/255) for every class not excluded."""
    report = ExportReport()
    check_output_dir(project, out)
    classes = [c for c in project.classes if c.index not in options.exclude]
    folders = [folder_name(c.name).casefold() for c in classes]
    clashes = sorted({f for f in folders if folders.count(f) > 1})
    if clashes:
        raise FormatError(f"class names give the same folder name ({', '.join(clashes)}); rename a class first")
    any_unlabelled = False
    for entry, mask in exported_masks(project, options, report, Steps(cancel, progress, "exporting")):
        any_unlabelled = any_unlabelled or bool((mask >= len(project.classes)).any())
        for c in classes:
            dest = out / folder_name(c.name) / export_rel(entry, ".png")
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                write_mask(dest, encode(mask, c.index))
            except (SaveError, OSError) as exc:
                report.errors.append((f"{entry.path} ({c.name})", str(exc)))
                continue
            report.written.append(dest)
    if any_unlabelled:
        report.notes.append("binary masks cannot mark pixels as not labelled; those pixels are 0 in every class")
    return report
