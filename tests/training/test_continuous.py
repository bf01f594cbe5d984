"""Continuous training: new corrections join the run within seconds, better versions are published, the
held-out bar follows the held-out set, and stopping ends it with the last version published."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from segstudio.core.project import Project
from segstudio.core.tasks import CancelToken
from segstudio.inference.model_file import load_model
from segstudio.training.data import ProjectData, load_data
from segstudio.training.engine import TrainEvent, _Run, train
from segstudio.training.losses import median_frequency_weights
from tests.training.conftest import blob_scene, make_project, write_png
from tests.training.test_engine import base_model, tiny_config


def add_labelled_image(root: Path, name: str, seed: int) -> None:
    image, label = blob_scene(np.random.default_rng(seed))
    write_png(root / name, image)
    project = Project.open(root)
    project.refresh()
    project.save_label(name, label)
    project.save()


def test_a_continuous_run_takes_new_corrections_and_publishes_better_versions(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=2)  # img0 trains, img1 is held out
    old = base_model(tmp_path / "models" / "cells.safetensors")
    cfg = tiny_config(tmp_path, init_model=str(old), steps=None, continuous=True, refresh_every_s=0.2,
                      val_every_s=0.3, model_dir=str(tmp_path / "versions"))
    cancel = CancelToken()
    events: list[TrainEvent] = []
    added = False
    added_at = joined_at = 0.0
    t0 = time.monotonic()
    for ev in train(cfg, ProjectData(str(project.root)), cancel):
        events.append(ev)
        if ev.kind == "refreshed" and not joined_at:
            joined_at = time.monotonic()
        if ev.kind == "started":
            assert "1 training images" in ev.message
        if not added and ev.kind == "step" and ev.step >= 3:
            add_labelled_image(project.root, "img2.png", seed=7)
            added_at = time.monotonic()
            added = True
        if added and any(e.kind == "refreshed" for e in events) and ev.kind == "step" and ev.step >= 30:
            cancel.cancel("stopped by the test")
        assert time.monotonic() - t0 < 120, "the continuous run did not pick up the new correction"
    kinds = [e.kind for e in events]
    refreshed = [e for e in events if e.kind == "refreshed"]
    assert refreshed and "2 training image(s)" in refreshed[0].message
    assert joined_at - added_at < 5.0  # a saved correction joins the training set within seconds
    # the start is the first bar; every published version beat the best before it
    start = next(e for e in events if e.kind == "validated")
    assert start.step == 0
    published = [e for e in events if e.kind == "published"]
    assert published, "a few dozen steps on blobs should beat the untrained start"
    bars = [start.val_miou]
    for p in published:
        assert p.val_miou > max(bars)
        bars.append(p.val_miou)
        assert Path(p.model_path).is_file() and Path(p.model_path).parent == tmp_path / "versions"
    names = [Path(p.model_path).name for p in published]
    assert names[0] == "cells.v2.safetensors" and len(set(names)) == len(names)
    assert kinds[-1] == "finished" and events[-1].model_path == published[-1].model_path
    assert "version(s) published" in events[-1].message


def test_a_new_held_out_image_resets_the_bar_to_the_best_weights_score(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=6)  # img1 held out; the 7th labelled image will be too
    old = base_model(tmp_path / "models" / "cells.safetensors")
    cfg = tiny_config(tmp_path, init_model=str(old), steps=None, continuous=True, refresh_every_s=0.2,
                      val_every_s=60.0)
    cancel = CancelToken()
    events: list[TrainEvent] = []
    for ev in train(cfg, ProjectData(str(project.root)), cancel):
        events.append(ev)
        if ev.kind == "step" and ev.step == 2:
            add_labelled_image(project.root, "img6.png", seed=11)  # the 7th labelled image: held out
        if ev.kind == "refreshed":
            cancel.cancel("done")
    refreshed = next(e for e in events if e.kind == "refreshed")
    assert refreshed.val_images == 2 and "2 held-out correction(s)" in refreshed.message
    assert "the best so far scores" in refreshed.message and refreshed.best_miou is not None
    start = next(e for e in events if e.kind == "validated")
    assert start.val_images == 1


def test_the_class_weights_follow_the_strokes_of_a_continuous_run(tmp_path: Path) -> None:
    """Where a user paints, not how common a class is, sets the strokes' class balance, and it changes as strokes
    join: the median-frequency weights that even it out are made again from the new training set."""
    project = make_project(tmp_path / "project", n=2)  # img0 trains, img1 is held out
    cfg = tiny_config(tmp_path, steps=None, continuous=True, val_every_s=60.0, class_weights="median_frequency")
    spec = ProjectData(str(project.root))
    run = _Run(cfg, load_data(spec, CancelToken()), CancelToken(), time.monotonic(), spec)
    before = next(iter(run.losses.values())).class_weights
    assert before is not None
    image, _ = blob_scene(np.random.default_rng(3))
    write_png(project.root / "img2.png", image)
    project = Project.open(project.root)
    project.refresh()
    strokes = np.full((48, 64), 255, np.uint8)
    strokes[10:30, 10:50] = 1  # the third labelled image trains; its strokes are all of class 1
    project.save_label("img2.png", strokes)
    project.save()
    assert run._refresh() is not None and len(run.data.train) == 2
    after = next(iter(run.losses.values())).class_weights
    assert after is not None
    expected = torch.from_numpy(median_frequency_weights(*run.data.class_statistics()))
    assert torch.allclose(after.cpu(), expected) and not torch.allclose(after.cpu(), before.cpu())
    assert after[1] < before[1]  # class 1 is more common among the strokes now: it weighs less


def test_a_continuous_run_from_scratch_keeps_its_last_published_version_where_nothing_is_labelled(
        tmp_path: Path) -> None:
    """Strokes stop short of every boundary; after a run's peak, what no stroke labels drifts. From the first
    publication on, the last published version's predictions are the soft target on the unlabelled pixels (a
    frozen copy, replaced by each newer version); the held-out judgement stays by the labels alone."""
    project = make_project(tmp_path / "project", n=3)  # strokes; img1 is held out
    cfg = tiny_config(tmp_path, steps=None, continuous=True, val_every_steps=4, keep_published=2.0)
    spec = ProjectData(str(project.root))
    cancel = CancelToken()
    run = _Run(cfg, load_data(spec, cancel), cancel, time.monotonic(), spec)
    assert run.teacher is None and run.start_model is None  # nothing published yet: nothing to keep
    kept_calls = 0
    teachers = []
    for ev in run.events():
        if ev.kind == "validated":
            assert "agreement" not in ev.message
        if ev.kind == "published":
            teacher = run.teacher
            assert teacher is not None and teacher.weight == 2.0 and teacher not in teachers
            teachers.append(teacher)
            published = load_model(str(ev.model_path))[0].state_dict()
            for name, value in teacher.module.state_dict().items():
                assert torch.equal(value.cpu(), published[name].cpu()), name
            assert not any(p.requires_grad for p in teacher.module.parameters())
            original = teacher.loss

            def counted(*args, _loss=original, **kw):  # type: ignore[no-untyped-def]
                nonlocal kept_calls
                kept_calls += 1
                return _loss(*args, **kw)

            teacher.loss = counted  # type: ignore[method-assign]
        if ev.kind == "step" and ev.step >= 60:
            cancel.cancel("done")
    assert len(teachers) >= 2, "a few dozen steps on blobs should publish more than one version"
    assert kept_calls > 0  # the steps after a publication train towards it where nothing is labelled
    assert tiny_config(tmp_path).keep_published == 0.0
    plain = _Run(tiny_config(tmp_path / "b", steps=None, continuous=True, val_every_steps=4),
                 load_data(spec, CancelToken()), CancelToken(), time.monotonic(), spec)
    plain._publish(plain._validate())
    assert plain.teacher is None  # keep_published 0: no soft target
