"""Batch folders: outputs and structure, per-file errors, resume, cancel, the CLI's report."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from segstudio.cli import main as cli_main
from segstudio.core.image_io import read_mask
from segstudio.core.tasks import Cancelled, CancelToken
from segstudio.inference.batch import BatchEvent, BatchOptions, plan_jobs, segment_folder
from segstudio.inference.model_file import load_model
from segstudio.inference.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(random_model_file: Path) -> Predictor:
    model, card = load_model(random_model_file)
    return Predictor.from_module(model, card)


def _png(path: Path, shape: tuple[int, ...], seed: int, dtype: type = np.uint8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    top = 65535 if dtype is np.uint16 else 255
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, top, shape).astype(dtype))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for i in range(4):
        _png(root / f"img{i}.png", (48, 64, 3), i)
    _png(root / "gray.png", (30, 41), 10)
    _png(root / "deep" / "er" / "sixteen.png", (36, 36, 3), 11, np.uint16)
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (root / "notes.jpg").write_text("not a picture")
    return root


def _run(inputs: list[Path], out: Path, predictor: Predictor, **kw: object) -> list[BatchEvent]:
    return list(segment_folder(inputs, out, predictor, BatchOptions(**kw)))  # type: ignore[arg-type]


def test_folder_outputs_errors_and_structure(folder: Path, tmp_path: Path, predictor: Predictor) -> None:
    out = tmp_path / "out"
    events = _run([folder], out, predictor, recursive=True, overlay=True, masks_per_class=True, batch_size=2)
    last = events[-1]
    assert last.finished and last.total == 8 and last.done == 8
    assert last.written == 6 and last.failed == 2 and last.skipped == 0
    assert {e.path.name for e in last.errors} == {"corrupt.png", "notes.jpg"}
    assert all(e.message for e in last.errors)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert last.images_per_s > 0
    labels = read_mask(out / "masks" / "img1.png")
    assert labels.shape == (48, 64) and labels.dtype == np.uint8 and labels.max() < 3
    direct = predictor.predict(cv2.imread(str(folder / "img1.png"))[:, :, ::-1]).labels
    assert np.array_equal(labels, direct)
    assert read_mask(out / "masks" / "deep" / "er" / "sixteen.png").shape == (36, 36)
    assert read_mask(out / "masks" / "gray.png").shape == (30, 41)
    mask = read_mask(out / "classes" / "02-blue" / "img1.png")
    assert np.array_equal(mask, np.where(labels == 2, 255, 0))
    overlay = cv2.imread(str(out / "overlays" / "img1.png"))
    assert overlay.shape == (48, 64, 3)
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_not_recursive_skips_sub_folders(folder: Path, tmp_path: Path, predictor: Predictor) -> None:
    last = _run([folder], tmp_path / "out", predictor)[-1]
    assert last.total == 7 and not (tmp_path / "out" / "masks" / "deep").exists()


def test_resume_skips_what_is_done(folder: Path, tmp_path: Path, predictor: Predictor) -> None:
    out = tmp_path / "out"
    _run([folder], out, predictor, overlay=True)
    stamp = os.stat(out / "masks" / "img0.png").st_mtime_ns
    (out / "masks" / "img2.png").unlink()
    (out / "overlays" / "img3.png").unlink()  # an overlay asked for but missing: redo that image
    last = _run([folder], out, predictor, overlay=True)[-1]
    assert last.skipped == 3 and last.written == 2 and last.failed == 2
    assert os.stat(out / "masks" / "img0.png").st_mtime_ns == stamp
    assert (out / "masks" / "img2.png").is_file() and (out / "overlays" / "img3.png").is_file()
    again = _run([folder], out, predictor, overlay=True, resume=False)[-1]
    assert again.written == 5 and again.skipped == 0


def test_cancel_keeps_finished_work_and_resumes(tmp_path: Path, predictor: Predictor) -> None:
    src = tmp_path / "many"
    for i in range(12):
        _png(src / f"{i:02d}.png", (40, 40, 3), i)
    out = tmp_path / "out"
    token = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for ev in segment_folder([src], out, predictor, BatchOptions(batch_size=1), token):
            seen.append(ev)
            if ev.written >= 2 or ev.done >= 3:
                token.cancel()
    written = sorted((out / "masks").glob("*.png"))
    assert 1 <= len(written) < 12
    for path in written:  # every file that exists is complete
        assert read_mask(path).shape == (40, 40)
    last = _run([src], out, predictor)[-1]
    assert last.skipped == len(written) and last.written == 12 - len(written) and last.failed == 0


def test_planning_collisions_and_bad_outputs(tmp_path: Path, predictor: Predictor) -> None:
    src = tmp_path / "src"
    _png(src / "a.png", (20, 20, 3), 0)
    cv2.imwrite(str(src / "a.jpg"), np.zeros((20, 20, 3), np.uint8))
    jobs, errors = plan_jobs([src, tmp_path / "nope"], tmp_path / "out", predictor.card.classes, BatchOptions())
    assert len(jobs) == 1
    assert {e.path.name for e in errors} == {"a.png", "nope"} or {e.path.name for e in errors} == {"a.jpg", "nope"}
    assert any("would overwrite" in e.message for e in errors)
    with pytest.raises(ValueError, match="input folder"):
        plan_jobs([src], src, predictor.card.classes, BatchOptions())


def test_segment_cli_reports_and_exit_status(folder: Path, tmp_path: Path, random_model_file: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["segment", str(folder), "-o", str(out), "--model", str(random_model_file), "--backend", "torch"]
    assert cli_main(args) == 1
    err = capsys.readouterr().err
    assert "written 5, skipped 0 (already done), failed 2" in err
    assert "corrupt.png" in err and "notes.jpg" in err
    assert "\r" not in err  # not a terminal: plain lines
    good = tmp_path / "good"
    _png(good / "x.png", (20, 30, 3), 1)
    assert cli_main(["segment", str(good / "x.png"), "-o", str(out), "--model", str(random_model_file)]) == 0
    assert (out / "masks" / "x.png").is_file()
    assert cli_main(["segment", str(good), "-o", str(good), "--model", str(random_model_file)]) == 2
    assert cli_main(["segment", str(good), "-o", str(out), "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_class_maps_carry_a_palette_and_the_folder_a_legend(folder: Path, tmp_path: Path,
                                                             predictor: Predictor) -> None:
    """A class map shows the class colours in any viewer, its pixel values stay the class indices, and
    classes.json says what each value means."""
    import json

    from PIL import Image

    out = tmp_path / "out"
    _run([folder], out, predictor)
    path = out / "masks" / "img1.png"
    indices = read_mask(path)
    with Image.open(path) as im:
        assert im.mode == "P"
        assert np.array_equal(np.array(im), indices)
        shown = np.array(im.convert("RGB"))
    colours = np.array(predictor.card.classes.colours, np.uint8)
    assert np.array_equal(shown, colours[indices])
    legend = json.loads((out / "classes.json").read_text())
    assert [c["name"] for c in legend["classes"]] == predictor.card.classes.names
    assert [tuple(c["colour"]) for c in legend["classes"]] == predictor.card.classes.colours
    assert legend["classes"][2]["folder"] == "classes/02-blue" and legend["model"]
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "masks"]
