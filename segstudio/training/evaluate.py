"""Scoring a model against labels: validation during training, ``segstudio eval``, and the per-round
quality report the app shows after fine-tuning on corrections.

Predictions go through :class:`~segstudio.inference.predictor.Predictor`, the
same code path the app segments with (normalisation from the card, padding to
the network's size multiple, tiling of large images), so a score here is the
score of what the user sees. Pixels labelled "not labelled" do not count:
sparse corrections are scored on the pixels the user painted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.image_io import ImageReadError, read_image
from segstudio.core.metrics import SegMetrics, confusion_matrix, iou_per_class, mean_iou
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken
from segstudio.inference.predictor import TTA, Predictor
from segstudio.training.data import Sample


def _nan_to_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def score_samples(predictor: Predictor, samples: Iterable[Sample], cancel: CancelToken = NEVER_CANCELLED,
                  tta: TTA | None = None, uncertainties: list[float] | None = None,
                  on_prediction: Callable[[Sample, np.ndarray], None] | None = None) -> SegMetrics:
    """Pooled confusion matrix of ``predictor`` over ``samples`` (labels' unlabelled pixels ignored).

    ``uncertainties``: when given, each image's mean uncertainty (normalised entropy, as the app shows it) is
    appended to it. ``on_prediction``: called with each sample and its predicted labels (further figures from
    the same prediction)."""
    metrics = SegMetrics(predictor.num_classes, ignore_index=None)
    for s in samples:
        cancel.raise_if_cancelled()
        out = predictor.predict(s.image, cancel=cancel, tta=tta, confidence=uncertainties is not None)
        metrics.confusion += confusion_matrix(out.labels, s.label, predictor.num_classes, s.ignore_value)
        if uncertainties is not None and out.entropy is not None:
            uncertainties.append(float(out.entropy.mean(dtype=np.float64)))
        if on_prediction is not None:
            on_prediction(s, out.labels)
    return metrics


@dataclass
class ImageScore:
    """One image: its IoU per class and mIoU between prediction and label, over the labelled pixels."""

    image: str
    miou: float | None
    per_class: dict[str, float | None]
    labelled_pixels: int
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "miou": self.miou, "per_class": self.per_class,
                "labelled_pixels": self.labelled_pixels, **({"error": self.error} if self.error else {})}


@dataclass
class CorrectionsReport:
    """How well a model agrees with the user's corrections, per image and across the project.

    ``miou``/``per_class``: from the confusion matrix pooled over every
    labelled pixel of the project; ``mean_image_miou``: the average of the
    per-image mIoUs (each image counts once, however much of it was painted).
    """

    model: str
    classes: list[str]
    images: list[ImageScore] = field(default_factory=list)
    miou: float | None = None
    per_class: dict[str, float | None] = field(default_factory=dict)
    mean_image_miou: float | None = None
    pixel_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "classes": self.classes, "miou": self.miou, "per_class": self.per_class,
                "mean_image_miou": self.mean_image_miou, "pixel_accuracy": self.pixel_accuracy,
                "images": [s.to_json() for s in self.images]}

    def compare(self, after: CorrectionsReport) -> dict[str, Any]:
        """Before (self) and after (``after``) side by side: overall, per class and per image, with the change."""
        def delta(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else b - a

        before_images = {s.image: s for s in self.images}
        rows = []
        for s in after.images:
            b = before_images.get(s.image)
            rows.append({"image": s.image, "before": b.miou if b else None, "after": s.miou,
                         "change": delta(b.miou if b else None, s.miou)})
        return {
            "miou": {"before": self.miou, "after": after.miou, "change": delta(self.miou, after.miou)},
            "per_class": {c: {"before": self.per_class.get(c), "after": after.per_class.get(c),
                              "change": delta(self.per_class.get(c), after.per_class.get(c))}
                          for c in after.classes},
            "images": rows,
        }


def evaluate_on_corrections(model: Predictor | Path | str, project: Any, images: Sequence[str] | None = None,
                            cancel: CancelToken = NEVER_CANCELLED, **predictor_options: Any) -> CorrectionsReport:
    """Score a model (a :class:`Predictor` or a model file) against a project's labels.

    ``project``: a :class:`~segstudio.core.project.Project` or its folder.
    ``images``: image paths (as in the project) to score; default every image
    with a label. Images whose label has no labelled pixel are skipped; an
    image that cannot be read is listed with its error and does not count.
    The model's classes must be the project's (same names, same order).
    """
    from segstudio.core.project import Project

    proj = project if isinstance(project, Project) else Project.open(project, read_only=True)
    predictor = model if isinstance(model, Predictor) else Predictor.from_file(model, **predictor_options)
    names = proj.classes.names
    if predictor.card.classes.names != names:
        raise ValueError(f"the model's classes ({', '.join(predictor.card.classes.names)}) are not the project's "
                         f"({', '.join(names)}); fine-tune it on this project first")
    k = len(names)
    report = CorrectionsReport(model=str(model) if not isinstance(model, Predictor) else predictor.card.name,
                               classes=names)
    pooled = np.zeros((k, k), np.int64)
    wanted = set(images) if images is not None else None
    for e in proj.images:
        if wanted is not None and e.path not in wanted:
            continue
        cancel.raise_if_cancelled()
        try:
            label = proj.load_label(e)
            if label is None:
                continue
            unl = 65535 if label.dtype == np.uint16 else 255
            labelled = int(np.count_nonzero(label != unl))
            if labelled == 0:
                continue
            pred = predictor.predict(read_image(proj.image_path(e)), cancel=cancel).labels
            if pred.shape != label.shape:
                raise ValueError(f"the label is {label.shape[1]}×{label.shape[0]}, the image "
                                 f"{pred.shape[1]}×{pred.shape[0]}")
        except (ImageReadError, ValueError) as exc:
            report.images.append(ImageScore(e.path, None, {}, 0, str(exc)))
            continue
        cm = confusion_matrix(pred, label, k, unl)
        pooled += cm
        ious = iou_per_class(cm)
        report.images.append(ImageScore(e.path, _nan_to_none(mean_iou(cm)),
                                        {n: _nan_to_none(v) for n, v in zip(names, ious.tolist())}, labelled))
    if pooled.sum():
        metrics = SegMetrics(k, None)
        metrics.confusion = pooled
        report.miou = _nan_to_none(metrics.miou)
        report.pixel_accuracy = _nan_to_none(metrics.pixel_accuracy)
        report.per_class = {n: _nan_to_none(v) for n, v in zip(names, metrics.per_class_iou.tolist())}
    scored = [s.miou for s in report.images if s.miou is not None]
    report.mean_image_miou = float(np.mean(scored)) if scored else None
    return report
