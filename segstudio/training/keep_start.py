"""What the starting model knew, kept where nobody labelled: its predictions as a soft target and as a judge.

Corrections are sparse: a user paints strokes where the model was wrong and
leaves the rest unlabelled. Fine-tuning a trained model on those strokes alone
teaches it only the corrected classes, and it forgets the rest (measured: a
Fast-SCNN on CamVid fell from 0.393 to 0.104 test mIoU at its first version,
docs/BENCHMARKS.md). Two remedies, both from the frozen starting weights:

- **A soft target** (learning without forgetting, Li & Hoiem 2016): on every
  pixel that is not labelled, the KL divergence from the starting model's class
  probabilities to the network's, averaged over those pixels and added to the
  loss with weight ``TrainConfig.keep_start``. Labelled pixels follow the
  labels alone.
- **A judge that sees it.** Held-out strokes lie exactly where a model was wrong,
  so the starting model scores near zero on them and any change looks like an
  improvement. When held-out labels leave pixels unlabelled, the held-out score
  is the mean of two halves: the mIoU on the labelled pixels, and the mIoU of
  agreement with the starting model's prediction on the unlabelled ones (per
  class, not per pixel: measured on CamVid, a version that still agreed on 92 %
  of the pixels had lost 0.09 test mIoU in its smaller classes, and a judge by
  pixels let it through). A
  version that learns the strokes and keeps the rest scores higher than the
  start; one that learns the strokes by forgetting the rest scores lower.

A continuous run from scratch has no starting model; with ``TrainConfig.keep_published`` the soft target's
teacher is the last version it published instead (a new :class:`StartModel` at each publication), so that
after its peak the network keeps what the version on screen draws where no stroke reaches — strokes stop short
of every boundary, and without it the membranes of ISBI thinned (docs/TRAINING.md, "Keeping the last published
version"). It is no judge: a run from scratch is judged by its held-out labels alone.

Both apply to *sparse* labels only — less than :data:`DENSE_FROM` of the image
labelled. A dense mask's unlabelled pixels are void or uncertain borders: a
batch of dense masks trains on its labels alone (no extra forward pass), and a
dense held-out image is judged by its labels alone. Only when the network
starts from a model file whose classes are the data's (a rebuilt head has
nothing to keep).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.core.metrics import SegMetrics, confusion_matrix
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken
from segstudio.inference.predictor import Predictor
from segstudio.training.data import Sample
from segstudio.training.evaluate import score_samples

DENSE_FROM = 0.7
"""A label covering at least this fraction of its image is a dense mask (e.g. CamVid's, void aside)."""


def is_sparse(label: np.ndarray, ignore_value: int) -> bool:
    return bool(np.count_nonzero(label != ignore_value) < DENSE_FROM * label.size)


def sparse_batch(target: Tensor, ignore_index: int) -> bool:
    """Whether a batch's labels leave more unlabelled pixels than dense masks do (reads one value back)."""
    return bool((target == ignore_index).float().mean() > 1.0 - DENSE_FROM)


def kept_prediction_loss(student: Tensor, teacher: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """Mean over the unlabelled pixels of KL(teacher ‖ student) between the two N×K×h×w logits maps.

    ``target`` (N×H×W) says which pixels are labelled; it is resized (nearest) to the logits' size when the
    network predicts at a lower resolution. 0, with a gradient path, when every pixel is labelled."""
    unlabelled = (target == ignore_index).unsqueeze(1).float()
    if tuple(unlabelled.shape[-2:]) != tuple(student.shape[-2:]):
        unlabelled = F.interpolate(unlabelled, size=student.shape[-2:], mode="nearest")
    log_s = F.log_softmax(student.float(), dim=1)
    log_t = F.log_softmax(teacher.float(), dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(1, keepdim=True)
    return (kl * unlabelled).sum() / unlabelled.sum().clamp_min(1.0)


@dataclass
class HeldOutScore:
    """A held-out judgement: ``score`` decides; its parts say where it came from."""

    labelled: SegMetrics
    """The candidate against the held-out labels."""
    agreement: SegMetrics | None
    """The candidate against the starting model's prediction on the unlabelled pixels (None: nothing to keep)."""

    @property
    def score(self) -> float:
        miou = self.labelled.miou
        if self.agreement is None or not self.agreement.confusion.any():
            return miou
        agree = self.agreement.miou
        if np.isnan(miou):
            return agree
        return 0.5 * (miou + agree)

    def describe(self) -> str:
        if self.agreement is None or not self.agreement.confusion.any():
            return f"held-out mIoU {self.labelled.miou:.4f}"
        return (f"held-out score {self.score:.4f} = ½ · corrections' mIoU {self.labelled.miou:.4f} + ½ · mIoU of "
                f"agreement with the starting model where nothing is labelled {self.agreement.miou:.4f} (pixels "
                f"{self.agreement.pixel_accuracy:.3f})")


class StartModel:
    """Frozen weights — the starting model's, or a continuous run's last published version — as the soft target
    of each step and (the starting model only) the reference of each judgement."""

    def __init__(self, model: nn.Module, weight: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.weight = weight
        self._reference: dict[str, np.ndarray] = {}

    def loss(self, outputs: Tensor | Mapping[str, Tensor], x: Tensor, target: Tensor, ignore_index: int,
             autocast: torch.dtype | None) -> Tensor:
        """``weight`` × :func:`kept_prediction_loss` of the network's main output on batch ``x``."""
        student = outputs["out"] if isinstance(outputs, Mapping) else outputs
        with torch.no_grad():
            if autocast is not None:
                with torch.autocast(x.device.type, dtype=autocast):
                    teacher = self.module(x)
            else:
                teacher = self.module(x)
        return self.weight * kept_prediction_loss(student, teacher, target, ignore_index)

    def reference(self, sample: Sample, predictor: Predictor, cancel: CancelToken) -> np.ndarray:
        """The starting model's labels for ``sample``'s image (computed once per image)."""
        ref = self._reference.get(sample.name)
        if ref is None:
            ref = predictor.predict(sample.image, cancel=cancel).labels
            self._reference[sample.name] = ref
        return ref


def judge(predictor: Predictor, samples: Sequence[Sample], start: StartModel | None,
          start_predictor: Predictor | None, cancel: CancelToken = NEVER_CANCELLED,
          uncertainties: list[float] | None = None) -> HeldOutScore:
    """Score ``predictor`` on held-out ``samples`` (see the module docstring); ``start``/``start_predictor``:
    the starting model, or None to judge by the labels alone."""
    k = predictor.num_classes
    agreement = SegMetrics(k, ignore_index=None) if start is not None and start_predictor is not None else None

    def agree(s: Sample, labels: np.ndarray) -> None:
        assert agreement is not None and start is not None and start_predictor is not None
        if is_sparse(s.label, s.ignore_value):
            ref = start.reference(s, start_predictor, cancel).astype(np.int64)
            ref[s.label != s.ignore_value] = k  # labelled pixels are judged by their labels
            agreement.confusion += confusion_matrix(labels, ref, k, k)

    labelled = score_samples(predictor, samples, cancel, uncertainties=uncertainties,
                             on_prediction=agree if agreement is not None else None)
    return HeldOutScore(labelled, agreement)
