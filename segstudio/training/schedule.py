"""Learning-rate schedules and staged settings, as functions of training progress.

Progress is a fraction 0..1 of the run: steps done / total steps, or — for a
run with a wall-time budget (fine-tuning "for at most 120 s") — elapsed /
budget, whichever is further. Expressing everything in progress lets the same
recipe run for 300 steps or 2 minutes and still end its decay exactly when the
run ends.

- :func:`lr_at`: linear warm-up from ``warmup_start`` × base, then ``poly``
  (``(1 - p)^power``), ``cosine`` (to ``min_lr_ratio`` × base) or ``constant``.
- :class:`Stages`: a value that changes at given fractions, e.g. progressive
  resizing ``[(0, 256), (0.4, 512), (0.8, 0)]`` (0 = the full image) or the
  loss ``[(0, "focal+dice"), (0.8, "dice")]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

ScheduleName = Literal["poly", "cosine", "constant"]
SCHEDULES: tuple[str, ...] = ("poly", "cosine", "constant")

T = TypeVar("T")


@dataclass(frozen=True)
class LRSchedule:
    """Warm-up then decay; ``warmup`` is a fraction of the run (``warmup_steps`` takes precedence when set)."""

    name: ScheduleName = "poly"
    warmup: float = 0.0
    warmup_steps: int = 0
    warmup_start: float = 0.1
    power: float = 0.9
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.name!r}; one of {', '.join(SCHEDULES)}")
        if not 0 <= self.warmup < 1 or self.warmup_steps < 0:
            raise ValueError("warm-up must be a fraction in [0, 1) and a non-negative step count")

    def factor(self, progress: float, step: int = 0) -> float:
        """The multiplier of the base learning rate at ``progress`` (0..1), ``step`` steps into the run."""
        p = min(max(progress, 0.0), 1.0)
        if self.warmup_steps:
            if step < self.warmup_steps:
                return self.warmup_start + (1 - self.warmup_start) * step / self.warmup_steps
        elif p < self.warmup:
            return self.warmup_start + (1 - self.warmup_start) * p / self.warmup
        # decay over what is left after the warm-up (a step-based warm-up is short: decay over the whole run)
        start = 0.0 if self.warmup_steps else self.warmup
        q = (p - start) / (1 - start) if start < 1 else 1.0
        if self.name == "constant":
            return 1.0
        if self.name == "poly":
            return max(self.min_lr_ratio, (1 - q) ** self.power)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * q))


def lr_at(base_lr: float, schedule: LRSchedule, progress: float, step: int = 0) -> float:
    return base_lr * schedule.factor(progress, step)


def run_progress(step: int, total_steps: int | None, elapsed_s: float, budget_s: float | None) -> float:
    """How far the run is, 0..1: the further of the step count and the time budget."""
    p = 0.0
    if total_steps:
        p = max(p, step / total_steps)
    if budget_s:
        p = max(p, elapsed_s / budget_s)
    return min(p, 1.0)


class Stages(Generic[T]):
    """A value per stage: ``[(start fraction, value), ...]``, the first stage starting at 0."""

    def __init__(self, stages: Sequence[tuple[float, T]]) -> None:
        items = sorted(((float(f), v) for f, v in stages), key=lambda fv: fv[0])
        if not items or items[0][0] != 0.0:
            raise ValueError("stages start at progress 0, e.g. [(0, 256), (0.5, 512)]")
        if any(not 0 <= f < 1 for f, _ in items):
            raise ValueError("stage starts are fractions in [0, 1)")
        self.items = items

    def at(self, progress: float) -> T:
        value = self.items[0][1]
        for start, v in self.items:
            if progress >= start:
                value = v
        return value

    def index(self, progress: float) -> int:
        return max(i for i, (start, _) in enumerate(self.items) if progress >= start or i == 0)
