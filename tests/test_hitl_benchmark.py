"""The simulated annotator of benchmarks/hitl_effort.py: strokes stay in the true class, away from boundaries,
largest errors first; the time model; and the curve arithmetic (ETT, AUC)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.hitl_effort import auc, ett
from benchmarks.sim_annotator import Stroke, TimeModel, away_from_boundaries, corrective_strokes, image_seconds, paint


def two_regions() -> np.ndarray:
    truth = np.zeros((80, 120), np.uint8)
    truth[10:70, 60:110] = 1  # a big block of class 1
    truth[20:30, 5:45] = 2  # a thinner bar of class 2
    return truth


def test_strokes_fix_the_largest_errors_inside_the_true_class() -> None:
    truth = two_regions()
    pred = np.zeros_like(truth)  # everything predicted class 0: both regions are wrong
    strokes = corrective_strokes(pred, truth, radius=3, boundary=2)
    assert [s.cls for s in strokes] == [1, 2]  # the larger region first
    label = np.full_like(truth, 255)
    for s in strokes:
        paint(label, s, 3)
    painted = label != 255
    assert painted.any() and np.array_equal(label[painted], truth[painted])  # never the wrong class
    # the brush's centre kept away from the class boundaries by its radius
    far = away_from_boundaries(truth, 3)
    assert all(far[s.start[1], s.start[0]] and far[s.end[1], s.end[0]] for s in strokes)
    # a long stroke along the block's long axis
    assert max(s.length for s in strokes if s.cls == 1) >= 40


def test_right_predictions_and_thin_regions_get_no_stroke() -> None:
    truth = two_regions()
    assert corrective_strokes(truth.copy(), truth, radius=3) == []
    thin = np.zeros((40, 40), np.uint8)
    thin[:, 20] = 1  # one pixel wide: the brush does not fit
    assert all(s.cls != 1 for s in corrective_strokes(np.zeros_like(thin), thin, radius=2))
    # no prediction yet: every labelled pixel counts as wrong, "not labelled" never does
    unl = np.full((30, 30), 255, np.uint8)
    assert corrective_strokes(None, unl, radius=2) == []


def test_time_model() -> None:
    tm = TimeModel()
    assert image_seconds([], tm) == tm.check_s
    s = Stroke(1, (0, 0), (400, 0))  # 400 px of painting, no move from the start corner
    assert image_seconds([s], tm) == pytest.approx(tm.check_s + tm.find_s + 1.0)
    back = Stroke(1, (400, 800), (400, 800))  # a dab 800 px below: one second of moving
    assert image_seconds([s, back], tm) == pytest.approx(tm.check_s + 2 * tm.find_s + 1.0 + 1.0)


def test_ett_and_auc() -> None:
    curve = [(0.0, 0.0), (100.0, 0.5), (300.0, 0.8)]
    assert ett(curve, 0.75) == 300.0 and ett(curve, 0.9) is None
    assert auc(curve, 400.0) == (0.5 * 200 + 0.8 * 100) / 400
