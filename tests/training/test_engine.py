from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from segstudio import nets
from segstudio.core.classes import ClassTable
from segstudio.core.tasks import CancelToken
from segstudio.inference.model_file import load_card, load_model, save_model
from segstudio.training.augment import AugmentConfig
from segstudio.training.config import TrainConfig
from segstudio.training.data import FolderData, ProjectData, TrainData
from segstudio.training.engine import TrainEvent, cpu_has_native_bf16, train
from segstudio.training.netsetup import encoder_parameter_names
from segstudio.training.outputs import CHECKPOINT_NAME, load_checkpoint, next_version_path
from segstudio.zoo import ModelCard
from segstudio.zoo.card import UNCERTAINTY_METRIC
from tests.training.conftest import CLASSES, blob_data, make_folders, make_project


def tiny_config(tmp_path: Path, **kw: Any) -> TrainConfig:
    """CPU settings: these tests check the CPU path on every machine (on CUDA the loss is read one step late)."""
    base: dict[str, Any] = dict(arch="unet", options={"base_width": 8}, steps=12, batch_size=2,
                                crop_stages=((0.0, 32),), lr=5e-3, loss_stages=((0.0, "ce+dice"),),
                                augment=AugmentConfig(scale_range=(0.8, 1.2)), output_dir=str(tmp_path / "run"),
                                threads=1, val_every_epochs=0.0, log_every_s=0.0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def run(config: TrainConfig, data: Any, cancel: CancelToken | None = None) -> list[TrainEvent]:
    return list(train(config, data, cancel or CancelToken()))


def base_model(path: Path, classes: list[str] = CLASSES) -> Path:
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = nets.create("unet", num_classes=len(classes), base_width=8)
    card = ModelCard(arch="unet", classes=ClassTable.from_names(classes), options=dict(model.segstudio_options),
                     name="cells", history=[{"event": "trained", "when": "2024-01-01T00:00:00+00:00"}])
    return save_model(path, model, card)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_finetune_on_sparse_strokes_writes_a_new_version(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", n=4)
    old = base_model(tmp_path / "models" / "cells.safetensors")
    old_hash = sha(old)
    cfg = tiny_config(tmp_path, init_model=str(old), steps=40)
    events = run(cfg, ProjectData(str(project.root)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "loading" and kinds[1] == "started" and kinds[-1] == "finished"
    losses = [e.loss for e in events if e.kind == "step"]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < np.mean(losses[:8])  # it learns
    final = events[-1]
    # the new version goes to the output folder, never beside the model it came from (that may be the install)
    assert final.model_path == str(tmp_path / "run" / "cells.v2.safetensors")
    assert sorted(p.name for p in old.parent.iterdir()) == ["cells.safetensors"]
    assert sha(old) == old_hash  # the user's model is untouched
    # the 2nd labelled image is held out: the start is scored on it before the first step
    validated = [e for e in events if e.kind == "validated"]
    assert validated[0].step == 0 and validated[0].val_images == 1 and final.start_miou == validated[0].val_miou
    card = load_card(final.model_path)
    assert card.history[0]["event"] == "trained"
    assert card.history[-1]["event"] == "fine-tuned" and card.history[-1]["from"] == "cells.safetensors"
    assert card.history[-1]["steps"] == 40 and "sparse" in card.history[-1]["data"]
    assert card.history[-1]["held_out_before"] == pytest.approx(final.start_miou, abs=1e-4)
    miou = next(m for m in card.metrics if m["name"] == "mIoU")
    assert "held-out" in miou["data"]
    # beside it, the mean uncertainty on the same images: the app's yardstick for images unlike these
    uncertainty = next(m for m in card.metrics if m["name"] == UNCERTAINTY_METRIC)
    assert 0.0 <= uncertainty["value"] <= 1.0 and uncertainty["data"] == miou["data"]
    assert card.name == "cells.v2" and card.recipe["steps"] == 40
    for name in ("train_log.jsonl", "curves.png", CHECKPOINT_NAME):
        assert (tmp_path / "run" / name).is_file()
    # a second round goes to v3, never over v2
    again = run(tiny_config(tmp_path, init_model=final.model_path, steps=2), ProjectData(str(project.root)))
    assert again[-1].model_path == str(tmp_path / "run" / "cells.v3.safetensors")


def test_finetuning_never_writes_weights_worse_than_the_start_on_held_out_images(tmp_path: Path) -> None:
    """A learning rate that wrecks the network: the best held-out score stays the start's, and the weights
    written are the start's, bit for bit."""
    project = make_project(tmp_path / "project", n=4)
    untrained = base_model(tmp_path / "models" / "cells.safetensors")
    trained = run(tiny_config(tmp_path, init_model=str(untrained), steps=40), ProjectData(str(project.root)))
    old = Path(str(trained[-1].model_path))
    cfg = tiny_config(tmp_path, init_model=str(old), steps=6, lr=0.5, clip_grad_norm=None, val_every_steps=2)
    events = run(cfg, ProjectData(str(project.root)))
    final = events[-1]
    vals = [e.val_miou for e in events if e.kind == "validated"]
    assert final.kind == "finished" and max(vals[1:]) < final.start_miou  # training made it worse …
    assert final.best_miou == final.start_miou  # … so the start stays the best
    from safetensors.numpy import load_file

    written, start = load_file(final.model_path), load_file(str(old))
    assert written.keys() == start.keys()
    assert all(np.array_equal(written[k], start[k]) for k in start)


def test_from_scratch_validates_and_keeps_the_best(tmp_path: Path) -> None:
    images, masks = make_folders(tmp_path / "data", n=12)
    cfg = tiny_config(tmp_path, steps=10, val_every_steps=5, model_name="blobs")
    events = run(cfg, FolderData(str(images), str(masks), classes=tuple(CLASSES)))
    vals = [e for e in events if e.kind == "validated"]
    assert [e.step for e in vals] == [5, 10]
    assert all(e.per_class_iou is not None and set(e.per_class_iou) == set(CLASSES) for e in vals)
    best = max(e.val_miou for e in vals if e.val_miou is not None)
    final = events[-1]
    assert final.kind == "finished" and final.best_miou == pytest.approx(best)
    assert final.model_path == str(tmp_path / "run" / "blobs.safetensors")
    card = load_card(final.model_path)
    assert card.history[-1]["event"] == "trained" and "from" not in card.history[-1]
    miou = next(m for m in card.metrics if m["name"] == "mIoU")
    assert miou["value"] == pytest.approx(best) and "held out" in miou["data"]
    assert card.metric(UNCERTAINTY_METRIC) is not None and 0.0 <= card.metric(UNCERTAINTY_METRIC) <= 1.0
    assert card.in_channels == 3 and card.train_resolution == (32, 32)


def test_head_rebuilt_for_new_classes(tmp_path: Path) -> None:
    old = base_model(tmp_path / "m" / "cells.safetensors", ["background", "blob"])
    data = blob_data(n=3)
    data = TrainData(ClassTable.from_names(["blob", "background", "other"]), data.train)
    events = run(tiny_config(tmp_path, init_model=str(old), steps=2), data)
    assert "head rebuilt" in events[1].message and "rows of blob, background kept" in events[1].message
    card = load_card(events[-1].model_path)
    assert card.classes.names == ["blob", "background", "other"] and card.history[-1]["head_rebuilt"] is True
    model, _ = load_model(events[-1].model_path)
    assert model.head.out_channels == 3


def test_resume_gives_the_same_state(tmp_path: Path) -> None:
    data = blob_data(n=3, sparse=0.3)
    straight = tiny_config(tmp_path / "a", steps=8, ema_decay=0.9)
    run(straight, data)
    full = load_checkpoint(tmp_path / "a" / "run" / CHECKPOINT_NAME)

    cfg = tiny_config(tmp_path / "b", steps=8, ema_decay=0.9)
    cancel = CancelToken()
    events = []
    for ev in train(cfg, data, cancel):
        events.append(ev)
        if ev.kind == "step" and ev.step == 4:
            cancel.cancel()
    assert events[-1].kind == "cancelled" and events[-1].step == 4
    assert not list((tmp_path / "b" / "run").glob("*.safetensors"))  # no model from a cancelled run
    cfg.resume = True
    resumed = run(cfg, data)
    assert [e.step for e in resumed if e.kind == "step"] == [5, 6, 7, 8]
    part = load_checkpoint(tmp_path / "b" / "run" / CHECKPOINT_NAME)
    assert part["step"] == full["step"] == 8
    for key, value in full["model"].items():
        assert torch.equal(value, part["model"][key]), key
    for key, value in full["ema"]["weights"].items():
        assert torch.equal(value, part["ema"]["weights"][key]), key


def test_cancel_from_another_thread_within_one_step(tmp_path: Path) -> None:
    import threading

    cancel = CancelToken()
    seen = threading.Event()
    steps = []

    def consume() -> None:
        for ev in train(tiny_config(tmp_path, steps=10_000, save_on_cancel=True), blob_data(n=2), cancel):
            steps.append(ev)
            if ev.kind == "step" and ev.step == 2:
                seen.set()
                seen_at.append(ev.step)

    seen_at: list[int] = []
    t = threading.Thread(target=consume)
    t.start()
    assert seen.wait(60)
    cancel.cancel()
    t.join(60)
    assert not t.is_alive()
    last = steps[-1]
    assert last.kind == "cancelled"
    assert last.step <= seen_at[0] + 1  # at most the step already under way when cancel came
    assert last.model_path and Path(last.model_path).is_file()  # save_on_cancel


def test_frozen_encoder_does_not_move(tmp_path: Path) -> None:
    old = base_model(tmp_path / "m" / "cells.safetensors")
    events = run(tiny_config(tmp_path, init_model=str(old), steps=3, freeze_encoder_steps=3, weight_decay=0.0),
                 blob_data(n=2))
    before, _ = load_model(old)
    after, _ = load_model(events[-1].model_path)
    enc = encoder_parameter_names(before)
    b, a = dict(before.named_parameters()), dict(after.named_parameters())
    assert enc and all(torch.equal(b[n], a[n]) for n in enc)
    assert not torch.equal(b["head.weight"], a["head.weight"])


def test_early_stopping(tmp_path: Path) -> None:
    images, masks = make_folders(tmp_path / "data", n=12)
    # no validation can beat the first by 0.5: the third one stops the run
    cfg = tiny_config(tmp_path, steps=100, val_every_steps=1, early_stopping_patience=2,
                      early_stopping_min_delta=0.5)
    events = run(cfg, FolderData(str(images), str(masks), classes=tuple(CLASSES)))
    assert events[-1].kind == "finished" and "early stop" in events[-1].message
    assert events[-1].step == 3


def test_time_budget_ends_the_run(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=None, max_seconds=4.0)
    events = run(cfg, blob_data(n=2))
    assert events[-1].kind == "finished"
    assert 1.0 < events[-1].elapsed_s < 8.0
    lrs = [e.lr for e in events if e.kind == "step"]
    assert lrs[-1] < 0.2 * cfg.lr  # the decay followed the budget


def test_session_limit_stops_with_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=6, session_seconds=1e-3)
    events = run(cfg, blob_data(n=2))
    assert events[-1].kind == "stopped" and events[-1].step == 1
    cfg.session_seconds = None
    cfg.resume = True
    events = run(cfg, blob_data(n=2))
    assert events[-1].kind == "finished" and events[-1].step == 6


def test_bad_settings_are_refused_before_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="length"):
        run(tiny_config(tmp_path, steps=None), blob_data(n=1))
    with pytest.raises(ValueError, match="loss"):
        run(tiny_config(tmp_path, loss_stages=((0.0, "hinge"),)), blob_data(n=1))
    with pytest.raises(ValueError, match="CUDA"):
        run(tiny_config(tmp_path, precision="fp16"), blob_data(n=1))


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_bf16_autocast_on_a_cpu_that_has_it(tmp_path: Path) -> None:
    events = run(tiny_config(tmp_path, precision="auto", cpu_bf16=True, channels_last=True, steps=20),
                 blob_data(n=3))
    assert "(bf16)" in events[1].message
    losses = [e.loss for e in events if e.kind == "step"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert load_card(events[-1].model_path).recipe["cpu_bf16"] is True


def test_config_json_round_trip() -> None:
    cfg = TrainConfig(arch="fastscnn", epochs=3, crop_stages=((0.0, 256), (0.5, 0)),
                      augment=AugmentConfig(scale_range=(0.7, 1.3), vflip=True))
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    with pytest.raises(ValueError, match="unknown training settings: colour"):
        TrainConfig.from_dict({"colour": 1})


def test_next_version_path(tmp_path: Path) -> None:
    assert next_version_path(tmp_path, "cells") == tmp_path / "cells.safetensors"
    (tmp_path / "cells.safetensors").write_bytes(b"x")
    assert next_version_path(tmp_path, "cells") == tmp_path / "cells.v2.safetensors"
    (tmp_path / "cells.v7.safetensors").write_bytes(b"x")
    assert next_version_path(tmp_path, "cells.v2") == tmp_path / "cells.v8.safetensors"


def test_a_diverging_run_stops_with_a_clear_error(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=50, lr=1e30, clip_grad_norm=None, warmup_steps=0)
    with pytest.raises(RuntimeError, match=r"not finite.*lower the learning rate"):
        run(cfg, blob_data(n=2))
