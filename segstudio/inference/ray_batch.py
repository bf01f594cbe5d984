"""Batch segmentation on Ray Data: the local command's work, spread over the actors of a Ray cluster.

:func:`segment_on_ray` yields the same :class:`~segstudio.inference.batch.BatchEvent` s as
:func:`~segstudio.inference.batch.segment_folder` and writes the same files:

- The driver plans the run with :func:`~segstudio.inference.batch.plan_batch` (the same listing,
  output names, clash checks and resume rule) and counts the outcomes with the same
  :class:`~segstudio.inference.batch.BatchTally`.
- Ray Data distributes the jobs, one row per image (its path, the output folder and its sub-folder), to a fixed
  pool of :class:`SegmentActor` s (``map_batches`` with a callable class). Each actor opens the
  model once and runs :func:`~segstudio.inference.batch.run_jobs` — the local command's decode →
  predict → encode, with its per-file errors and tiling — on each batch of rows, so masks are
  byte-identical to the local command's. Only paths travel: each actor reads and writes the
  files itself, so inputs and outputs must be paths that every node sees (a shared file system).
- A GPU actor per GPU when the cluster has GPUs, else CPU actors (one per ``cpus_per_actor`` CPUs).
- A worker that dies loses no result: every file is written atomically as soon as it is
  segmented, and Ray restarts the actor and retries its batch, where the files already
  written are skipped (the resume rule). Should the Ray run itself fail, the driver reports
  each image it never heard of as written (its outputs are complete on disk) or failed.

Ray is imported inside the functions: the base install has no Ray.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.tasks import NEVER_CANCELLED, CancelToken
from segstudio.inference.batch import (
    MASKS_DIR,
    BatchEvent,
    BatchOptions,
    BatchTally,
    FileError,
    Job,
    JobOutcome,
    job_for,
    plan_batch,
    run_jobs,
    write_legend,
)
from segstudio.inference.batch_record import file_tag
from segstudio.inference.model_file import load_card
from segstudio.inference.predictor import Predictor

_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[A-Za-z0-9._-]+:\d+)$")


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


class RayRunError(RuntimeError):
    """The Ray run failed before any image was segmented (e.g. a worker could not open the model)."""


@dataclass(frozen=True)
class ModelSource:
    """How each actor opens the model: the arguments of :meth:`Predictor.from_file` (plain, picklable data)."""

    path: str
    backend: str = "auto"
    device: str = "auto"
    precision: str = "fp16"
    class_names: tuple[str, ...] | None = None
    tile_size: int | None = None

    def open(self, threads: int | None = None) -> Predictor:
        return Predictor.from_file(self.path, backend=self.backend, device=self.device, precision=self.precision,
                                   class_names=self.class_names, tile_size=self.tile_size, threads=threads)


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run is.

    ``address``: ``None`` or ``"local"`` starts a Ray on this machine (stopped at the end);
    ``"auto"`` joins the cluster this machine belongs to (``ray start``); ``"HOST:PORT"`` a
    cluster's head; ``"ray://HOST:10001"`` a cluster through Ray Client. When Ray is already
    initialised in this process, that connection is used and left open.
    ``actors``: model replicas; ``None`` = one per GPU, else one per ``cpus_per_actor`` CPUs.
    ``rows_per_call``: images an actor takes at a time (``None``: 16 on GPUs, 4 on CPUs).
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    rows_per_call: int | None = None
    num_cpus: int | None = None
    """Only for a local Ray: the CPUs it may use (default: all of this machine's)."""

    def __post_init__(self) -> None:
        if self.address is not None and not _ADDRESS.match(self.address):
            raise ValueError(f"{self.address!r} is not a Ray address: use auto, HOST:PORT or ray://HOST:PORT "
                             "(or no address for a local Ray)")
        if self.actors is not None and self.actors < 1:
            raise ValueError("the number of Ray actors must be at least 1")
        if self.cpus_per_actor <= 0:
            raise ValueError("the CPUs per Ray actor must be positive")


class SegmentActor:
    """One model replica in a Ray actor: each call segments a batch of rows with :func:`run_jobs`.

    A row is ``source`` (the image's path) and ``folder`` (where its outputs go); the answer
    has one row per input row: ``source``, ``error`` (``""`` when the outputs were written) and
    ``worker_failed`` (the worker could not open the model, so it did not try the image).
    """

    def __init__(self, model: ModelSource, options: BatchOptions, threads: int | None) -> None:
        self.options = options
        self.predictor: Predictor | None = None
        self.problem = ""
        try:
            self.predictor = model.open(threads)
        except Exception as exc:
            # Not raised: Ray would retry the actor and print its traceback. Each row of this worker
            # reports it instead (another worker may be able to open the model), and the driver stops
            # the run when no image was written yet.
            self.problem = f"cannot open the model on this Ray worker: {exc}"

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.predictor is None:
            return {"source": np.asarray(rows["source"], dtype=object),
                    "error": np.array([self.problem] * len(rows["source"]), dtype=object),
                    "worker_failed": np.ones(len(rows["source"]), dtype=bool)}
        classes = self.predictor.card.classes
        rows_of = zip(rows["source"], rows["out"], rows["sub"])
        jobs = [job_for(Path(str(source)), Path(str(out)), str(sub), classes, self.options)
                for source, out, sub in rows_of]
        errors = {job.source: "" for job in jobs}
        # A retried batch (its actor died) finds some of its files written already: the resume rule skips them.
        todo = [j for j in jobs if not (self.options.resume and j.is_done())]
        for outcome in run_jobs(todo, self.predictor, self.options):
            if outcome.error is not None:
                errors[outcome.job.source] = outcome.error.message
        return {"source": np.array([str(j.source) for j in jobs], dtype=object),
                "error": np.array([errors[j.source] for j in jobs], dtype=object),
                "worker_failed": np.zeros(len(jobs), dtype=bool)}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("Ray is not installed here; install the cluster extra: "
                                  "pip install 'segstudio[cluster]'") from None
    return ray


def connect(options: RayOptions) -> bool:
    """Connect this process to Ray as ``options.address`` says; True when this call connected
    (the caller then calls ``ray.shutdown()``), False when Ray was already initialised."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    # Workers' output (tracebacks of a dead worker, Ray's retries) stays in the session's log files.
    common: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if options.address in (None, "local"):
            ray.init(num_cpus=options.num_cpus, include_dashboard=False, **common)
        else:
            ray.init(address=options.address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(f"cannot start or reach Ray at {options.address or 'this machine'}: {exc}") from None
    return True


@dataclass(frozen=True)
class _Pool:
    actors: int
    num_cpus: float
    num_gpus: float
    rows_per_call: int
    threads: int | None

    def describe(self, resources: dict[str, float]) -> str:
        kind = "GPU" if self.num_gpus else "CPU"
        return (f"{self.actors} {kind} actor{'s' if self.actors != 1 else ''} on a Ray cluster of "
                f"{resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs")


def _pool(ray: Any, model: ModelSource, options: RayOptions, jobs: int) -> _Pool:
    """The actor pool for this cluster: GPU actors when it has GPUs (and the model may use them), else CPU."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and model.device != "cpu" and model.backend != "onnx":
        n = options.actors or gpus
        return _Pool(min(n, jobs), options.cpus_per_actor, 1.0, options.rows_per_call or 16, None)
    cpus = float(resources.get("CPU", 1))
    n = options.actors or max(1, int(cpus // options.cpus_per_actor))
    threads = max(1, int(options.cpus_per_actor))
    return _Pool(min(n, jobs), options.cpus_per_actor, 0.0, options.rows_per_call or 4, threads)


def _quiet_console(ray: Any) -> None:
    """Ray Data's progress bars and notes off the console: the caller reports progress (the CLI's bar).

    Its log file in the Ray session folder (``ray-data.log``) still gets everything.
    """
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)


def segment_on_ray(inputs: Sequence[Path | str], out_dir: Path | str, model: ModelSource,
                   options: BatchOptions | None = None, ray_options: RayOptions | None = None,
                   cancel: CancelToken | None = None, note: Callable[[str], None] | None = None
                   ) -> Iterator[BatchEvent]:
    """Segment every image of ``inputs`` into ``out_dir`` on Ray; yield progress events (see the module docstring).

    ``note`` is told, once connected, what runs the work (e.g. "2 CPU actors on a cluster of 2 CPUs").

    Raises :class:`~segstudio.inference.model_file.ModelFileError` for a model file that
    cannot be read, ``ValueError`` as :func:`~segstudio.inference.batch.plan_jobs` does,
    :class:`RayUnavailableError` when Ray is missing or unreachable, and :class:`RayRunError`
    when the run fails before any image is written (e.g. the workers cannot open the model). When
    ``cancel`` is set, the run stops (what was written stays) and
    :class:`~segstudio.core.tasks.Cancelled` is raised.
    """
    opts = options or BatchOptions()
    ray_opts = ray_options or RayOptions()
    cancel = cancel or NEVER_CANCELLED
    card = load_card(model.path, model.class_names)
    tag = file_tag(model.path)
    todo, tally = plan_batch(inputs, out_dir, card.classes, opts, tag)
    write_legend(out_dir, card.classes, tag)
    if not todo:
        yield tally.event()
        yield tally.event(finished=True)
        return
    ray = _import_ray()
    started = connect(ray_opts)
    try:
        pool = _pool(ray, model, ray_opts, len(todo))
        if note is not None:
            note(pool.describe(ray.cluster_resources()))
        yield tally.event()
        # Each actor's decode and encode threads: as many as its CPUs, unless asked for.
        per_actor = max(1, math.ceil(pool.num_cpus))
        actor_opts = replace(opts, decode_workers=opts.decode_workers or per_actor,
                             encode_workers=opts.encode_workers or per_actor)
        _quiet_console(ray)
        out = Path(out_dir).resolve()
        rows = [{"source": str(j.source), "out": str(out), "sub": _sub(j, out)} for j in todo]
        blocks = max(1, min(len(rows) // pool.rows_per_call, 4096))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            SegmentActor, batch_size=pool.rows_per_call, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool.actors),
            fn_constructor_args=(model, actor_opts, pool.threads),
            num_cpus=pool.num_cpus, num_gpus=pool.num_gpus)
        yield from _collect(dataset, todo, tally, opts, cancel)
    finally:
        if started:
            ray.shutdown()


def _sub(job: Job, out: Path) -> str:
    """The sub-folder of a job's outputs inside each kind's folder (``""`` at the top)."""
    sub = job.mask.parent.relative_to(out / MASKS_DIR).as_posix()
    return "" if sub == "." else sub


def _reason(exc: BaseException) -> str:
    """One line saying why Ray failed: the last line of its report (the remote error), without the type name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return re.sub(r"^[A-Za-z_][\w.]*(Error|Exception): ", "", text)


def _collect(dataset: Any, todo: list[Job], tally: BatchTally, opts: BatchOptions, cancel: CancelToken
             ) -> Iterator[BatchEvent]:
    """Run the dataset and count its rows into ``tally``; account for every job even when the run fails."""
    by_source = {str(j.source): j for j in todo}
    heard: set[str] = set()
    tally.start()
    failure = ""
    rows = iter(dataset.iter_rows())
    try:
        while not cancel.cancelled:
            try:
                row = next(rows)
            except StopIteration:
                break
            except Exception as exc:  # whatever stopped Ray's execution: a lost cluster, a worker that cannot start
                failure = _reason(exc)
                break
            job = by_source[str(row["source"])]
            message = str(row["error"])
            if row["worker_failed"] and not tally.written:
                failure = message  # the model does not open on the workers: one clear error, not one per image
                break
            heard.add(str(job.source))
            tally.add(JobOutcome(job, FileError(job.source, message) if message else None))
            yield tally.event(job.source)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # stops Ray Data's executor now, before the caller may shut Ray down
    cancel.raise_if_cancelled()
    for job in todo:
        if str(job.source) in heard:
            continue
        if opts.resume and job.is_done():  # finished by a worker before the run failed
            tally.add(JobOutcome(job))
        else:
            tally.add(JobOutcome(job, FileError(job.source, f"not segmented: the Ray run failed ({failure}); "
                                                            "run the command again to resume")))
    if failure and not tally.written:
        raise RayRunError(f"the Ray run failed before any image was segmented: {failure}")
    yield tally.event(finished=True)


__all__ = ["ModelSource", "RayOptions", "RayRunError", "RayUnavailableError", "SegmentActor", "connect",
           "segment_on_ray"]
