from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.image_io import read_image
from segstudio.training.curves import render_curves, smooth, write_curves
from segstudio.training.outputs import CheckpointError, JsonlLog, load_checkpoint, save_checkpoint, version_base


def test_curves_png(tmp_path: Path) -> None:
    steps = list(range(1, 101))
    losses = [1.0 / s for s in steps]
    path = write_curves(tmp_path / "c.png", steps, losses, [50, 100], [0.4, 0.6], title="unet")
    img = read_image(path).data
    assert img.shape[2] == 3 and img.shape[0] > 300
    assert (img != 255).any()
    # nothing to draw yet is still a picture, not an error
    assert render_curves([], [], [], []).shape == img.shape


def test_smooth_starts_at_the_first_value() -> None:
    out = smooth([2.0, 2.0, 0.0], alpha=0.5)
    assert out[0] == pytest.approx(2.0) and out[1] == pytest.approx(2.0) and 0 < out[2] < 2


def test_jsonl_log_round_trip(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "log.jsonl")
    log.add({"kind": "step", "step": 1})
    log.add({"kind": "step", "step": 2})
    log.flush()
    (tmp_path / "log.jsonl").write_text((tmp_path / "log.jsonl").read_text() + "{broken\n")
    again = JsonlLog.resume(tmp_path / "log.jsonl")
    again.add({"kind": "finished"})
    again.flush()
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [x.get("step", x["kind"]) for x in lines] == [1, 2, "finished"]


def test_checkpoint_refuses_foreign_files(tmp_path: Path) -> None:
    import torch

    save_checkpoint(tmp_path / "ok.pt", {"step": 3, "model": {"w": torch.ones(2)}})
    assert load_checkpoint(tmp_path / "ok.pt")["step"] == 3
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"something": np.int64(1).item()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a segstudio"):
        load_checkpoint(tmp_path / "other.pt")


def test_version_base() -> None:
    assert version_base("cells.v12") == "cells"
    assert version_base("cells") == "cells"
    assert version_base("v2") == "v2"
