"""A small live plot of a training run: the loss (left axis) and the validation mIoU (right axis, 0–1).

Drawn with QPainter (no plotting library): a few hundred points repaint in
well under a millisecond, and the colours follow the palette (light/dark).
Steps whose loss is not known yet (on CUDA the engine reads the loss one step
late, so a step event may carry ``None``) are skipped.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

LOSS_COLOUR = QColor(52, 120, 246)
MIOU_COLOUR = QColor(230, 126, 34)
MAX_POINTS = 2000
"""Older loss points are thinned (every other one dropped) beyond this, so a long run stays cheap to draw."""


def smoothed(values: list[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average of ``values`` (the first value starts it)."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else out[-1] + alpha * (v - out[-1]))
    return out


class TrainingPlot(QWidget):
    """Loss per step and validation mIoU per step; :meth:`clear` for a new run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss: list[tuple[int, float]] = []
        self.miou: list[tuple[int, float]] = []
        self.setMinimumHeight(130)
        self.setMaximumHeight(260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(320, 170)

    def clear(self) -> None:
        self.loss.clear()
        self.miou.clear()
        self.update()

    def add_loss(self, step: int, loss: float | None) -> None:
        """Add a loss point (None or a non-finite loss is skipped)."""
        if loss is None or not math.isfinite(loss):
            return
        if self.loss and step <= self.loss[-1][0]:
            return  # the same step reported twice
        self.loss.append((step, float(loss)))
        if len(self.loss) > MAX_POINTS:
            self.loss = self.loss[::2]
        self.update()

    def add_miou(self, step: int, miou: float | None) -> None:
        if miou is None or not math.isfinite(miou):
            return
        self.miou.append((step, float(miou)))
        self.update()

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        fm = p.fontMetrics()
        text_colour = pal.text().color()
        left, right = fm.horizontalAdvance("0.000") + 8, fm.horizontalAdvance("1.00") + 8
        top, bottom = fm.height() + 4, fm.height() + 6
        plot = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))
        grid = QColor(text_colour)
        grid.setAlpha(50)
        p.setPen(QPen(grid, 1))
        for i in range(5):
            y = plot.top() + plot.height() * i / 4
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        p.drawRect(plot)
        p.setPen(LOSS_COLOUR)
        p.drawText(QPointF(left, fm.ascent() + 1), "loss")
        p.setPen(MIOU_COLOUR)
        label = "validation mIoU"
        p.drawText(QPointF(plot.right() - fm.horizontalAdvance(label), fm.ascent() + 1), label)
        if not self.loss and not self.miou:
            p.setPen(text_colour)
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss and mIoU appear here\nduring a run")
            p.end()
            return
        last_step = max([s for s, _ in self.loss] + [s for s, _ in self.miou] + [1])
        first_step = min([s for s, _ in self.loss] + [s for s, _ in self.miou] + [last_step])
        span = max(1, last_step - first_step)

        def x_of(step: int) -> float:
            return plot.left() + plot.width() * (step - first_step) / span

        # x axis: first and last step
        p.setPen(text_colour)
        p.drawText(QPointF(plot.left(), plot.bottom() + fm.ascent() + 3), str(first_step))
        end = f"step {last_step}"
        p.drawText(QPointF(plot.right() - fm.horizontalAdvance(end), plot.bottom() + fm.ascent() + 3), end)
        if self.loss:
            values = [v for _, v in self.loss]
            # the loss's own range (a margin of 5 %): a fine-tuning run's loss moves little, and an axis
            # from 0 would flatten it
            lo, hi = min(values), max(values)
            pad = 0.05 * (hi - lo) if hi > lo else max(0.05 * abs(hi), 1e-3)
            lo, hi = max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad
            p.setPen(LOSS_COLOUR)
            for i in range(5):
                v = hi - (hi - lo) * i / 4
                y = plot.top() + plot.height() * i / 4
                p.drawText(QRectF(0, y - fm.height() / 2, left - 4, fm.height()),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{v:.3g}")
            def y_of(v: float) -> float:
                return plot.bottom() - plot.height() * (v - lo) / (hi - lo)

            # the raw per-step loss is noisy (one small batch per step): drawn faint, its moving average solid
            faint = QColor(LOSS_COLOUR)
            faint.setAlpha(90)
            p.setPen(QPen(faint, 1.0))
            p.drawPolyline(QPolygonF([QPointF(x_of(s), y_of(v)) for s, v in self.loss]))
            p.setPen(QPen(LOSS_COLOUR, 2.0))
            p.drawPolyline(QPolygonF([QPointF(x_of(s), y_of(v))
                                      for (s, _), v in zip(self.loss, smoothed(values))]))
        p.setPen(MIOU_COLOUR)
        for i in range(5):
            v = 1.0 - i / 4
            y = plot.top() + plot.height() * i / 4
            p.drawText(QRectF(plot.right() + 4, y - fm.height() / 2, right - 4, fm.height()),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{v:.2f}")
        if self.miou:
            pts = [QPointF(x_of(s), plot.bottom() - plot.height() * v) for s, v in self.miou]
            p.setPen(QPen(MIOU_COLOUR, 1.6))
            if len(pts) > 1:
                p.drawPolyline(QPolygonF(pts))
            if len(pts) <= 40:  # dots while they stay apart
                p.setBrush(MIOU_COLOUR)
                for pt in pts:
                    p.drawEllipse(pt, 3.0, 3.0)
        p.end()
