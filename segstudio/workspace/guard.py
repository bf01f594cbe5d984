"""Never silently worse: whether a new model version may become the active model.

A new version is made active only when it scores at least as well as the
model that is active now, on the project's *held-out* corrections — images it
was never trained on (:mod:`segstudio.core.holdout`). Scores on the images a
model was trained on measure memory, not quality, and are never used here.

Otherwise the version is kept as a candidate: the user sees before → after
and may still accept it. When there is nothing to judge with — no held-out
correction yet — the version is also a candidate, and the reason says what to
do. When no model was active before (a first model trained from scratch),
there is nothing it can be worse than, and it becomes active.
"""

from __future__ import annotations

from dataclasses import dataclass

from segstudio.core.holdout import FEW_HOLDOUT, MIN_HOLDOUT_TO_JUDGE


@dataclass(frozen=True)
class Verdict:
    """Whether to activate, and why, in a line for people."""

    activate: bool
    reason: str
    before: float | None = None
    after: float | None = None
    held_out: int = 0


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def judge(before: float | None, after: float | None, held_out: int, had_model: bool) -> Verdict:
    """The verdict on a new version scoring ``after`` where the active model scored ``before`` (held-out mIoU
    over ``held_out`` images; ``had_model``: whether a model was active at all)."""
    if not had_model:
        text = "no model was active before" + (f"; held-out mIoU {_fmt(after)}" if after is not None else "")
        return Verdict(True, text, None, after, held_out)
    if held_out < MIN_HOLDOUT_TO_JUDGE or after is None:
        return Verdict(False, "no held-out correction to judge it on yet (the 2nd, 7th, 12th … corrected image "
                              "is kept aside for that): kept as a candidate — correct another image, or use it "
                              "anyway", before, after, held_out)
    rough = f" (only {held_out} held-out image{'s' if held_out > 1 else ''}: a rough judgement)" \
        if held_out < FEW_HOLDOUT else f" on {held_out} held-out images"
    if before is None:
        return Verdict(False, f"the active model could not be scored on the held-out corrections; held-out mIoU "
                              f"{_fmt(after)}: kept as a candidate", before, after, held_out)
    if after >= before:
        return Verdict(True, f"held-out mIoU {_fmt(before)} → {_fmt(after)}{rough}", before, after, held_out)
    return Verdict(False, f"worse on the held-out corrections, {_fmt(before)} → {_fmt(after)}{rough}: kept as a "
                          "candidate; the active model stays", before, after, held_out)
