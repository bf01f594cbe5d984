"""File › Import Labels… and Export Labels… without Qt: what will be read or written, and the runs.

The formats are the command line's (:data:`segstudio.core.formats.FORMATS`);
:func:`preview_import` and :func:`preview_export` say, before anything is
touched, how many files will be read and which images they belong to, or how
many images will be written where. :func:`run_import` and :func:`run_export`
do it (in the app's worker) and return the format's report, whose summary
lists what was skipped and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from segstudio.core.formats import FORMATS, ExportOptions, ExportReport, ImportOptions, ImportReport, get_format
from segstudio.core.formats.base import ImageMatcher, ProgressFn, source_files
from segstudio.core.image_io import IMAGE_SUFFIXES
from segstudio.core.project import Project
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

SOURCE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "index": (".png", ".tif", ".tiff"),
    "voc": (".png",),
    "binary": tuple(IMAGE_SUFFIXES),
    "labelme": (".json",),
    "yolo": (".txt",),
}
"""The annotation files each folder format reads (COCO reads one .json file)."""
SINGLE_FILE = ("coco",)
"""Formats whose source is one file, not a folder."""


@dataclass
class Preview:
    """What an import or export will do, in a few lines, and whether it can run at all."""

    text: str
    ok: bool


def format_names() -> list[str]:
    return list(FORMATS)


def _labelled(project: Project, paths: set[str], unsaved: set[str]) -> int:
    return sum(p in unsaved or project.label_path(p).exists() for p in paths)


def preview_import(project: Project, fmt: str, source: Path | None, overwrite: bool = False,
                   unsaved: set[str] | None = None) -> Preview:
    """How many annotations ``source`` holds, how many match images of ``project``, what is skipped
    (``unsaved``: images with a label not yet on disk, which an import skips all the same)."""
    title = get_format(fmt).title
    if source is None or not str(source):
        where = "a COCO .json file" if fmt in SINGLE_FILE else "the folder of annotations"
        return Preview(f"{title}\nChoose {where}.", False)
    if not source.exists():
        return Preview(f"{source} does not exist.", False)
    matcher = ImageMatcher(project.images)
    unmatched: list[str] = []
    matched: set[str] = set()
    if fmt in SINGLE_FILE:
        if not source.is_file():
            return Preview(f"{title}\nChoose the COCO .json file (not a folder).", False)
        try:
            doc = json.loads(source.read_text(encoding="utf-8"))
            refs = [str(im.get("file_name", "")) for im in doc.get("images", [])]
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            return Preview(f"{source.name} is not a COCO file: {exc}", False)
        for ref in refs:
            entry = matcher.match_image(ref)
            (matched.add(entry.path) if entry is not None else unmatched.append(ref))
        count = f"{len(refs)} image record(s) in {source.name}"
    else:
        if not source.is_dir():
            return Preview(f"{title}\nChoose a folder, not a file.", False)
        files = [(rel, p) for rel, p in source_files(source, SOURCE_SUFFIXES[fmt])
                 if not (fmt == "yolo" and p.name == "classes.txt")]
        for rel, _path in files:
            entry = matcher.match(rel) or matcher.match(Path(rel).name)
            (matched.add(entry.path) if entry is not None else unmatched.append(rel))
        count = f"{len(files)} annotation file(s) ({', '.join(SOURCE_SUFFIXES[fmt])}) in {source}"
    lines = [title, f"Reads {count}: {len(matched)} image(s) of the project match by name."]
    labelled = _labelled(project, matched, unsaved or set())
    if labelled:
        lines.append(f"{labelled} of them already have a label: " + ("replaced." if overwrite else
                     "skipped (tick 'Replace existing labels' to replace them)."))
    if unmatched:
        lines.append(f"{len(unmatched)} match no image and are skipped, e.g. {', '.join(unmatched[:3])}.")
    return Preview("\n".join(lines), bool(matched))


def preview_export(project: Project, fmt: str, out: Path | None, include_predictions: bool = False) -> Preview:
    """How many images will be written, as what, where."""
    f = get_format(fmt)
    labels = [e for e in project.images if project.label_path(e).exists()]
    predicted = [e for e in project.images if not project.label_path(e).exists()
                 and project.prediction_path(e).exists()] if include_predictions else []
    lines = [f.title, f"Writes {len(labels)} labelled image(s)"
             + (f" and {len(predicted)} prediction(s) of images without a label" if predicted else "")
             + (f" to {out}." if out is not None and str(out) else "; choose where.")]
    if not f.lossless:
        lines.append("This format cannot keep every pixel exactly (polygons lose holes; binary masks lose "
                     "'not labelled').")
    unlabelled = len(project.images) - len(labels) - len(predicted)
    if unlabelled:
        lines.append(f"{unlabelled} image(s) have nothing to export and are left out.")
    ok = bool(labels or predicted) and out is not None and bool(str(out))
    return Preview("\n".join(lines), ok)


def run_import(project: Project, fmt: str, source: Path, options: ImportOptions,
               cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None) -> ImportReport:
    """Import, then save the project (its statuses and any classes added)."""
    report = get_format(fmt).import_project(project, source, options, cancel=cancel, progress=progress)
    project.save()
    return report


def run_export(project: Project, fmt: str, out: Path, options: ExportOptions,
               cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None) -> ExportReport:
    return get_format(fmt).export_project(project, out, options, cancel=cancel, progress=progress)
