"""Confusion matrix, IoU, mIoU and pixel accuracy against hand-computed and brute-force values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segstudio.core.metrics import SegMetrics, confusion_matrix, iou_per_class, mean_iou, pixel_accuracy


def _brute_force(pred: np.ndarray, target: np.ndarray, k: int, ignore: int) -> np.ndarray:
    cm = np.zeros((k, k), np.int64)
    for t, p in zip(target.ravel().tolist(), pred.ravel().tolist()):
        if t != ignore:
            cm[t, p] += 1
    return cm


def test_hand_computed_example() -> None:
    target = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 2]], np.uint8)
    cm = confusion_matrix(pred, target, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # rows = truth
    ious = iou_per_class(cm)
    assert ious[0] == pytest.approx(1 / 3)  # tp 1, fp 1, fn 1
    assert ious[1] == pytest.approx(2 / 3)  # tp 2, fp 1, fn 0
    assert ious[2] == 0.0
    assert mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert pixel_accuracy(cm) == pytest.approx(3 / 5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_matches_brute_force_for_every_dtype(dtype: type) -> None:
    rng = np.random.default_rng(0)
    k = 7
    target = rng.integers(0, k, (31, 45)).astype(dtype)
    target[rng.random((31, 45)) < 0.2] = 255
    pred = rng.integers(0, k, (31, 45)).astype(dtype)
    np.testing.assert_array_equal(confusion_matrix(pred, target, k), _brute_force(pred, target, k, 255))


def test_absent_class_is_nan_and_left_out_of_the_mean() -> None:
    target = np.array([0, 0, 1, 1], np.uint8)
    pred = np.array([0, 0, 1, 1], np.uint8)
    cm = confusion_matrix(pred, target, 3)
    ious = iou_per_class(cm)
    assert ious[:2].tolist() == [1.0, 1.0] and math.isnan(ious[2])
    assert mean_iou(cm) == 1.0


def test_nothing_counted() -> None:
    target = np.full((4, 4), 255, np.uint8)
    cm = confusion_matrix(np.zeros((4, 4), np.uint8), target, 2)
    assert cm.sum() == 0
    assert math.isnan(mean_iou(cm)) and math.isnan(pixel_accuracy(cm))


def test_other_ignore_index_and_none() -> None:
    target = np.array([0, 1, 2], np.uint8)
    pred = np.array([0, 1, 1], np.uint8)
    assert confusion_matrix(pred, target, 3, ignore_index=2).sum() == 2
    assert confusion_matrix(pred, target, 3, ignore_index=None).sum() == 3


def test_out_of_range_values_are_errors() -> None:
    with pytest.raises(ValueError, match="target holds the value 5"):
        confusion_matrix(np.zeros(3, np.uint8), np.array([0, 5, 1], np.uint8), 3)
    with pytest.raises(ValueError, match="prediction holds the value 9"):
        confusion_matrix(np.array([0, 9, 1], np.uint8), np.zeros(3, np.uint8), 3)
    with pytest.raises(ValueError, match="prediction holds the value 9"):
        confusion_matrix(np.array([0, 9, 1], np.int32), np.zeros(3, np.int32), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros(3, np.uint8), np.zeros(4, np.uint8), 3)
    # A prediction at an ignored pixel may hold anything (e.g. 255 from an unlabelled prediction).
    assert confusion_matrix(np.array([255, 1], np.uint8), np.array([255, 1], np.uint8), 2).sum() == 1


def test_accumulator_sums_over_images() -> None:
    rng = np.random.default_rng(1)
    m = SegMetrics(4)
    total = np.zeros((4, 4), np.int64)
    for size in ((10, 12), (7, 5), (64, 64)):
        t = rng.integers(0, 4, size).astype(np.uint8)
        p = rng.integers(0, 4, size).astype(np.uint8)
        m.update(p, t)
        total += _brute_force(p, t, 4, 255)
    np.testing.assert_array_equal(m.confusion, total)
    assert m.miou == pytest.approx(mean_iou(total))
    assert m.pixel_accuracy == pytest.approx(pixel_accuracy(total))
    d = m.as_dict(["a", "b", "c", "d"])
    assert set(d["per_class_iou"]) == {"a", "b", "c", "d"} and d["pixels"] == total.sum()
    assert d["miou"] == pytest.approx(m.miou)
    m.reset()
    assert m.confusion.sum() == 0 and m.as_dict()["miou"] is None


def test_perfect_prediction_on_a_large_mask() -> None:
    rng = np.random.default_rng(2)
    t = rng.integers(0, 11, (1024, 1024)).astype(np.uint8)
    cm = confusion_matrix(t, t, 11)
    assert mean_iou(cm) == 1.0 and pixel_accuracy(cm) == 1.0
    assert cm.sum() == t.size
