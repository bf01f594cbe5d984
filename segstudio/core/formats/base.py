"""What every format shares: options, reports, pairing source files with project images, storing masks.

A format module offers per-mask functions (a mask plus the class table in, a
file's content out, and back) and two project-level functions used by the CLI
and the GUI::

    import_project(project, source, options, cancel=..., progress=...) -> ImportReport
    export_project(project, out, options, cancel=..., progress=...) -> ExportReport

Both are long work in the sense of docs/ARCHITECTURE.md: they check a
:class:`~segstudio.core.tasks.CancelToken` between files (raising
``Cancelled``; what was stored so far stays, each file whole) and report
:class:`~segstudio.core.tasks.Progress`.

Imports never lose work: an image that already has a label is skipped unless
``overwrite`` is set, and a file that cannot be read is reported and skipped,
never fatal for the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np

from segstudio.core import safe_json
from segstudio.core.atomic import SaveError
from segstudio.core.classes import ClassTable, mask_dtype, unlabelled_value
from segstudio.core.image_io import ImageReadError, stored_size
from segstudio.core.masks import MaskError, Unmapped
from segstudio.core.project import LABELS_DIR, PREDICTIONS_DIR, ImageEntry, Project, ProjectError
from segstudio.core.regular_file import read_regular_text
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken, Progress

T = TypeVar("T")


class FormatError(ValueError):
    """Annotation content that cannot be used (bad JSON, unknown class, wrong size). The message says which."""


@dataclass
class ImportOptions:
    """How to read foreign annotations into a project.

    ``value_map``: raster formats — mask value → class index (None = not labelled);
    values not listed keep their meaning as class indices. ``unmapped``: what an
    unlisted value that is no class becomes. ``background``: polygon/RLE formats
    and per-class binary masks — the class of pixels no shape covers (default:
    not labelled). ``add_classes``: class names the project lacks become new
    classes instead of an error. ``as_predictions``: store as predictions (a
    suggestion to review), not labels. ``overwrite``: replace existing labels.
    """

    value_map: Mapping[int, int | None] | None = None
    unmapped: Unmapped = "error"
    background: int | None = None
    add_classes: bool = False
    as_predictions: bool = False
    overwrite: bool = False


@dataclass
class ExportOptions:
    """How to write a project's masks.

    ``include_predictions``: images without a label export their prediction.
    ``exclude``: class indices not written (e.g. background for COCO/YOLO).
    ``polygons``: COCO only — polygons instead of lossless RLE.
    """

    include_predictions: bool = False
    exclude: frozenset[int] = frozenset()
    polygons: bool = False


@dataclass
class ImportReport:
    """What an import did. ``errors`` are files or images that failed; the rest went on."""

    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    added_classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, as_predictions: bool = False) -> str:
        what = "predictions" if as_predictions else "labels"
        lines = [f"imported {len(self.imported)} {what}"]
        if self.added_classes:
            lines.append(f"added classes: {', '.join(self.added_classes)}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines += [f"  {name}: {why}" for name, why in self.skipped[:20]]
        if self.unmatched:
            lines.append(f"{len(self.unmatched)} annotation(s) match no image of the project: "
                         + ", ".join(self.unmatched[:10]) + (" …" if len(self.unmatched) > 10 else ""))
        if self.errors:
            lines.append(f"{len(self.errors)} failed:")
            lines += [f"  {name}: {why}" for name, why in self.errors[:50]]
        lines += self.notes
        return "\n".join(lines)


@dataclass
class ExportReport:
    """What an export wrote, and what failed."""

    written: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: int = 0

    def summary(self) -> str:
        lines = [f"exported {self.images} image(s): {len(self.written)} file(s) written"]
        if self.errors:
            lines.append(f"{len(self.errors)} failed:")
            lines += [f"  {name}: {why}" for name, why in self.errors[:50]]
        lines += self.notes
        return "\n".join(lines)


def _key(text: str) -> str:
    return text.casefold()


def _without_suffix(rel: str) -> str:
    p = PurePosixPath(rel)
    return p.with_suffix("").as_posix() if p.suffix else rel


class ImageMatcher:
    """Pairs annotation files and image references with project images (case-insensitive).

    An annotation *file* (``sub/a.png``, ``sub/a.json``) is matched by its path
    without suffix against the label names (``labels/sub/a.png`` → ``sub/a``),
    so the files segstudio exports come back to the same images even for stem
    collisions; then against image paths without suffix; then by a stem that
    exactly one image has. An image *reference* (COCO ``file_name``, labelme
    ``imagePath``) is matched by image path, then by a file name or stem that
    exactly one image has.
    """

    def __init__(self, entries: Sequence[ImageEntry]) -> None:
        self._by_label = {_key(_without_suffix(e.label_name)): e for e in entries}
        self._by_path = {_key(e.path): e for e in entries}
        self._by_path_stem: dict[str, ImageEntry] = {}
        by_name: dict[str, list[ImageEntry]] = {}
        for e in entries:
            self._by_path_stem.setdefault(_key(_without_suffix(e.path)), e)
            for k in {_key(e.name), _key(e.stem)}:
                by_name.setdefault(k, []).append(e)
        self._unique = {k: v[0] for k, v in by_name.items() if len(v) == 1}

    @staticmethod
    def _clean(rel: str) -> str:
        rel = rel.replace("\\", "/")
        while rel.startswith("./"):
            rel = rel[2:]
        return rel

    def match(self, rel: str) -> ImageEntry | None:
        """The image an annotation file (path relative to the import folder) belongs to, or None."""
        rel = self._clean(rel)
        stem_path = _key(_without_suffix(rel))
        found = self._by_label.get(stem_path) or self._by_path_stem.get(stem_path)
        if found is not None:
            return found
        return self._unique.get(_key(_without_suffix(PurePosixPath(rel).name)))

    def match_image(self, ref: str) -> ImageEntry | None:
        """The image a reference to an image file (relative path or bare name) names, or None."""
        ref = self._clean(ref)
        found = self._by_path.get(_key(ref))
        if found is not None:
            return found
        name = PurePosixPath(ref).name
        return self._unique.get(_key(name)) or self._unique.get(_key(_without_suffix(name)))


ProgressFn = Callable[[Progress], None]
"""Receives a :class:`~segstudio.core.tasks.Progress` after each image or file."""


class Steps:
    """Cancel checks and progress reports for a loop over a known number of items."""

    def __init__(self, cancel: CancelToken = NEVER_CANCELLED, progress: ProgressFn | None = None,
                 message: str = "") -> None:
        self.cancel = cancel
        self.progress = progress
        self.message = message

    def over(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``; raises :class:`~segstudio.core.tasks.Cancelled` between items when cancelled."""
        listed = list(items)
        report = Progress(0, len(listed), self.message)
        for item in listed:
            self.cancel.raise_if_cancelled()
            yield item
            report.done += 1
            if self.progress is not None:
                self.progress(report)


class Claims:
    """Remembers which annotation went to which image, so that two annotations for one image are reported."""

    def __init__(self) -> None:
        self._by_image: dict[str, str] = {}

    def claim(self, entry: ImageEntry, source: str, report: ImportReport) -> bool:
        """True the first time ``entry`` is claimed; else records an error naming both sources."""
        first = self._by_image.setdefault(entry.path, source)
        if first == source:
            return True
        report.errors.append((source, f"{first} also belongs to {entry.path}; rename one of them"))
        return False


def source_files(folder: Path, suffixes: Sequence[str]) -> list[tuple[str, Path]]:
    """``(relative path, path)`` of the files with these suffixes under ``folder``, hidden ones skipped.

    Anything with such a name that is not a folder is listed, FIFOs and devices
    included: reading it then fails with a clear reason in the report, rather
    than the file silently not counting (or hanging the reader).
    """
    if not folder.is_dir():
        raise FormatError(f"{folder} is not a folder")
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_dir() and p.suffix.lower() in suffixes and not any(s.startswith(".") for s in rel.parts):
            out.append((rel.as_posix(), p))
    return out


def store(project: Project, entry: ImageEntry, mask: np.ndarray, options: ImportOptions,
          report: ImportReport, source: str) -> None:
    """Save an imported mask as label or prediction, honouring ``overwrite``; failures go to the report."""
    target = project.prediction_path(entry) if options.as_predictions else project.label_path(entry)
    if target.exists() and not options.overwrite:
        what = "prediction" if options.as_predictions else "label"
        report.skipped.append((entry.path, f"already has a {what} (use overwrite to replace it)"))
        return
    try:
        if options.as_predictions:
            project.save_prediction(entry, mask)
        else:
            project.save_label(entry, mask)
    except (MaskError, SaveError, ProjectError) as exc:  # ProjectError: e.g. a labels/ linked outside
        report.errors.append((source, str(exc)))
        return
    report.imported.append(entry.path)


MaskMaker = Callable[[ImageEntry, T, tuple[int, int]], np.ndarray]
"""``(image entry, annotation, (height, width) of the image) -> class mask``; raises ``FormatError``,
``MaskError`` or ``ImageReadError`` with the reason when it cannot."""
Matcher = Callable[[ImageMatcher, str, T], ImageEntry | None]
"""``(matcher, annotation's relative path, annotation) -> the image it belongs to`` (None: no image)."""


def import_each(project: Project, items: Iterable[tuple[str, T]], to_mask: MaskMaker[T], options: ImportOptions,
                report: ImportReport | None = None, match: Matcher[T] | None = None,
                skip: Callable[[T], str | None] | None = None) -> ImportReport:
    """The import loop every format fills in: match, claim, make the mask, check its size, store.

    Each ``(rel, annotation)`` is matched to a project image by name (or by ``match``), the image is claimed
    (a second annotation for one image is an error naming both), an annotation for which ``skip`` gives a
    reason is reported as skipped, ``to_mask`` turns the annotation into a class mask of the image's size,
    and the mask is stored as label or prediction (:func:`store`). An annotation that matches no image,
    fails or has the wrong size goes to the report; nothing is raised but
    :class:`~segstudio.core.tasks.Cancelled` (from a :class:`Steps` around ``items``).
    """
    report = report if report is not None else ImportReport()
    matcher = ImageMatcher(project.images)
    claims = Claims()
    for rel, item in items:
        entry = match(matcher, rel, item) if match is not None else matcher.match(rel)
        if entry is None:
            report.unmatched.append(rel)
            continue
        if not claims.claim(entry, rel, report):
            continue
        reason = skip(item) if skip is not None else None
        if reason is not None:
            report.skipped.append((entry.path, reason))
            continue
        try:
            shape = image_shape(project, entry)
            mask = to_mask(entry, item, shape)
        except ImageReadError as exc:
            report.errors.append((rel, exc.reason))
            continue
        except (MaskError, FormatError) as exc:
            report.errors.append((rel, str(exc)))
            continue
        if mask.shape != shape:
            report.errors.append((rel, f"the mask is {mask.shape[1]}×{mask.shape[0]} but {entry.path} is "
                                       f"{shape[1]}×{shape[0]}"))
            continue
        store(project, entry, mask, options, report, rel)
    return report


def import_mask_files(project: Project, files: Iterable[tuple[str, Path]], read: Callable[[Path], np.ndarray],
                      options: ImportOptions, size_of: Callable[[Path], tuple[int, int]] = stored_size
                      ) -> ImportReport:
    """:func:`import_each` for the one-file-per-image formats (index PNG, VOC, binary masks).

    A mask file's size is read from its header (``size_of``) and checked against the image's before
    anything is decoded; then ``read`` decodes it into a class mask.
    """

    def to_mask(entry: ImageEntry, path: Path, shape: tuple[int, int]) -> np.ndarray:
        stored = size_of(path)
        if stored != shape:  # refused from the header, before a (possibly huge) mask is decoded
            raise MaskError(f"the mask is {stored[1]}×{stored[0]} but {entry.path} is {shape[1]}×{shape[0]}")
        return read(path)

    return import_each(project, files, to_mask, options)


MAX_ANNOTATION_BYTES = 2 << 30
"""An annotation file (COCO, labelme, YOLO) larger than this is refused by its size (2 GB)."""


def read_text_file(path: Path) -> str:
    """A regular text file's content (UTF-8); ``FormatError`` naming the file and the reason otherwise."""
    try:
        return read_regular_text(path, MAX_ANNOTATION_BYTES)
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path} is not UTF-8 text") from None


def read_json_file(path: Path) -> Any:
    """The JSON in a regular file, nesting depth bounded (:mod:`segstudio.core.safe_json`); ``FormatError``."""
    text = read_text_file(path)
    try:
        return safe_json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path} is not valid JSON ({exc})") from None


def image_shape(project: Project, entry: ImageEntry) -> tuple[int, int]:
    """(height, width) of a project image; ``FormatError`` when the image cannot be read."""
    try:
        return project.image_shape(entry)
    except ImageReadError as exc:
        raise FormatError(f"cannot size the image: {exc.reason}") from None


def exported_masks(project: Project, options: ExportOptions, report: ExportReport, steps: Steps | None = None
                   ) -> Iterator[tuple[ImageEntry, np.ndarray]]:
    """The masks to export: each image's label, or its prediction with ``include_predictions``."""
    for e in (steps or Steps()).over(project.images):
        try:
            mask = project.load_label(e)
            if mask is None and options.include_predictions:
                mask = project.load_prediction(e)
        except ImageReadError as exc:
            report.errors.append((e.path, exc.reason))
            continue
        if mask is not None:
            report.images += 1
            yield e, mask


def export_rel(entry: ImageEntry, suffix: str) -> str:
    """The output name of an image's export: its label name with ``suffix`` (unique within a project)."""
    return _without_suffix(entry.label_name) + suffix


def check_output_dir(project: Project, out: Path) -> Path:
    """Refuse to export into the project's own label or prediction folders; create ``out``."""
    resolved = out.resolve()
    for reserved in (LABELS_DIR, PREDICTIONS_DIR):
        own = (project.root / reserved).resolve()
        if resolved == own or own in resolved.parents:
            raise FormatError(f"{out} is the project's own {reserved}/ folder; export somewhere else")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FormatError(f"cannot create {out}: {exc.strerror or exc}") from None
    return out


def resolve_class_names(project: Project, names: Sequence[str], add_classes: bool, report: ImportReport
                        ) -> list[int]:
    """Project class index for each foreign class name (exact, then case-insensitive match).

    Unknown names become new classes with ``add_classes``, else ``FormatError``
    listing them and the project's classes.
    """
    table = project.classes
    out: list[int] = []
    missing: list[str] = []
    for name in names:
        index = _find_class(table, name)
        if index is None:
            missing.append(name)
        out.append(-1 if index is None else index)
    if missing and not add_classes:
        raise FormatError(
            f"class(es) {', '.join(repr(m) for m in dict.fromkeys(missing))} are not in the project "
            f"(classes: {', '.join(table.names)}); add them first or allow adding classes"
        )
    if missing:
        for name in dict.fromkeys(missing):
            table = table.added(name)
            report.added_classes.append(name)
        project.set_classes(table)
        out = [_find_class(table, n) for n in names]  # type: ignore[misc]
    return out


def _find_class(table: ClassTable, name: str) -> int | None:
    if name in table.names:
        return table.index_of(name)
    lowered = [n.casefold() for n in table.names]
    return lowered.index(name.casefold()) if lowered.count(name.casefold()) == 1 else None


def fill_value(project: Project, options: ImportOptions) -> int:
    """What uncovered pixels become: the background class, or "not labelled"."""
    n = len(project.classes)
    if options.background is not None:
        if not 0 <= options.background < n:
            raise FormatError(f"background class {options.background} does not exist ({n} classes)")
        return options.background
    return unlabelled_value(mask_dtype(n))


_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def folder_name(class_name: str) -> str:
    """A class name usable as a folder name on every platform."""
    name = _UNSAFE.sub("_", class_name).strip(" .")
    return name or "_"
