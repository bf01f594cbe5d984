"""Segment folders of images: pipelined, resumable, every failure reported and none fatal.

:func:`segment_folder` is a generator of :class:`BatchEvent` s, driven by the
CLI (``segstudio segment``) or by a GUI worker thread. Decoding runs in a pool
of threads ahead of the network and encoding/writing in another pool behind it
(OpenCV's PNG codecs release the GIL), so the network is not left waiting for
PNG work. Equal-sized images go through the network ``batch_size`` at a time.

The run is three parts, so that every runner does the same work the same way:
:func:`plan_batch` lists the jobs and applies the resume rule,
:func:`run_jobs` does the per-file work (decode → predict → encode, with the
per-file errors) and :class:`BatchTally` counts the outcomes into events.
:func:`segment_folder` runs all three in this process;
:mod:`segstudio.inference.ray_batch` plans and counts on the driver and runs
:func:`run_jobs` in Ray actors.

Outputs for ``<input root>/<sub>/<stem>.<ext>``, one folder per kind (the input folder
structure is kept inside each; a file named directly goes to the top):

- ``OUT/masks/<sub>/<stem>.png`` — the class-index map: pixel value = class index, with a palette of the
  class colours so that it looks like the classes in any viewer (uint8; uint16 without a palette beyond
  254 classes);
- ``OUT/overlays/<sub>/<stem>.png`` — the classes' colours blended over the image (``overlay``);
- ``OUT/classes/<NN>-<class>/<sub>/<stem>.png`` — 0/255 mask per class (``masks_per_class``);
- ``OUT/classes.json`` — the legend: each class's index, name and colour, and the model.

Every file is written atomically and the index map last, so an image whose
outputs all exist is complete and is skipped when the run is repeated (resume)
— when the index map records the same model (:mod:`segstudio.inference.batch_record`);
outputs of another model stop the run unless ``overwrite`` is set.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.classes import MAX_CLASSES_8BIT, ClassTable
from segstudio.core.image_io import (
    ImageReadError,
    LoadedImage,
    encode_mask_png,
    image_size,
    list_images,
    read_image,
    write_mask,
)
from segstudio.core.png_palette import with_palette
from segstudio.core.png_text import with_text
from segstudio.core.tasks import NEVER_CANCELLED, Cancelled, CancelToken
from segstudio.inference.batch_record import MODEL_KEY, OtherModelError, model_tag, recorded_model, same_model
from segstudio.inference.predictor import Prediction, Predictor

PREFETCH_PIXELS = 64_000_000
"""Decoding stops running ahead once this many pixels are decoded but not yet segmented (one image always may)."""


@dataclass(frozen=True)
class FileError:
    """One input that produced no output, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class BatchOptions:
    """What to write and how to run. ``None`` workers/batch size mean "pick for this machine"."""

    overlay: bool = False
    masks_per_class: bool = False
    recursive: bool = False
    tta: bool | None = None
    """``None``: the model's default views (:func:`~segstudio.inference.tta.card_tta`); ``True``: flips × four
    scales; ``False``: the image alone."""
    resume: bool = True
    overwrite: bool = False
    """Resume over finished outputs of another model by segmenting those images again (else OtherModelError)."""
    overlay_alpha: float = 0.5
    batch_size: int | None = None
    decode_workers: int | None = None
    encode_workers: int | None = None


@dataclass
class BatchEvent:
    """Progress of a batch run. ``done`` counts written, skipped and failed files alike."""

    done: int
    total: int
    written: int
    skipped: int
    failed: int
    images_per_s: float
    eta_s: float | None
    errors: list[FileError] = field(default_factory=list)
    """All failures so far."""
    current: Path | None = None
    finished: bool = False


MASKS_DIR, OVERLAYS_DIR, CLASSES_DIR = "masks", "overlays", "classes"
"""The output folder's sub-folders: class-index maps, overlays, per-class masks."""
LEGEND_FILE = "classes.json"
"""The output folder's legend: what each value of a class map means."""


@dataclass(frozen=True)
class Job:
    """One input image and the files it produces."""

    source: Path
    mask: Path
    overlay: Path | None = None
    class_masks: tuple[Path, ...] = ()

    @property
    def outputs(self) -> tuple[Path, ...]:
        return (*self.class_masks, *((self.overlay,) if self.overlay else ()), self.mask)

    def is_done(self) -> bool:
        return all(p.is_file() for p in self.outputs)


def safe_name(name: str) -> str:
    """A class name made safe for a file name (letters, digits, ``-_.``; others become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "class"


def class_folder(index: int, name: str) -> str:
    """The per-class masks' folder of a class: ``<NN>-<name>`` (sorted like the classes)."""
    return f"{index:02d}-{safe_name(name)}"


def job_for(source: Path, out_dir: Path, sub: str, classes: ClassTable, options: BatchOptions) -> Job:
    """The job that segments ``source`` into ``out_dir`` (its sub-folder ``sub``, ``""`` at the top, inside each
    kind's folder): its output names follow the options."""
    name = f"{source.stem}.png"

    def where(kind: str) -> Path:
        return out_dir / kind / sub / name if sub else out_dir / kind / name

    overlay = where(OVERLAYS_DIR) if options.overlay else None
    masks = tuple(where(f"{CLASSES_DIR}/{class_folder(c.index, c.name)}") for c in classes) \
        if options.masks_per_class else ()
    return Job(source, where(MASKS_DIR), overlay, masks)


def write_legend(out_dir: Path | str, classes: ClassTable, model: str = "") -> Path:
    """Write ``OUT/classes.json``: each class's index, name, colour and per-class folder, and the model."""
    out = Path(out_dir)
    legend = {
        "classes": [{**c.to_json(), "folder": f"{CLASSES_DIR}/{class_folder(c.index, c.name)}"} for c in classes],
        "masks": f"{MASKS_DIR}/: pixel value = class index (a palette PNG showing the class colours)",
        "overlays": f"{OVERLAYS_DIR}/: the class colours blended over the image",
        "model": model,
    }
    path = out / LEGEND_FILE
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(legend, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def plan_jobs(inputs: Sequence[Path | str], out_dir: Path | str, classes: ClassTable,
              options: BatchOptions) -> tuple[list[Job], list[FileError]]:
    """The jobs for the inputs (files and folders), and inputs that cannot be planned.

    Raises ``ValueError`` when the output folder is one of the input folders
    (outputs would land among, and could overwrite, the inputs).
    """
    out = Path(out_dir).resolve()
    jobs: list[Job] = []
    errors: list[FileError] = []
    claimed: dict[Path, Path] = {}

    def add(job: Job) -> None:
        clash = next((claimed[p] for p in job.outputs if p in claimed), None)
        if clash is not None:
            errors.append(FileError(job.source, f"its output {job.mask.name} would overwrite that of {clash}; "
                                                "rename one of them or segment them separately"))
            return
        for p in job.outputs:
            claimed[p] = job.source
        jobs.append(job)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            root = path.resolve()
            if root == out:
                raise ValueError(f"the output folder {out} is an input folder; choose another output folder")
            for image in list_images(root, recursive=options.recursive):
                if out in image.parents:  # earlier outputs inside a recursively scanned input folder
                    continue
                sub = image.relative_to(root).parent.as_posix()
                add(job_for(image, out, "" if sub == "." else sub, classes, options))
        elif os.path.lexists(path):  # a file, or a FIFO or device that reading will refuse with its reason
            add(job_for(path.resolve(), out, "", classes, options))
        else:
            errors.append(FileError(path, "no such file or folder"))
    return jobs, errors


def _overlay(display: np.ndarray, labels: np.ndarray, lut: np.ndarray, alpha: float) -> np.ndarray:
    colour = lut[labels]
    return cv2.addWeighted(display, 1.0 - alpha, colour, alpha, 0.0)


def write_outputs(job: Job, image: LoadedImage, pred: Prediction, classes: ClassTable, alpha: float,
                  model: str = "") -> None:
    """Write a job's files (index map last, recording ``model``). Runs in an encoder thread."""
    for folder in {p.parent for p in job.outputs}:
        folder.mkdir(parents=True, exist_ok=True)
    for c, path in zip(classes, job.class_masks):
        write_mask(path, np.where(pred.labels == c.index, np.uint8(255), np.uint8(0)))
    if job.overlay is not None:
        ov = _overlay(image.display, pred.labels, classes.lut_rgb(), alpha)
        ok, buf = cv2.imencode(".png", ov[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError("PNG encoding of the overlay failed")
        atomic_write_bytes(job.overlay, buf.tobytes())
    atomic_write_bytes(job.mask, index_map_png(pred.labels, classes, model))


def index_map_png(labels: np.ndarray, classes: ClassTable, model: str = "") -> bytes:
    """A class map as PNG bytes: the class indices as pixel values, the class colours as its palette (up to
    254 classes), and the model's record (:mod:`~segstudio.inference.batch_record`) when given."""
    png = encode_mask_png(labels)
    if labels.dtype == np.uint8 and len(classes) <= MAX_CLASSES_8BIT:
        png = with_palette(png, classes.colours)
    return with_text(png, MODEL_KEY, model) if model else png


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job: written (``error`` is None) or failed with the reason."""

    job: Job
    error: FileError | None = None


@dataclass
class BatchTally:
    """The counts of a batch run and the :class:`BatchEvent` s that report them.

    One tally serves every runner (this module's threads, :mod:`~segstudio.inference.ray_batch`'s
    actors), so a run reports the same numbers however it is spread.
    """

    total: int
    skipped: int
    errors: list[FileError]
    written: int = 0
    t_start: float | None = None

    def start(self) -> None:
        """Start the clock of the images/s rate (after planning, before the first image)."""
        self.t_start = time.perf_counter()

    def add(self, outcome: JobOutcome) -> None:
        if outcome.error is None:
            self.written += 1
        else:
            self.errors.append(outcome.error)

    @property
    def done(self) -> int:
        return self.written + self.skipped + len(self.errors)

    def event(self, current: Path | None = None, finished: bool = False) -> BatchEvent:
        rate = 0.0
        if self.t_start is not None and self.written:
            rate = self.written / max(time.perf_counter() - self.t_start, 1e-9)
        done = self.done
        eta = (self.total - done) / rate if rate > 0 else (0.0 if done == self.total else None)
        return BatchEvent(done, self.total, self.written, self.skipped, len(self.errors), rate, eta,
                          list(self.errors), current, finished)


def plan_batch(inputs: Sequence[Path | str], out_dir: Path | str, classes: ClassTable,
               options: BatchOptions, tag: str) -> tuple[list[Job], BatchTally]:
    """The jobs still to do and the tally that will count them.

    The resume rule: with ``options.resume``, a job whose outputs all exist is
    skipped (counted, not redone) when its index map records the model ``tag``;
    finished outputs of another model raise :class:`OtherModelError` unless
    ``options.overwrite`` (then they are redone). Raises ``ValueError`` as :func:`plan_jobs` does.
    """
    jobs, errors = plan_jobs(inputs, out_dir, classes, options)
    redo = {j for j in jobs if options.resume and j.is_done() and not same_model(recorded_model(j.mask), tag)}
    if redo and not options.overwrite:
        first = sorted(redo, key=lambda j: j.source)
        raise OtherModelError(out_dir, [j.source for j in first], recorded_model(first[0].mask), tag)
    todo = [j for j in jobs if not (options.resume and j.is_done()) or j in redo]
    return todo, BatchTally(total=len(jobs) + len(errors), skipped=len(jobs) - len(todo), errors=errors)


def segment_folder(inputs: Sequence[Path | str], out_dir: Path | str, predictor: Predictor,
                   options: BatchOptions | None = None, cancel: CancelToken | None = None) -> Iterator[BatchEvent]:
    """Segment every image of ``inputs`` (files and folders) into ``out_dir``; yield progress events.

    Failures (unreadable image, wrong channel count, write error, …) are
    collected per file and never stop the run. When ``cancel`` is set, the
    images already segmented are written, then
    :class:`~segstudio.core.tasks.Cancelled` is raised. The last event has
    ``finished=True``.
    """
    opts = options or BatchOptions()
    tag = model_tag(predictor)
    todo, tally = plan_batch(inputs, out_dir, predictor.card.classes, opts, tag)
    write_legend(out_dir, predictor.card.classes, tag)
    yield tally.event()
    tally.start()
    for outcome in run_jobs(todo, predictor, opts, cancel):
        tally.add(outcome)
        yield tally.event(outcome.job.source)
    yield tally.event(finished=True)


def run_jobs(jobs: Iterable[Job], predictor: Predictor, options: BatchOptions | None = None,
             cancel: CancelToken | None = None) -> Iterator[JobOutcome]:
    """Decode → predict → encode ``jobs``, pipelined; yield one :class:`JobOutcome` per job once it is final.

    The per-file work of every runner (see the module docstring). A failure is
    that job's outcome and never stops the others; an image whose batch fails
    is retried alone, so one bad image does not fail its batch-mates. When
    ``cancel`` is set, the images already segmented are written and reported,
    then :class:`~segstudio.core.tasks.Cancelled` is raised.
    """
    opts = options or BatchOptions()
    cancel = cancel or NEVER_CANCELLED
    classes = predictor.card.classes
    tag = model_tag(predictor)
    batch_size = max(1, opts.batch_size or predictor.backend.batch_size)
    decode_n = opts.decode_workers or default_workers()
    encode_n = opts.encode_workers or default_workers()
    decoder = cf.ThreadPoolExecutor(decode_n, thread_name_prefix="segment-decode")
    encoder = cf.ThreadPoolExecutor(encode_n, thread_name_prefix="segment-encode")
    decoding: collections.deque[tuple[Job, int, cf.Future[LoadedImage]]] = collections.deque()
    encoding: collections.deque[tuple[Job, cf.Future[None]]] = collections.deque()
    final: collections.deque[JobOutcome] = collections.deque()
    queued = iter(jobs)
    exhausted = False
    pending_pixels = 0

    def refill() -> None:
        nonlocal exhausted, pending_pixels
        while not exhausted and len(decoding) < 2 * batch_size + decode_n and (
                not decoding or pending_pixels < PREFETCH_PIXELS):
            job = next(queued, None)
            if job is None:
                exhausted = True
                return
            try:
                h, w = image_size(job.source)
            except (ImageReadError, OSError):
                h = w = 0  # decoding will report the problem
            pending_pixels += h * w
            decoding.append((job, h * w, decoder.submit(read_image, job.source)))

    def fail(job: Job, message: str) -> None:
        final.append(JobOutcome(job, FileError(job.source, message)))

    def collect(block: bool) -> None:
        while encoding and (block or encoding[0][1].done() or len(encoding) > 2 * encode_n + batch_size):
            job, fut = encoding.popleft()
            try:
                fut.result()
                final.append(JobOutcome(job))
            except Exception as exc:  # a write error is this file's failure, not the run's
                fail(job, f"could not write the result: {exc}")

    def run_batch(batch: list[tuple[Job, LoadedImage]]) -> None:
        try:
            preds = predictor.predict_batch([im for _, im in batch], tta=opts.tta, cancel=cancel)
            results = list(zip(batch, preds))
        except Cancelled:
            raise
        except Exception as exc:  # e.g. a wrong channel count, or out of memory on one huge image
            if len(batch) == 1:
                fail(batch[0][0], f"segmentation failed: {exc}")
                return
            # One bad image should not fail its batch-mates: retry them one at a time.
            for item in batch:
                run_batch([item])
            return
        for (job, image), pred in results:
            encoding.append((job, encoder.submit(write_outputs, job, image, pred, classes, opts.overlay_alpha, tag)))
        collect(block=False)

    try:
        batch: list[tuple[Job, LoadedImage]] = []
        refill()
        while decoding:
            if cancel.cancelled:
                break
            job, pixels, fut = decoding.popleft()
            try:
                image: LoadedImage | None = fut.result()
            except ImageReadError as exc:
                fail(job, exc.reason)
                image = None
            except Exception as exc:  # the decoders must never take the run down
                fail(job, f"could not read the image: {exc}")
                image = None
            pending_pixels -= pixels
            refill()
            if image is not None:
                if batch and (image.data.shape != batch[0][1].data.shape
                              or image.data.dtype != batch[0][1].data.dtype):
                    run_batch(batch)
                    batch = []
                batch.append((job, image))
            if batch and (len(batch) >= batch_size or not decoding):
                run_batch(batch)
                batch = []
            while final:
                yield final.popleft()
        if batch and not cancel.cancelled:
            run_batch(batch)
        collect(block=True)
        while final:
            yield final.popleft()
        cancel.raise_if_cancelled()
    finally:
        for _, _, fut in decoding:
            fut.cancel()
        decoder.shutdown(wait=True, cancel_futures=True)
        collect(block=True)  # what was segmented is written, even when cancelled
        encoder.shutdown(wait=True)
