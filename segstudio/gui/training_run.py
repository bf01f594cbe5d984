"""Fine-tuning on corrections, seen from the window: one training process, its events, and what follows it.

:class:`TrainingController` starts the training engine's process
(:func:`~segstudio.training.process.start_training_process`) with the
project's labels (:class:`~segstudio.training.data.ProjectData`: the child
snapshots the masks when it starts, so the user keeps painting), polls its
events from a QTimer on the UI thread (``events()`` never blocks) and, when the
run finishes,

1. makes the new model version (written beside the old one, nothing
   overwritten) the project's model through the
   :class:`~segstudio.gui.segmentation.SegmentController`;
2. re-segments the image on screen when it is not corrected, else the next
   image without a label, once the new model is loaded;
3. scores the models before and after on the corrected images in a worker
   thread ("how good is it") and adds the round to the project's history.

Stop cancels the run (honoured within one optimizer step); a run that does not
end soon after is killed. Closing the window or the project stops the process
and waits for it, so no training process outlives its window. A crashed or
killed process leaves the previous model active and says why.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.project import Project
from segstudio.core.tasks import CancelToken
from segstudio.gui.model_choice import LoadedModel, file_format
from segstudio.gui.quality import Round, RoundHistory, evaluate_model, evaluate_round, training_dir
from segstudio.gui.segmentation import SegmentController

if TYPE_CHECKING:
    from segstudio.training.config import TrainConfig
    from segstudio.training.engine import TrainEvent
    from segstudio.training.evaluate import CorrectionsReport
    from segstudio.training.process import TrainingProcess

POLL_MS = 200
STOP_GRACE_MS = 15_000
"""After Stop, how long the run may take to end by itself before it is killed."""
LOSSES = ("focal+dice", "ce", "focal", "dice", "ce+dice", "ohem")
"""Loss choices offered (the engine's ``parse_loss`` terms); the first is the small-data recipe's."""


@dataclass
class TrainSettings:
    """What the panel sets: a length (seconds or steps), learning rate, frozen-encoder steps, loss."""

    length: int = 120
    unit: str = "seconds"  # or "steps"
    lr: float = 5e-3
    freeze_encoder_steps: int = 0
    loss: str = "focal+dice"


def recipe_defaults() -> TrainSettings:
    """The panel's defaults from the small-data recipe (imports torch: call it in a worker)."""
    from segstudio.training.config import small_data_recipe

    cfg = small_data_recipe()
    return TrainSettings(length=int(cfg.max_seconds or 120), unit="seconds", lr=cfg.lr,
                         freeze_encoder_steps=cfg.freeze_encoder_steps, loss=cfg.loss_stages[0][1])


@dataclass(frozen=True)
class StartPoint:
    """Where a run starts: a model file to fine-tune, or the small-data network from scratch (``init`` None)."""

    init: str | None
    text: str


class TrainingController(QObject):
    """The fine-tuning runs of one window (at most one at a time) and the rounds' evaluations."""

    defaultsReady = Signal(object)  # TrainSettings
    startPointChanged = Signal(object)  # StartPoint
    started = Signal()
    runEvent = Signal(object)  # TrainEvent: every event of the run, on the UI thread
    ended = Signal(str, str)  # kind (finished, cancelled, stopped, failed, died), a line for people
    finished = Signal(str)  # the new model file (after ``ended``)
    stateChanged = Signal()  # running / can start changed
    evaluating = Signal(bool)
    roundsChanged = Signal(object)  # RoundHistory
    reportReady = Signal(str, object)  # title, CorrectionsReport: the latest evaluation to show per image

    def __init__(self, segment: SegmentController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.segment = segment
        self.controller = segment.controller
        self.workers = segment.workers
        self.defaults: TrainSettings | None = None
        self.unavailable: str | None = None  # why the training engine cannot load here
        self.process: TrainingProcess | None = None
        self.history = RoundHistory()
        self.last_event: TrainEvent | None = None
        self._project: Project | None = None
        self._run_project: Project | None = None
        self._start_model: str | None = None
        self._started_at_step = 0
        self._pending_model: str | None = None  # the new version, until it is loaded and used
        self._reseg_target: str | None = None
        self._eval_generation = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.setInterval(STOP_GRACE_MS)
        self._kill_timer.timeout.connect(self._kill_after_grace)
        self._reaping: list[tuple[TrainingProcess, float]] = []
        self._reap_timer = QTimer(self)
        self._reap_timer.setInterval(POLL_MS)
        self._reap_timer.timeout.connect(self._reap_some)
        self.controller.projectChanged.connect(self._project_changed)
        self.controller.documentChanged.connect(lambda _doc: self._try_resegment())
        segment.choiceChanged.connect(lambda _c: self.startPointChanged.emit(self.start_point()))
        segment.modelChanged.connect(self._model_changed)
        segment.fitChanged.connect(lambda _fit: self._try_resegment())  # the class fit follows modelChanged

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self.process is not None

    def load_defaults(self) -> None:
        """Read the small-data recipe's settings in a worker (importing the training engine imports torch)."""
        if self.defaults is not None or self.workers.running("training defaults"):
            return
        self.workers.start("training defaults", lambda c: recipe_defaults(), on_finished=self._defaults_found,
                           on_failed=self._no_engine)

    def _no_engine(self, message: str) -> None:
        # e.g. the frozen CPU/ONNX app, which ships without torch
        self.unavailable = f"the training engine cannot load: {message} (training needs PyTorch)"
        self.controller.message.emit(f"Fine-tuning is unavailable: {self.unavailable}")
        self.stateChanged.emit()

    def _defaults_found(self, settings: TrainSettings) -> None:
        self.defaults = settings
        self.defaultsReady.emit(settings)
        self.stateChanged.emit()

    def start_point(self) -> StartPoint:
        """The active model when it is a trainable model file, else the small-data network from scratch."""
        choice = self.segment.choice
        scratch = "the small-data U-Net (base width 8) from scratch"
        if choice is None or self.controller.project is None:
            return StartPoint(None, f"No model chosen: trains {scratch}.")
        if choice.kind == "network":
            return StartPoint(None, f"{choice.title} is not a trained model: trains {scratch}.")
        if file_format(choice.path) != "safetensors":
            return StartPoint(None, f"{Path(choice.path).name} is an ONNX file, which cannot be trained: "
                                    f"trains {scratch}.")
        return StartPoint(choice.path, f"Fine-tunes {Path(choice.path).name}; the new version is saved beside it.")

    def blocked_reason(self) -> str | None:
        """Why a run cannot start now, or None."""
        if self.controller.project is None:
            return "open a folder of images first"
        if self.running:
            return "a fine-tuning run is under way"
        if self.unavailable is not None:
            return self.unavailable
        if self.defaults is None:
            return "the training engine is still loading"
        if self.segment.labelled_images() == 0:
            return "no image is labelled yet: paint some strokes first"
        return None

    # ------------------------------------------------------------------ starting and stopping
    def config_for(self, settings: TrainSettings, start: StartPoint, project: Project) -> TrainConfig:
        """The engine's config for a run: the small-data recipe with the panel's settings."""
        from segstudio.training.config import small_data_recipe

        length: dict[str, Any] = ({"max_seconds": float(settings.length), "steps": None}
                                  if settings.unit == "seconds" else {"steps": int(settings.length),
                                                                      "max_seconds": None})
        # validation every two epochs: a held-out set exists from ten labelled images on (the engine's rule);
        # with fewer, the run scores the training images once at the end
        return small_data_recipe(lr=float(settings.lr), freeze_encoder_steps=int(settings.freeze_encoder_steps),
                                 loss_stages=((0.0, settings.loss),), init_model=start.init,
                                 output_dir=str(training_dir(project.root)), val_every_epochs=2.0, **length)

    def start(self, settings: TrainSettings) -> bool:
        """Save pending edits, then start a run in a new process; False (and a message) when it cannot."""
        reason = self.blocked_reason()
        project = self.controller.project
        if reason is not None or project is None:
            self.controller.message.emit(f"Cannot fine-tune: {reason}")
            return False
        errors = self.controller.flush()  # the run reads the labels from disk
        if errors:
            self.controller.errorOccurred.emit("Cannot fine-tune", "These labels could not be saved:\n"
                                               + "\n".join(errors))
            return False
        start = self.start_point()
        if start.init is not None and not os.access(Path(start.init).parent, os.W_OK):
            self.controller.errorOccurred.emit(
                "Cannot fine-tune", f"The new version is saved beside {start.init}, but that folder is not "
                "writable: copy the model file into a writable folder and open it from there.")
            return False
        from segstudio.training.data import ProjectData
        from segstudio.training.process import start_training_process

        try:
            config = self.config_for(settings, start, project)
            self.process = start_training_process(config, ProjectData(str(project.root)))
        except (ValueError, OSError) as exc:
            self.controller.errorOccurred.emit("Cannot fine-tune", str(exc))
            return False
        self._run_project = project
        choice = self.segment.choice
        self._start_model = choice.path if choice is not None and choice.kind == "file" else None
        self.last_event = None
        self._timer.start()
        self.started.emit()
        self.controller.message.emit("Fine-tuning started: " + start.text)
        self.stateChanged.emit()
        return True

    def stop(self) -> None:
        """Ask the run to stop (within one optimizer step); it is killed if it has not ended after a grace time."""
        if self.process is not None:
            self.process.cancel()
            self._kill_timer.start()
            self.controller.message.emit("Stopping the fine-tuning run…")

    def _kill_after_grace(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()

    def _reap(self, proc: TrainingProcess) -> None:
        """The child sends its last event, then exits: collect it from a timer (killed if it lingers)."""
        self._reaping.append((proc, time.monotonic() + STOP_GRACE_MS / 1000))
        self._reap_timer.start()

    def _reap_some(self) -> None:
        for proc, deadline in list(self._reaping):
            if not proc.is_alive():
                proc.join(0)
                self._reaping.remove((proc, deadline))
            elif time.monotonic() > deadline:
                proc.kill()
        if not self._reaping:
            self._reap_timer.stop()

    @property
    def processes_alive(self) -> bool:
        """True while a training process of this window (running or ending) is alive."""
        return (self.process is not None and self.process.is_alive()) or any(p.is_alive() for p, _ in self._reaping)

    def _let_go(self, why: str = " (another project was opened)") -> None:
        """Stop the run without waiting for it (another project opened): it is cancelled and reaped from a timer,
        killed if it lingers past the grace time, so the UI thread never waits on it."""
        self._timer.stop()
        self._kill_timer.stop()
        proc, self.process = self.process, None
        if proc is not None:
            proc.cancel()
            self._reap(proc)
            self._run_project = None
            self.ended.emit("cancelled", f"Fine-tuning stopped{why}; the previous model stays active")
            self.stateChanged.emit()
        self._pending_model, self._reseg_target = None, None
        self._eval_generation += 1

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop the run and wait for its process (and any still ending) to end (closing the window); kills if
        needed."""
        self._let_go(why="")
        self._reap_timer.stop()
        ending = [p for p, _ in self._reaping]
        self._reaping.clear()
        for p in ending:
            if p.join(timeout_s) is None:
                p.kill()
                p.join(timeout_s)

    # ------------------------------------------------------------------ events
    def poll(self) -> None:
        """Hand the run's new events to the panel (from the timer; never blocks)."""
        proc = self.process
        if proc is None:
            self._timer.stop()
            return
        for ev in proc.events():
            self.last_event = ev
            self.runEvent.emit(ev)
            if ev.kind in ("finished", "stopped", "cancelled", "failed", "died"):
                self._ended(proc, ev)
                return

    def _ended(self, proc: TrainingProcess, ev: TrainEvent) -> None:
        self._timer.stop()
        self._kill_timer.stop()
        self.process = None
        self._reap(proc)
        project, self._run_project = self._run_project, None
        if ev.kind == "finished" and ev.model_path:
            text = f"Fine-tuned in {ev.elapsed_s:.0f} s ({ev.step} steps): {Path(ev.model_path).name} is now active"
            self.ended.emit(ev.kind, text)
            self.controller.message.emit(text)
            if project is not None and project is self.controller.project:
                self._adopt(ev, project)
            self.finished.emit(ev.model_path)
        elif ev.kind in ("cancelled", "stopped"):
            text = "Fine-tuning stopped; the previous model stays active"
            self.ended.emit(ev.kind, text)
            self.controller.message.emit(text)
        else:
            text = f"Fine-tuning failed: {ev.message or 'the training process ended'}. The previous model stays active."
            self.ended.emit(ev.kind, text)
            self.controller.errorOccurred.emit("Fine-tuning failed", text)
        self.stateChanged.emit()

    def _adopt(self, ev: TrainEvent, project: Project) -> None:
        assert ev.model_path is not None
        new = ev.model_path
        self._pending_model = new
        self._reseg_target = self._resegment_target()
        self.segment.choose_file(new)
        r = Round(self.history.next_number(), self._start_model, new, ev.step, ev.elapsed_s)
        self._evaluate(r, project)

    # ------------------------------------------------------------------ re-segmenting with the new model
    def _resegment_target(self) -> str | None:
        """The image on screen when it is not corrected, else the next one without a label (or with only a
        prediction), in project order after it."""
        project, current = self.controller.project, self.controller.current
        if project is None:
            return None
        if current is not None and current.entry.status in ("unlabelled", "predicted"):
            return current.path
        paths = [e.path for e in project.images]
        at = paths.index(current.path) if current is not None and current.path in paths else -1
        order = paths[at + 1:] + paths[:at + 1]
        statuses = {e.path: e.status for e in project.images}
        for wanted in ("unlabelled", "predicted"):
            for p in order:
                if statuses[p] == wanted:
                    return p
        return None

    def _model_changed(self, loaded: LoadedModel | None) -> None:
        if loaded is None or self._pending_model is None:
            return
        if loaded.choice.kind != "file" or Path(loaded.choice.path) != Path(self._pending_model):
            self._pending_model, self._reseg_target = None, None  # another model was chosen meanwhile
            return
        self._pending_model = None
        target = self._reseg_target
        if target is None:
            self.controller.message.emit("The new model is active; every image is labelled, nothing to re-segment")
            return
        current = self.controller.current
        if current is None or current.path != target:
            self.controller.open_entry(target)
        self._try_resegment()

    def _try_resegment(self) -> None:
        target = self._reseg_target
        if target is None or self._pending_model is not None:
            return
        current = self.controller.current
        if current is None or current.path != target or self.segment.fit is None:
            return  # the image is still opening, or the model's classes are still being matched
        self._reseg_target = None
        reason = self.segment.blocked_reason()
        if reason is not None:
            self.controller.message.emit(f"The new model is active but cannot segment yet: {reason}")
            return
        self.segment.segment_current()

    # ------------------------------------------------------------------ how good is it
    def _evaluate(self, r: Round, project: Project) -> None:
        self._eval_generation += 1
        generation = self._eval_generation
        root = project.root
        self.evaluating.emit(True)
        self.workers.start("evaluate", lambda c: evaluate_round(r, root, c),
                           on_finished=lambda done: self._round_scored(generation, done),
                           on_failed=lambda msg: self._eval_failed(generation, msg),
                           on_cancelled=lambda _m: self.evaluating.emit(False))

    def _round_scored(self, generation: int, r: Round) -> None:
        self.evaluating.emit(False)
        if generation != self._eval_generation:
            return
        self.history.add(r)
        try:
            self.history.save()
        except OSError as exc:
            self.controller.message.emit(f"Could not save the rounds' scores: {exc}")
        self.roundsChanged.emit(self.history)
        if r.after is not None:
            self.reportReady.emit(f"Round {r.number}: {Path(r.model_after).name}", r.after)

    def _eval_failed(self, generation: int, message: str) -> None:
        self.evaluating.emit(False)
        if generation == self._eval_generation:
            self.controller.message.emit(f"Could not score the model on the corrections: {message}")

    def evaluate_now(self) -> bool:
        """Score the active model file on the corrected images now (in a worker); False when it cannot."""
        project, choice = self.controller.project, self.segment.choice
        if project is None or choice is None or choice.kind != "file":
            self.controller.message.emit("Choose a model file first: there is nothing to score")
            return False
        if self.workers.running("evaluate"):
            return False
        errors = self.controller.flush()  # score against what the user sees
        if errors:
            self.controller.errorOccurred.emit("Could not save", "\n".join(errors))
            return False
        self._eval_generation += 1
        generation, root, model = self._eval_generation, project.root, choice.path

        def work(cancel: CancelToken) -> CorrectionsReport:
            return evaluate_model(model, root, cancel)

        self.evaluating.emit(True)
        self.workers.start("evaluate", work, on_finished=lambda rep: self._now_scored(generation, model, rep),
                           on_failed=lambda msg: self._eval_failed(generation, msg),
                           on_cancelled=lambda _m: self.evaluating.emit(False))
        return True

    def _now_scored(self, generation: int, model: str, report: CorrectionsReport) -> None:
        self.evaluating.emit(False)
        if generation == self._eval_generation:
            self.reportReady.emit(f"Now: {Path(model).name}", report)

    # ------------------------------------------------------------------ projects
    def _project_changed(self, project: Project | None) -> None:
        if project is not None and project is self._project:
            return
        self._project = project
        self._let_go()
        self.workers.cancel("evaluate")
        self.history = RoundHistory.load(project.root) if project is not None else RoundHistory()
        self.roundsChanged.emit(self.history)
        if project is not None:
            self.load_defaults()
        self.startPointChanged.emit(self.start_point())
        self.stateChanged.emit()
