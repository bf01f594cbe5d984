""""How good is it": each fine-tuning round's models before and after, scored on held-out corrections.

A round ends with a new model version. :func:`conclude_round` scores the
model that was active (before) and the new version (after) on the project's
*held-out* corrections (:mod:`segstudio.core.holdout`: images no run trains
on), asks :func:`~segstudio.workspace.guard.judge` whether the new version may
become active, records the version in the project's
:class:`~segstudio.workspace.versions.VersionRegistry` (accepted or
candidate) and the round in :class:`RoundHistory`
(``<project>/.segstudio-training/rounds.json``). Training images are never
scored as quality: with no held-out correction yet, the round says so.

Scores come from the training engine's
:func:`~segstudio.training.evaluate.evaluate_on_corrections` (the same
predictor code path the app segments with). Qt-free: the app runs
:func:`conclude_round` in a worker thread; the CLI and the benchmarks call it directly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segstudio.core.atomic import atomic_write_text
from segstudio.core.holdout import HeldOutSplit, sync_split
from segstudio.core.project import Project
from segstudio.core.project_file import TRAINING_DIR
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken
from segstudio.inference.model_file import ModelFileError, load_card, trainable_file
from segstudio.training.evaluate import CorrectionsReport, ImageScore, evaluate_on_corrections
from segstudio.workspace.guard import Verdict, judge
from segstudio.workspace.versions import ModelVersion, VersionRegistry
from segstudio.zoo import CardError
from segstudio.zoo.card import now_iso

log = logging.getLogger(__name__)

ROUNDS_FILE = "rounds.json"


def training_dir(project_root: Path | str) -> Path:
    """Where fine-tuning writes inside a project (hidden: never scanned for images)."""
    return Path(project_root) / TRAINING_DIR


def predictor_options(model: Path | str) -> dict[str, str]:
    """How evaluation runs a model file: PyTorch for ``.safetensors`` (training needs torch anyway, and it
    avoids an ONNX export of every new version), the inference engine's choice for ONNX files."""
    if str(model).endswith(".safetensors"):
        return {"backend": "torch", "device": "auto"}
    return {"backend": "auto", "device": "auto"}


def labelled_images(project: Project) -> list[str]:
    """The images with a label of the user's, in project order."""
    return [e.path for e in project.images if e.status in ("corrected", "reviewed")]


def held_out_images(project: Project, sync: bool = True) -> list[str]:
    """The project's held-out corrections that have a label now, in assignment order.

    With ``sync`` the labelled images the split does not know yet are assigned
    first (and the split saved) — only when no training process is running,
    which is then the split's one writer.
    """
    labelled = labelled_images(project)
    split = sync_split(project.root, labelled) if sync else HeldOutSplit.load(project.root)
    return split.holdout_names(labelled)


def evaluate_model(model: Path | str, project_root: Path | str, cancel: CancelToken = NEVER_CANCELLED,
                   images: list[str] | None = None, sync: bool = True) -> CorrectionsReport:
    """``evaluate_on_corrections`` of one model file (an ONNX file through its ``.safetensors`` twin when it has
    one, so that before and after run on the same backend); ``images``: default the held-out corrections."""
    project = Project.open(project_root, read_only=True)
    chosen = images if images is not None else held_out_images(project, sync)
    trainable = trainable_file(model)
    path = trainable if trainable is not None else Path(model)
    return evaluate_on_corrections(path, project, images=chosen, cancel=cancel, **predictor_options(path))


def report_from_json(d: dict[str, Any]) -> CorrectionsReport:
    """The inverse of ``CorrectionsReport.to_json`` (for the stored history)."""
    images = [ImageScore(str(s["image"]), s.get("miou"), dict(s.get("per_class") or {}),
                         int(s.get("labelled_pixels", 0)), str(s.get("error", ""))) for s in d.get("images", [])]
    return CorrectionsReport(model=str(d.get("model", "")), classes=list(d.get("classes", [])), images=images,
                             miou=d.get("miou"), per_class=dict(d.get("per_class") or {}),
                             mean_image_miou=d.get("mean_image_miou"), pixel_accuracy=d.get("pixel_accuracy"))


@dataclass
class Round:
    """One fine-tuning round: the active model before, the new version, and both scored on held-out corrections.

    ``before`` is None when no model was active or it could not be scored
    (``before_error`` says why); ``after`` is None when there was no held-out
    correction to score on (``held_out`` is then empty). ``activated``/``verdict``:
    the guard's decision.
    """

    number: int
    model_before: str | None
    model_after: str
    steps: int = 0
    seconds: float = 0.0
    before: CorrectionsReport | None = None
    after: CorrectionsReport | None = None
    before_error: str = ""
    held_out: list[str] = field(default_factory=list)
    activated: bool = False
    verdict: str = ""
    mode: str = "rounds"

    def to_json(self) -> dict[str, Any]:
        return {"round": self.number, "model_before": self.model_before, "model_after": self.model_after,
                "steps": self.steps, "seconds": round(self.seconds, 2),
                "before": self.before.to_json() if self.before is not None else None,
                "after": self.after.to_json() if self.after is not None else None,
                "held_out": self.held_out, "activated": self.activated, "verdict": self.verdict, "mode": self.mode,
                **({"before_error": self.before_error} if self.before_error else {})}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Round:
        return cls(int(d["round"]), d.get("model_before"), str(d["model_after"]), int(d.get("steps", 0)),
                   float(d.get("seconds", 0.0)),
                   report_from_json(d["before"]) if d.get("before") else None,
                   report_from_json(d["after"]) if d.get("after") else None, str(d.get("before_error", "")),
                   [str(x) for x in d.get("held_out", [])], bool(d.get("activated", False)),
                   str(d.get("verdict", "")), str(d.get("mode", "rounds")))


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
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                log.warning("cannot read %s: %s", path, exc)
        return history

    def next_number(self) -> int:
        return (self.rounds[-1].number + 1) if self.rounds else 1

    def add(self, r: Round) -> None:
        self.rounds = [x for x in self.rounds if x.number != r.number] + [r]

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps({"rounds": [r.to_json() for r in self.rounds]}, indent=1))


def comparable(model: str | None, project: Project) -> bool:
    """Whether ``model`` can be scored on the project: readable, with the project's classes."""
    if model is None:
        return False
    try:
        return load_card(trainable_file(model) or model).classes.names == project.classes.names
    except (ModelFileError, CardError, OSError):
        return False


def score_round(r: Round, project_root: Path | str, cancel: CancelToken = NEVER_CANCELLED) -> Verdict:
    """Score ``r.model_before`` (when it knows the project's classes) and ``r.model_after`` on the held-out
    corrections, fill ``r`` in and return the guard's verdict."""
    project = Project.open(project_root, read_only=True)
    r.held_out = held_out_images(project)
    had_model = comparable(r.model_before, project)
    if r.model_before is not None and not had_model:
        r.before_error = "the model active before does not know the project's classes"
    if r.held_out:
        if had_model:
            assert r.model_before is not None
            try:
                r.before = evaluate_model(r.model_before, project.root, cancel, r.held_out)
            except (ValueError, OSError) as exc:  # a vanished or unreadable file
                r.before, r.before_error = None, str(exc)
        r.after = evaluate_model(r.model_after, project.root, cancel, r.held_out)
    verdict = judge(r.before.miou if r.before is not None else None, r.after.miou if r.after is not None else None,
                    len(r.held_out), had_model)
    r.activated, r.verdict = verdict.activate, verdict.reason
    return verdict


def conclude_round(r: Round, project_root: Path | str, trained_from: str, cancel: CancelToken = NEVER_CANCELLED
                   ) -> Round:
    """Score and judge a finished round (:func:`score_round`), record its version (accepted or candidate) and
    the round in the project; returns ``r`` filled in. Saving failures are logged, not raised: the model file
    itself is already written."""
    verdict = score_round(r, project_root, cancel)
    registry = VersionRegistry.load(project_root)
    registry.add(ModelVersion(Path(r.model_after).name, trained_from, now_iso(), r.mode, r.number, verdict.before,
                              verdict.after, verdict.held_out, "accepted" if verdict.activate else "candidate",
                              verdict.reason))
    history = RoundHistory.load(project_root)
    history.add(r)
    for what in (registry, history):
        try:
            what.save()
        except OSError as exc:
            log.warning("cannot save %s: %s", type(what).__name__, exc)
    return r


def record_published(project_root: Path | str, model: str, trained_from: str, before: float | None,
                     after: float | None, held_out: int) -> ModelVersion:
    """A continuous run published ``model``: it beat the best so far (first the model it started from) on the
    held-out corrections, so it is recorded as accepted."""
    registry = VersionRegistry.load(project_root)
    version = registry.add(ModelVersion(Path(model).name, trained_from, now_iso(), "continuous", None, before, after,
                                        held_out, "accepted", f"published: held-out mIoU "
                                        f"{'' if before is None else f'{before:.3f} → '}"
                                        f"{'—' if after is None else f'{after:.3f}'}"))
    try:
        registry.save()
    except OSError as exc:
        log.warning("cannot save the model versions: %s", exc)
    return version


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
