"""The model side of the window: the chosen model, where it runs, and Segment / Segment all unlabelled.

:class:`SegmentController` sits beside the
:class:`~segstudio.gui.controllers.project_controller.ProjectController`: it loads the chosen
model in a worker, matches its classes to the project's, runs segmentation
in workers (with progress and cancel) and hands the results to the project
controller, which shows them. The model panel and the actions only call it and
listen to its signals. The choice is a model file (or none); what a fine-tuning
run trains is chosen on the training side (training_controller.py), which uses the same
entry points: :attr:`choice` (the active model, fine-tuned by default and the
"before" of every verdict) and :meth:`choose_file` (make a new model version active).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from segstudio.core.project import Project
from segstudio.core.tasks import CancelToken, Progress, format_eta
from segstudio.gui.controllers.project_controller import ProjectController
from segstudio.gui.notifier import Notifier
from segstudio.gui.settings import AppSettings
from segstudio.gui.workers import Task
from segstudio.workspace.domain import domain_warning
from segstudio.workspace.model_choice import (
    ClassFit,
    LoadedModel,
    ModelChoice,
    NeedsClassNames,
    Runtimes,
    adopted,
    detect_runtimes,
    file_format,
    fit_classes,
    load_choice,
    quick_runtimes,
    with_missing_added,
)
from segstudio.workspace.segmenting import SegmentEvent, SegmentResult, SegmentSummary, segment_many, segment_one
from segstudio.workspace.uncertainty import UncertaintyScores, next_in_ranking

_detected: Runtimes | None = None
"""The runtimes found by the first detection in this process (importing torch is slow; it is done once)."""


class SegmentController(QObject):
    """The chosen model and the segmentation runs of one window."""

    choiceChanged = Signal(object)  # ModelChoice | None
    modelChanged = Signal(object)  # LoadedModel | None: the model ready to run (None: none, loading or untrained)
    loadingChanged = Signal(bool)
    loadFailed = Signal(str)  # why the chosen model cannot be used
    classNamesNeeded = Signal(object)  # NeedsClassNames: ask the user, then call give_class_names
    runtimesChanged = Signal(object)  # Runtimes
    fitChanged = Signal(object)  # ClassFit | None
    runStarted = Signal(str)  # "segment" or "segment all"
    runProgress = Signal(int, int, str)  # done, total (0: unknown), a line for people
    runEnded = Signal(str)  # what happened, for people
    stateChanged = Signal()  # whether Segment can run changed
    domainWarning = Signal(str)  # the images seem unlike the model's (said once per project and model)

    def __init__(self, controller: ProjectController, notifier: Notifier, settings: AppSettings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.notifier = notifier
        self.workers = controller.workers
        self.settings = settings
        self.choice: ModelChoice | None = None
        self.loaded: LoadedModel | None = None
        self.fit: ClassFit | None = None
        self.runtimes: Runtimes = _detected or quick_runtimes()
        self.backend = settings.backend()
        self.average_views = settings.average_views()
        self.loading = False
        self.load_error: str | None = None
        self._generation = 0
        self._run: Task | None = None
        self._run_project: Project | None = None
        self._project: Project | None = None
        self._walked_to: str | None = None  # where "next most uncertain" led last
        self._domain_said: set[tuple[str, str]] = set()  # (project folder, model id) warned about
        controller.projectChanged.connect(self._project_changed)
        controller.classesChanged.connect(lambda _table: self._refit())
        controller.class_changes.blockers.append(
            lambda: "a segmentation is writing predictions: wait for it, or cancel it" if self.running else None)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self._run is not None and self._run.outcome is None

    def blocked_reason(self) -> str | None:
        """Why Segment cannot run now, or None."""
        if self.controller.project is None:
            return "open a folder of images first"
        if self.choice is None:
            return "choose a model file in the Model panel (or train one in the Fine-tune panel)"
        if self.loading:
            return "the model is still loading"
        if self.loaded is None:
            return self.load_error or "the model is not loaded"
        if self.fit is None or self.fit.lut is None:
            return "the model's classes do not fit the project's: choose how in the Model panel"
        if self.running:
            return "a segmentation is running"
        return None

    def _changed(self) -> None:
        self.stateChanged.emit()

    # ------------------------------------------------------------------ runtimes
    def detect_runtimes(self) -> None:
        """Find PyTorch, CUDA and ONNX Runtime (in a worker, once per process)."""
        if _detected is not None or self.workers.running("detect runtimes"):
            return
        self.workers.start("detect runtimes", lambda c: detect_runtimes(), on_finished=self._runtimes_found)

    def _runtimes_found(self, found: Runtimes) -> None:
        global _detected
        _detected = found
        self.runtimes = found
        self.runtimesChanged.emit(found)

    def set_backend(self, backend: str) -> None:
        """Run models on ``backend`` (a key of ``model_choice.BACKENDS``); reloads the model."""
        if backend == self.backend:
            return
        self.backend = backend
        self.settings.set_backend(backend)
        if self.choice is not None and self.choice.kind == "file":
            self._load(self.choice)

    def set_average_views(self, on: bool) -> None:
        """Segment with the views a model was trained with (its card's, :func:`inference.tta.card_tta`) or with the
        image alone; reloads the model."""
        if on == self.average_views:
            return
        self.average_views = on
        self.settings.set_average_views(on)
        if self.choice is not None and self.choice.kind == "file":
            self._load(self.choice)

    def effective_backend(self, choice: ModelChoice) -> tuple[str, str | None]:
        """The backend that will run ``choice``, and why it is not the one asked for (or None)."""
        problem = self.runtimes.problem(self.backend, file_format(choice.path))
        if problem is None:
            return self.backend, None
        return "auto", f"{self.backend}: {problem}; running on the best available instead"

    # ------------------------------------------------------------------ choosing
    def _project_changed(self, project: Project | None) -> None:
        if project is not None and project is self._project:
            return  # the same project rescanned: the model stays
        self._project = project
        self.cancel()
        # the run stops within one image (or one window of a big one); waiting for it means the project it
        # wrote is saved before anything opens the same folder again
        self.workers.join("segment", 30_000)
        self.workers.join("segment all", 30_000)
        self._generation += 1
        self.loaded, self.fit, self.choice, self.loading, self.load_error = None, None, None, False, None
        self._walked_to = None
        if project is not None:
            self.detect_runtimes()
            stored = ModelChoice.from_json(self.settings.model_choice(project.root))
            if stored is not None and stored.kind == "file" and not Path(stored.path).is_file():
                self.notifier.say(f"The model chosen for this project, {stored.path}, is gone; "
                                             "choose another in the Model panel")
                stored = None
            if stored is not None:
                self.choose(stored, remember=False)
                return
        self.choiceChanged.emit(None)
        self.modelChanged.emit(None)
        self.fitChanged.emit(None)
        self._changed()

    def choose(self, choice: ModelChoice | None, remember: bool = True) -> None:
        """Make the model file ``choice`` the project's model (remembered for the project) and load it."""
        if choice is not None and choice.kind != "file":
            choice = None  # a network to train is chosen in the Fine-tune panel, never as the active model
        self.choice = choice
        self.loaded, self.fit, self.load_error = None, None, None
        self._generation += 1
        project = self.controller.project
        if remember and project is not None:
            self.settings.set_model_choice(project.root, choice.to_json() if choice is not None else None)
        self.choiceChanged.emit(choice)
        self.modelChanged.emit(None)
        self.fitChanged.emit(None)
        if choice is not None and choice.kind == "file":
            self.settings.add_recent_model(choice.path)
            self._load(choice)
        else:
            self.loading = False
            self.loadingChanged.emit(False)
        self._changed()

    def choose_file(self, path: Path | str) -> None:
        self.choose(ModelChoice.file(path))

    def _load(self, choice: ModelChoice, class_names: list[str] | None = None) -> None:
        self._generation += 1
        generation = self._generation
        backend, note = self.effective_backend(choice)
        names = class_names or self.settings.onnx_class_names(choice.path)
        self.loaded, self.fit, self.load_error, self.loading = None, None, None, True
        self.loadingChanged.emit(True)
        self.modelChanged.emit(None)
        self._changed()
        if self.runtimes.decide(backend, file_format(choice.path)).exports_onnx:
            note = ((note + "; ") if note else "") + ("the first time on this machine it is converted for "
                                                       "ONNX Runtime, which can take a minute")
        self.notifier.say(f"Loading {choice.title}…" + (f" ({note})" if note else ""))
        tta = None if self.average_views else False  # None: the card's views
        self.workers.start("load model", lambda c: load_choice(choice, backend, names, tta=tta),
                           on_finished=lambda r: self._loaded(generation, r, class_names),
                           on_failed=lambda msg: self._load_failed(generation, msg))

    def _loaded(self, generation: int, result: LoadedModel | NeedsClassNames, names: list[str] | None) -> None:
        if generation != self._generation:
            return  # another model was chosen meanwhile
        self.loading = False
        self.loadingChanged.emit(False)
        if isinstance(result, NeedsClassNames):
            self.load_error = "this ONNX file has no model card: give its class names"
            self.classNamesNeeded.emit(result)
            self._changed()
            return
        if names and self.choice is not None:
            self.settings.set_onnx_class_names(self.choice.path, names)
        self.loaded = result
        be = result.predictor.backend
        notes = "; ".join(n for n in result.predictor.notes if not n.startswith("ONNX export:"))
        self.notifier.say(f"{result.choice.title} runs on {be.name}" + (f" ({notes})" if notes else ""))
        self.modelChanged.emit(result)
        self._refit()

    def _load_failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self.load_error = message
        self.loadingChanged.emit(False)
        self.loadFailed.emit(message)
        self.notifier.say(f"Cannot use the model: {message}")
        self._changed()

    def give_class_names(self, names: list[str]) -> None:
        """The class names of the chosen ONNX file without a card (asked for by ``classNamesNeeded``)."""
        if self.choice is not None and self.choice.kind == "file":
            self._load(self.choice, [n.strip() for n in names if n.strip()])

    # ------------------------------------------------------------------ classes
    def labelled_images(self) -> int:
        """How many images of the project have a label of the user's."""
        project = self.controller.project
        return sum(e.status in ("corrected", "reviewed") for e in project.images) if project is not None else 0

    def _refit(self) -> None:
        project = self.controller.project
        if (self.loaded is not None and project is not None and not len(project.classes) and not project.read_only
                and len(self.loaded.card.classes)):
            # a new project without classes starts with the chosen model's (no extras, nothing to rewrite)
            self.controller.class_changes.set_table(self.loaded.card.classes)
            if len(self.controller.classes):
                return  # classesChanged refits
        self.fit = (fit_classes(self.loaded.card.classes, project.classes)
                    if self.loaded is not None and project is not None else None)
        self.fitChanged.emit(self.fit)
        self._changed()

    def add_missing_classes(self) -> None:
        """Append the model's classes the project lacks (existing labels keep their indices)."""
        if self.loaded is not None and self.controller.project is not None:
            table = with_missing_added(self.controller.classes, self.loaded.card.classes)
            self.controller.class_changes.set_table(table)

    def adopt_model_classes(self) -> None:
        """Take the model's class table (the project's other classes after it); every mask is rewritten."""
        if self.loaded is not None and self.controller.project is not None:
            table, lut = adopted(self.controller.classes, self.loaded.card.classes)
            self.controller.class_changes.set_table(table, lut)

    # ------------------------------------------------------------------ segmenting
    def segment_current(self) -> bool:
        """Segment the image on screen in a worker; False (and a message) when it cannot run now."""
        doc = self.controller.current
        reason = self.blocked_reason() or (None if doc is not None else "open an image first")
        if reason or doc is None:
            self.notifier.say(f"Cannot segment: {reason}")
            return False
        project, scores, loaded, lut = self._run_inputs()
        path, image = doc.path, doc.image

        def work(cancel: CancelToken, report: object) -> SegmentResult:
            return segment_one(project, path, image, loaded.predictor, lut, scores, loaded.model_id, cancel,
                               report)  # type: ignore[arg-type]

        self._start("segment", project, work, self._one_done, self._one_progress, reporting=True)
        self.runProgress.emit(0, 0, f"Segmenting {doc.entry.name}…")
        return True

    def unlabelled_targets(self) -> list[str]:
        """Images for "Segment all unlabelled": no label of the user's, and no prediction from this model."""
        project, scores, loaded = self.controller.project, self.controller.scores, self.loaded
        if project is None or loaded is None:
            return []
        return [e.path for e in project.images if e.status == "unlabelled"
                or (e.status == "predicted" and (scores is None or scores.model_of(e.path) != loaded.model_id))]

    def segment_unlabelled(self) -> bool:
        """Segment every image in :meth:`unlabelled_targets` in a worker (progress, cancel)."""
        reason = self.blocked_reason()
        if reason:
            self.notifier.say(f"Cannot segment: {reason}")
            return False
        targets = self.unlabelled_targets()
        if not targets:
            self.runEnded.emit("Every image without a label already has a prediction from this model")
            return False
        return self.segment_paths(targets)

    def segment_paths(self, targets: list[str]) -> bool:
        """Segment the images ``targets`` (those the user labels meanwhile are skipped) in a worker."""
        reason = self.blocked_reason()
        if reason or not targets:
            if reason:
                self.notifier.say(f"Cannot segment: {reason}")
            return False
        project, scores, loaded, lut = self._run_inputs()
        open_images = {p: d.image for p in targets if (d := self.controller.document(p)) is not None}

        def work(cancel: CancelToken) -> object:
            return segment_many(project, targets, open_images, loaded.predictor, lut, scores, loaded.model_id,
                                cancel)

        self._start("segment all", project, work, self._all_done, self._all_progress)
        self.runProgress.emit(0, len(targets), f"Segmenting {len(targets)} images…")
        return True

    def _run_inputs(self) -> tuple[Project, UncertaintyScores, LoadedModel, np.ndarray]:
        """(project, its scores, the loaded model, the class lookup table) of a run that is not blocked."""
        project, scores, loaded, fit = self.controller.project, self.controller.scores, self.loaded, self.fit
        assert project is not None and scores is not None and loaded is not None and fit is not None
        assert fit.lut is not None
        return project, scores, loaded, fit.lut

    def _start(self, name: str, project: Project, work: object, done: object, progress: object,
               reporting: bool = False) -> None:
        self._run_project = project
        self._run = self.workers.start(name, work, on_finished=done, on_progress=progress,  # type: ignore[arg-type]
                                       on_failed=self._run_failed, on_cancelled=self._run_cancelled,
                                       reporting=reporting)
        self.runStarted.emit(name)
        self._changed()

    def cancel(self) -> None:
        """Ask the running segmentation to stop (images already done are kept)."""
        if self._run is not None and self._run.outcome is None:
            self._run.cancel("cancelled by the user")

    def _current_project(self) -> bool:
        return self._run_project is not None and self._run_project is self.controller.project

    def _one_progress(self, event: object) -> None:
        if isinstance(event, Progress) and event.total > 1:
            self.runProgress.emit(event.done, event.total, f"window {event.done} of {event.total}")

    def _check_domain(self) -> None:
        """Say once per project and model when the model is far less sure here than on its own data."""
        project, scores, loaded = self.controller.project, self.controller.scores, self.loaded
        if project is None or scores is None or loaded is None:
            return
        key = (str(project.root), loaded.model_id)
        if key in self._domain_said:
            return
        text = domain_warning(loaded.card, scores.scores_of(loaded.model_id), len(project.images))
        if text is not None:
            self._domain_said.add(key)
            self.domainWarning.emit(text)

    def _one_done(self, result: SegmentResult) -> None:
        if self._current_project():
            self.controller.show_prediction(result.path, result.labels, result.uncertainty)
            self._check_domain()
        self._ended(f"Segmented {Path(result.path).name} in {result.seconds:.2f} s "
                    f"(mean uncertainty {result.score:.3f})")

    def _all_progress(self, event: SegmentEvent) -> None:
        if event.result is not None and self._current_project():
            r = event.result
            self.controller.show_prediction(r.path, r.labels, r.uncertainty)
        rate = f" · {event.images_per_s:.1f} images/s · ETA {format_eta(event.eta_s)}" if event.images_per_s else ""
        self.runProgress.emit(event.done, event.total, f"{event.done} of {event.total} images{rate}")

    def _all_done(self, summary: SegmentSummary) -> None:
        text = f"Segmented {summary.segmented} images in {summary.seconds:.1f} s"
        if summary.skipped:
            text += f"; {summary.skipped} skipped (labelled meanwhile)"
        if summary.errors:
            text += f"; {len(summary.errors)} failed"
            self.notifier.error("Some images could not be segmented", "\n".join(summary.errors))
        current = self._current_project()
        self._ended(text)
        if current:
            self._check_domain()

    def _run_failed(self, message: str) -> None:
        self._ended(f"Segmentation failed: {message}")
        self.notifier.error("Segmentation failed", message)

    def _run_cancelled(self, reason: str) -> None:
        self._ended("Segmentation cancelled; the images already segmented are kept")

    def _ended(self, text: str) -> None:
        self._run_project = None
        self.runEnded.emit(text)
        self.notifier.say(text)
        self._changed()

    # ------------------------------------------------------------------ where to correct next
    def next_uncertain(self, current: str | None) -> tuple[str | None, str]:
        """The image to correct next (the next most uncertain after ``current``) and a line for people."""
        ranking = self.controller.uncertainty_ranking()
        # pressed again on the image it led to: walk down the ranking; otherwise start at the top
        target = next_in_ranking(ranking, current, walking=current is not None and current == self._walked_to)
        if target is not None:
            self._walked_to = target
        scores = self.controller.scores
        if target is None:
            if not ranking:
                return None, "No segmented image waits for a correction: run Segment All Unlabelled first"
            return None, "That was the least uncertain segmented image"
        score = scores.get(target) if scores is not None else None
        place = ranking.index(target) + 1
        return target, f"{place} of {len(ranking)} by uncertainty" + (f" ({score:.3f})" if score is not None else "")
