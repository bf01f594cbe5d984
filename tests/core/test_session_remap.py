"""EditSession.remap: the label and prediction renumbered through a lookup table, the undo steps with them."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.editing.session import EditSession
from segstudio.core.masks import remap_lut


def _painted() -> tuple[EditSession, list[np.ndarray]]:
    """A 20×30 session with three strokes (classes 0, 1, 2) and the label after each."""
    session = EditSession(np.full((20, 30), 255, np.uint8), np.zeros((20, 30), np.uint8))
    states = [session.label.copy()]
    for value in range(3):
        session.begin_stroke("brush")
        session.paint((5 + 8 * value, 5), (5 + 8 * value, 15), 3, value)
        session.end_stroke()
        states.append(session.label.copy())
    return session, states


def _swap_0_2() -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    lut[0], lut[2] = 2, 0
    return lut


def test_a_table_renumbers_label_prediction_and_every_undo_step() -> None:
    session, states = _painted()
    session.undo()  # one step on the redo list too
    lut = _swap_0_2()
    repainted: list[tuple[int, int, int, int]] = []
    session.listeners.append(repainted.append)
    version = session.label_version
    session.remap(lut)
    assert np.array_equal(session.label, lut[states[2]])
    assert session.prediction is not None and (session.prediction == 2).all()
    assert session.label_version == version + 1 and repainted == [(0, 0, 20, 30)]
    session.redo()
    assert np.array_equal(session.label, lut[states[3]])
    for earlier in (2, 1, 0):
        session.undo()
        assert np.array_equal(session.label, lut[states[earlier]])
    assert not session.history.can_undo


def test_a_merge_undoes_into_the_merged_numbers() -> None:
    session, states = _painted()
    lut = np.arange(256, dtype=np.uint8)
    lut[2] = 1  # class 2 merged into 1
    session.remap(lut)
    assert not (session.label == 2).any()
    session.undo()
    assert np.array_equal(session.label, lut[states[2]])
    session.redo()  # the step that painted class 2 paints class 1 now
    assert np.array_equal(session.label, lut[states[3]]) and not (session.label == 2).any()


def test_a_table_into_a_wider_dtype_converts_the_steps_too() -> None:
    session, states = _painted()
    lut = remap_lut(np.array([0, 1, 2]), 3, 300)  # uint8 → uint16, 255 → 65535
    session.remap(lut)
    assert session.label.dtype == np.uint16 and (session.label[0] == 65535).all()
    session.undo()
    assert session.label.dtype == np.uint16 and np.array_equal(session.label, lut[states[2]])
    session.paint((1, 1), (1, 1), 1, 299)  # the new classes paint into the new dtype
    assert session.label[1, 1] == 299


def test_a_stroke_in_progress_ends_and_is_renumbered() -> None:
    session, states = _painted()
    session.begin_stroke("brush")
    session.paint((25, 18), (25, 18), 2, 0)
    before_remap = session.label.copy()
    session.remap(_swap_0_2())
    assert not session.in_stroke and session.history.undo_steps == 4
    session.undo()
    assert np.array_equal(session.label, _swap_0_2()[states[3]])
    session.redo()
    assert np.array_equal(session.label, _swap_0_2()[before_remap])


def test_a_function_starts_a_new_history_and_must_say_so() -> None:
    session, _ = _painted()

    def clear_class_1(mask: np.ndarray) -> np.ndarray:
        return np.where(mask == 1, np.uint8(255), mask)

    with pytest.raises(ValueError, match="keep_history=False"):
        session.remap(clear_class_1)
    assert session.history.undo_steps == 3  # nothing changed
    bound = session.history.max_bytes
    session.remap(clear_class_1, lambda p: p + 1, keep_history=False)
    assert not (session.label == 1).any() and not session.history.can_undo
    assert session.history.max_bytes == bound
    assert session.prediction is not None and (session.prediction == 1).all()


def test_a_remap_that_changes_the_shape_is_refused() -> None:
    session, _ = _painted()
    with pytest.raises(ValueError, match="mask for a"):
        session.remap(lambda m: m[:5], keep_history=False)
    assert session.label.shape == (20, 30)
