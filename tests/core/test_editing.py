from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.editing import (
    History,
    PaintLock,
    Stroke,
    accept_prediction,
    erase_segment,
    fill_polygon,
    flood_fill,
    paint_segment,
    pick_class,
)


def blank(h: int = 40, w: int = 50, dtype: type = np.uint8) -> np.ndarray:
    return np.full((h, w), 255 if dtype == np.uint8 else 65535, dtype)


def test_brush_dab_is_a_disk() -> None:
    m = blank()
    atom = paint_segment(m, (20, 10), (20, 10), 3, 1)
    assert atom is not None
    ys, xs = np.nonzero(m == 1)
    assert ((xs - 20) ** 2 + (ys - 10) ** 2 <= 9).all()
    assert (m == 1).sum() == 29  # lattice points within radius 3
    assert m[10, 23] == 1 and m[10, 24] == 255


def test_brush_segment_covers_the_line_and_undo_restores() -> None:
    m = blank()
    orig = m.copy()
    atom = paint_segment(m, (5, 5), (45, 30), 2, 2)
    assert atom is not None
    for t in np.linspace(0, 1, 50):
        x, y = 5 + 40 * t, 5 + 25 * t
        assert m[round(y), round(x)] == 2
    atom.apply(m, forward=False)
    assert np.array_equal(m, orig)
    atom.apply(m, forward=True)
    assert (m == 2).sum() > 100


def test_tiny_radius_still_paints_the_pixel_and_edges_clip() -> None:
    m = blank()
    paint_segment(m, (0, 0), (0, 0), 0.1, 3)
    assert m[0, 0] == 3 and (m == 3).sum() == 1
    assert paint_segment(m, (-100, -100), (-90, -90), 2, 3) is None


def test_locks_restrict_what_changes() -> None:
    m = blank()
    m[:, :25] = 1
    paint_segment(m, (0, 20), (49, 20), 3, 2, PaintLock(only_unlabelled=True))
    assert (m[:, :25] == 1).all()
    assert (m[17:24, 25:] == 2).all()
    m2 = blank()
    m2[:, :25] = 1
    paint_segment(m2, (0, 20), (49, 20), 3, 2, PaintLock(only_class=1))
    assert (m2[:, 25:] == 255).all() and (m2[17:24, :25] == 2).all()


def test_eraser_writes_unlabelled_for_both_dtypes() -> None:
    m = np.zeros((10, 10), np.uint16)
    erase_segment(m, (5, 5), (5, 5), 1)
    assert m[5, 5] == 65535
    m8 = np.zeros((10, 10), np.uint8)
    erase_segment(m8, (5, 5), (5, 5), 1)
    assert m8[5, 5] == 255


def test_flood_fill_stays_in_its_region() -> None:
    m = blank()
    m[:, 24:26] = 0  # a wall
    atom = flood_fill(m, (5, 5), 3)
    assert atom is not None
    assert (m[:, :24] == 3).all() and (m[:, 26:] == 255).all() and (m[:, 24:26] == 0).all()
    assert atom.y0 == 0 and atom.x0 == 0 and atom.shape == (40, 24)


def test_polygon_fill_triangle() -> None:
    m = blank()
    fill_polygon(m, [(10, 10), (40, 10), (10, 30)], 4)
    assert m[12, 12] == 4 and m[28, 38] == 255
    assert 250 < (m == 4).sum() < 380  # area 300


def test_accept_prediction_keeps_user_strokes() -> None:
    label = blank()
    label[0:5, 0:5] = 1
    pred = np.full_like(label, 2)
    accept_prediction(label, pred)
    assert (label[0:5, 0:5] == 1).all() and (label[5:, :] == 2).all()
    region = np.zeros(label.shape, bool)
    region[:2, :2] = True
    accept_prediction(label, pred, region, overwrite=True)
    assert (label[:2, :2] == 2).all() and label[3, 3] == 1


def test_pick_class() -> None:
    m = blank()
    m[3, 4] = 7
    assert pick_class(m, (4, 3)) == 7
    assert pick_class(m, (0, 0)) is None
    assert pick_class(m, (99, 99)) is None


def test_history_undo_redo_across_strokes() -> None:
    m = blank()
    hist = History()
    states = [m.copy()]
    for i in range(5):
        s = Stroke(f"stroke {i}")
        s.add(paint_segment(m, (i * 8, 0), (i * 8, 39), 2, i))
        s.add(paint_segment(m, (0, i * 6), (49, i * 6), 1, i))
        hist.push(s)
        states.append(m.copy())
    for i in range(5, 0, -1):
        hist.undo(m)
        assert np.array_equal(m, states[i - 1])
    assert hist.undo(m) is None
    for i in range(1, 6):
        hist.redo(m)
        assert np.array_equal(m, states[i])
    hist.undo(m)
    assert hist.undo_label == "stroke 3" and hist.redo_label == "stroke 4"
    assert (hist.undo_steps, hist.redo_steps) == (4, 1)
    s = Stroke("new")
    s.add(paint_segment(m, (3, 3), (3, 3), 1, 9))
    hist.push(s)
    assert not hist.can_redo
    assert hist.undo_label == "new" and hist.redo_label is None


def test_history_keeps_200_steps_of_a_4k_mask_within_bound() -> None:
    m = np.full((4096, 4096), 255, np.uint8)
    hist = History(max_bytes=256 * 1024 * 1024)
    rng = np.random.default_rng(0)
    for i in range(220):
        s = Stroke("brush")
        x, y = rng.uniform(0, 4096, 2)
        for _ in range(10):
            nx, ny = x + rng.uniform(-60, 60), y + rng.uniform(-60, 60)
            s.add(paint_segment(m, (x, y), (nx, ny), 20, i % 11))
            x, y = nx, ny
        hist.push(s)
    assert hist.undo_steps == 220
    assert hist.nbytes < 256 * 1024 * 1024


@pytest.mark.parametrize("steps", [3])
def test_history_drops_oldest_when_over_budget(steps: int) -> None:
    m = blank(100, 100)
    hist = History(max_bytes=1, min_steps=steps)
    for i in range(10):
        s = Stroke("fill")
        s.add(flood_fill(m, (0, 0), i % 2))
        hist.push(s)
    assert hist.undo_steps == steps


def test_session_label_version_counts_label_changes_only() -> None:
    """A stroke, an undo and a redo change the label's version; a new prediction only repaints."""
    from segstudio.core.editing.session import EditSession

    session = EditSession(blank())
    repainted: list[tuple[int, int, int, int]] = []
    session.listeners.append(repainted.append)
    session.begin_stroke("brush")
    session.paint((10, 10), (20, 10), 2, 1)
    session.paint((20, 10), (30, 10), 2, 1)
    session.end_stroke()
    assert session.label_version == 2 and len(repainted) == 2
    session.set_prediction(np.zeros((40, 50), np.uint8))
    assert session.label_version == 2 and repainted[-1] == (0, 0, 40, 50)
    session.undo()
    session.redo()
    assert session.label_version == 4
    assert not hasattr(session, "dirty") and not hasattr(session, "mark_saved")  # one save state: the document's
