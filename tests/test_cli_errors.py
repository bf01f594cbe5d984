"""The CLI never shows a traceback: one line for what the user can fix, one line and a log file for the rest;
its exit codes are documented; and the smaller promises of issue 13 (import-checkpoint --force, train
--checkpoint-every and --resume, eval's skipped files, segment --overwrite)."""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio import cli
from segstudio.cli import EXIT_CODES, EXIT_ERROR, EXIT_INTERNAL

REPO = Path(__file__).resolve().parents[1]


def _broken_handler(exc: BaseException) -> None:
    def handler(args: argparse.Namespace) -> int:
        raise exc
    return handler  # type: ignore[return-value]


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "logs"
    monkeypatch.setenv("SEGSTUDIO_LOG_DIR", str(folder))
    return folder


def _run_with_failing_models_command(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> int:
    from segstudio.cli import models

    monkeypatch.setattr(models, "run", _broken_handler(exc))
    return cli.main(["models"])


def test_an_unexpected_error_is_one_line_and_a_log_file(log_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = _run_with_failing_models_command(RecursionError("maximum recursion depth exceeded"), monkeypatch)
    out, err = capsys.readouterr()
    assert code == EXIT_INTERNAL and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("segstudio: error: unexpected RecursionError: maximum recursion depth exceeded")
    logs = list(log_dir.glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "command: segstudio models" in text and "Traceback (most recent call last)" in text
    assert "RecursionError" in text


def test_out_of_memory_says_so(log_dir: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_with_failing_models_command(MemoryError(), monkeypatch) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("segstudio: error: not enough memory for this (details in ") and "Traceback" not in err


def test_a_file_system_error_is_one_line_without_a_log(log_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/out.png")
    assert _run_with_failing_models_command(exc, monkeypatch) == EXIT_ERROR
    assert capsys.readouterr().err == "segstudio: error: No space left on device (/data/out.png)\n"
    assert not log_dir.exists()


def test_no_traceback_reaches_the_terminal_of_a_real_process(tmp_path: Path) -> None:
    code = ("import sys; from segstudio.cli import models, main\n"
            "def boom(args): raise KeyError('a bug')\n"
            "models.run = boom\n"
            "sys.exit(main(['models']))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO), SEGSTUDIO_LOG_DIR=str(tmp_path)))
    assert res.returncode == EXIT_INTERNAL
    assert "Traceback" not in res.stdout + res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "unexpected KeyError" in res.stderr and str(tmp_path) in res.stderr


def test_the_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    for code in EXIT_CODES:
        assert f"  {code} " in out
    reliability = (REPO / "docs" / "RELIABILITY.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} |" in reliability and meaning.split(" (")[0].split(":")[0] in reliability


# ------------------------------------------------------------------------------------ import-checkpoint


def test_import_checkpoint_refuses_to_overwrite_without_force(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from segstudio import nets

    ckpt = tmp_path / "weights.pt"
    torch.save(nets.create("unet", num_classes=2, base_width=4).state_dict(), ckpt)
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"an existing model")
    args = ["import-checkpoint", str(ckpt), "--arch", "unet", "--classes", "a,b", "--option", "base_width=4",
            "-o", str(out)]
    assert cli.main(args) == EXIT_ERROR
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"an existing model"
    assert cli.main([*args, "--force"]) == 0
    from segstudio.inference.model_file import load_card

    assert load_card(out).classes.names == ["a", "b"]


# ------------------------------------------------------------------------------------ train and eval


def _folders(root: Path, n: int = 3) -> tuple[Path, Path]:
    from tests.training.conftest import make_folders

    return make_folders(root, n=n, binary=True)


TINY = ["--model", "unet", "--option", "base_width=4", "--steps", "2", "--batch-size", "1", "--crop", "32",
        "--threads", "1", "--classes", "background,blob", "--map", "0=background,255=blob"]


def test_train_resume_says_when_it_starts_fresh_and_sets_the_checkpoint_interval(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from segstudio.cli.train import add, build_config

    images, masks = _folders(tmp_path / "data")
    parser = argparse.ArgumentParser()
    add(parser.add_subparsers())
    args = parser.parse_args(["train", *TINY, "--images", str(images), "--masks", str(masks),
                              "--checkpoint-every", "30", "-o", str(tmp_path / "run")])
    assert build_config(args).checkpoint_every_s == 30.0
    code = cli.main(["train", *TINY, "--images", str(images), "--masks", str(masks), "--resume",
                     "-o", str(tmp_path / "run")])
    assert code == 0
    assert f"--resume: no checkpoint in {tmp_path / 'run'}; starting a new run" in capsys.readouterr().err
    assert cli.main(["train", *TINY, "--images", str(images), "--masks", str(masks), "--checkpoint-every", "0",
                     "-o", str(tmp_path / "run2")]) == EXIT_ERROR
    assert "--checkpoint-every takes a number of seconds above 0" in capsys.readouterr().err


def test_train_on_a_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    images, masks = _folders(tmp_path / "data")

    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    code = cli.main(["train", *TINY, "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "run")])
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert code == EXIT_ERROR and "Traceback" not in out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("segstudio: error: ") and "No space left on device" in last
    assert not list((tmp_path / "run").glob("*.safetensors"))


def test_eval_lists_the_files_it_skipped_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.training.test_engine import base_model

    images, masks = _folders(tmp_path / "data", n=3)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(images / "lonely.png")  # no mask
    (images / "s01.png").write_bytes(b"not an image any more")
    model = base_model(tmp_path / "models" / "m.safetensors")
    code = cli.main(["eval", str(model), "--images", str(images), "--masks", str(masks),
                     "--map", "0=background,255=blob", "--backend", "torch"])
    out, err = capsys.readouterr()
    assert code == 0 and "(2 skipped)" in out
    assert "skipped lonely.png: no mask lonely.png" in err
    assert "skipped s01.png:" in err and "not a supported image" in err


# ------------------------------------------------------------------------------------ segment --overwrite


def test_segment_into_another_models_results_needs_overwrite(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from segstudio.inference.batch_record import recorded_model
    from tests import hostile_files as hf
    from tests.hostile_world import valid_model_bytes

    raw = valid_model_bytes(tmp_path)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    first.write_bytes(raw)
    second.write_bytes(hf.with_card(raw, {"name": "second"}))
    images = tmp_path / "in"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 40, 3), 60 * i, np.uint8)).save(images / f"{i}.png")
    out = tmp_path / "out"
    common = [str(images), "-o", str(out), "--backend", "torch", "--device", "cpu"]
    assert cli.main(["segment", *common, "--model", str(first)]) == 0
    assert cli.main(["segment", *common, "--model", str(first)]) == 0  # the same model resumes: all skipped
    assert "skipped 2 (already done)" in capsys.readouterr().err
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli.main(["segment", *common, "--model", str(second)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "holds results of 2 image(s) made with first.safetensors" in err and "--overwrite" in err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert cli.main(["segment", *common, "--model", str(second), "--overwrite"]) == 0
    assert "written 2" in capsys.readouterr().err
    assert all(recorded_model(out / "masks" / f"{i}.png").startswith("second.safetensors sha256:") for i in range(2))
