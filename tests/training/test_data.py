from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segstudio.core.classes import ClassTable
from segstudio.training.augment import AugmentConfig
from segstudio.training.batches import CpuBatcher, InputMaker, batch_members
from segstudio.training.data import (
    MIN_IMAGES_FOR_VAL,
    DataError,
    FolderData,
    ProjectData,
    TrainData,
    camvid_layout,
    load_data,
    make_sample,
    sparsify,
    split_validation,
)
from segstudio.zoo import IMAGENET
from tests.training.conftest import blob_data, make_folders, make_project, write_png


def test_project_snapshot_takes_labelled_images_and_sparse_strokes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", n=4)
    # one more image with an empty label file and one without any label
    for name in ("empty.png", "none.png"):
        write_png(tmp_path / "p" / name, np.zeros((48, 64, 3), np.uint8))
    project.refresh()
    project.save_label("empty.png", np.full((48, 64), 255, np.uint8))
    project.save()
    data = load_data(ProjectData(str(tmp_path / "p")))
    # the held-out split: the 2nd labelled image judges, the others train
    assert sorted(s.name for s in data.train) == ["img0.png", "img2.png", "img3.png"]
    assert [s.name for s in data.val] == ["img1.png"] and "held-out" in data.val_source
    assert all(not s.complete for s in data.train)  # strokes only
    assert "4 labelled image(s)" in data.source
    # without the split, a random tenth is held out from ten images on
    data = load_data(ProjectData(str(tmp_path / "p"), holdout=False))
    assert len(data.train) == 4 and data.val == [] and "fewer than" in data.val_source
    # the snapshot: painting after loading does not change the data
    before = data.train[0].label.copy()
    project.save_label(data.train[0].name, np.zeros((48, 64), np.uint8))
    np.testing.assert_array_equal(data.train[0].label, before)


def test_project_skips_unreadable_images(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", n=2)
    (tmp_path / "p" / "img1.png").write_bytes(b"not a png")
    data = load_data(ProjectData(str(project.root)))
    assert [s.name for s in data.train] == ["img0.png"]
    assert len(data.skipped) == 1 and "img1.png" in data.skipped[0]
    from segstudio.training.config import TrainConfig
    from segstudio.training.engine import train

    cfg = TrainConfig(arch="unet", options={"base_width": 8}, steps=1, batch_size=1, crop_stages=((0.0, 32),),
                      output_dir=str(tmp_path / "run"), threads=1)
    events = list(train(cfg, ProjectData(str(project.root))))
    assert "1 file(s) skipped: img1.png" in events[1].message  # the user hears about it


def test_project_without_labels_is_a_clear_error(tmp_path: Path) -> None:
    write_png(tmp_path / "p" / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="no labelled image"):
        load_data(ProjectData(str(tmp_path / "p")))


def test_folders_with_a_value_map(tmp_path: Path) -> None:
    images, masks = make_folders(tmp_path, n=3, binary=True)
    spec = FolderData(str(images), str(masks), classes=("background", "blob"), value_map=("0=background",
                                                                                          "255=blob"))
    data = load_data(spec)
    assert len(data.train) == 3 and data.classes.names == ["background", "blob"]
    assert set(np.unique(np.concatenate([s.label.ravel() for s in data.train]))) == {0, 1}
    # without the map, 255 is "not labelled" (the uint8 marker) — and with --unmapped error nothing breaks
    plain = load_data(FolderData(str(images), str(masks), classes=("background", "blob")))
    assert all(not s.complete for s in plain.train)


def test_folders_report_values_that_are_no_class(tmp_path: Path) -> None:
    images, masks = make_folders(tmp_path, n=2)
    from segstudio.core.image_io import write_mask

    write_mask(masks / "s00.png", np.full((48, 64), 7, np.uint8))
    with pytest.raises(DataError, match="7"):
        load_data(FolderData(str(images), str(masks), classes=("a", "b")))


def test_folders_infer_classes_and_list_images_without_masks(tmp_path: Path) -> None:
    images, masks = make_folders(tmp_path, n=3)
    write_png(images / "lonely.png", np.zeros((48, 64, 3), np.uint8))
    data = load_data(FolderData(str(images), str(masks)))
    assert data.classes.names == ["class 0", "class 1"]
    assert any("lonely.png" in s for s in data.skipped)


def test_camvid_layout(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    assert camvid_layout(tmp_path) is None
    (tmp_path / "trainannot").mkdir()
    assert camvid_layout(tmp_path) == (tmp_path / "train", tmp_path / "trainannot")


def test_validation_split_only_with_enough_images() -> None:
    data = blob_data(n=MIN_IMAGES_FOR_VAL - 1)
    train, val, why = split_validation(data.train, 0.2, seed=0)
    assert val == [] and len(train) == MIN_IMAGES_FOR_VAL - 1 and "training images" in why
    many = blob_data(n=20).train
    train, val, why = split_validation(many, 0.2, seed=0)
    assert len(val) == 4 and len(train) == 16 and not {id(s) for s in val} & {id(s) for s in train}
    assert split_validation(many, 0.2, seed=0)[1] == val  # reproducible


def test_sparsify_keeps_the_fraction() -> None:
    label = np.ones((200, 200), np.uint8)
    sparse = sparsify(label, 0.02, np.random.default_rng(0))
    kept = (sparse != 255).mean()
    assert 0.015 < kept < 0.025 and set(np.unique(sparse)) == {1, 255}


def test_make_sample_checks_shapes() -> None:
    with pytest.raises(DataError, match="label is"):
        make_sample("x", np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError, match="uint8 or uint16"):
        make_sample("x", np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))


def test_class_statistics_ignore_unlabelled() -> None:
    s1 = make_sample("a", np.zeros((2, 4), np.uint8), np.array([[0, 0, 1, 255], [255, 255, 255, 255]], np.uint8))
    s2 = make_sample("b", np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.uint8))
    data = TrainData(ClassTable.from_names(["a", "b", "c"]), [s1, s2])
    pixels, totals = data.class_statistics()
    assert pixels.tolist() == [10, 1, 0]
    assert totals.tolist() == [11, 3, 0]
    assert data.channels() == 1 and data.input_max() == 255.0


def test_batches_are_deterministic_per_index() -> None:
    assert batch_members(3, 4, 10, seed=1) == batch_members(3, 4, 10, seed=1)
    # every sample appears once per epoch
    stream = [i for b in range(5) for i in batch_members(b, 2, 10, seed=1)]
    assert sorted(stream) == list(range(10))
    data = blob_data(n=3)
    maker = InputMaker(IMAGENET, 3, __import__("torch").device("cpu"), False)
    a = CpuBatcher(data.train, 2, AugmentConfig(), maker, 255, seed=5, workers=2)
    b = CpuBatcher(data.train, 2, AugmentConfig(), maker, 255, seed=5, workers=1)
    try:
        first = a.get(7, (32, 32))
        a.get(8, (32, 32))
        again = b.get(7, (32, 32))  # no history: batch 7 alone
        assert first.x.shape == (2, 3, 32, 32) and first.y.shape == (2, 32, 32)
        assert (first.x == again.x).all() and (first.y == again.y).all()
        assert not (a.get(9, (32, 32)).x == first.x).all()
    finally:
        a.close()
        b.close()


def test_gray_images_feed_an_rgb_network_and_back() -> None:
    import torch

    gray = blob_data(n=2, channels=1)
    assert gray.channels() == 1
    rgb_maker = InputMaker(IMAGENET, 3, torch.device("cpu"), False)
    batcher = CpuBatcher(gray.train, 2, AugmentConfig(), rgb_maker, 255, seed=0)
    try:
        x = batcher.get(0, (32, 32)).x
    finally:
        batcher.close()
    assert x.shape[1] == 3
    # all three channels carry the same picture (up to the per-channel normalisation)
    std = torch.tensor(IMAGENET.std).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET.mean).view(1, 3, 1, 1)
    raw = x * std + mean
    assert torch.allclose(raw[:, 0], raw[:, 1], atol=1e-5)


def test_device_batcher_matches_the_cpu_batcher() -> None:
    """The CUDA path's batcher, run on CPU tensors: same members, same geometry, padding ignored."""
    import torch

    from segstudio.training.batches import DeviceBatcher

    data = blob_data(n=3, sparse=0.5)
    maker = InputMaker(IMAGENET, 3, torch.device("cpu"), False)
    aug = AugmentConfig(scale_range=(0.5, 0.7))
    cpu = CpuBatcher(data.train, 2, aug, maker, 255, seed=3)
    dev = DeviceBatcher(data.train, 2, aug, maker, 255, seed=3, device=torch.device("cpu"))
    try:
        a, b = cpu.get(4, (64, 80)), dev.get(4, (64, 80))
    finally:
        cpu.close()
        dev.close()
    assert a.x.shape == b.x.shape and a.y.shape == b.y.shape and b.y.dtype == torch.int64
    assert (a.y == b.y).float().mean() > 0.97
    assert (b.y == 255).float().mean() > 0.5  # shrunk images: mostly padding (and unpainted pixels)
    assert (a.x - b.x).abs().median() < 0.05
    assert torch.equal(a.complete, b.complete)


def test_engine_with_device_augmentation(tmp_path: Path) -> None:
    from segstudio.training.config import TrainConfig
    from segstudio.training.engine import train

    cfg = TrainConfig(arch="unet", options={"base_width": 8}, steps=3, batch_size=2, crop_stages=((0.0, 32),),
                      augment_on_device=True, output_dir=str(tmp_path), threads=1, device="cpu")
    events = list(train(cfg, blob_data(n=2)))
    assert events[-1].kind == "finished" and all(e.loss is not None for e in events if e.kind == "step")
