"""The fine-tuning panel: settings, Start/Stop, a live loss and mIoU plot, the verdict, and "how good is it".

It shows and drives a :class:`~segstudio.gui.controllers.training_controller.TrainingController`
and nothing else. What the run starts from (the active model fine-tuned, or the
chosen network from scratch — or why it cannot start) is said above the
settings, which start at that start point's recipe values (read in a worker).
Below the plot: the verdict on the last version (made active, or kept as a
candidate with "Use it anyway"; "Switch back" after an activation), the rounds
(held-out mIoU before → after) and, per held-out image of the latest
evaluation, its mIoU and IoU per class.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.tasks import format_eta
from segstudio.gui.controllers.training_controller import LOSSES, TrainingController, TrainSettings
from segstudio.gui.panels.model import _action_button
from segstudio.gui.panels.training_plot import TrainingPlot
from segstudio.training.evaluate import CorrectionsReport
from segstudio.workspace.model_choice import ModelChoice
from segstudio.workspace.rounds import Round, RoundHistory, change_text, fmt_iou
from segstudio.workspace.startpoint import StartPoint
from segstudio.zoo import get_spec, net_names
from segstudio.zoo.presets import PRESETS

if TYPE_CHECKING:  # the engine imports torch: the panel must not make the window's start slower
    from segstudio.training.engine import TrainEvent

UNITS = ("seconds", "steps")
MODES = {"rounds": "Rounds (train, then judge)", "continuous": "Continuous (while I correct)"}


def _table(columns: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    t.setMinimumHeight(70)
    return t


def _cell(text: str, align_right: bool = True) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class TrainingPanel(QWidget):
    """Fine-tune on corrections: settings, Start/Stop, plot, throughput, status, the quality tables."""

    def __init__(self, training: TrainingController, start: QAction, stop: QAction, evaluate: QAction) -> None:
        super().__init__()
        self.training = training
        self.start_action, self.stop_action, self.evaluate_action = start, stop, evaluate
        self._edited = False
        self.target = QComboBox()
        self.target.setToolTip("What to train: the active model (fine-tuned on your corrections), or a network "
                               "trained from scratch; a new version becomes active only if it is at least as good "
                               "on the held-out corrections")
        self.target.addItem("The active model (fine-tune it)", None)
        for name, preset in PRESETS.items():
            self.target.addItem(preset.title, ModelChoice.preset_network(name).to_json())
            self.target.setItemData(self.target.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole)
        for name in net_names():
            self.target.addItem(f"{get_spec(name).title} ({name}) from scratch", ModelChoice.untrained(name).to_json())
        self.target.setMinimumContentsLength(12)  # the dock stays narrow; the list shows whole names
        self.target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target.activated.connect(
            lambda _row: training.set_target(ModelChoice.from_json(self.target.currentData())))
        self.start_point = QLabel()
        self.start_point.setWordWrap(True)
        self.length = QSpinBox()
        self.length.setRange(1, 1_000_000)
        self.unit = QComboBox()
        self.unit.addItems(list(UNITS))
        length_row = QHBoxLayout()
        length_row.setContentsMargins(0, 0, 0, 0)
        length_row.addWidget(self.length, 1)
        length_row.addWidget(self.unit)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.freeze = QCheckBox("Freeze the encoder")
        self.freeze.setToolTip("Partial freezing: only the decoder and the head learn; the encoder keeps its "
                               "weights (fine-tuning)")
        self.loss = QComboBox()
        self.loss.addItems(list(LOSSES))
        self.mode = QComboBox()
        self.mode.setMinimumContentsLength(12)
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        for key, title in MODES.items():
            self.mode.addItem(title, key)
        self.mode.setToolTip("Rounds: train for the set length, then judge the new version on the held-out "
                             "corrections. Continuous: train until stopped; new corrections join within seconds "
                             "and every better version is swapped in while you paint.")
        form = QFormLayout()
        # in a dock narrower than label + field, a field goes under its label rather than out of sight
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Train", self.target)
        form.addRow("Mode", self.mode)
        form.addRow("Length", length_row)
        form.addRow("Learning rate", self.lr)
        form.addRow(self.freeze)
        form.addRow("Loss", self.loss)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setVisible(False)
        for w in (self.length, self.lr):
            w.valueChanged.connect(self._mark_edited)
        self.freeze.toggled.connect(self._mark_edited)
        for c in (self.unit, self.loss):
            c.currentIndexChanged.connect(self._mark_edited)
        self.mode.currentIndexChanged.connect(lambda _i: self.update_state())
        self.start_button = _action_button(start, "Start")
        self.stop_button = _action_button(stop, "Stop")
        self.evaluate_button = _action_button(evaluate, "How good is it?")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.plot = TrainingPlot()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.rate = QLabel("— images/s")
        self.eta = QLabel("ETA —")
        self.eta.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.rate)
        rate_row.addWidget(self.eta)
        self.status = QLabel("Not running")
        self.status.setWordWrap(True)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.accept_button = QPushButton("Use it anyway")
        self.accept_button.setToolTip("Make the candidate the active model although it did not score better")
        self.accept_button.clicked.connect(self._accept)
        self.back_button = QPushButton("Switch back")
        self.back_button.clicked.connect(training.switch_back)
        verdict_row = QHBoxLayout()
        verdict_row.addWidget(self.accept_button)
        verdict_row.addWidget(self.back_button)
        verdict_row.addStretch(1)
        self.verdict_box = QWidget()
        verdict_layout = QVBoxLayout(self.verdict_box)
        verdict_layout.setContentsMargins(0, 0, 0, 0)
        verdict_layout.addWidget(self.verdict)
        verdict_layout.addLayout(verdict_row)
        self.verdict_box.setVisible(False)
        self.rounds = _table(["Round", "Model", "Held-out mIoU before → after", "Verdict"])
        self.rounds.setMaximumHeight(130)  # the latest rounds; older ones scroll
        self.report_title = QLabel("How good is it: per image (run a round, or press How good is it?)")
        self.report_title.setWordWrap(True)
        self.images = _table(["Image", "mIoU"])
        # text that changes during a run must not resize the dock: the canvas would move under the brush
        for label in (self.start_point, self.rate, self.eta, self.status, self.report_title, self.verdict,
                      self.estimate):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)  # as the Model panel: the form's fields fit the narrowest dock
        layout.addLayout(form)
        layout.addWidget(self.start_point)
        layout.addWidget(self.estimate)
        layout.addLayout(buttons)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.progress)
        layout.addLayout(rate_row)
        layout.addWidget(self.status)
        layout.addWidget(self.verdict_box)
        heading = QLabel("<b>How good is it</b> — mIoU on the held-out corrections (images no run trains on)")
        heading.setWordWrap(True)
        heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(heading)
        evaluate_row = QHBoxLayout()  # beside its tables (three buttons in one row made the dock too wide)
        evaluate_row.addWidget(self.evaluate_button)
        evaluate_row.addStretch(1)
        layout.addLayout(evaluate_row)
        layout.addWidget(self.rounds)
        layout.addWidget(self.report_title)
        layout.addWidget(self.images, 3)
        t = training
        t.defaultsReady.connect(self._defaults)
        t.startPointChanged.connect(self._start_point)
        t.started.connect(self._started)
        t.runEvent.connect(self.show_event)
        t.ended.connect(self._ended)
        t.stateChanged.connect(self.update_state)
        t.evaluating.connect(self._evaluating)
        t.roundsChanged.connect(self.show_rounds)
        t.reportReady.connect(self.show_report)
        t.concluded.connect(self.show_verdict)
        t.controller.projectChanged.connect(lambda _p: self.reset())
        t.published.connect(self._published)
        start.triggered.connect(self.start)
        stop.triggered.connect(t.stop)
        evaluate.triggered.connect(t.evaluate_now)
        t.segment.stateChanged.connect(self.update_state)
        t.controller.statusChanged.connect(lambda _p: self.update_state())
        self._start_point(t.start_point())
        self.update_state()

    # ------------------------------------------------------------------ settings
    def _mark_edited(self) -> None:
        self._edited = True

    def _defaults(self, s: TrainSettings) -> None:
        """The recipe's values for a new start point replace the fields (the user's own values are kept for the
        same start point)."""
        self.set_settings(s)
        self._edited = False

    def set_settings(self, s: TrainSettings) -> None:
        self.unit.setCurrentIndex(UNITS.index(s.unit))
        self.length.setValue(s.length)
        self.lr.setValue(s.lr)
        self.freeze.setChecked(s.freeze_encoder)
        if s.loss not in LOSSES and self.loss.findText(s.loss) < 0:
            self.loss.addItem(s.loss)
        self.loss.setCurrentText(s.loss)
        self.mode.setCurrentIndex(max(0, self.mode.findData(s.mode)))
        self.estimate.setText(s.estimate)
        self.estimate.setVisible(bool(s.estimate))

    def settings(self) -> TrainSettings:
        return TrainSettings(self.length.value(), self.unit.currentText(), self.lr.value(), self.freeze.isChecked(),
                             self.loss.currentText(), "continuous" if self.mode.currentData() == "continuous"
                             else "rounds", self.estimate.text())

    def start(self) -> bool:
        return self.training.start(self.settings())

    def _start_point(self, sp: StartPoint) -> None:
        target = self.training.target
        row = self.target.findData(target.to_json() if target is not None else None)
        self.target.setCurrentIndex(max(0, row))
        color = "#c62828" if sp.blocked else ""
        self.start_point.setText(f'<span style="color:{color}">{html.escape(sp.text)}</span>' if color
                                 else html.escape(sp.text))

    def update_state(self) -> None:
        t = self.training
        reason = t.blocked_reason()
        self.start_action.setEnabled(reason is None)
        self.start_action.setToolTip("Fine-tune on the corrected images" + (f" ({reason})" if reason else ""))
        self.stop_action.setEnabled(t.running)
        choice = t.segment.choice
        self.evaluate_action.setEnabled(t.controller.project is not None and choice is not None
                                        and choice.kind == "file" and t.segment.labelled_images() > 0)
        continuous = self.mode.currentData() == "continuous"
        idle = not t.running and t.defaults is not None
        widgets: list[QWidget] = [self.length, self.unit]
        for w in widgets:
            w.setEnabled(idle and not continuous)
        self.target.setEnabled(not t.running)
        widgets = [self.mode, self.lr, self.freeze, self.loss]
        for w in widgets:
            w.setEnabled(idle)
        self.back_button.setVisible(t.previous_model is not None)
        self.back_button.setText(f"Switch back to {Path(t.previous_model).name}" if t.previous_model else
                                 "Switch back")
        last = t.last_round
        self.accept_button.setVisible(last is not None and not last.activated)
        self.verdict_box.setVisible(bool(self.verdict.text()) and (self.accept_button.isVisible()
                                                                   or self.back_button.isVisible()
                                                                   or last is not None))
        if not t.running and t.last_event is None:
            # a reason that no longer holds (the engine has loaded, an image is labelled) must not stay on screen
            self.status.setText(f"Not running: {reason}" if reason is not None else
                                f"Ready: {self.start_action.text().replace('&', '')} "
                                f"({self.start_action.shortcut().toString()}) trains on the labelled images")

    def reset(self) -> None:
        """A project was opened: nothing of the previous one's runs stays on screen."""
        self.plot.clear()
        self.progress.setValue(0)
        self.rate.setText("— images/s")
        self.eta.setText("ETA —")
        self.status.setText("Not running")
        self.verdict.setText("")
        self.update_state()

    # ------------------------------------------------------------------ a run
    def _started(self) -> None:
        self.plot.clear()
        self.progress.setValue(0)
        self.rate.setText("— images/s")
        self.eta.setText("ETA —")
        self.status.setText("Starting the training process…")
        self.update_state()

    def show_event(self, ev: TrainEvent) -> None:
        """One event of the run: the plot, images/s, ETA, progress and the status line."""
        if ev.kind == "step":
            self.plot.add_loss(ev.step, ev.loss)
            if ev.images_per_s is not None:
                self.rate.setText(f"{ev.images_per_s:.1f} images/s")
            self.eta.setText(f"ETA {format_eta(ev.eta_s)}")
            loss = f", loss {ev.loss:.4f}" if ev.loss is not None else ""
            total = f" of {ev.total_steps}" if ev.total_steps else ""
            self.status.setText(f"Step {ev.step}{total}, epoch {ev.epoch:.1f}{loss}")
        elif ev.kind == "validated":
            self.plot.add_miou(ev.step, ev.val_miou)
            self.status.setText(f"Validated at step {ev.step}: mIoU {fmt_iou(ev.val_miou)}"
                                + (f" ({ev.message})" if ev.message else ""))
        elif ev.kind in ("loading", "started"):
            self.status.setText(ev.message or ev.kind)
        self.progress.setValue(int(1000 * min(1.0, max(0.0, ev.progress))))

    def show_verdict(self, r: Round) -> None:
        """The judgement of the last round's version: made active, or kept as a candidate (and why)."""
        name = html.escape(Path(r.model_after).name)
        if r.activated:
            self.verdict.setText(f"<b>{name} is active</b>: {html.escape(r.verdict)}")
        else:
            self.verdict.setText(f'<b style="color:#c62828">{name} is a candidate, not active</b>: '
                                 f"{html.escape(r.verdict)}")
        # the "judging … on the held-out corrections" line is over
        self.status.setText(f"Judged {Path(r.model_after).name}: "
                            + ("now active." if r.activated else "kept as a candidate (see below)."))
        self.update_state()

    def _accept(self) -> None:
        last = self.training.last_round
        if last is not None:
            self.training.accept_candidate(last.model_after)
            self.verdict.setText(f"<b>{html.escape(Path(last.model_after).name)} is active</b> (accepted by you)")
            self.update_state()

    def _published(self, model: str) -> None:
        self.verdict.setText(f"<b>{html.escape(Path(model).name)} is active</b>: published by the continuous run "
                             "(better on the held-out corrections than the best before)")
        self.update_state()

    def _ended(self, kind: str, text: str) -> None:
        if kind == "finished":
            self.progress.setValue(1000)
            self.eta.setText("ETA 0:00")
        self.status.setText(text)
        self.update_state()

    # ------------------------------------------------------------------ how good is it
    def _evaluating(self, on: bool) -> None:
        if on:
            self.report_title.setText("Scoring the models on the corrected images…")

    def show_rounds(self, history: RoundHistory) -> None:
        self.rounds.setRowCount(len(history.rounds))
        for row, r in enumerate(history.rounds):
            before = r.before.miou if r.before is not None else None
            after = r.after.miou if r.after is not None else None
            self.rounds.setItem(row, 0, _cell(str(r.number)))
            self.rounds.setItem(row, 1, _cell(Path(r.model_after).name, align_right=False))
            item = _cell(change_text(before, after))
            lines = [f"{cls}: {change_text(r.before.per_class.get(cls) if r.before else None, iou)}"
                     for cls, iou in (r.after.per_class.items() if r.after is not None else [])]
            if r.before_error:
                lines.append(f"The model before could not be scored: {r.before_error}")
            item.setToolTip("IoU per class, before → after\n" + "\n".join(lines) if lines else "")
            self.rounds.setItem(row, 2, item)
            verdict = _cell("active" if r.activated else "candidate", align_right=False)
            verdict.setToolTip(r.verdict)
            self.rounds.setItem(row, 3, verdict)
        if history.rounds:
            self.rounds.scrollToBottom()

    def show_report(self, title: str, report: CorrectionsReport | None) -> None:
        """Per held-out image: mIoU and IoU per class; the last row pools the held-out pixels. ``report`` None:
        nothing to show (no held-out correction yet, or another project)."""
        if report is None:
            self.images.clear()
            self.images.setRowCount(0)
            self.images.setColumnCount(2)
            self.images.setHorizontalHeaderLabels(["Image", "mIoU"])
            self.report_title.setText(
                f"{title}: no held-out correction yet. The 2nd, 7th, 12th … corrected image is kept aside to judge "
                "models; scores on the images a model was trained on are never shown as its quality."
                if title else "How good is it: per held-out image (run a round, or press How good is it?)")
            return
        self.report_title.setText(f"{title} — held-out mIoU {fmt_iou(report.miou)} over {len(report.images)} "
                                  f"image(s), mean of the images {fmt_iou(report.mean_image_miou)}")
        columns = ["Image", "mIoU", *report.classes]
        self.images.clear()
        self.images.setColumnCount(len(columns))
        self.images.setHorizontalHeaderLabels(columns)
        rows = [(s.image, s.miou, s.per_class, s.error) for s in report.images]
        rows.append(("held-out", report.miou, report.per_class, ""))
        self.images.setRowCount(len(rows))
        for row, (name, miou, per_class, error) in enumerate(rows):
            first = _cell(name, align_right=False)
            if error:
                first.setToolTip(error)
            self.images.setItem(row, 0, first)
            self.images.setItem(row, 1, _cell("error" if error else fmt_iou(miou)))
            for col, cls in enumerate(report.classes, start=2):
                self.images.setItem(row, col, _cell(fmt_iou(per_class.get(cls))))
        last = self.images.item(len(rows) - 1, 0)
        if last is not None:
            font = last.font()
            font.setBold(True)
            for col in range(len(columns)):
                item = self.images.item(len(rows) - 1, col)
                if item is not None:
                    item.setFont(font)
