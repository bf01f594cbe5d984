"""Training data: labelled images in memory, from a project or from folders, split for validation.

A :class:`TrainData` holds :class:`Sample` s (image as decoded, label mask
with the "not labelled" marker 255 / 65535) for training and validation. It
is built from a *data spec* — a small picklable description
(:class:`ProjectData`, :class:`FolderData`) — by :func:`load_data`, so that a
training process can be told what to train on without shipping pixels over a
pipe. Loading is the snapshot: masks are read once when training starts, so
the user may keep painting (each label file is written atomically, so a mask
is read whole, before or after a stroke was saved).

Which images train:

- From a project: every image with a label file holding at least one labelled
  pixel (status corrected or reviewed; sparse strokes are enough). Images
  that cannot be read, or whose label does not match the image size, are
  skipped and listed in ``TrainData.skipped``.
- From folders: images and masks paired by file stem; mask values mapped to
  classes with a value map (``{0: membrane, 255: cell}``; ``None`` = not
  labelled, e.g. CamVid's void 11).

Validation: a given folder, else a held-out part of the images — but only
when there are at least :data:`MIN_IMAGES_FOR_VAL` labelled images. Below
that, every image trains (a tiny project needs them all) and the engine
reports the mIoU on the training images instead, saying so.

Images are kept decoded in memory (uint8, or uint16 for 16-bit data) when
they fit in half of the available memory; otherwise they are decoded again
each time they are drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from segstudio.core.classes import ClassTable, mask_dtype, unlabelled_value
from segstudio.core.holdout import SplitFileError, split_names, sync_split
from segstudio.core.image_io import ImageReadError, image_size, list_images, read_image, read_mask
from segstudio.core.masks import MaskError, apply_value_map, parse_value_map, to_mask_dtype
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken

MIN_IMAGES_FOR_VAL = 10
"""Fewer labelled images than this: no held-out validation set (all of them train)."""
MASK_SUFFIXES = (".png",)


class DataError(ValueError):
    """Training data that cannot be used (no labelled image, no matching masks, bad value map)."""


@dataclass
class Sample:
    """One labelled image. ``image``: H×W×C (C = 1 or 3), uint8 or uint16; ``label``: H×W class mask."""

    name: str
    label: np.ndarray
    path: Path | None = None
    _image: np.ndarray | None = None
    channels: int = 3
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.uint8))
    stamp: tuple[int, int] | None = None
    """(mtime in ns, size) of the label file when it was read: a refresh re-reads only changed labels."""

    @property
    def image(self) -> np.ndarray:
        if self._image is not None:
            return self._image
        if self.path is None:
            raise DataError(f"sample {self.name} has neither pixels nor a path")
        return read_image(self.path).data

    @property
    def ignore_value(self) -> int:
        return unlabelled_value(self.label.dtype)

    @property
    def labelled_pixels(self) -> int:
        return int(np.count_nonzero(self.label != self.ignore_value))

    @property
    def complete(self) -> bool:
        """True when every pixel is labelled (then a class missing from the label is known to be absent)."""
        return self.labelled_pixels == self.label.size


def make_sample(name: str, image: np.ndarray, label: np.ndarray) -> Sample:
    """A sample from arrays: image H×W or H×W×C (uint8/uint16), label H×W of class indices / the marker."""
    img = image[:, :, None] if image.ndim == 2 else image
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise DataError(f"{name}: an image is H×W, H×W×1 or H×W×3, got {image.shape}")
    if img.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{name}: images are uint8 or uint16, got {img.dtype}")
    if label.shape != img.shape[:2]:
        raise DataError(f"{name}: the label is {label.shape[1]}×{label.shape[0]} but the image is "
                        f"{img.shape[1]}×{img.shape[0]}")
    return Sample(name, np.ascontiguousarray(label), None, np.ascontiguousarray(img), int(img.shape[2]), img.dtype)


@dataclass
class TrainData:
    """Labelled samples to train and validate on, with the class table and where they came from."""

    classes: ClassTable
    train: list[Sample]
    val: list[Sample] = field(default_factory=list)
    source: str = ""
    """What the training set is, for the model card ("project X: 12 labelled images")."""
    val_source: str = ""
    """What the validation set is, or why there is none."""
    skipped: list[str] = field(default_factory=list)
    """Files left out, each with its reason."""

    def __post_init__(self) -> None:
        if not self.train:
            raise DataError("there is no labelled image to train on")
        dtype = mask_dtype(len(self.classes))
        for s in [*self.train, *self.val]:
            if s.label.dtype != dtype:
                s.label = to_mask_dtype(s.label, len(self.classes))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def ignore_index(self) -> int:
        return unlabelled_value(mask_dtype(self.num_classes))

    def channels(self) -> int:
        """3 if any training image is RGB, else 1."""
        return 3 if any(s.channels == 3 for s in self.train) else 1

    def input_max(self) -> float:
        """255 for 8-bit data; 65535 when any training image is 16-bit."""
        return 65535.0 if any(s.dtype == np.uint16 for s in self.train) else 255.0

    def class_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """(labelled pixels per class, labelled pixels of the images where the class occurs), training set."""
        k = self.num_classes
        pixels = np.zeros(k, np.int64)
        totals = np.zeros(k, np.int64)
        for s in self.train:
            counts = np.bincount(s.label.ravel(), minlength=max(k, s.ignore_value + 1))[:k]
            pixels += counts
            totals += np.where(counts > 0, counts.sum(), 0)
        return pixels, totals

    def largest_size(self) -> tuple[int, int]:
        return (max(s.label.shape[0] for s in self.train), max(s.label.shape[1] for s in self.train))


def sparsify(label: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``label`` keeping a random ``fraction`` of its labelled pixels; the rest become not labelled."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the fraction of kept pixels is in (0, 1], got {fraction}")
    unl = unlabelled_value(label.dtype)
    keep = rng.random(label.shape) < fraction
    return np.where(keep, label, unl).astype(label.dtype)


def split_validation(samples: Sequence[Sample], fraction: float, seed: int,
                     min_images: int = MIN_IMAGES_FOR_VAL) -> tuple[list[Sample], list[Sample], str]:
    """(train, val, description): ``fraction`` of the images held out when there are at least ``min_images``."""
    n = len(samples)
    if fraction <= 0:
        return list(samples), [], "no validation set (switched off)"
    if n < min_images:
        return list(samples), [], (f"no validation set: {n} labelled image(s), fewer than {min_images}; "
                                   "the mIoU reported is on the training images")
    k = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng(seed).permutation(n)
    held = set(order[:k].tolist())
    train = [s for i, s in enumerate(samples) if i not in held]
    val = [s for i, s in enumerate(samples) if i in held]
    return train, val, f"{k} of {n} labelled images held out at random (seed {seed})"


# ----------------------------------------------------------------------------- data specs


@dataclass(frozen=True)
class ProjectData:
    """Train on a project's labelled images (see the module docstring).

    With ``holdout`` (the default) the project's held-out split
    (:mod:`segstudio.core.holdout`) decides: its train side trains, its held-out
    side validates; labelled images it does not know yet are assigned first (and
    the split saved). Without, ``val_fraction`` of the images is held out at random.
    """

    project: str
    val_fraction: float = 0.1
    min_val_images: int = MIN_IMAGES_FOR_VAL
    seed: int = 0
    holdout: bool = True


@dataclass(frozen=True)
class FolderData:
    """Train on a folder of images and a folder of masks paired by stem (CamVid: train/ + trainannot/).

    ``classes``: class names in index order, or ``("camvid",)`` for the 11 CamVid
    classes; empty: ``class 0..K-1`` from the largest mask value. ``value_map``:
    ``VALUE=CLASS`` strings as on the command line (``"0=membrane"``,
    ``"11=void"``). ``val_images``/``val_masks``: a validation folder pair; else
    ``val_fraction`` of the images is held out (when there are enough).
    """

    images: str
    masks: str
    classes: tuple[str, ...] = ()
    value_map: tuple[str, ...] = ()
    unmapped: Literal["error", "unlabelled"] = "error"
    val_images: str | None = None
    val_masks: str | None = None
    val_fraction: float = 0.1
    min_val_images: int = MIN_IMAGES_FOR_VAL
    seed: int = 0
    limit: int | None = None
    """Use only the first ``limit`` pairs of each folder (in name order), for quick tries."""
    holdout_every: int | None = None
    """Without a validation folder: hold out images by the held-out rule of :mod:`segstudio.core.holdout`
    (the images taken in name order as if corrected in that order) instead of ``val_fraction`` at random —
    what fine-tuning on corrections does, so that a folder and a project give the same split."""


DataSpec = ProjectData | FolderData


def load_data(spec: DataSpec | TrainData, cancel: CancelToken = NEVER_CANCELLED,
              memory_budget: int | None = None) -> TrainData:
    """Read what ``spec`` describes into a :class:`TrainData` (a ``TrainData`` is returned as is)."""
    if isinstance(spec, TrainData):
        return spec
    if isinstance(spec, ProjectData):
        return load_project(spec, cancel, memory_budget)
    if isinstance(spec, FolderData):
        return load_folders(spec, cancel, memory_budget)
    raise TypeError(f"not a data spec: {type(spec).__name__}")


def _memory_budget(given: int | None) -> int:
    if given is not None:
        return given
    try:
        import psutil

        return int(psutil.virtual_memory().available // 2)
    except Exception:  # psutil missing or failing: assume a modest machine
        return 2 << 30


def _keep_in_memory(paths: Sequence[Path], budget: int) -> bool:
    total = 0
    for p in paths:
        try:
            h, w = image_size(p)
        except ImageReadError:
            continue
        total += h * w * 3
    return total <= budget


def _read_sample(name: str, path: Path, label: np.ndarray, in_memory: bool) -> Sample:
    loaded = read_image(path)
    if (loaded.height, loaded.width) != label.shape:
        raise DataError(f"the label is {label.shape[1]}×{label.shape[0]} but the image is "
                        f"{loaded.width}×{loaded.height}")
    return Sample(name, label, path, loaded.data if in_memory else None, loaded.channels, loaded.data.dtype)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def load_project(spec: ProjectData, cancel: CancelToken = NEVER_CANCELLED, memory_budget: int | None = None,
                 previous: TrainData | None = None) -> TrainData:
    """The labelled images of a project (the mask snapshot is taken here).

    ``previous``: the data of an earlier load of the same project, whose samples
    are reused when their label file has not changed (continuous training
    re-reads a project every few seconds).
    """
    from segstudio.core.project import Project

    project = Project.open(spec.project, read_only=True)  # the app may hold it: training only reads
    entries = [e for e in project.images if e.status in ("corrected", "reviewed") or project.label_path(e).exists()]
    in_memory = _keep_in_memory([project.image_path(e) for e in entries], _memory_budget(memory_budget))
    reusable = {s.name: s for s in [*previous.train, *previous.val]} if previous is not None else {}
    samples: list[Sample] = []
    skipped: list[str] = []
    for e in entries:
        cancel.raise_if_cancelled()
        stamp = _stamp(project.label_path(e))
        old = reusable.get(e.path)
        if old is not None and stamp is not None and old.stamp == stamp:
            samples.append(old)
            continue
        try:
            label = project.load_label(e)
            if label is None:
                continue
            if not np.any(label != unlabelled_value(label.dtype)):
                continue  # an empty label file: nothing painted yet
            sample = _read_sample(e.path, project.image_path(e), label, in_memory)
            sample.stamp = stamp
            samples.append(sample)
        except (ImageReadError, DataError, MaskError) as exc:
            skipped.append(f"{e.path}: {exc}")
    if not samples:
        raise DataError(f"the project {project.root} has no labelled image to train on: paint some strokes "
                        "or correct a prediction first" + (f" ({len(skipped)} failed to load)" if skipped else ""))
    if spec.holdout:
        try:
            split = sync_split(project.root, [s.name for s in samples])
        except SplitFileError as exc:
            raise DataError(str(exc)) from None
        held = set(split.holdout_names())
        train = [s for s in samples if s.name not in held]
        val = [s for s in samples if s.name in held]
        if not train:
            raise DataError("every labelled image is held out to judge the model: correct one more image to "
                            "train on")
        val_source = (f"{len(val)} held-out correction(s) of {len(samples)} labelled images" if val else
                      f"no held-out correction yet ({len(samples)} labelled image(s), all train)")
    else:
        train, val, val_source = split_validation(samples, spec.val_fraction, spec.seed, spec.min_val_images)
    n_complete = sum(s.complete for s in samples)
    source = (f"project {project.root.name}: {len(samples)} labelled image(s) "
              f"({n_complete} fully labelled, {len(samples) - n_complete} sparse)")
    return TrainData(project.classes, train, val, source, val_source, skipped)


def _class_table(names: Sequence[str]) -> ClassTable | None:
    if not names:
        return None
    if len(names) == 1 and names[0].lower() == "camvid":
        return ClassTable.camvid()
    return ClassTable.from_names([n.strip() for n in names if n.strip()])


def pair_by_stem(images_dir: Path, masks_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image, mask) pairs with the same file stem, and the images without a mask."""
    if not images_dir.is_dir():
        raise DataError(f"the image folder {images_dir} does not exist")
    if not masks_dir.is_dir():
        raise DataError(f"the mask folder {masks_dir} does not exist")
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in MASK_SUFFIXES}
    pairs, lonely = [], []
    for img in list_images(images_dir):
        m = masks.get(img.stem)
        if m is None:
            lonely.append(f"{img.name}: no mask {img.stem}.png in {masks_dir}")
        else:
            pairs.append((img, m))
    if not pairs:
        raise DataError(f"no image in {images_dir} has a mask with the same name in {masks_dir}")
    return pairs, lonely


def _read_folder(pairs: Iterable[tuple[Path, Path]], classes: ClassTable | None, value_map: tuple[str, ...],
                 unmapped: Literal["error", "unlabelled"], in_memory: bool, cancel: CancelToken
                 ) -> tuple[ClassTable, list[Sample], list[str]]:
    raw: list[tuple[Path, Path, np.ndarray]] = []
    skipped: list[str] = []
    for img, mpath in pairs:
        cancel.raise_if_cancelled()
        try:
            raw.append((img, mpath, read_mask(mpath)))
        except ImageReadError as exc:
            skipped.append(f"{mpath.name}: {exc}")
    if classes is None:
        if value_map:
            raise DataError("a value map names classes: give the class names too (e.g. --classes membrane,cell)")
        top = -1
        for _, _, m in raw:
            unl = unlabelled_value(m.dtype) if m.dtype in (np.uint8, np.uint16) else None
            vals = np.unique(m)
            vals = vals[vals != unl] if unl is not None else vals
            if vals.size:
                top = max(top, int(vals.max()))
        if top < 0:
            raise DataError("the masks hold no labelled pixel")
        classes = ClassTable.from_names([f"class {i}" for i in range(top + 1)])
    try:
        vmap = parse_value_map(value_map, classes)
    except (ValueError, KeyError) as exc:
        raise DataError(str(exc).strip("'\"")) from None
    samples: list[Sample] = []
    for img, mpath, m in raw:
        cancel.raise_if_cancelled()
        try:
            label = apply_value_map(m, len(classes), vmap, unmapped)
            samples.append(_read_sample(img.stem, img, label, in_memory))
        except MaskError as exc:
            raise DataError(f"{mpath}: {exc}") from None
        except (ImageReadError, DataError) as exc:
            skipped.append(f"{img.name}: {exc}")
    return classes, samples, skipped


def load_folders(spec: FolderData, cancel: CancelToken = NEVER_CANCELLED, memory_budget: int | None = None
                 ) -> TrainData:
    """Images and masks from folders (see :class:`FolderData`)."""
    pairs, lonely = pair_by_stem(Path(spec.images), Path(spec.masks))
    val_pairs: list[tuple[Path, Path]] = []
    if spec.val_images or spec.val_masks:
        if not (spec.val_images and spec.val_masks):
            raise DataError("a validation set needs both its images and its masks folder")
        val_pairs, _ = pair_by_stem(Path(spec.val_images), Path(spec.val_masks))
    if spec.limit is not None:
        pairs, val_pairs = pairs[: spec.limit], val_pairs[: spec.limit]
    budget = _memory_budget(memory_budget)
    in_memory = _keep_in_memory([p for p, _ in pairs + val_pairs], budget)
    classes, samples, skipped = _read_folder(pairs, _class_table(spec.classes), spec.value_map, spec.unmapped,
                                             in_memory, cancel)
    if not samples:
        raise DataError(f"no usable image/mask pair in {spec.images}: " + "; ".join(skipped[:3]))
    if val_pairs:
        _, val, val_skipped = _read_folder(val_pairs, classes, spec.value_map, spec.unmapped, in_memory, cancel)
        skipped += val_skipped
        train, val_source = samples, f"{len(val)} images from {spec.val_images}"
    elif spec.holdout_every:
        _, held_names = split_names([s.name for s in samples], spec.holdout_every)
        held = set(held_names)
        train = [s for s in samples if s.name not in held]
        val = [s for s in samples if s.name in held]
        val_source = (f"{len(val)} of {len(samples)} images held out (every {spec.holdout_every}th, from the 2nd)"
                      if val else f"no held-out image ({len(samples)} image(s), all train)")
    else:
        train, val, val_source = split_validation(samples, spec.val_fraction, spec.seed, spec.min_val_images)
    source = f"{len(samples)} images from {spec.images}"
    return TrainData(classes, train, val, source, val_source, lonely + skipped)


def camvid_layout(root: Path | str, split: str = "train") -> tuple[Path, Path] | None:
    """(images, masks) of a CamVid-style folder (``train/`` + ``trainannot/``), or None if it is not one."""
    r = Path(root)
    images, masks = r / split, r / f"{split}annot"
    return (images, masks) if images.is_dir() and masks.is_dir() else None

