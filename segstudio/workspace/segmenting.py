"""The work behind "Segment" and "Segment all unlabelled", run in worker threads. Qt-free.

Each image: the predictor's labels translated to the project's class indices,
its normalised entropy as the uncertainty map; the prediction
(``Project.save_prediction``: the image becomes "predicted" unless the user
labelled it), the map and the score are written before the result is
reported, so what the window shows is on disk. The project file and the
scores file are saved at the end, and every few seconds during a long run
(not once per image: both files grow with the project).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from segstudio.core.image_io import ImageReadError, LoadedImage, read_image
from segstudio.core.project import Project
from segstudio.core.tasks import CancelToken, Progress
from segstudio.inference.predictor import Predictor
from segstudio.workspace.uncertainty import UncertaintyScores, mean_score, save_uncertainty, to_uint8

SAVE_EVERY_S = 2.0


@dataclass
class SegmentResult:
    """One segmented image: ``labels`` in the project's class indices, ``uncertainty`` uint8 0..255."""

    path: str
    labels: np.ndarray
    uncertainty: np.ndarray
    score: float
    seconds: float


@dataclass
class SegmentEvent:
    """Progress of "Segment all": after each image (``result`` None when it failed or was skipped)."""

    done: int
    total: int
    path: str
    result: SegmentResult | None
    error: str | None
    images_per_s: float
    eta_s: float | None


@dataclass
class SegmentSummary:
    """The end of "Segment all"."""

    segmented: int
    skipped: int
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def segment_image(project: Project, path: str, image: LoadedImage, predictor: Predictor, lut: np.ndarray,
                  scores: UncertaintyScores, model_id: str, cancel: CancelToken,
                  progress: Callable[[Progress], None] | None = None) -> SegmentResult:
    """Segment one image of ``project`` and write its prediction, uncertainty map and score.

    ``lut[model label]`` is the project's class index (see ``model_choice.fit_classes``).
    The project and scores files are not saved here (see :func:`save_state`).
    """
    started = time.perf_counter()
    pred = predictor.predict(image, confidence=True, cancel=cancel, progress=progress)
    cancel.raise_if_cancelled()
    labels = lut[pred.labels]
    assert pred.entropy is not None  # asked for with confidence=True
    uncertainty = to_uint8(pred.entropy)
    score = mean_score(pred.entropy)
    project.save_prediction(path, labels)
    save_uncertainty(project, path, uncertainty)
    scores.set(path, score, model_id)
    return SegmentResult(path, labels, uncertainty, score, time.perf_counter() - started)


def save_state(project: Project, scores: UncertaintyScores) -> None:
    """Save the project file (statuses) and the scores file."""
    project.save()
    scores.save()


def segment_one(project: Project, path: str, image: LoadedImage, predictor: Predictor, lut: np.ndarray,
                scores: UncertaintyScores, model_id: str, cancel: CancelToken,
                report: Callable[[object], None]) -> SegmentResult:
    """"Segment" for the image on screen: :func:`segment_image`, then the files saved."""
    result = segment_image(project, path, image, predictor, lut, scores, model_id, cancel, report)
    save_state(project, scores)
    return result


def segment_many(project: Project, paths: Sequence[str], open_images: Mapping[str, LoadedImage],
                 predictor: Predictor, lut: np.ndarray, scores: UncertaintyScores, model_id: str,
                 cancel: CancelToken) -> Generator[SegmentEvent, None, SegmentSummary]:
    """"Segment all": each image of ``paths`` in turn; unreadable images are reported and skipped.

    Images the user labelled after the run started are skipped (their
    prediction would only be hidden). ``open_images`` are images already
    decoded by the window. On cancel the images done so far are kept (and the
    files saved).
    """
    started = time.perf_counter()
    last_save = started
    segmented = skipped = 0
    errors: list[str] = []
    total = len(paths)
    try:
        for i, path in enumerate(paths):
            cancel.raise_if_cancelled()
            result, error = None, None
            try:
                entry = project.entry(path)
            except KeyError:
                entry = None
            if entry is None or entry.status in ("corrected", "reviewed"):
                skipped += 1
            else:
                try:
                    image = open_images.get(path) or read_image(project.image_path(entry))
                    result = segment_image(project, path, image, predictor, lut, scores, model_id, cancel)
                    segmented += 1
                except ImageReadError as exc:
                    error = f"{path}: {exc.reason}"
                except (ValueError, OSError, MemoryError) as exc:  # one bad image never stops the run
                    error = f"{path}: {exc}"
                if error is not None:
                    errors.append(error)
            elapsed = time.perf_counter() - started
            rate = segmented / elapsed if segmented and elapsed > 0 else 0.0
            eta = (total - i - 1) / rate if rate > 0 else None
            if time.perf_counter() - last_save >= SAVE_EVERY_S:
                save_state(project, scores)
                last_save = time.perf_counter()
            yield SegmentEvent(i + 1, total, path, result, error, rate, eta)
    finally:
        save_state(project, scores)
    return SegmentSummary(segmented, skipped, errors, time.perf_counter() - started)
