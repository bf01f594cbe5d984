from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from segstudio import cli
from segstudio.inference.model_file import load_card
from tests.training.conftest import REPO_ROOT, make_folders, make_project

TINY = ["--option", "base_width=8", "--steps", "6", "--batch-size", "2", "--crop", "32", "--threads", "1"]


def test_train_then_eval_on_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, masks = make_folders(tmp_path / "data", n=3, binary=True)
    out = tmp_path / "run"
    code = cli.main(["train", "--model", "unet", "--images", str(images), "--masks", str(masks),
                     "--classes", "background,blob", "--map", "0=background,255=blob", *TINY, "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    model = Path(printed.out.strip().splitlines()[-1])
    assert model == out / "unet.safetensors" and model.is_file()
    assert "finished" in printed.err
    card = load_card(model)
    assert card.classes.names == ["background", "blob"] and card.options["base_width"] == 8

    code = cli.main(["eval", str(model), "--images", str(images), "--masks", str(masks),
                     "--map", "0=background,255=blob", "--backend", "torch", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 3 and set(result["per_class_iou"]) == {"background", "blob"}
    assert 0.0 <= result["miou"] <= 1.0

    code = cli.main(["eval", str(model), "--images", str(images), "--masks", str(masks),
                     "--map", "0=background,255=blob", "--backend", "torch"])
    table = capsys.readouterr().out
    assert code == 0 and "mIoU" in table and "blob" in table


def test_finetune_a_project_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.training.test_engine import base_model

    project = make_project(tmp_path / "project")
    old = base_model(tmp_path / "models" / "cells.safetensors")
    code = cli.main(["train", "--model", str(old), "--project", str(project.root), "--steps", "3",
                     "--batch-size", "2", "--crop", "32", "--threads", "1", "-o", str(tmp_path / "run"), "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["kind"] == "finished"
    assert lines[-1]["model_path"] == str(old.parent / "cells.v2.safetensors")


def test_cli_errors_are_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, masks = make_folders(tmp_path / "data", n=2)
    assert cli.main(["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path)]) == 2
    assert "length" in capsys.readouterr().err
    assert cli.main(["train", "--model", "no-such-net", "--images", str(images), "--masks", str(masks),
                     "--steps", "1", "-o", str(tmp_path)]) == 2
    assert "available networks" in capsys.readouterr().err
    assert cli.main(["train", "--images", str(tmp_path / "nothing"), "--steps", "1", "-o", str(tmp_path)]) == 2
    assert "CamVid-style" in capsys.readouterr().err
    assert cli.main(["train", "--images", str(images), "--masks", str(masks), "--classes", "a,b",
                     "--map", "0=zebra", "--steps", "1", "-o", str(tmp_path)]) == 2
    assert "zebra" in capsys.readouterr().err


def test_train_is_a_headless_command() -> None:
    res = subprocess.run([sys.executable, "-m", "segstudio", "train", "--help"], capture_output=True, text=True,
                         timeout=120, cwd=REPO_ROOT)
    assert res.returncode == 0 and "--images" in res.stdout and "small-data" in res.stdout
