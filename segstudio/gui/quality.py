""""How good is it": the model before and after each fine-tuning round, scored on the user's corrections.

Qt-free: :func:`evaluate_round` runs in a worker thread and calls the training
engine's :func:`~segstudio.training.evaluate.evaluate_on_corrections` (the
same predictor code path the app segments with); :class:`RoundHistory` keeps
the rounds of a project in memory and in ``<project>/.segstudio-training/rounds.json``
(beside the runs' logs, curves and checkpoint; a hidden folder, so a project
scanned recursively never mistakes ``curves.png`` for an image).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segstudio.core.atomic import atomic_write_text
from segstudio.core.tasks import CancelToken
from segstudio.training.evaluate import CorrectionsReport, ImageScore, evaluate_on_corrections

log = logging.getLogger(__name__)

TRAINING_DIR = ".segstudio-training"
"""Where the app's fine-tuning runs write inside a project (hidden: never scanned for images)."""
ROUNDS_FILE = "rounds.json"


def training_dir(project_root: Path | str) -> Path:
    return Path(project_root) / TRAINING_DIR


def predictor_options(model: Path | str) -> dict[str, str]:
    """How evaluation runs a model file: PyTorch for ``.safetensors`` (training needs torch anyway, and it
    avoids a second ONNX export beside a new file), the inference engine's choice for ONNX files."""
    if str(model).endswith(".safetensors"):
        return {"backend": "torch", "device": "auto"}
    return {"backend": "auto", "device": "auto"}


def evaluate_model(model: Path | str, project_root: Path | str, cancel: CancelToken) -> CorrectionsReport:
    """``evaluate_on_corrections`` of one model file with :func:`predictor_options`."""
    return evaluate_on_corrections(model, project_root, cancel=cancel, **predictor_options(model))


def report_from_json(d: dict[str, Any]) -> CorrectionsReport:
    """The inverse of ``CorrectionsReport.to_json`` (for the stored history)."""
    images = [ImageScore(str(s["image"]), s.get("miou"), dict(s.get("per_class") or {}),
                         int(s.get("labelled_pixels", 0)), str(s.get("error", ""))) for s in d.get("images", [])]
    return CorrectionsReport(model=str(d.get("model", "")), classes=list(d.get("classes", [])), images=images,
                             miou=d.get("miou"), per_class=dict(d.get("per_class") or {}),
                             mean_image_miou=d.get("mean_image_miou"), pixel_accuracy=d.get("pixel_accuracy"))


@dataclass
class Round:
    """One fine-tuning round: the models before and after, and how each agrees with the corrections.

    ``before`` is None when there was no model to compare with (training from
    scratch with no usable model before) or it could not be scored
    (``before_error`` says why).
    """

    number: int
    model_before: str | None
    model_after: str
    steps: int = 0
    seconds: float = 0.0
    before: CorrectionsReport | None = None
    after: CorrectionsReport | None = None
    before_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"round": self.number, "model_before": self.model_before, "model_after": self.model_after,
                "steps": self.steps, "seconds": round(self.seconds, 2),
                "before": self.before.to_json() if self.before is not None else None,
                "after": self.after.to_json() if self.after is not None else None,
                **({"before_error": self.before_error} if self.before_error else {})}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Round:
        return cls(int(d["round"]), d.get("model_before"), str(d["model_after"]), int(d.get("steps", 0)),
                   float(d.get("seconds", 0.0)),
                   report_from_json(d["before"]) if d.get("before") else None,
                   report_from_json(d["after"]) if d.get("after") else None, str(d.get("before_error", "")))


@dataclass
class RoundHistory:
    """The rounds of one project, oldest first; :meth:`save` writes them atomically."""

    path: Path | None = None
    rounds: list[Round] = field(default_factory=list)

    @classmethod
    def load(cls, project_root: Path | str) -> RoundHistory:
        """The project's stored rounds (none when the file is missing; an unreadable file is logged and
        ignored — it is replaced by the next round, never half-read)."""
        path = training_dir(project_root) / ROUNDS_FILE
        history = cls(path)
        if path.is_file():
            try:
                history.rounds = [Round.from_json(r) for r in json.loads(path.read_text("utf-8"))["rounds"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cannot read %s: %s", path, exc)
        return history

    def next_number(self) -> int:
        return (self.rounds[-1].number + 1) if self.rounds else 1

    def add(self, r: Round) -> None:
        self.rounds.append(r)

    def save(self) -> None:
        if self.path is not None:
            atomic_write_text(self.path, json.dumps({"rounds": [r.to_json() for r in self.rounds]}, indent=1))


def evaluate_round(r: Round, project_root: Path | str, cancel: CancelToken) -> Round:
    """Score ``r.model_before`` (when there is one) and ``r.model_after`` on the project's corrections."""
    if r.model_before is not None:
        try:
            r.before = evaluate_model(r.model_before, project_root, cancel)
        except (ValueError, OSError) as exc:  # another class table, a vanished or unreadable file
            r.before, r.before_error = None, str(exc)
    r.after = evaluate_model(r.model_after, project_root, cancel)
    return r


def fmt_iou(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def change_text(before: float | None, after: float | None) -> str:
    """``"0.412 → 0.655 (+0.243)"``, or just the after value when there is no before."""
    if before is None:
        return fmt_iou(after)
    text = f"{fmt_iou(before)} → {fmt_iou(after)}"
    if after is not None:
        text += f" ({after - before:+.3f})"
    return text
