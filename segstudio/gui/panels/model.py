"""The model panel: choose the active model file, where it runs, its card, and Segment.

It talks only to the :class:`~segstudio.gui.controllers.segment_controller.SegmentController`
(and triggers the window's actions); the fine-tuning panel is a tab beside it.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.classes import ClassTable
from segstudio.gui.controllers.segment_controller import SegmentController
from segstudio.inference.model_file import find_model_files
from segstudio.inference.tta import card_tta
from segstudio.workspace.model_choice import (
    BACKEND_TITLES,
    BACKENDS,
    ClassFit,
    LoadedModel,
    ModelChoice,
    NeedsClassNames,
    Runtimes,
    file_format,
)
from segstudio.workspace.versions import VersionRegistry
from segstudio.zoo import ModelCard, UnknownNetworkError, get_spec

ChoiceRole = Qt.ItemDataRole.UserRole + 1


def _swatches(classes: ClassTable) -> str:
    return " ".join(
        f'<span style="background-color: rgb{c.colour}">&nbsp;&nbsp;&nbsp;</span>&nbsp;{html.escape(c.name)}'
        for c in classes)


def card_html(card: ModelCard, path: Path | None = None) -> str:
    """The card of a model file as rich text: what it is, its classes, what it was trained on, its metrics."""
    try:
        arch = get_spec(card.arch).title
    except UnknownNetworkError:
        arch = card.arch
    rows = [f"<b>{html.escape(card.name or (path.stem if path else card.arch))}</b> — {html.escape(arch)}"]
    if card.description:
        rows.append(html.escape(card.description))
    rows.append(f"<b>Classes ({card.num_classes}):</b> {_swatches(card.classes)}")
    trained = [h for h in card.history if h.get("event") in ("trained", "fine-tuned", "imported")]
    data = sorted({str(h["data"]) for h in trained if h.get("data")} | {str(m["data"]) for m in card.metrics
                                                                        if m.get("data")})
    what = [html.escape(d) for d in data]
    if card.train_resolution:
        what.append(f"at {card.train_resolution[1]}×{card.train_resolution[0]}")
    rows.append("<b>Training data:</b> " + ("; ".join(what) if what else "not stated on the card"))
    metrics = [f"{html.escape(str(m.get('name')))} {float(m['value']):.3f}"
               + (f" on {html.escape(str(m['data']))}" if m.get("data") else "")
               for m in card.metrics if isinstance(m.get("value"), int | float)]
    rows.append("<b>Metrics:</b> " + ("; ".join(metrics) if metrics else "none recorded"))
    for h in card.history[-3:]:
        rows.append(f"{html.escape(str(h.get('event', '')))} {html.escape(str(h.get('when', ''))[:10])}"
                    + (f" from {html.escape(str(h['from']))}" if h.get("from") else ""))
    if path is not None:
        size = path.stat().st_size / 1e6 if path.is_file() else 0.0
        rows.append(f"<small>{html.escape(str(path))} ({size:.1f} MB)</small>")
    return "<br>".join(rows)


def _action_button(action: QAction, text: str) -> QPushButton:
    """A push button that triggers ``action`` and follows its enabled state and tooltip (a shorter text
    than the menu's keeps the dock narrow)."""
    button = QPushButton(text)
    button.clicked.connect(action.trigger)

    def follow() -> None:
        button.setEnabled(action.isEnabled())
        button.setToolTip(action.toolTip())

    action.changed.connect(follow)
    follow()
    return button


class ModelPanel(QWidget):
    """Model choice, backend, card, class fit, Segment buttons and the run's progress."""

    def __init__(self, segment: SegmentController, models_folder: Path, open_model: QAction, segment_action: QAction,
                 segment_all: QAction, cancel: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.segment = segment
        self.models_folder = models_folder
        self.names_dialog: QInputDialog | None = None
        self.confirm_box: QMessageBox | None = None

        self.choices = QStandardItemModel(self)
        self.model_combo = QComboBox()
        self.model_combo.setModel(self.choices)
        self.model_combo.setMinimumContentsLength(10)  # the dock stays narrow; the list shows whole names
        self.model_combo.setToolTip("The active model: shipped, opened, or trained in this project")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.activated.connect(self._combo_chosen)
        self.open_button = open_button = _action_button(open_model, "Open…")

        self.backends = QStandardItemModel(self)
        for key in BACKENDS:
            item = QStandardItem(BACKEND_TITLES[key])
            item.setData(key, ChoiceRole)
            self.backends.appendRow(item)
        self.backend_combo = QComboBox()
        self.backend_combo.setModel(self.backends)
        # a fixed width hint: texts that change (availability) must not make the dock, and the canvas, jump
        self.backend_combo.setMinimumContentsLength(12)
        self.backend_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.backend_combo.activated.connect(
            lambda row: segment.set_backend(str(self.backends.item(row).data(ChoiceRole))))
        self.active = QLabel()
        self.active.setWordWrap(True)
        self.views_box = QCheckBox("Average 8 turned views")
        self.views_box.setToolTip("For a model trained with quarter turns and mirrors (microscopy): each image is "
                                  "segmented in its 8 views and the results averaged. Often better, 8× the time. "
                                  "Models trained without quarter turns see each image once either way.")
        self.views_box.setChecked(segment.average_views)
        self.views_box.toggled.connect(segment.set_average_views)

        self.card = QTextBrowser()
        self.card.setOpenLinks(False)
        self.card.setMinimumHeight(90)  # it scrolls; below it the panel scrolls (it sits in a scroll area)

        self.fit_label = QLabel()
        self.fit_label.setWordWrap(True)
        self.add_button = QPushButton("Add the model's classes")
        self.add_button.setToolTip("Append the model's missing classes to the project; labels are not touched")
        self.add_button.clicked.connect(segment.add_missing_classes)
        self.adopt_button = QPushButton("Use the model's class table")
        self.adopt_button.setToolTip("The model's classes in its order and colours, the project's others after "
                                     "them; every label and prediction is rewritten by class name")
        self.adopt_button.clicked.connect(self.ask_adopt)
        self.fit_box = QFrame()
        self.fit_box.setFrameShape(QFrame.Shape.StyledPanel)
        fit_layout = QVBoxLayout(self.fit_box)
        fit_layout.setContentsMargins(6, 6, 6, 6)
        fit_layout.addWidget(self.fit_label)
        fit_buttons = QVBoxLayout()  # stacked: side by side they would widen the dock
        fit_buttons.addWidget(self.add_button)
        fit_buttons.addWidget(self.adopt_button)
        fit_layout.addLayout(fit_buttons)

        self.segment_button = _action_button(segment_action, "Segment")
        self.segment_all_button = _action_button(segment_all, "Segment unlabelled")
        self.cancel_button = _action_button(cancel, "Cancel")
        self.progress = QProgressBar()
        self.run_text = QLabel()
        self.run_text.setWordWrap(True)
        self.run_text.setVisible(False)  # an empty line would leave a gap above the class fit

        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(open_button)
        backend_row = QHBoxLayout()
        backend_row.addWidget(QLabel("Run on:"))
        backend_row.addWidget(self.backend_combo, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.segment_button)
        buttons.addWidget(self.segment_all_button)
        buttons.addStretch(1)
        self.progress_row = QWidget()
        progress_layout = QHBoxLayout(self.progress_row)
        progress_layout.setContentsMargins(0, 0, 0, 0)
        progress_layout.addWidget(self.progress, 1)
        progress_layout.addWidget(self.cancel_button)
        self.progress_row.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addLayout(backend_row)
        layout.addWidget(self.active)
        layout.addWidget(self.views_box)
        # the controls first and the card last: on a short screen the card shrinks, and what is cut off (the
        # panel scrolls) is the end of the card's text, never Segment or the class fit
        layout.addLayout(buttons)
        layout.addWidget(self.progress_row)
        layout.addWidget(self.run_text)
        layout.addWidget(self.fit_box)
        layout.addWidget(self.card, 1)

        s = segment
        s.choiceChanged.connect(lambda _c: self.refresh())
        s.modelChanged.connect(lambda _m: self.refresh())
        s.loadingChanged.connect(lambda _on: self.refresh())
        s.loadFailed.connect(lambda _msg: self.refresh())
        s.runtimesChanged.connect(lambda _r: self.refresh())
        s.fitChanged.connect(self._show_fit)
        s.classNamesNeeded.connect(self.ask_class_names)
        s.runStarted.connect(self._run_started)
        s.runProgress.connect(self._run_progress)
        s.runEnded.connect(self._run_ended)
        self.refresh()
        self._show_fit(None)

    # ------------------------------------------------------------------ choices
    def _fill_choices(self) -> None:
        current = self.segment.choice
        self.choices.clear()
        none = QStandardItem("No model")
        none.setData(None, ChoiceRole)
        self.choices.appendRow(none)
        project = self.segment.controller.project
        registry = VersionRegistry.load(project.root) if project is not None else None
        versions = registry.files() if registry is not None else []
        known = {p.resolve() for p in versions}
        self._header("Model files")
        files: list[Path] = []
        for p in [*find_model_files(self.models_folder), *(Path(r) for r in self.segment.settings.recent_models())]:
            if p.is_file() and p.resolve() not in {f.resolve() for f in files} | known:
                files.append(p)
        if current is not None and current.kind == "file" and Path(current.path) not in files \
                and Path(current.path).resolve() not in known:
            files.insert(0, Path(current.path))
        for p in files:
            shipped = p.parent.resolve() == self.models_folder.resolve()
            self._file_item(p, p.name + (" (shipped)" if shipped else ""),
                            f"{p}\n" + ("shipped with segstudio" if shipped else "a model file you opened"))
        if registry is not None and versions:
            self._header("Trained in this project")
            for p in versions:
                v = registry.find(p)
                text = f"{p.stem} — {v.describe()}" if v is not None else f"{p.stem} — trained here"
                tip = f"{p}\nfrom {v.trained_from}; {v.verdict}" if v is not None else str(p)
                self._file_item(p, text, tip)
        row = 0
        for r in range(self.choices.rowCount()):
            data = self.choices.item(r).data(ChoiceRole)
            if current is not None and ModelChoice.from_json(data) == current:
                row = r
        self.model_combo.setCurrentIndex(row)

    def _file_item(self, path: Path, text: str, tip: str) -> None:
        item = QStandardItem(text)
        item.setToolTip(tip)
        item.setData(ModelChoice.file(path).to_json(), ChoiceRole)
        self.choices.appendRow(item)

    def _header(self, text: str) -> None:
        item = QStandardItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font()
        font.setBold(True)
        item.setFont(font)
        self.choices.appendRow(item)

    def _combo_chosen(self, row: int) -> None:
        choice = ModelChoice.from_json(self.choices.item(row).data(ChoiceRole))
        if choice != self.segment.choice:
            self.segment.choose(choice)

    # ------------------------------------------------------------------ state
    def refresh(self) -> None:
        """Show the segment controller's state: choice, backends, the active runner, the card."""
        s = self.segment
        self._fill_choices()
        choice = s.choice
        fmt = file_format(choice.path) if choice is not None and choice.kind == "file" else None
        self._show_backends(s.runtimes, fmt)
        self.card.setVisible(choice is not None)
        if not s.loading:  # while a model loads the box keeps its place (no jump when it is toggled)
            self.views_box.setVisible(s.loaded is not None and card_tta(s.loaded.card.recipe) is not None)
        if choice is None:
            self.active.setText("No model chosen: pick a model file, or train one in the Fine-tune panel.")
            self.card.setHtml("")
        elif s.loading:
            self.active.setText(f"Loading {html.escape(choice.title)}…")
        elif s.loaded is not None:
            self.active.setText(self.active_text(s.loaded))
            self.card.setHtml(card_html(s.loaded.card, Path(choice.path)))
        else:
            self.active.setText(f'<span style="color:#c62828">{html.escape(s.load_error or "Not loaded")}</span>')
            self.card.setHtml("")

    @staticmethod
    def active_text(loaded: LoadedModel) -> str:
        text = f"Runs on: <b>{html.escape(loaded.predictor.backend.name)}</b>"
        notes = [n for n in loaded.predictor.notes if not n.startswith("ONNX export:")]
        return text + (f"<br><small>{html.escape('; '.join(notes))}</small>" if notes else "")

    def _show_backends(self, runtimes: Runtimes, fmt: str | None) -> None:
        current = 0
        for row in range(self.backends.rowCount()):
            item = self.backends.item(row)
            key = str(item.data(ChoiceRole))
            problem = runtimes.problem(key, fmt)
            item.setEnabled(problem is None)
            item.setText(BACKEND_TITLES[key] + (" — unavailable" if problem else ""))
            item.setToolTip(problem or "")
            if key == self.segment.backend:
                current = row
        self.backend_combo.setCurrentIndex(current)

    def _show_fit(self, fit: ClassFit | None) -> None:
        show = fit is not None and not fit.identical
        self.fit_box.setVisible(show)
        if fit is None or not show:
            return
        self.fit_label.setText(fit.describe())
        self.add_button.setVisible(fit.lut is None)
        self.adopt_button.setVisible(not fit.leading)

    # ------------------------------------------------------------------ dialogs
    def ask_class_names(self, need: NeedsClassNames) -> QInputDialog:
        """Ask for the class names of an ONNX file without a card (non-blocking; tests fill it in)."""
        classes = self.segment.controller.classes
        count = f"It outputs {need.out_channels} classes. " if need.out_channels else ""
        guess = ", ".join(classes.names) if need.out_channels in (None, len(classes)) else ""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Class names of the model")
        dialog.setLabelText(f"{Path(need.path).name} has no segstudio model card. {count}"
                            "Its class names, in output order, separated by commas:")
        dialog.setTextValue(guess)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.textValueSelected.connect(lambda text: self.segment.give_class_names(text.split(",")))
        dialog.open()
        self.names_dialog = dialog
        return dialog

    def ask_adopt(self) -> None:
        """Adopt the model's class table; when images have labels, after a confirmation (masks are rewritten)."""
        labelled = self.segment.labelled_images()
        if not labelled:
            self.segment.adopt_model_classes()
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Use the model's class table",
                          f"{labelled} labelled image(s) will be rewritten with the new class numbers (matched by "
                          "name; nothing is lost) and the undo history of open images is cleared. Go ahead?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.buttonClicked.connect(
            lambda b: self.segment.adopt_model_classes()
            if box.standardButton(b) == QMessageBox.StandardButton.Yes else None)
        box.open()
        self.confirm_box = box

    # ------------------------------------------------------------------ runs
    def _run_started(self, name: str) -> None:
        self.progress_row.setVisible(True)
        self.progress.setRange(0, 0)

    def _run_progress(self, done: int, total: int, text: str) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self._say(text)

    def _run_ended(self, text: str) -> None:
        self.progress_row.setVisible(False)
        self._say(text)

    def _say(self, text: str) -> None:
        self.run_text.setText(text)
        self.run_text.setVisible(bool(text))
