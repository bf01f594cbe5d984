"""The app's fine-tuning and ``segstudio train --model FILE`` are one code path: on the same corrections (a
folder in name order, and a project corrected in that order) they split the same images off, build the same
config and write the same weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from segstudio import cli
from segstudio.core.classes import ClassTable
from segstudio.core.image_io import read_mask
from segstudio.core.project import Project
from segstudio.workspace.model_choice import ModelChoice
from segstudio.workspace.project_training import ProjectTraining
from segstudio.workspace.startpoint import RunSettings, start_point
from tests.training.conftest import CLASSES, make_folders
from tests.training.test_engine import base_model

STEPS = 6


def test_the_app_and_the_command_line_fine_tune_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = base_model(tmp_path / "models" / "cells.safetensors")
    images, masks = make_folders(tmp_path / "data", n=6)
    # the command line, with no recipe flag: the fine-tuning recipe, the card's classes
    out = tmp_path / "run"
    assert cli.main(["train", "--model", str(base), "--images", str(images), "--masks", str(masks),
                     "--steps", str(STEPS), "--threads", "1", "-o", str(out), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cli_end = events[-1]
    assert cli_end["kind"] == "finished" and cli_end["val_images"] == 1
    # the app: a project of the same images, corrected in name order, fine-tuned from the same model
    root = tmp_path / "project"
    shutil.copytree(images, root)
    project = Project.create(root, classes=ClassTable.from_names(CLASSES))
    for e in project.images:
        project.save_label(e, read_mask(masks / e.name))
    project.save()
    run = ProjectTraining(root, start_point(ModelChoice.file(base)), RunSettings(steps=STEPS), str(base), threads=1)
    run.start()
    app_events = []
    while not app_events or app_events[-1].kind not in ("finished", "failed", "died"):
        assert run.process is not None
        app_events.extend(run.process.wait_events(60))
    app_end = app_events[-1]
    assert app_end.kind == "finished", app_end.message
    assert run.process is not None and run.process.join(30) == 0
    # the same held-out image, the same scores, the same weights
    assert app_end.val_images == cli_end["val_images"]
    assert app_end.start_miou == pytest.approx(cli_end["start_miou"]) and \
        app_end.best_miou == pytest.approx(cli_end["best_miou"])
    a, b = load_file(str(app_end.model_path)), load_file(cli_end["model_path"])
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # and the round is judged on the held-out correction, as the app shows it
    r = run.conclude(app_end)
    assert r.held_out == ["s01.png"] and r.before is not None and r.after is not None
    assert r.activated == (r.after.miou >= r.before.miou)
