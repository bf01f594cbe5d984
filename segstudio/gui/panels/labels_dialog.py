"""File › Import Labels… and File › Export Labels…: every format the command line has, with a preview.

The dialog is not modal. It shows, before anything is touched, what will be
read (how many annotation files, how many match images of the project, which
already have a label) or written (how many images, as what, where); the run
goes to a worker with a progress bar and ends in a report of what was done and
what was skipped, and why. An import holds the window still while it writes
labels, then shows the current image again as the files now hold it. The logic
without Qt is in :mod:`segstudio.workspace.label_transfer`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.formats import FORMATS, ExportOptions, ExportReport, ImportOptions, ImportReport
from segstudio.core.masks import parse_class_ref, parse_value_map
from segstudio.core.tasks import CancelToken, Progress
from segstudio.gui.controllers.project_controller import ProjectController
from segstudio.workspace import label_transfer
from segstudio.workspace.label_transfer import SINGLE_FILE


class LabelsDialog(QDialog):
    """Import (``mode="import"``) or export (``"export"``) the open project's labels; see the module docstring."""

    def __init__(self, mode: str, controller: ProjectController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = mode
        self.controller = controller
        importing = mode == "import"
        self.setWindowTitle("Import Labels" if importing else "Export Labels")
        self.format = QComboBox()
        for name, f in FORMATS.items():
            self.format.addItem(f"{name}: {f.title}", name)
        self.path = QLineEdit()
        self.path.setPlaceholderText("the annotations to read" if importing else "where to write them")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.ask_path)
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("From" if importing else "To", where)
        self.overwrite = QCheckBox("Replace existing labels")
        self.as_predictions = QCheckBox("Import as predictions, to review")
        self.add_classes = QCheckBox("Add class names the project lacks (COCO, labelme, YOLO)")
        self.value_map = QLineEdit()
        self.value_map.setPlaceholderText("index/VOC/binary: what values mean, e.g. 0=membrane,255=cell")
        self.background = QLineEdit()
        self.background.setPlaceholderText("COCO/labelme/YOLO: the class of pixels no shape covers")
        self.predictions = QCheckBox("Images without a label: export their prediction")
        self.polygons = QCheckBox("COCO: polygons instead of lossless RLE")
        self.exclude = QLineEdit()
        self.exclude.setPlaceholderText("classes to leave out, e.g. background")
        if importing:
            for box in (self.overwrite, self.as_predictions, self.add_classes):
                form.addRow("", box)
            form.addRow("Value map", self.value_map)
            form.addRow("Background", self.background)
        else:
            for box in (self.predictions, self.polygons):
                form.addRow("", box)
            form.addRow("Leave out", self.exclude)
        self.preview = QLabel()
        self.preview.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("What was done, and what was skipped, appears here.")
        self.run_button = QPushButton("Import" if importing else "Export")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(self.progress)
        layout.addWidget(self.report, 1)
        layout.addLayout(buttons)
        self.resize(620, 480)
        self.format.currentIndexChanged.connect(lambda _i: self.update_preview())
        self.path.textChanged.connect(lambda _t: self.update_preview())
        for box in (self.overwrite, self.predictions):
            box.toggled.connect(lambda _on: self.update_preview())
        self.running = False
        self.update_preview()

    # ------------------------------------------------------------------ choosing
    def fmt(self) -> str:
        return str(self.format.currentData())

    def chosen_path(self) -> Path | None:
        text = self.path.text().strip()
        return Path(text).expanduser() if text else None

    def ask_path(self) -> None:
        coco = self.fmt() in SINGLE_FILE
        if self.mode == "import" and coco:
            file, _ = QFileDialog.getOpenFileName(self, "The COCO file", "", "COCO JSON (*.json);;All files (*)")
        elif coco:
            file, _ = QFileDialog.getSaveFileName(self, "Write the COCO file", "annotations.json",
                                                  "COCO JSON (*.json)")
        else:
            file = QFileDialog.getExistingDirectory(self, "The annotations' folder" if self.mode == "import"
                                                    else "Write into the folder")
        if file:
            self.path.setText(file)

    def update_preview(self) -> None:
        project = self.controller.project
        if project is None:
            self.preview.setText("Open a project first.")
            self.run_button.setEnabled(False)
            return
        try:
            if self.mode == "import":
                p = label_transfer.preview_import(project, self.fmt(), self.chosen_path(), self.overwrite.isChecked(),
                                                  self.controller.unsaved_paths())
            else:
                p = label_transfer.preview_export(project, self.fmt(), self.chosen_path(),
                                                  self.predictions.isChecked())
        except OSError as exc:
            p = label_transfer.Preview(f"Cannot look there: {exc.strerror or exc}", False)
        self.preview.setText(p.text)
        self.run_button.setEnabled(p.ok and not self.running)

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        project, path = self.controller.project, self.chosen_path()
        if project is None or path is None or self.running:
            return
        try:
            if self.mode == "import":
                options: ImportOptions | ExportOptions = self._import_options()
            else:
                options = self._export_options()
        except (KeyError, ValueError) as exc:
            self.report.setPlainText(f"Not started: {str(exc).strip(chr(34))}")
            return
        if self.mode == "import":
            blocked = self.controller.project_job_blocked()
            if blocked:
                self.report.setPlainText(f"Not started: {blocked}")
                return
        errors = self.controller.flush()  # what is on screen is on disk before anything reads or replaces it
        if errors:
            self.report.setPlainText("Not started: these labels could not be saved:\n" + "\n".join(errors))
            return
        fmt = self.fmt()
        importing = self.mode == "import"

        def work(cancel: CancelToken, report: object) -> ImportReport | ExportReport:
            if isinstance(options, ImportOptions):
                return label_transfer.run_import(project, fmt, path, options, cancel, report)  # type: ignore[arg-type]
            return label_transfer.run_export(project, fmt, path, options, cancel, report)  # type: ignore[arg-type]

        self.running = True
        self.run_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.report.setPlainText("Importing…" if importing else "Exporting…")
        if importing:
            self.controller.set_busy(True)
        self.controller.workers.start(f"{self.mode} labels", work, on_finished=self._finished,
                                      on_failed=self._failed, on_progress=self._progress, reporting=True)

    def _import_options(self) -> ImportOptions:
        classes = self.controller.classes
        value_map = parse_value_map([self.value_map.text()], classes) if self.value_map.text().strip() else None
        background = parse_class_ref(self.background.text(), classes) if self.background.text().strip() else None
        return ImportOptions(value_map=value_map, background=background, add_classes=self.add_classes.isChecked(),
                             as_predictions=self.as_predictions.isChecked(), overwrite=self.overwrite.isChecked())

    def _export_options(self) -> ExportOptions:
        classes = self.controller.classes
        exclude = set()
        for word in self.exclude.text().split(","):
            if word.strip():
                index = parse_class_ref(word, classes)
                if index is None:
                    raise ValueError(f"'Leave out' needs class names, got {word.strip()!r}")
                exclude.add(index)
        return ExportOptions(include_predictions=self.predictions.isChecked(), exclude=frozenset(exclude),
                             polygons=self.polygons.isChecked())

    def _progress(self, p: object) -> None:
        if isinstance(p, Progress) and p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)

    def _ended(self) -> None:
        self.running = False
        self.progress.setVisible(False)
        if self.mode == "import":
            self.controller.set_busy(False)
            self.controller.reload_from_disk()
        self.update_preview()

    def _finished(self, result: ImportReport | ExportReport) -> None:
        if isinstance(result, ImportReport):
            text = result.summary(as_predictions=self.as_predictions.isChecked())
            if not result.imported and not result.skipped and not result.errors:
                text += "\nNothing was imported: do the annotation names match the image names?"
        else:
            text = result.summary()
        self.report.setPlainText(text)
        self._ended()

    def _failed(self, message: str) -> None:
        self.report.setPlainText(f"{'Import' if self.mode == 'import' else 'Export'} failed: {message}")
        self._ended()
