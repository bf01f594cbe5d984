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
    # the new version lives in the project, never beside the model it came from (that may be the install)
    new = project.root / ".segstudio-training" / "models" / "cells.v2.safetensors"
    assert lines[-1]["model_path"] == str(new) and new.is_file()
    assert sorted(p.name for p in old.parent.iterdir()) == ["cells.safetensors"]


def test_finetune_a_project_records_and_judges_the_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    from segstudio.workspace.rounds import RoundHistory
    from segstudio.workspace.versions import VersionRegistry
    from tests.training.test_engine import base_model

    project = make_project(tmp_path / "project")
    old = base_model(tmp_path / "models" / "cells.safetensors")
    code = cli.main(["train", "--model", str(old), "--project", str(project.root), "--steps", "3",
                     "--batch-size", "2", "--crop", "32", "--threads", "1", "-o", str(tmp_path / "run")])
    assert code == 0
    err = capsys.readouterr().err
    assert "round 1:" in err
    registry = VersionRegistry.load(project.root)
    assert [v.file for v in registry.versions] == ["cells.v2.safetensors"]
    version = registry.versions[0]
    assert version.trained_from == "cells.safetensors" and version.held_out_images >= 1
    assert version.status in ("accepted", "candidate") and version.verdict
    assert RoundHistory.load(project.root).rounds[0].model_after.endswith("cells.v2.safetensors")


def test_a_model_file_fine_tunes_with_the_card_classes_and_the_finetune_recipe(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.training.test_engine import base_model

    old = base_model(tmp_path / "models" / "cells.safetensors")
    images, masks = make_folders(tmp_path / "data", n=4)
    out = tmp_path / "run"
    code = cli.main(["train", "--model", str(old), "--images", str(images), "--masks", str(masks), "--steps", "2",
                     "--threads", "1", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    new = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert new == out / "cells.v2.safetensors"
    card = load_card(new)
    assert card.classes.names == load_card(old).classes.names
    # the fine-tuning recipe
    assert card.recipe["lr"] == 2e-3 and card.recipe["cpu_bf16"] is True and card.recipe["validate_start"] is True
    assert card.history[-1]["event"] == "fine-tuned" and card.history[-1]["from"] == "cells.safetensors"


def test_an_onnx_file_trains_through_its_twin_or_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    from segstudio.cli.train import resolve_model
    from tests.training.test_engine import base_model

    old = base_model(tmp_path / "models" / "cells.safetensors")
    onnx = tmp_path / "models" / "cells.onnx"
    assert cli.main(["export-onnx", str(old), "-o", str(onnx)]) == 0
    assert resolve_model(str(onnx)) == (old, None)
    lonely = tmp_path / "alone" / "cells.onnx"
    lonely.parent.mkdir()
    lonely.write_bytes(onnx.read_bytes())
    images, masks = make_folders(tmp_path / "data", n=2)
    assert cli.main(["train", "--model", str(lonely), "--images", str(images), "--masks", str(masks),
                     "--steps", "1", "-o", str(tmp_path / "run")]) == 2
    assert "twin" in capsys.readouterr().err
    assert resolve_model("unet") == (None, "unet")


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
    assert cli.main(["train", "--recipe", "finetune", "--images", str(images), "--masks", str(masks),
                     "--steps", "1", "-o", str(tmp_path)]) == 2
    assert "--model FILE" in capsys.readouterr().err


def test_the_scratch_recipe_takes_a_network_name(tmp_path: Path) -> None:
    from segstudio.cli import build_parser
    from segstudio.cli.train import build_config

    args = build_parser().parse_args(["train", "--model", "fastscnn", "--recipe", "scratch", "--images", "x",
                                      "--epochs", "3"])
    cfg = build_config(args, None, "fastscnn")
    assert cfg.arch == "fastscnn" and cfg.epochs == 3 and cfg.class_weights == "median_frequency"


def test_train_is_a_headless_command() -> None:
    res = subprocess.run([sys.executable, "-m", "segstudio", "train", "--help"], capture_output=True, text=True,
                         timeout=120, cwd=REPO_ROOT)
    assert res.returncode == 0 and "--images" in res.stdout and "small-data" in res.stdout
