from __future__ import annotations

import itertools

import pytest

from segstudio.training.schedule import LRSchedule, Stages, lr_at, run_progress


def test_poly_decays_to_zero() -> None:
    s = LRSchedule("poly", power=0.9)
    assert s.factor(0.0) == 1.0
    assert s.factor(0.5) == pytest.approx(0.5**0.9)
    assert s.factor(1.0) == 0.0
    assert lr_at(0.01, s, 0.5) == pytest.approx(0.01 * 0.5**0.9)


def test_cosine_with_floor() -> None:
    s = LRSchedule("cosine", min_lr_ratio=0.1)
    assert s.factor(0.0) == pytest.approx(1.0)
    assert s.factor(0.5) == pytest.approx(0.55)
    assert s.factor(1.0) == pytest.approx(0.1)


def test_fractional_warmup_then_decay_over_the_rest() -> None:
    s = LRSchedule("cosine", warmup=0.1, warmup_start=0.0)
    assert s.factor(0.0) == 0.0
    assert s.factor(0.05) == pytest.approx(0.5)
    assert s.factor(0.1) == pytest.approx(1.0)
    assert s.factor(0.55) == pytest.approx(0.5)  # half-way through the decay part
    assert s.factor(1.0) == pytest.approx(0.0)


def test_step_warmup() -> None:
    s = LRSchedule("constant", warmup_steps=10, warmup_start=0.1)
    assert s.factor(0.0, step=0) == pytest.approx(0.1)
    assert s.factor(0.0, step=5) == pytest.approx(0.55)
    assert s.factor(0.3, step=10) == 1.0


def test_monotone_after_warmup() -> None:
    for name in ("poly", "cosine"):
        s = LRSchedule(name, warmup=0.05)  # type: ignore[arg-type]
        values = [s.factor(p / 100) for p in range(5, 101)]
        assert all(a >= b for a, b in itertools.pairwise(values))


def test_bad_schedules() -> None:
    with pytest.raises(ValueError, match="poly"):
        LRSchedule("linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LRSchedule(warmup=1.0)


def test_run_progress_takes_the_further_limit() -> None:
    assert run_progress(50, 100, 10.0, None) == 0.5
    assert run_progress(50, 100, 90.0, 120.0) == pytest.approx(0.75)
    assert run_progress(0, None, 30.0, 120.0) == pytest.approx(0.25)
    assert run_progress(200, 100, 0.0, None) == 1.0


def test_stages() -> None:
    st = Stages([(0, 256), (0.4, 512), (0.8, 0)])
    assert [st.at(p) for p in (0.0, 0.39, 0.4, 0.79, 0.8, 1.0)] == [256, 256, 512, 512, 0, 0]
    assert st.index(0.5) == 1
    with pytest.raises(ValueError, match="start at progress 0"):
        Stages([(0.2, 256)])
    with pytest.raises(ValueError):
        Stages([(0, 1), (1.5, 2)])
