"""File → Batch Segment Folder…: the options dialog, then a progress window over ``segment_folder``.

The progress window is not modal: the user keeps painting while a folder runs.
It runs the inference engine's batch generator in a worker (images done,
images/s, ETA, the errors as they come); Cancel stops the run after the images
in progress, which are written and counted, and then turns into Close. When the
run ends the output folder opens in the system's file manager
(:func:`open_folder`, replaced by the tests). A run that is cancelled keeps
what was written, and running it again resumes. When the output folder holds
results of another model, the window asks whether to segment those images
again with this one (:attr:`BatchProgressDialog.overwrite_question`) instead of
mixing the two models' results. Outputs: ``masks/`` (class maps, shown in the
class colours), ``overlays/``, ``classes/<NN>-<class>/`` and ``classes.json``
(see :mod:`segstudio.inference.batch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.tasks import Cancelled, CancelToken, LinkedToken, format_eta
from segstudio.gui.workers import Task, WorkerPool
from segstudio.inference.batch import BatchEvent, BatchOptions, segment_folder
from segstudio.inference.batch_record import OtherModelError
from segstudio.inference.model_file import MissingCardError
from segstudio.inference.predictor import Predictor
from segstudio.workspace.model_choice import BACKENDS


def fit_wrapped_text(window: QWidget) -> None:
    """Give ``window`` at least the height its wrapped text needs at its width: a window's minimum height counts
    a word-wrapped label as one line, so ``resize(w, 0)``, or a text that grows, would squeeze its rows."""
    need = window.heightForWidth(window.width())
    if need > window.height():
        window.resize(window.width(), need)


def open_folder(path: Path) -> bool:
    """Show ``path`` in the system's file manager (the tests replace this function)."""
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))


@dataclass
class BatchRequest:
    """What the dialog asks for: folders, model file, where it runs, and what to write."""

    input: Path
    output: Path
    model: Path
    backend: str = "auto"
    class_names: list[str] | None = None
    overlay: bool = True
    masks_per_class: bool = False
    tta: bool | None = None
    recursive: bool = False
    overwrite: bool = False
    """Segment again the images whose results came from another model (the user said so)."""

    def options(self) -> BatchOptions:
        return BatchOptions(overlay=self.overlay, masks_per_class=self.masks_per_class, recursive=self.recursive,
                            tta=self.tta, overwrite=self.overwrite)

    def problem(self) -> str | None:
        """What is wrong with the request (for the dialog), or None."""
        if not self.input.is_dir():
            return f"The input folder {self.input} does not exist."
        if not str(self.output).strip() or self.output == Path():
            return "Choose an output folder."
        if self.output.resolve() == self.input.resolve():
            return "The output folder must not be the input folder (the results would mix with the images)."
        if not self.model.is_file():
            return f"The model file {self.model} does not exist."
        return None


@dataclass
class BatchEnd:
    """How the run ended in the worker: "finished", "cancelled" (after the images in progress were written) or
    "other model" (the output folder holds another model's results: ``other`` says whose)."""

    state: str
    last: BatchEvent | None = None
    other: OtherModelError | None = None


def run_batch(request: BatchRequest, cancel: CancelToken, report: Callable[[object], None]) -> BatchEnd:
    """Load the model, then segment the folder; reports the backend's name, then every batch event.

    When ``cancel`` is set the engine writes and counts the images in progress, then the run ends as
    "cancelled" with the true count; when the output folder holds another model's results (and
    ``overwrite`` is off) it ends as "other model", having written nothing.
    """
    engine_backend, device = BACKENDS.get(request.backend, BACKENDS["auto"])
    try:
        predictor = Predictor.from_file(request.model, backend=engine_backend, device=device,
                                        class_names=request.class_names)
    except MissingCardError:
        raise ValueError(f"{request.model.name} is an ONNX file without a segstudio model card: choose it once "
                         "in the Model panel to name its classes, then run the batch again") from None
    report(predictor.backend.name)
    last: BatchEvent | None = None
    try:
        for event in segment_folder([request.input], request.output, predictor, request.options(), cancel):
            last = event
            report(event)
    except OtherModelError as exc:
        return BatchEnd("other model", last, exc)
    except Cancelled:
        return BatchEnd("cancelled", last)
    return BatchEnd("finished", last)


class BatchDialog(QDialog):
    """The options of a batch run. ``request()`` reads them; accepting checks them first."""

    def __init__(self, models: list[Path], remembered: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch segment folder")
        self.input_edit = QLineEdit(str(remembered.get("input", "")))
        self.output_edit = QLineEdit(str(remembered.get("output", "")))
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        for p in models:
            self.model_combo.addItem(str(p))
        self.overlay = QCheckBox("Colour overlay per image (overlays/<name>.png)")
        self.masks = QCheckBox("A black/white mask per class (classes/<NN>-<class>/<name>.png)")
        self.tta = QCheckBox("Test-time augmentation (flips × 4 scales: slower, often a little better)")
        self.tta.setToolTip("Unticked, a model trained with quarter turns (microscopy) still averages its 8 turned "
                            "and mirrored views, as the main window does; other models see each image once.")
        self.recursive = QCheckBox("Include sub-folders (their structure is kept in the output)")
        for box, key, default in ((self.overlay, "overlay", True), (self.masks, "masks_per_class", False),
                                  (self.tta, "tta", False), (self.recursive, "recursive", False)):
            box.setChecked(bool(remembered.get(key, default)))
        self.problem_label = QLabel()
        self.problem_label.setStyleSheet("color: #c62828")
        self.problem_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Images in:", self._with_browse(self.input_edit, self._browse_input))
        form.addRow("Results to:", self._with_browse(self.output_edit, self._browse_output))
        form.addRow("Model:", self._with_browse(self.model_combo, self._browse_model))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Segment")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for box in (self.overlay, self.masks, self.tta, self.recursive):
            layout.addWidget(box)
        note = QLabel("Each image gives masks/<name>.png, its class map: the pixel values are the class indices, "
                      "shown in the class colours; classes.json says which is which. Images already done are "
                      "skipped, so a stopped run resumes.")
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addWidget(self.problem_label)
        layout.addWidget(buttons)
        self.resize(620, 0)
        fit_wrapped_text(self)

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:  # a problem shown below the options
            fit_wrapped_text(self)
        return handled

    @staticmethod
    def _with_browse(field_widget: QWidget, browse: Any) -> QWidget:
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(field_widget, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        lay.addWidget(button)
        return row

    def _browse_input(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to segment", self.input_edit.text())
        if folder:
            self.input_edit.setText(folder)
            if not self.output_edit.text():
                self.output_edit.setText(str(Path(folder).parent / f"{Path(folder).name}-segmented"))

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the results", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)

    def _browse_model(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Model file", self.model_combo.currentText(),
                                              "Model files (*.safetensors *.onnx)")
        if file:
            self.model_combo.setEditText(file)

    def request(self, backend: str = "auto", class_names: list[str] | None = None) -> BatchRequest:
        return BatchRequest(Path(self.input_edit.text().strip()), Path(self.output_edit.text().strip()),
                            Path(self.model_combo.currentText().strip()), backend, class_names,
                            self.overlay.isChecked(), self.masks.isChecked(), self.tta.isChecked() or None,
                            self.recursive.isChecked())

    def remembered(self) -> dict[str, Any]:
        """What to offer next time."""
        r = self.request()
        return {"input": str(r.input), "output": str(r.output), "model": str(r.model), "overlay": r.overlay,
                "masks_per_class": r.masks_per_class, "tta": r.tta, "recursive": r.recursive}

    def accept(self) -> None:
        problem = self.request().problem()
        if problem:
            self.problem_label.setText(problem)
            return
        super().accept()


@dataclass
class BatchOutcome:
    """How a run ended: "finished", "cancelled" or "failed", with the last event and the message."""

    state: str
    last: BatchEvent | None = None
    message: str = ""
    errors: list[str] = field(default_factory=list)


class BatchProgressDialog(QDialog):
    """Runs a :class:`BatchRequest` in a worker and shows its progress; Cancel stops it, keeping what is done.

    Not modal: the main window stays usable while it runs.
    """

    def __init__(self, request: BatchRequest, workers: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.setWindowTitle(f"Segmenting {request.input.name}")
        self.request = request
        self.outcome: BatchOutcome | None = None
        self.last: BatchEvent | None = None
        self.stop = CancelToken()
        """The Cancel button's token: the run writes and counts the images in progress, then ends."""
        self.state = QLabel(f"Loading {request.model.name}…")
        self.state.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.counts = QLabel()
        self.speed = QLabel()
        self.errors = QListWidget()
        self.errors.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel_or_close)
        self.open_button = QPushButton("Open output folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(lambda: open_folder(self.request.output))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        route = QLabel(f"{request.input}  →  {request.output}")
        route.setWordWrap(True)
        layout.addWidget(route)
        for w in (self.state, self.bar, self.counts, self.speed, self.errors):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.resize(560, 0)
        fit_wrapped_text(self)
        self.workers = workers
        self.overwrite_question: QMessageBox | None = None
        """Shown when the output folder holds another model's results: replace them, or stop."""
        self.task: Task = self._start(request)

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:  # a longer state line, the errors list shown
            fit_wrapped_text(self)
        return handled

    def _start(self, request: BatchRequest) -> Task:
        # Callbacks of an earlier task (one that ended with the question) must not touch this run.
        def current(slot: Any) -> Any:
            return lambda value: slot(value) if self.task is task else None

        stop = self.stop
        task = self.workers.start("batch", lambda c, report: run_batch(request, LinkedToken(c, stop), report),
                                  on_progress=current(self._progress), on_finished=current(self._ended),
                                  on_failed=current(self._failed), on_cancelled=current(self._closed_under_it),
                                  reporting=True)
        self.task = task
        return task

    def _progress(self, event: object) -> None:
        if isinstance(event, str):
            if not self.stop.cancelled:
                self.state.setText(f"Running on {event}")
            return
        if not isinstance(event, BatchEvent):
            return
        self.last = event
        self.bar.setRange(0, max(1, event.total))
        self.bar.setValue(event.done)
        extra = [f"{n} {what}" for n, what in ((event.skipped, "skipped (already done)"),
                                                (event.failed, "failed")) if n]
        self.counts.setText(f"{event.done} of {event.total} images" + (f" ({', '.join(extra)})" if extra else ""))
        if event.images_per_s:
            self.speed.setText(f"{event.images_per_s:.1f} images/s · ETA {format_eta(event.eta_s)}")
        if len(event.errors) > self.errors.count():
            for err in event.errors[self.errors.count():]:
                self.errors.addItem(str(err))
            self.errors.setVisible(True)

    def _end(self, outcome: BatchOutcome, text: str) -> None:
        self.outcome = outcome
        self.state.setText(text)
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setDefault(True)
        self.open_button.setEnabled(self.request.output.is_dir())
        if outcome.state != "failed":
            self.bar.setRange(0, max(1, self.last.total if self.last else 1))
            self.bar.setValue(self.last.done if self.last else 0)

    def _ask_overwrite(self, exc: OtherModelError) -> None:
        other = exc.recorded or "an unknown model"
        box = QMessageBox(QMessageBox.Icon.Question, "Results of another model",
                          f"{exc.out_dir} already holds the results of {len(exc.sources)} image(s) made with "
                          f"{other}.\n\nSegment them again with {self.request.model.name}, replacing those "
                          "results? Otherwise nothing is written: choose another output folder to keep both.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.button(QMessageBox.StandardButton.Yes).setText("Replace them")
        box.button(QMessageBox.StandardButton.No).setText("Stop")
        box.finished.connect(lambda result: self._answered(box, result))
        self.overwrite_question = box
        self.state.setText(f"The output folder holds results of {other}")
        box.open()

    def _answered(self, box: QMessageBox, result: int) -> None:
        self.overwrite_question = None
        box.deleteLater()
        if box.standardButton(box.clickedButton()) == QMessageBox.StandardButton.Yes:
            self.request = replace(self.request, overwrite=True)
            self.state.setText("Segmenting again with this model…")
            self._start(self.request)
            return
        text = "Not run: the output folder holds another model's results; nothing was written"
        self._end(BatchOutcome("cancelled", self.last, text), text)

    def _ended(self, end: BatchEnd) -> None:
        if end.state == "other model" and end.other is not None:
            self._ask_overwrite(end.other)
            return
        last = end.last or self.last
        self.last = last
        written = last.written if last else 0
        skipped = last.skipped if last else 0
        failed = last.failed if last else 0
        errors = [str(e) for e in last.errors] if last else []
        if end.state == "cancelled":
            text = (f"Cancelled: {written} written, {skipped} skipped (already done), {failed} failed; what was "
                    "written is kept, and running again resumes")
            self._end(BatchOutcome("cancelled", last, text, errors), text)
            return
        text = f"Done: {written} written, {skipped} skipped (already done), {failed} failed"
        self._end(BatchOutcome("finished", last, text, errors), text)
        open_folder(self.request.output)

    def _closed_under_it(self, reason: str) -> None:
        # the worker itself was cancelled: the window is closing
        written = self.last.written if self.last else 0
        text = f"Stopped ({reason}) after {written} image(s); they are kept, and running again resumes"
        self._end(BatchOutcome("cancelled", self.last, text), text)

    def _failed(self, message: str) -> None:
        self._end(BatchOutcome("failed", self.last, message), f"Failed: {message}")
        self.state.setStyleSheet("color: #c62828")

    def _cancel_or_close(self) -> None:
        if self.outcome is None:
            self.stop.cancel("cancelled by the user")
            self.cancel_button.setEnabled(False)  # until the images in progress are written (Close then)
            self.state.setText("Stopping after the images in progress…")
        else:
            self.accept()

    def reject(self) -> None:
        """Esc or the close button: stop the run (what is done is kept) and close."""
        if self.outcome is None:
            self.stop.cancel("cancelled by the user")
        super().reject()
