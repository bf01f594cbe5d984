"""The window's model commands: open a model file, segment, cancel, next most uncertain, batch a folder.

The main window builds one :class:`ModelCommands` and leaves the model actions
to it (they need dialogs, so they live in the GUI layer rather than in the
:class:`~segstudio.gui.controllers.segment_controller.SegmentController`), which keeps the
composition root small.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QWidget

from segstudio.gui.actions import Actions
from segstudio.gui.controllers.segment_controller import SegmentController
from segstudio.gui.notifier import Notifier
from segstudio.gui.panels.batch import BatchDialog, BatchProgressDialog
from segstudio.gui.settings import AppSettings
from segstudio.inference.model_file import find_model_files


class ModelCommands(QObject):
    """Connects the model actions (File › Batch, Image › Next most uncertain, the Model menu) to their work."""

    def __init__(self, window: QWidget, segment: SegmentController, notifier: Notifier, actions: Actions,
                 settings: AppSettings, models_folder: Path) -> None:
        super().__init__(window)
        self.window = window
        self.segment = segment
        self.notifier = notifier
        self.actions = actions
        self.settings = settings
        self.models_folder = models_folder
        self.batch_dialog: BatchDialog | None = None
        self.batch_progress: BatchProgressDialog | None = None
        m = actions.model
        m.open_model.triggered.connect(self.ask_open_model)
        m.segment.triggered.connect(segment.segment_current)
        m.segment_all.triggered.connect(segment.segment_unlabelled)
        m.cancel.triggered.connect(segment.cancel)
        actions.image.next_uncertain.triggered.connect(self.next_uncertain)
        actions.file.batch.triggered.connect(self.ask_batch)
        segment.stateChanged.connect(self.update_enabled)
        segment.controller.documentChanged.connect(lambda _doc: self.update_enabled())
        segment.controller.statusChanged.connect(lambda _path: self.update_enabled())
        self.update_enabled()

    def update_enabled(self) -> None:
        """Segment actions on when they can run; their tooltips say why not."""
        s, m = self.segment, self.actions.model
        reason = s.blocked_reason()
        has_image = s.controller.current is not None
        m.segment.setEnabled(reason is None and has_image)
        m.segment.setToolTip(f"Segment the image on screen ({reason})" if reason else "Segment the image on screen")
        m.segment_all.setEnabled(reason is None)
        m.segment_all.setToolTip("Segment every image without a label" + (f" ({reason})" if reason else ""))
        m.cancel.setEnabled(s.running)
        m.open_model.setEnabled(s.controller.project is not None)
        self.actions.image.next_uncertain.setEnabled(s.controller.project is not None)

    def ask_open_model(self) -> None:
        start = self.settings.recent_models()[0] if self.settings.recent_models() else str(self.models_folder)
        file, _ = QFileDialog.getOpenFileName(self.window, "Open a model file", str(Path(start).parent),
                                              "Model files (*.safetensors *.onnx);;All files (*)")
        if file:
            self.segment.choose_file(file)

    def next_uncertain(self) -> None:
        target, text = self.segment.next_uncertain(self.segment.controller.requested_path)
        self.notifier.say(text)
        if target is not None:
            self.segment.controller.open_entry(target)

    # ------------------------------------------------------------------ batch
    def batch_models(self) -> list[Path]:
        """Model files to offer: the one the last batch used first, then the project's model, the shipped and
        the recent ones."""
        choice = self.segment.choice
        last = self.settings.batch_options().get("model")
        first = [Path(str(last))] if last else []
        first += [Path(choice.path)] if choice is not None and choice.kind == "file" else []
        found = [*first, *find_model_files(self.models_folder), *(Path(p) for p in self.settings.recent_models())]
        out: list[Path] = []
        for p in found:
            if p.is_file() and p not in out:
                out.append(p)
        return out

    def ask_batch(self) -> BatchDialog:
        """Open the batch dialog (non-blocking); accepting it starts the run in a progress dialog."""
        dialog = BatchDialog(self.batch_models(), self.settings.batch_options(), self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.accepted.connect(lambda: self.start_batch(dialog))
        dialog.open()
        self.batch_dialog = dialog
        return dialog

    def start_batch(self, dialog: BatchDialog) -> BatchProgressDialog:
        self.settings.set_batch_options(dialog.remembered())
        model = Path(dialog.request().model)
        self.settings.add_recent_model(model)
        chosen = self.segment.choice
        backend = (self.segment.effective_backend(chosen)[0]
                   if chosen is not None and chosen.kind == "file" and Path(chosen.path) == model
                   else self.segment.backend)
        if self.segment.runtimes.problem(backend) is not None:
            backend = "auto"
        request = dialog.request(backend, self.settings.onnx_class_names(model))
        previous = self.batch_progress
        if previous is not None and previous.outcome is not None and not previous.isVisible():
            previous.deleteLater()  # kept until now: a closed dialog still receives its run's last signals
        progress = BatchProgressDialog(request, self.segment.workers, self.window)
        progress.show()  # not modal: the user goes on painting while the folder runs
        self.batch_progress = progress
        return progress
