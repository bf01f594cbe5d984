"""Training under torchrun: 2 processes with gloo train Fast-SCNN on a few ISBI slices (the loss falls, rank 0
alone writes one model file), a single process resumes the run, and the batch rule shares every batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segstudio import cli, nets
from segstudio.training.batches import batch_members, shard_slots
from segstudio.training.distributed import DistContext, DistributedError
from segstudio.training.outputs import load_checkpoint

SLICES = ("00", "01", "02", "03")


@pytest.fixture
def isbi_slices(isbi_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    images, masks = tmp_path / "image", tmp_path / "label"
    images.mkdir()
    masks.mkdir()
    for name in SLICES:
        shutil.copy(isbi_dir / "image" / f"{name}.png", images / f"{name}.png")
        shutil.copy(isbi_dir / "label" / f"{name}.png", masks / f"{name}.png")
    return images, masks


def _train_args(images: Path, masks: Path, out: Path, steps: int) -> list[str]:
    return ["train", "--model", "fastscnn", "--images", str(images), "--masks", str(masks),
            "--classes", "membrane,cell", "--map", "0=membrane,255=cell", "--steps", str(steps),
            "--batch-size", "4", "--crop", "128", "--lr", "0.01", "--threads", "1", "-o", str(out)]


def _losses(out: Path) -> list[float]:
    history = json.loads(load_checkpoint(out / "checkpoint.pt")["history"])
    return [loss for _, loss in history["loss"]]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.data
def test_torchrun_two_processes_train_and_one_process_resumes(isbi_slices: tuple[Path, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    images, masks = isbi_slices
    out = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "segstudio"]
    done = subprocess.run([*torchrun, *_train_args(images, masks, out, 12), "--distributed"], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(out / "fastscnn.safetensors")  # rank 0 alone prints, and writes
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["fastscnn.safetensors"]
    assert (out / "curves.png").is_file()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in log].count("started") == 1
    losses = _losses(out)
    assert len(losses) == 12 and all(v == v for v in losses)
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses

    # One process continues the two processes' run: the same global batch, so the same steps.
    assert cli.main([*_train_args(images, masks, out, 16), "--resume"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "fastscnn.v2.safetensors")
    resumed = _losses(out)
    assert resumed[:12] == losses and len(resumed) == 16
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 16


@pytest.mark.data
def test_train_nproc_launches_torchrun(isbi_slices: tuple[Path, Path], tmp_path: Path) -> None:
    images, masks = isbi_slices
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "segstudio", *_train_args(images, masks, out, 2), "--nproc", "2"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["fastscnn.safetensors"]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert "Traceback" not in done.stderr and "OMP_NUM_THREADS" not in done.stderr


_A_RANK_ENDS = """
import sys, torch
from segstudio.training.distributed import end_rank, leave_process_group
end_rank(5)  # not a rank yet: returns
torch.distributed.init_process_group("gloo", init_method=sys.argv[1], rank=0, world_size=1)
torch.distributed.broadcast(torch.ones(3), src=0)
leave_process_group()
print("written before the end")  # buffered: the pipe is not a terminal
end_rank(3)
print("not reached")
"""


def test_a_rank_ends_with_its_status_and_its_output(tmp_path: Path) -> None:
    """After leaving the group a rank ends without Python's shutdown (which races gloo's threads), its
    output flushed; any other process is untouched."""
    done = subprocess.run([sys.executable, "-c", _A_RANK_ENDS, (tmp_path / "store").as_uri()], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout == "written before the end\n"


def test_each_rank_takes_its_share_of_every_batch() -> None:
    for batch in range(5):
        members = batch_members(batch, 6, 10, seed=3)
        shares = [shard_slots(members, rank, 3) for rank in range(3)]
        assert [pair for share in shares for pair in share] == list(enumerate(members))
        assert shard_slots(members, 0, 1) == list(enumerate(members))
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        shard_slots([1, 2, 3], 0, 2)


def test_mistakes_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DistributedError, match="SyncBatchNorm needs CUDA"):
        DistContext(rank=0, world_size=2, backend="gloo", sync_bn=True).wrap(nets.create("fastscnn", num_classes=2),
                                                                              torch.device("cpu"))
    images, masks = tmp_path / "i", tmp_path / "m"
    base = _train_args(images, masks, tmp_path / "run", 2)
    assert cli.main([*base, "--batch-size", "3", "--nproc", "2"]) == 2
    assert "multiple of 2" in capsys.readouterr().err
    assert cli.main([*base, "--sync-bn"]) == 2
    assert "--sync-bn applies to a run on several processes" in capsys.readouterr().err
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main([*base, "--distributed"]) == 2
    assert "--distributed runs under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
