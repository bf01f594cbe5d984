"""ImageDocument's save state: one counter, the label's; a prediction arriving leaves the label saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.image_io import LoadedImage
from segstudio.core.project_file import ImageEntry
from segstudio.workspace.document import ImageDocument, LoadedDocument


def _document() -> ImageDocument:
    pixels = np.zeros((30, 40, 3), np.uint8)
    image = LoadedImage(Path("a.png"), pixels, pixels, "png", 255.0, [])
    label = np.full((30, 40), 255, np.uint8)
    return ImageDocument(LoadedDocument(ImageEntry("a.png", "a.png"), image, [pixels], label, None))


def test_a_prediction_is_not_an_edit_and_a_stroke_is() -> None:
    doc = _document()
    assert not doc.dirty
    doc.set_prediction(np.ones((30, 40), np.uint8), np.zeros((30, 40), np.float32))
    assert not doc.dirty and doc.version == 0
    doc.session.paint((5, 5), (9, 5), 2, 1)
    assert doc.dirty and doc.version == doc.session.label_version == 1
    doc.saved_version = doc.version
    assert not doc.dirty
    doc.session.undo()
    assert doc.dirty


def test_following_a_class_change_keeps_a_saved_label_saved_and_starts_a_new_history() -> None:
    doc = _document()
    doc.set_prediction(np.ones((30, 40), np.uint8))
    doc.session.paint((5, 5), (9, 5), 2, 1)
    doc.saved_version = doc.version  # saved: the class change then rewrote the file
    lut = np.arange(256, dtype=np.uint8)
    lut[1] = 0

    def label(mask: np.ndarray) -> np.ndarray:
        return lut[mask]

    doc.follow_class_change(label, label)
    assert not doc.dirty and not doc.session.history.can_undo
    assert not (doc.session.label == 1).any() and (doc.session.label == 0).any()
    assert doc.session.prediction is not None and (doc.session.prediction == 0).all()
