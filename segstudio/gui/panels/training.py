"""The fine-tuning panel: settings, Start/Stop, a live loss and mIoU plot, and "how good is it".

It shows and drives a :class:`~segstudio.gui.training_run.TrainingController`
and nothing else. The settings start at the small-data recipe's values (read
in a worker when a project opens); what the run starts from (the active model
file, or the small-data U-Net from scratch) is said above them. Below the plot:
the rounds (project mIoU before → after each round) and, per image of the
latest evaluation, its mIoU and IoU per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.tasks import format_eta
from segstudio.gui.panels.model import _action_button
from segstudio.gui.panels.training_plot import TrainingPlot
from segstudio.gui.quality import RoundHistory, change_text, fmt_iou
from segstudio.gui.training_run import LOSSES, StartPoint, TrainingController, TrainSettings
from segstudio.training.evaluate import CorrectionsReport

if TYPE_CHECKING:  # the engine imports torch: the panel must not make the window's start slower
    from segstudio.training.engine import TrainEvent

UNITS = ("seconds", "steps")


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
        self.freeze = QSpinBox()
        self.freeze.setRange(0, 1_000_000)
        self.freeze.setSuffix(" steps")
        self.freeze.setToolTip("Train only the decoder and head for this many first steps (fine-tuning)")
        self.loss = QComboBox()
        self.loss.addItems(list(LOSSES))
        form = QFormLayout()
        form.addRow("Length", length_row)
        form.addRow("Learning rate", self.lr)
        form.addRow("Freeze encoder", self.freeze)
        form.addRow("Loss", self.loss)
        for w in (self.length, self.lr, self.freeze):
            w.valueChanged.connect(self._mark_edited)
        for c in (self.unit, self.loss):
            c.currentIndexChanged.connect(self._mark_edited)
        self.start_button = _action_button(start, "Start")
        self.stop_button = _action_button(stop, "Stop")
        self.evaluate_button = _action_button(evaluate, "How good is it?")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.evaluate_button):
            buttons.addWidget(b)
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
        self.rounds = _table(["Round", "Model", "Project mIoU before → after"])
        self.rounds.setMaximumHeight(130)  # the latest rounds; older ones scroll
        self.report_title = QLabel("How good is it: per image (run a round, or press How good is it?)")
        self.report_title.setWordWrap(True)
        self.images = _table(["Image", "mIoU"])
        # text that changes during a run must not resize the dock: the canvas would move under the brush
        for label in (self.start_point, self.rate, self.eta, self.status, self.report_title):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.addWidget(self.start_point)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.progress)
        layout.addLayout(rate_row)
        layout.addWidget(self.status)
        heading = QLabel("<b>How good is it</b> — mIoU on the corrected images")
        heading.setWordWrap(True)
        heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(heading)
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
        if not self._edited:  # a user's own values win over the recipe's arriving late
            self.set_settings(s)
            self._edited = False

    def set_settings(self, s: TrainSettings) -> None:
        self.unit.setCurrentIndex(UNITS.index(s.unit))
        self.length.setValue(s.length)
        self.lr.setValue(s.lr)
        self.freeze.setValue(s.freeze_encoder_steps)
        if s.loss not in LOSSES:
            self.loss.addItem(s.loss)
        self.loss.setCurrentText(s.loss)

    def settings(self) -> TrainSettings:
        return TrainSettings(self.length.value(), self.unit.currentText(), self.lr.value(), self.freeze.value(),
                             self.loss.currentText())

    def start(self) -> bool:
        return self.training.start(self.settings())

    def _start_point(self, sp: StartPoint) -> None:
        self.start_point.setText(sp.text)

    def update_state(self) -> None:
        t = self.training
        reason = t.blocked_reason()
        self.start_action.setEnabled(reason is None)
        self.start_action.setToolTip("Fine-tune on the corrected images" + (f" ({reason})" if reason else ""))
        self.stop_action.setEnabled(t.running)
        choice = t.segment.choice
        self.evaluate_action.setEnabled(t.controller.project is not None and choice is not None
                                        and choice.kind == "file" and t.segment.labelled_images() > 0)
        for w in (self.length, self.unit, self.lr, self.freeze, self.loss):
            w.setEnabled(not t.running and t.defaults is not None)
        if not t.running and reason is not None and t.last_event is None:
            self.status.setText(f"Not running: {reason}")

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
        if history.rounds:
            self.rounds.scrollToBottom()

    def show_report(self, title: str, report: CorrectionsReport) -> None:
        """Per image: mIoU and IoU per class; the last row is the project (pixels pooled over images)."""
        self.report_title.setText(f"{title} — mIoU over the project {fmt_iou(report.miou)}, "
                                  f"mean of the images {fmt_iou(report.mean_image_miou)}")
        columns = ["Image", "mIoU", *report.classes]
        self.images.clear()
        self.images.setColumnCount(len(columns))
        self.images.setHorizontalHeaderLabels(columns)
        rows = [(s.image, s.miou, s.per_class, s.error) for s in report.images]
        rows.append(("project", report.miou, report.per_class, ""))
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
