"""One open image: its pixels and pyramid, the label being edited, the prediction and the save state.

:func:`load_document` is the slow part (decode, pyramid, masks) and runs in a
worker, as does :func:`write_label` (saving an edited label); :class:`ImageDocument`
is what the window edits. Qt-free on purpose: the controllers and the tests use it
without a window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from segstudio.core.classes import mask_dtype, unlabelled_value
from segstudio.core.editing.history import History
from segstudio.core.editing.session import EditSession, MaskMap
from segstudio.core.image_io import ImageReadError, LoadedImage, read_image
from segstudio.core.project import Project
from segstudio.core.project_file import ImageEntry
from segstudio.core.tasks import CancelToken
from segstudio.workspace.pyramid import build_pyramid
from segstudio.workspace.uncertainty import load_uncertainty, to_uint8

UNDO_BYTES = 256 * 1024 * 1024
"""Undo memory per image (compressed strokes); the oldest steps are dropped beyond it."""


@dataclass
class LoadedDocument:
    """What :func:`load_document` produces in the worker."""

    entry: ImageEntry
    image: LoadedImage
    pyramid: list[np.ndarray]
    label: np.ndarray
    prediction: np.ndarray | None
    read_only_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    uncertainty: np.ndarray | None = None


def load_document(project: Project, entry: ImageEntry, cancel: CancelToken) -> LoadedDocument:
    """Read an image of ``project`` with its label and prediction, and build its display pyramid.

    Raises ``ImageReadError`` when the image itself cannot be read. A label file
    that cannot be read, or whose size differs from the image, opens the image
    read-only (``read_only_reason`` says why), so that saving can never replace
    the user's file with an empty mask. An unreadable prediction (or uncertainty map) is left out with a note.
    """
    image = read_image(project.image_path(entry))
    cancel.raise_if_cancelled()
    pyramid = build_pyramid(image.display)
    cancel.raise_if_cancelled()
    shape = (image.height, image.width)
    notes = list(image.notes)
    read_only: str | None = None
    label: np.ndarray | None
    try:
        label = project.load_label(entry)
    except ImageReadError as exc:
        label, read_only = None, f"{exc.reason}; the label file {exc.path} is left untouched"
    if label is not None and label.shape != shape:
        read_only = (f"the label file is {label.shape[1]}×{label.shape[0]} but the image is "
                     f"{shape[1]}×{shape[0]}; it is left untouched")
        label = None
    if label is None:
        dtype = mask_dtype(len(project.classes))
        label = np.full(shape, unlabelled_value(dtype), dtype)
    prediction: np.ndarray | None = None
    try:
        prediction = project.load_prediction(entry)
    except ImageReadError as exc:
        notes.append(f"prediction not shown: {exc.reason}")
    if prediction is not None and prediction.shape != shape:
        notes.append("prediction not shown: its size differs from the image")
        prediction = None
    uncertainty: np.ndarray | None = None
    if prediction is not None:
        try:
            uncertainty = load_uncertainty(project, entry, shape)
        except ImageReadError as exc:
            notes.append(f"uncertainty not shown: {exc.reason}")
    return LoadedDocument(entry, image, pyramid, label, prediction, read_only, notes, uncertainty)


def write_label(project: Project, entry: ImageEntry, mask: np.ndarray) -> None:
    """Save ``mask`` as the label of ``entry`` (or remove the label file when nothing is labelled), then the
    project file. A reviewed image that is edited again becomes ``corrected``."""
    if (mask == unlabelled_value(mask.dtype)).all():
        if project.label_path(entry).exists():
            project.delete_label(entry)
    else:
        project.save_label(entry, mask)
    project.save()


def class_pixel_counts(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class index 0..num_classes-1 (unlabelled pixels are not counted)."""
    if mask.dtype == np.uint8:
        # calcHist is multi-threaded and several times faster than bincount on big masks
        hist = cv2.calcHist([mask], [0], None, [256], [0, 256]).ravel()
        counts = hist.astype(np.int64)
    else:
        counts = np.bincount(mask.ravel(), minlength=65536)
    out = np.zeros(num_classes, np.int64)
    n = min(num_classes, counts.size)
    out[:n] = counts[:n]
    return out


class ImageDocument:
    """An open image with its edit session.

    ``version`` counts changes to the label (the session's ``label_version``: a new
    prediction is not one); ``saved_version`` is the version on disk. The label is
    unsaved while they differ. ``uncertainty`` is the
    model's per-pixel uncertainty as uint8 (255 = most uncertain), as stored
    beside the prediction (see :mod:`segstudio.workspace.uncertainty`).
    """

    def __init__(self, loaded: LoadedDocument, undo_bytes: int = UNDO_BYTES) -> None:
        self.entry = loaded.entry
        self.image = loaded.image
        self.pyramid = loaded.pyramid
        self.read_only_reason = loaded.read_only_reason
        self.notes = loaded.notes
        self.session = EditSession(loaded.label, loaded.prediction, History(max_bytes=undo_bytes))
        self.uncertainty: np.ndarray | None = loaded.uncertainty
        self.saved_version = 0
        self.saving = False
        self.save_error: str | None = None

    @property
    def version(self) -> int:
        return self.session.label_version

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def shape(self) -> tuple[int, int]:
        return self.session.shape

    @property
    def dirty(self) -> bool:
        return self.version != self.saved_version

    @property
    def editable(self) -> bool:
        return self.read_only_reason is None

    def set_prediction(self, labels: np.ndarray | None, uncertainty: np.ndarray | None = None) -> None:
        """Show ``labels`` as the suggestion (not the user's label) and ``uncertainty`` as its heat map.

        ``uncertainty``: uint8 0..255, or floats in [0, 1].
        """
        if uncertainty is not None and uncertainty.shape != self.shape:
            raise ValueError(f"uncertainty {uncertainty.shape} does not match the image {self.shape}")
        self.uncertainty = to_uint8(uncertainty) if uncertainty is not None else None
        self.session.set_prediction(labels)  # repaints; the label's version stays

    def follow_class_change(self, label: MaskMap, prediction: MaskMap) -> None:
        """Renumber the label and prediction as a class change renumbered this image's files (``label``,
        ``prediction``: see :meth:`EditSession.remap`). The undo history starts afresh: its steps hold the old
        numbers, and Edit › Undo must reach the class change itself. A label that was saved stays saved (its
        file went through the same change)."""
        saved = not self.dirty
        self.session.remap(label, prediction, keep_history=False)
        if saved:
            self.saved_version = self.version

    def has_labels(self) -> bool:
        return bool((self.session.label != unlabelled_value(self.session.label.dtype)).any())

    def memory_bytes(self) -> int:
        """Pixels, pyramid, masks and undo history held by this document."""
        total = sum(int(level.nbytes) for level in self.pyramid)
        if self.image.data is not self.image.display:
            total += int(self.image.data.nbytes)
        total += int(self.session.label.nbytes) + self.session.history.nbytes
        if self.session.prediction is not None:
            total += int(self.session.prediction.nbytes)
        if self.uncertainty is not None:
            total += int(self.uncertainty.nbytes)
        return total
