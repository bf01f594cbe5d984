"""One project's fine-tuning run, headless: what the app, ``segstudio train --project`` and the benchmarks share.

:class:`ProjectTraining` builds the run's config from a start point
(:mod:`~segstudio.workspace.startpoint`), starts it in a separate process on
the project's labels (:class:`~segstudio.training.data.ProjectData`: the
held-out split decides what trains and what judges), hands its events out
without blocking, and says what its end means:

- **rounds** — the ``finished`` event's new version is scored against the
  model that was active, on the held-out corrections, judged, and recorded
  (:func:`~segstudio.workspace.rounds.conclude_round`); the verdict says
  whether it may become active;
- **continuous** — each ``published`` event is a version that beat the best
  so far on the held-out corrections (the first bar: the model it started
  from); it is recorded as accepted (:func:`~segstudio.workspace.rounds.record_published`)
  and may be swapped in at once.

Model files go to the project's versions folder
(:func:`~segstudio.workspace.versions.versions_dir`), logs, curves and the
checkpoint to ``.segstudio-training/run``. Nothing is written outside the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from segstudio.core.project import Project
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken
from segstudio.workspace.rounds import (
    Round,
    RoundHistory,
    comparable,
    conclude_round,
    record_published,
    training_dir,
)
from segstudio.workspace.startpoint import RunSettings, StartPoint, run_config
from segstudio.workspace.versions import ModelVersion, versions_dir

if TYPE_CHECKING:
    from segstudio.training.config import TrainConfig
    from segstudio.training.engine import TrainEvent
    from segstudio.training.process import TrainingProcess

RUN_DIR = "run"


class ProjectTraining:
    """A fine-tuning run of the project at ``root`` (not thread-safe: drive it from one thread).

    ``active_model``: the model file active when the run starts (the "before" of
    the verdict, None when there is none). ``engine``: further engine settings
    (``threads=1`` in the app, so the window keeps a core).
    """

    def __init__(self, root: Path | str, start: StartPoint, settings: RunSettings, active_model: str | None,
                 **engine: Any) -> None:
        self.root = Path(root)
        self.start_point = start
        self.settings = settings
        self.active_model = active_model
        continuous_scratch = settings.mode == "continuous" and start.kind == "scratch"
        if continuous_scratch and active_model is not None and \
                comparable(active_model, Project.open(self.root, read_only=True)):
            engine.setdefault("bar_model", active_model)  # published versions must beat the active model
        self.config: TrainConfig = run_config(start, settings, training_dir(self.root) / RUN_DIR,
                                              versions_dir(self.root), **engine)
        self.process: TrainingProcess | None = None
        self.round_number = RoundHistory.load(self.root).next_number()

    @property
    def continuous(self) -> bool:
        return self.settings.mode == "continuous"

    @property
    def trained_from(self) -> str:
        s = self.start_point
        if s.init is not None:
            return Path(s.init).name
        return f"{s.preset or s.arch} from scratch"

    def start(self) -> None:
        """Start the training process (raises ``ValueError``/``OSError`` when it cannot)."""
        from segstudio.training.data import ProjectData
        from segstudio.training.process import start_training_process

        self.process = start_training_process(self.config, ProjectData(str(self.root)))

    def events(self) -> list[TrainEvent]:
        """New events of the process, without blocking."""
        return self.process.events() if self.process is not None else []

    def cancel(self) -> None:
        if self.process is not None:
            self.process.cancel()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def is_alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def conclude(self, finished: TrainEvent, cancel: CancelToken = NEVER_CANCELLED) -> Round:
        """Judge and record the version a round wrote (slow: scores two models; a worker runs it)."""
        assert finished.model_path is not None
        r = Round(self.round_number, self.active_model, finished.model_path, finished.step, finished.elapsed_s,
                  mode=self.settings.mode)
        return conclude_round(r, self.root, self.trained_from, cancel)

    def publish(self, published: TrainEvent) -> ModelVersion:
        """Record a version a continuous run published (it beat the best so far on the held-out corrections)."""
        assert published.model_path is not None
        before = published.start_miou if self.active_model is not None else None
        version = record_published(self.root, published.model_path, self.trained_from, before,
                                   published.val_miou, published.val_images)
        self.active_model = published.model_path
        return version
