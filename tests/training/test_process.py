"""The training process as the app uses it: events over a pipe, cancel, SIGKILL."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from segstudio.training.data import ProjectData
from segstudio.training.engine import TrainEvent
from segstudio.training.process import TrainingProcess, start_training_process
from tests.training.conftest import make_project
from tests.training.test_engine import base_model, tiny_config

START_TIMEOUT = 120.0  # a spawned interpreter imports torch first; the shared CPU can make that slow


def collect_until(proc: TrainingProcess, stop: callable, timeout: float) -> list[TrainEvent]:  # type: ignore[valid-type]
    events: list[TrainEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = proc.wait_events(0.2)
        events.extend(new)
        if any(stop(e) for e in new) or proc.finished_event is not None:
            return events
    raise AssertionError(f"timed out; events so far: {[e.kind for e in events]}")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigkill_mid_run_leaves_the_previous_model_untouched(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    old = base_model(tmp_path / "models" / "cells.safetensors")
    before = sha(old)
    cfg = tiny_config(tmp_path, init_model=str(old), steps=100_000, checkpoint_every_s=0.0)
    proc = start_training_process(cfg, ProjectData(str(project.root)))
    try:
        events = collect_until(proc, lambda e: e.kind == "step" and e.step >= 3, START_TIMEOUT)
        assert any(e.kind == "started" for e in events)
        proc.kill()
        proc.join(30)
        assert not proc.is_alive()
        died = [e for e in proc.events() if e.kind == "died"]
        assert len(died) == 1 and "SIGKILL" in died[0].message and "died" in died[0].message
        assert proc.finished_event is died[0]
        assert proc.events() == []  # reported once
    finally:
        proc.kill()
    assert sha(old) == before
    assert sorted(p.name for p in old.parent.iterdir()) == ["cells.safetensors"]  # no new version, no temp file


def test_a_run_finishes_and_reports_the_new_model(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    old = base_model(tmp_path / "models" / "cells.safetensors")
    proc = start_training_process(tiny_config(tmp_path, init_model=str(old), steps=4), ProjectData(str(project.root)))
    events = collect_until(proc, lambda e: e.kind == "finished", START_TIMEOUT)
    assert proc.join(30) == 0
    final = events[-1]
    assert final.kind == "finished" and final.model_path == str(tmp_path / "run" / "cells.v2.safetensors")
    assert Path(final.model_path).is_file()


def test_cancel_ends_with_a_cancelled_event(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    proc = start_training_process(tiny_config(tmp_path, steps=100_000), ProjectData(str(project.root)))
    collect_until(proc, lambda e: e.kind == "step", START_TIMEOUT)
    proc.cancel()
    events = collect_until(proc, lambda e: e.kind == "cancelled", 60)
    assert events[-1].kind == "cancelled"
    assert proc.join(30) == 0


def test_errors_in_the_child_arrive_as_failed_events(tmp_path: Path) -> None:
    proc = start_training_process(tiny_config(tmp_path), ProjectData(str(tmp_path / "no-such-project")))
    events = collect_until(proc, lambda e: e.kind == "failed", START_TIMEOUT)
    assert events[-1].kind == "failed" and "does not exist" in events[-1].message
    assert proc.join(30) == 1


def test_a_bad_config_fails_in_the_caller(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        start_training_process(tiny_config(tmp_path, steps=None), ProjectData(str(tmp_path)))
