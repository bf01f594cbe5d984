"""Segmentation metrics: confusion matrix, per-class IoU, mean IoU, pixel accuracy.

Everything derives from one K×K confusion matrix (rows = truth, columns =
prediction) built with a single ``np.bincount`` over the pixels, so a 4k×4k
mask costs one pass, not a Python loop. Pixels whose truth is ``ignore_index``
(255: not labelled) do not count.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = 255
                     ) -> np.ndarray:
    """K×K int64 counts: ``cm[t, p]`` pixels of true class ``t`` predicted as ``p``.

    ``pred`` and ``target`` are integer arrays of the same shape. Target pixels
    equal to ``ignore_index`` are skipped. Any other value outside
    ``0..num_classes-1`` in either array raises ``ValueError`` (a wrong class
    count is a bug worth seeing, not something to count silently).
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    if pred.dtype.kind not in "iub" or target.dtype.kind not in "iub":
        raise ValueError(f"masks hold integers, got {pred.dtype} and {target.dtype}")
    k = num_classes
    if k <= 256 and pred.dtype.itemsize == 1 and target.dtype.itemsize == 1 and pred.dtype.kind in "ub" \
            and target.dtype.kind in "ub":
        return _confusion_8bit(pred, target, k, ignore_index)
    t = target.ravel()
    p = pred.ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        if not keep.all():
            t = t[keep]
            p = p[keep]
    if t.size == 0:
        return np.zeros((k, k), np.int64)
    _check_range(t, k, "target")
    _check_range(p, k, "prediction")
    # One combined index per pixel; bincount wants intp, so build it in intp directly (one temporary).
    index = t.astype(np.intp)
    index *= k
    index += p
    return np.bincount(index, minlength=k * k).reshape(k, k).astype(np.int64, copy=False)


def _confusion_8bit(pred: np.ndarray, target: np.ndarray, k: int, ignore_index: int | None) -> np.ndarray:
    # Both masks fit a byte: count all 256×256 (truth, prediction) pairs in one bincount of a uint16
    # key, then read the K×K corner. No boolean indexing, no min/max passes: ~2× faster on 4k×4k.
    key = target.view(np.uint8).astype(np.uint16).ravel()
    key <<= 8
    key |= pred.view(np.uint8).ravel()
    full = np.bincount(key, minlength=65536).reshape(256, 256)
    if ignore_index is not None and 0 <= ignore_index < 256:
        full[ignore_index] = 0
    if full[k:].any():
        raise ValueError(f"target holds the value {int(np.flatnonzero(full[k:].sum(1))[0]) + k}, "
                         f"outside the classes 0..{k - 1}")
    if full[:, k:].any():
        raise ValueError(f"prediction holds the value {int(np.flatnonzero(full[:, k:].sum(0))[0]) + k}, "
                         f"outside the classes 0..{k - 1}")
    return np.ascontiguousarray(full[:k, :k]).astype(np.int64, copy=False)


def _check_range(a: np.ndarray, k: int, what: str) -> None:
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= k:
        bad = hi if hi >= k else lo
        raise ValueError(f"{what} holds the value {bad}, outside the classes 0..{k - 1}")


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class, ``tp / (tp + fp + fn)``; NaN where a class is absent from truth and prediction."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean of :func:`iou_per_class` over the classes present (NaN if none is)."""
    ious = iou_per_class(cm)
    if np.isnan(ious).all():
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(ious))


def pixel_accuracy(cm: np.ndarray) -> float:
    """Fraction of counted pixels predicted correctly (NaN when no pixel counts)."""
    cm = np.asarray(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


class SegMetrics:
    """Accumulates a confusion matrix over many (prediction, target) pairs.

    ``update`` may be called with masks of any size; the derived figures are
    computed from the summed matrix, so they weigh pixels, not images.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        self.confusion += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def reset(self) -> None:
        self.confusion[:] = 0

    @property
    def per_class_iou(self) -> np.ndarray:
        return iou_per_class(self.confusion)

    @property
    def miou(self) -> float:
        return mean_iou(self.confusion)

    @property
    def pixel_accuracy(self) -> float:
        return pixel_accuracy(self.confusion)

    def as_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready figures: ``miou``, ``pixel_accuracy``, ``per_class_iou`` {name: IoU or None}, ``pixels``."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")

        def clean(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "miou": clean(self.miou),
            "pixel_accuracy": clean(self.pixel_accuracy),
            "per_class_iou": {n: clean(v) for n, v in zip(names, self.per_class_iou.tolist())},
            "pixels": int(self.confusion.sum()),
        }
