"""``segstudio import`` and ``segstudio export``: labels in and out of a project, in the formats of
:data:`segstudio.core.formats.FORMATS`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from segstudio.cli.errors import CliError
from segstudio.core.formats import FORMATS  # the catalogue alone: standard library, instant

if TYPE_CHECKING:  # the rest of the core is imported inside the handlers so that `segstudio --help` stays instant
    from segstudio.core.project import Project
    from segstudio.core.tasks import Progress


def _formats_help() -> str:
    """The format list of ``--help``, from the one catalogue (:data:`segstudio.core.formats.FORMATS`)."""
    lines = [f"  {f.name:<8} {f.title}" + ("" if "lossless" in f.title or not f.lossless else " (lossless)")
             for f in FORMATS.values()]
    return "formats:\n" + "\n".join(lines) + "\n"


_FORMATS_HELP = _formats_help()

_IMPORT_DESCRIPTION = """\
Read labels made elsewhere into a project.

Annotation files are paired with the project's images by name: a mask
`sub/a.png` goes to the image `sub/a.jpg` (or to the only image called `a`).
Images that already have a label are skipped unless --overwrite is given, so
an import never destroys work. PROJECT may be a plain folder of images: a
project (segstudio.json) is created there without changing the images.
"""

_IMPORT_EPILOG = _FORMATS_HELP + """
examples:
  ISBI membranes (0 = membrane, 255 = cell):
    segstudio import binary isbi/label isbi/image --classes membrane,cell --map 0=membrane,255=cell
  CamVid label maps (11 = void):
    segstudio import index camvid/trainannot camvid/train --classes camvid --map 11=void
  the same with the project in a folder of its own (the images are copied in):
    segstudio import index camvid/trainannot my-camvid --images camvid/train --classes camvid --map 11=void
  a COCO file, adding its categories as classes:
    segstudio import coco instances.json photos/ --add-classes --background background
"""

_EXPORT_DESCRIPTION = """\
Write a project's labels in another tool's format.

Every image with a label is exported (with --predictions, images without a
label export their prediction). Output files are named like the label files
(`labels/sub/a.png` → `OUT/sub/a.<ext>`). Index PNG, VOC and COCO RLE keep every
pixel exactly; polygon formats cannot keep holes, binary masks cannot keep
"not labelled".
"""

_EXPORT_EPILOG = _FORMATS_HELP + """
examples:
  segstudio export coco photos/ photos-coco.json
  segstudio export coco photos/ photos-coco.json --polygons --exclude background
  segstudio export yolo photos/ yolo-labels --exclude background
  segstudio export voc photos/ SegmentationClass
"""


def add(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "import", help="read labels from index/VOC PNGs, binary masks, COCO, labelme or YOLO into a project",
        description=_IMPORT_DESCRIPTION, epilog=_IMPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help="the label format (listed below)")
    imp.add_argument("source", type=Path, metavar="SOURCE",
                     help="where the labels are: a folder, or the .json file for COCO")
    imp.add_argument("project", type=Path, metavar="PROJECT",
                     help="the project folder (or its segstudio.json, or a plain folder of images)")
    imp.add_argument("--map", action="append", default=[], metavar="VALUE=CLASS[,VALUE=CLASS…]",
                     help="index/voc/binary: what mask values mean, e.g. 0=membrane,255=cell; CLASS may be "
                          "'void' (not labelled). Values not listed are taken as class indices")
    imp.add_argument("--unmapped", choices=("error", "unlabelled"), default="error",
                     help="a mask value that is neither mapped nor a class: stop with a list (default) "
                          "or treat it as not labelled")
    imp.add_argument("--classes", metavar="NAME,NAME,…",
                     help="set the project's classes first, in index order (only while nothing is labelled); "
                          "'camvid' gives the 11 CamVid classes")
    imp.add_argument("--add-classes", action="store_true",
                     help="coco/labelme/yolo: class names the project lacks become new classes")
    imp.add_argument("--background", metavar="CLASS",
                     help="coco/labelme/yolo/binary per-class: the class of pixels no shape covers "
                          "(default: they stay not labelled)")
    imp.add_argument("--as-predictions", action="store_true",
                     help="store as predictions to review in the app, not as labels")
    imp.add_argument("--overwrite", action="store_true", help="replace labels that images already have")
    imp.add_argument("--recursive", action="store_true",
                     help="when PROJECT is a plain folder: include images in its sub-folders")
    imp.add_argument("--images", type=Path, metavar="FOLDER",
                     help="the images live in FOLDER, not in PROJECT: copy them into PROJECT/images/ "
                          "(for a read-only image folder; the originals are not changed)")
    imp.set_defaults(handler=run_import)

    exp = sub.add_parser(
        "export", help="write a project's labels as index/VOC PNGs, binary masks, COCO, labelme or YOLO",
        description=_EXPORT_DESCRIPTION, epilog=_EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exp.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help="the label format (listed below)")
    exp.add_argument("project", type=Path, metavar="PROJECT", help="the project folder or its segstudio.json")
    exp.add_argument("out", type=Path, metavar="OUT",
                     help="output folder (COCO: a .json file, or a folder for annotations.json)")
    exp.add_argument("--predictions", action="store_true",
                     help="images without a label export their prediction instead of nothing")
    exp.add_argument("--exclude", action="append", default=[], metavar="CLASS",
                     help="binary/coco/labelme/yolo: leave this class out (repeatable), e.g. background")
    exp.add_argument("--polygons", action="store_true", help="coco: polygons instead of lossless RLE")
    exp.set_defaults(handler=run_export)


def _progress_printer(verb: str) -> Callable[[Progress], None] | None:
    """A one-line progress display on a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        return None
    from segstudio.core.tasks import format_eta

    def show(p: Progress) -> None:
        end = "\n" if p.done == p.total else ""
        print(f"\r{verb} {p.done}/{p.total}, {format_eta(p.eta_seconds())} left ", end=end, file=sys.stderr,
              flush=True)

    return show


def _open_project(path: Path, recursive: bool = False, create: bool = True, read_only: bool = False) -> Project:
    """The project at ``path``: for writing (its lock taken: another window or command holding it is an
    error naming the holder), or ``read_only`` (no lock: an export reads a project open in the app)."""
    from segstudio.core.project import PROJECT_FILE, Project, ProjectError

    if not create and path.is_dir() and not (path / PROJECT_FILE).exists():
        raise CliError(f"{path} is not a project (no {PROJECT_FILE}); open it in the app or import labels first")
    try:
        return Project.open(path, recursive=recursive, read_only=read_only, program="segstudio import")
    except ProjectError as exc:
        raise CliError(str(exc)) from None


def _project_with_copies(root: Path, images: Path, recursive: bool) -> Project:
    from segstudio.core.image_io import list_images
    from segstudio.core.project import PROJECT_FILE, Project, ProjectError

    if not images.is_dir():
        raise CliError(f"--images: {images} is not a folder")
    found = list_images(images, recursive=recursive)
    if not found:
        raise CliError(f"--images: no images in {images}")
    try:
        if (root / PROJECT_FILE).exists():
            project = Project.open(root, program="segstudio import")
            project.add_images(found, copy_outside=True)
            return project
        return Project.create(root, images=found, copy_outside=True, program="segstudio import")
    except ProjectError as exc:
        raise CliError(str(exc)) from None


def _set_classes(project: Project, spec: str) -> None:
    from segstudio.core.classes import ClassTable

    names = [n.strip() for n in spec.split(",") if n.strip()]
    table = ClassTable.camvid() if names == ["camvid"] else None
    if table is None:
        try:
            table = ClassTable.from_names(names)
        except ValueError as exc:
            raise CliError(f"--classes: {exc}") from None
    if table.names == project.classes.names:
        return
    has_masks = any(project.label_path(e).exists() or project.prediction_path(e).exists() for e in project.images)
    if has_masks:
        raise CliError(
            f"the project already has labels with the classes {', '.join(project.classes.names)}; "
            "leave out --classes (or use --add-classes for new names)"
        )
    project.set_classes(table)


def run_import(args: argparse.Namespace) -> int:
    from segstudio.core.formats import FormatError, ImportOptions, get_format
    from segstudio.core.masks import parse_class_ref, parse_value_map

    if not args.source.exists():
        raise CliError(f"{args.source} does not exist")
    if args.images is not None:
        project = _project_with_copies(args.project, args.images, args.recursive)
    else:
        project = _open_project(args.project, args.recursive)
    if args.classes:
        _set_classes(project, args.classes)
    try:
        value_map = parse_value_map(args.map, project.classes) if args.map else None
        background = None
        if args.background is not None:
            background = parse_class_ref(args.background, project.classes)
            if background is None:
                raise ValueError("--background needs a class; pixels stay not labelled without it")
    except (KeyError, ValueError) as exc:
        raise CliError(str(exc).strip('"')) from None
    options = ImportOptions(value_map=value_map, unmapped=args.unmapped, background=background,
                            add_classes=args.add_classes, as_predictions=args.as_predictions,
                            overwrite=args.overwrite)
    try:
        report = get_format(args.format).import_project(project, args.source, options,
                                                        progress=_progress_printer("importing"))
    except FormatError as exc:
        raise CliError(str(exc)) from None
    project.save()
    print(report.summary(as_predictions=args.as_predictions))
    print(f"project: {project.root} ({len(project.images)} images, classes: {', '.join(project.classes.names)})")
    if report.errors:
        return 1
    if not report.imported and not report.skipped:
        print("segstudio: nothing was imported; do the annotation names match the image names?", file=sys.stderr)
        return 1
    return 0


def run_export(args: argparse.Namespace) -> int:
    from segstudio.core.formats import ExportOptions, FormatError, get_format
    from segstudio.core.masks import parse_class_ref

    project = _open_project(args.project, create=False, read_only=True)
    exclude: set[int] = set()
    for name in args.exclude:
        try:
            index = parse_class_ref(name, project.classes)
        except KeyError as exc:
            raise CliError(str(exc).strip('"')) from None
        if index is None:
            raise CliError(f"--exclude needs a class name, got {name!r}")
        exclude.add(index)
    options = ExportOptions(include_predictions=args.predictions, exclude=frozenset(exclude),
                            polygons=args.polygons)
    try:
        report = get_format(args.format).export_project(project, args.out, options,
                                                        progress=_progress_printer("exporting"))
    except FormatError as exc:
        raise CliError(str(exc)) from None
    print(report.summary())
    if report.images == 0:
        print("segstudio: no image has a label yet" + ("" if args.predictions else
              " (use --predictions to export predictions)"), file=sys.stderr)
        return 1
    return 1 if report.errors else 0
