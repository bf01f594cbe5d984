"""Fine-tuning on corrections, seen from the window: one training run, its events, and what follows it.

:class:`TrainingController` is the Qt side of the Qt-free
:class:`~segstudio.workspace.project_training.ProjectTraining`: it resolves
where a run starts (:func:`~segstudio.workspace.startpoint.start_point` of the
chosen model), reads the recipe's settings for it in a worker (importing the
engine imports torch), starts the run, polls its events from a QTimer on the
UI thread (``events()`` never blocks) and acts on them:

- **A round** (``rounds`` mode) ends with a new version. A worker scores it and
  the model that was active on the held-out corrections
  (:meth:`~segstudio.workspace.project_training.ProjectTraining.conclude`);
  only when it is at least as good does it become the project's model (then the
  image on screen, or the next unlabelled one, is re-segmented). Otherwise it is
  kept as a candidate: the panel shows before → after and "Use it anyway".
- **Continuous** mode trains until stopped, re-reading the corrections every
  few seconds; each version it *publishes* (better on the held-out corrections
  than the best so far) is swapped in at once and the next unlabelled images are
  pre-segmented with it, while the user goes on painting.

Stop cancels the run (honoured within one optimizer step); a run that does not
end soon after is killed. Closing the window or the project stops the process
(never waiting on the UI thread for another project), so no training process
outlives its window. A crashed or killed process leaves the active model as it
was and says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.project import Project
from segstudio.core.tasks import CancelToken
from segstudio.gui.controllers.segment_controller import SegmentController
from segstudio.gui.notifier import Notifier
from segstudio.workspace.model_choice import LoadedModel, ModelChoice
from segstudio.workspace.project_training import ProjectTraining
from segstudio.workspace.rounds import Round, RoundHistory, evaluate_model, held_out_images
from segstudio.workspace.startpoint import Mode, RunSettings, StartPoint, run_config, start_point
from segstudio.workspace.versions import VersionRegistry

if TYPE_CHECKING:
    from segstudio.training.engine import TrainEvent
    from segstudio.training.evaluate import CorrectionsReport
    from segstudio.training.process import TrainingProcess

POLL_MS = 200
STOP_GRACE_MS = 15_000
"""After Stop, how long the run may take to end by itself before it is killed."""
LOSSES = ("ce", "focal+dice", "focal", "dice", "ce+dice", "ohem")
"""Loss choices offered (the engine's ``parse_loss`` terms)."""
PRESEGMENT = 3
"""Continuous mode: how many unlabelled images to segment ahead with each new version."""


@dataclass
class TrainSettings:
    """What the panel sets: a length (seconds or steps), the mode, learning rate, partial freezing, loss."""

    length: int = 180
    unit: str = "seconds"  # or "steps"
    lr: float = 1e-3
    freeze_encoder: bool = False
    loss: str = "ce"
    mode: Mode = "rounds"
    estimate: str = ""
    """A line on how long a step takes here and what the length buys (from the engine, for people)."""

    def run_settings(self) -> RunSettings:
        seconds, steps = (float(self.length), None) if self.unit == "seconds" else (None, int(self.length))
        return RunSettings(seconds=seconds, steps=steps, lr=self.lr, loss=self.loss,
                           freeze_encoder=self.freeze_encoder, mode=self.mode)


def recipe_defaults(start: StartPoint, cancel: CancelToken) -> TrainSettings:
    """The panel's values for ``start`` from its recipe, with a measured step time for a network trained from
    scratch (imports the engine, times two steps: run it in a worker)."""
    cfg = run_config(start, RunSettings(), "unused")
    settings = TrainSettings(length=int(cfg.max_seconds or 180), unit="seconds", lr=cfg.lr,
                             freeze_encoder=cfg.freeze_encoder, loss=cfg.loss_stages[0][1])
    if start.kind == "scratch" and not cancel.cancelled:
        from segstudio.training.probe import step_seconds

        cfg.threads = 1
        per_step = step_seconds(cfg, num_classes=2)
        steps = int(settings.length / per_step)
        settings.estimate = (f"About {per_step:.1f} s per step here: {settings.length} s give about {steps} steps. "
                             "From random weights a network needs thousands of steps to be good; the small-data "
                             "U-Net learns fastest from a few images.")
    return settings


class TrainingController(QObject):
    """The fine-tuning runs of one window (at most one at a time) and the rounds' evaluations."""

    defaultsReady = Signal(object)  # TrainSettings, for the current start point
    startPointChanged = Signal(object)  # StartPoint
    started = Signal()
    runEvent = Signal(object)  # TrainEvent: every event of the run, on the UI thread
    ended = Signal(str, str)  # kind (finished, cancelled, stopped, failed, died), a line for people
    finished = Signal(str)  # the new model file of a round, once it is judged (after ``ended``)
    concluded = Signal(object)  # Round: judged (activated, or kept as a candidate)
    published = Signal(str)  # a version a continuous run published, being swapped in
    stateChanged = Signal()  # running / can start changed
    evaluating = Signal(bool)
    roundsChanged = Signal(object)  # RoundHistory
    reportReady = Signal(str, object)  # title, CorrectionsReport: the latest held-out evaluation per image

    def __init__(self, segment: SegmentController, notifier: Notifier, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.segment = segment
        self.controller = segment.controller
        self.notifier = notifier
        self.workers = segment.workers
        self.target: ModelChoice | None = None
        """What a run trains: None — the active model, fine-tuned; else a network (or preset) from scratch."""
        self.defaults: TrainSettings | None = None
        self.unavailable: str | None = None  # why the training engine cannot load here
        self.run: ProjectTraining | None = None
        self.history = RoundHistory()
        self.last_event: TrainEvent | None = None
        self.last_round: Round | None = None
        self.previous_model: str | None = None  # what was active before the last version was activated
        self._project: Project | None = None
        self._run_project: Project | None = None
        self._defaults_for: StartPoint | None = None
        self._defaults_generation = 0
        self._pending_model: str | None = None  # a version being loaded, until it is loaded and used
        self._reseg_targets: list[str] = []
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
        segment.choiceChanged.connect(lambda _c: self._start_point_changed())
        segment.modelChanged.connect(self._model_changed)
        segment.fitChanged.connect(lambda _fit: self._try_resegment())  # the class fit follows modelChanged
        segment.runEnded.connect(lambda _text: self._try_resegment())

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self.run is not None

    @property
    def process(self) -> TrainingProcess | None:
        return self.run.process if self.run is not None else None

    def start_point(self) -> StartPoint:
        """Where a run would start now: the active model file (or its twin) fine-tuned, or the network chosen
        here trained from scratch; "none" with the reason otherwise."""
        if self.controller.project is None:
            return StartPoint("none", "Open a folder of images first.")
        if self.target is None and self.segment.choice is None:
            return StartPoint("none", "No model is active to fine-tune: choose a model file in the Model panel, "
                                      "or a network to train from scratch here.")
        return start_point(self.target or self.segment.choice)

    def set_target(self, target: ModelChoice | None) -> None:
        """Train ``target`` (a network or preset, from scratch) instead of fine-tuning the active model (None)."""
        if target is not None and target.kind != "network":
            raise ValueError("a training target is a network to train from scratch (or None: the active model)")
        self.target = target
        self._start_point_changed()

    def _start_point_changed(self) -> None:
        start = self.start_point()
        self.startPointChanged.emit(start)
        self.load_defaults()
        self.stateChanged.emit()

    def load_defaults(self) -> None:
        """Read the recipe's settings for the current start point in a worker (the engine imports torch)."""
        start = self.start_point()
        if self.unavailable is not None or start.blocked is not None:
            return
        if self.defaults is not None and self._defaults_for is not None and \
                (self._defaults_for.kind, self._defaults_for.arch, self._defaults_for.preset) == \
                (start.kind, start.arch, start.preset):
            return
        self._defaults_generation += 1
        generation = self._defaults_generation
        self._defaults_for = start
        self.workers.start("training defaults", lambda c: recipe_defaults(start, c),
                           on_finished=lambda s: self._defaults_found(generation, s), on_failed=self._no_engine)

    def _no_engine(self, message: str) -> None:
        # e.g. the frozen CPU/ONNX app, which ships without torch
        self.unavailable = f"the training engine cannot load: {message} (training needs PyTorch)"
        self.notifier.say(f"Fine-tuning is unavailable: {self.unavailable}")
        self.stateChanged.emit()

    def _defaults_found(self, generation: int, settings: TrainSettings) -> None:
        if generation != self._defaults_generation:
            return
        self.defaults = settings
        self.defaultsReady.emit(settings)
        self.stateChanged.emit()

    def blocked_reason(self) -> str | None:
        """Why a run cannot start now, or None."""
        if self.controller.project is None:
            return "open a folder of images first"
        if self.running:
            return "a fine-tuning run is under way"
        if self.unavailable is not None:
            return self.unavailable
        start = self.start_point()
        if start.blocked is not None:
            return start.blocked
        if self.defaults is None:
            return "the training engine is still loading"
        if self.segment.labelled_images() == 0:
            return "no image is labelled yet: paint some strokes first"
        return None

    # ------------------------------------------------------------------ starting and stopping
    def _active_model(self) -> str | None:
        choice = self.segment.choice
        return choice.path if choice is not None and choice.kind == "file" else None

    def start(self, settings: TrainSettings) -> bool:
        """Save pending edits, then start a run in a new process; False (and a message) when it cannot."""
        reason = self.blocked_reason()
        project = self.controller.project
        if reason is not None or project is None:
            self.notifier.say(f"Cannot fine-tune: {reason}")
            return False
        errors = self.controller.flush()  # the run reads the labels from disk
        if errors:
            self.notifier.error("Cannot fine-tune", "These labels could not be saved:\n"
                                               + "\n".join(errors))
            return False
        start = self.start_point()
        export = settings.mode == "continuous" and self.segment.runtimes.cuda is None \
            and self.segment.backend in ("auto", "cpu-onnx")
        try:
            run = ProjectTraining(project.root, start, settings.run_settings(), self._active_model(), threads=1,
                                  export_onnx=export)
            run.start()
        except (ValueError, OSError) as exc:
            self.notifier.error("Cannot fine-tune", str(exc))
            return False
        self.run = run
        self._run_project = project
        self.last_event = None
        self._timer.start()
        self.started.emit()
        what = "Continuous training started" if run.continuous else "Fine-tuning started"
        self.notifier.say(f"{what}: {start.text}")
        self.stateChanged.emit()
        return True

    def stop(self) -> None:
        """Ask the run to stop (within one optimizer step); it is killed if it has not ended after a grace time."""
        if self.run is not None:
            self.run.cancel()
            self._kill_timer.start()
            self.notifier.say("Stopping the fine-tuning run…")

    def _kill_after_grace(self) -> None:
        if self.run is not None and self.run.is_alive():
            self.run.kill()

    def _reap(self, proc: TrainingProcess | None) -> None:
        """The child sends its last event, then exits: collect it from a timer (killed if it lingers)."""
        if proc is None:
            return
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
        return (self.run is not None and self.run.is_alive()) or any(p.is_alive() for p, _ in self._reaping)

    def _let_go(self, why: str = " (another project was opened)") -> None:
        """Stop the run without waiting for it (another project opened): it is cancelled and reaped from a timer,
        killed if it lingers past the grace time, so the UI thread never waits on it."""
        self._timer.stop()
        self._kill_timer.stop()
        run, self.run = self.run, None
        if run is not None:
            run.cancel()
            self._reap(run.process)
            self._run_project = None
            self.ended.emit("cancelled", f"Fine-tuning stopped{why}; the active model stays as it was")
            self.stateChanged.emit()
        self._pending_model, self._reseg_targets = None, []
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
        run = self.run
        if run is None:
            self._timer.stop()
            return
        for ev in run.events():
            self.last_event = ev
            self.runEvent.emit(ev)
            if ev.kind == "published" and ev.model_path:
                self._published(run, ev)
            elif ev.kind in ("finished", "stopped", "cancelled", "failed", "died"):
                self._ended(run, ev)
                return

    def _ended(self, run: ProjectTraining, ev: TrainEvent) -> None:
        self._timer.stop()
        self._kill_timer.stop()
        self.run = None
        self._reap(run.process)
        project, self._run_project = self._run_project, None
        if ev.kind == "finished" and run.continuous:
            text = f"Continuous training {ev.message or 'stopped'}"
            self.ended.emit(ev.kind, text)
            self.notifier.say(text)
        elif ev.kind == "finished" and ev.model_path:
            text = (f"Trained for {ev.elapsed_s:.0f} s ({ev.step} steps): judging {Path(ev.model_path).name} on the "
                    "held-out corrections…")
            self.ended.emit(ev.kind, text)
            self.notifier.say(text)
            if project is not None and project is self.controller.project:
                self._conclude(run, ev)
        elif ev.kind in ("cancelled", "stopped"):
            text = "Fine-tuning stopped; the active model stays as it was"
            self.ended.emit(ev.kind, text)
            self.notifier.say(text)
        else:
            text = f"Fine-tuning failed: {ev.message or 'the training process ended'}. The active model stays."
            self.ended.emit(ev.kind, text)
            self.notifier.error("Fine-tuning failed", text)
        self.stateChanged.emit()

    # ------------------------------------------------------------------ a round: judge, then activate or keep
    def _conclude(self, run: ProjectTraining, ev: TrainEvent) -> None:
        self._eval_generation += 1
        generation = self._eval_generation
        self.evaluating.emit(True)
        self.workers.start("evaluate", lambda c: run.conclude(ev, c),
                           on_finished=lambda r: self._concluded(generation, r),
                           on_failed=lambda msg: self._eval_failed(generation, msg),
                           on_cancelled=lambda _m: self.evaluating.emit(False))

    def _concluded(self, generation: int, r: Round) -> None:
        self.evaluating.emit(False)
        if generation != self._eval_generation or self.controller.project is None:
            return
        self.history = RoundHistory.load(self.controller.project.root)
        self.roundsChanged.emit(self.history)
        self.last_round = r
        name = Path(r.model_after).name
        if r.after is not None:
            self.reportReady.emit(f"Round {r.number}: {name}", r.after)
        if r.activated:
            self.notifier.say(f"{name} is now active: {r.verdict}")
            self._activate(r.model_after, [t for t in [self._resegment_target()] if t])
        else:
            self.notifier.say(f"{name} is not made active: {r.verdict}")
        self.concluded.emit(r)
        self.finished.emit(r.model_after)
        self.stateChanged.emit()

    def accept_candidate(self, model: str) -> None:
        """Make a candidate version active anyway (the user has seen before → after)."""
        project = self.controller.project
        if project is None:
            return
        registry = VersionRegistry.load(project.root)
        if registry.mark(model, "accepted", "accepted by the user after seeing before → after") is not None:
            try:
                registry.save()
            except OSError as exc:
                self.notifier.say(f"Could not save the model versions: {exc}")
        if self.last_round is not None and self.last_round.model_after == model:
            self.last_round.activated = True
        self._activate(model, [t for t in [self._resegment_target()] if t])
        self.stateChanged.emit()

    def switch_back(self) -> None:
        """Make the model active before the last activated version the active one again."""
        if self.previous_model is not None and Path(self.previous_model).is_file():
            back, self.previous_model = self.previous_model, None
            self.segment.choose_file(back)
            self.notifier.say(f"Switched back to {Path(back).name}")
            self.stateChanged.emit()

    def _activate(self, model: str, reseg: list[str]) -> None:
        self.previous_model = self._active_model()
        self._pending_model = model
        self._reseg_targets = reseg
        self.segment.choose_file(model)

    # ------------------------------------------------------------------ continuous: swap in, segment ahead
    def _published(self, run: ProjectTraining, ev: TrainEvent) -> None:
        assert ev.model_path is not None
        project = self.controller.project
        if project is None or self._run_project is not project:
            return
        run.publish(ev)
        self.notifier.say(f"A better version was published: {ev.message}")
        self.published.emit(ev.model_path)
        self._activate(ev.model_path, self._ahead_targets(PRESEGMENT))

    def _ahead(self) -> list[str]:
        """Every image without a label of the user's, after the one on screen in project order (wrapping
        round), unlabelled ones first."""
        project, current = self.controller.project, self.controller.current
        if project is None:
            return []
        paths = [e.path for e in project.images]
        at = paths.index(current.path) if current is not None and current.path in paths else -1
        order = paths[at + 1:] + paths[:at + 1]
        statuses = {e.path: e.status for e in project.images}
        return [p for wanted in ("unlabelled", "predicted") for p in order if statuses[p] == wanted]

    def _ahead_targets(self, n: int) -> list[str]:
        return self._ahead()[:n]

    # ------------------------------------------------------------------ re-segmenting with the new model
    def _resegment_target(self) -> str | None:
        """The image on screen when it is not corrected, else the next one without a label (or with only a
        prediction), in project order after it."""
        current = self.controller.current
        if current is not None and current.entry.status in ("unlabelled", "predicted"):
            return current.path
        return next(iter(self._ahead()), None)

    def _model_changed(self, loaded: LoadedModel | None) -> None:
        if loaded is None or self._pending_model is None:
            return
        if loaded.choice.kind != "file" or Path(loaded.choice.path) != Path(self._pending_model):
            self._pending_model, self._reseg_targets = None, []  # another model was chosen meanwhile
            return
        self._pending_model = None
        if not self._reseg_targets:
            self.notifier.say("The new model is active; every image is labelled, nothing to re-segment")
            return
        if len(self._reseg_targets) == 1:
            current = self.controller.current
            if current is None or current.path != self._reseg_targets[0]:
                self.controller.open_entry(self._reseg_targets[0])
        self._try_resegment()

    def _try_resegment(self) -> None:
        targets = self._reseg_targets
        if not targets or self._pending_model is not None or self.segment.fit is None or self.segment.running:
            return
        if len(targets) == 1:
            current = self.controller.current
            if current is None or current.path != targets[0]:
                return  # the image is still opening
            self._reseg_targets = []
            reason = self.segment.blocked_reason()
            if reason is not None:
                self.notifier.say(f"The new model is active but cannot segment yet: {reason}")
                return
            self.segment.segment_current()
            return
        self._reseg_targets = []
        self.segment.segment_paths(targets)

    # ------------------------------------------------------------------ how good is it
    def _eval_failed(self, generation: int, message: str) -> None:
        self.evaluating.emit(False)
        if generation == self._eval_generation:
            self.notifier.say(f"Could not score the model on the held-out corrections: {message}")

    def evaluate_now(self) -> bool:
        """Score the active model file on the held-out corrections now (in a worker); False when it cannot."""
        project, model = self.controller.project, self._active_model()
        if project is None or model is None:
            self.notifier.say("Choose a model file first: there is nothing to score")
            return False
        if self.workers.running("evaluate"):
            return False
        errors = self.controller.flush()  # score against what the user sees
        if errors:
            self.notifier.error("Could not save", "\n".join(errors))
            return False
        sync = not self.running  # a running training process is the split's one writer
        held = held_out_images(project, sync=sync)
        if not held:
            self.reportReady.emit(f"Now: {Path(model).name}", None)
            self.notifier.say("No held-out correction yet: the 2nd, 7th, 12th … corrected image is kept "
                                         "aside to judge models; correct another image first")
            return False
        self._eval_generation += 1
        generation, root = self._eval_generation, project.root

        def work(cancel: CancelToken) -> CorrectionsReport:
            return evaluate_model(model, root, cancel, held)

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
        self.last_round, self.previous_model, self.last_event, self.target = None, None, None, None
        self.history = RoundHistory.load(project.root) if project is not None else RoundHistory()
        self.roundsChanged.emit(self.history)
        self.reportReady.emit("", None)
        self._start_point_changed()
