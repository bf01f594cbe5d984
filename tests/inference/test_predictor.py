"""The predictor: both backends agree, any size and input type, outputs, tiling, TTA, cancel, threads."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio import nets
from segstudio.core.tasks import Cancelled, CancelToken, Progress
from segstudio.inference.model_file import load_model
from segstudio.inference.predictor import TTA, Predictor
from tests.inference.conftest import calibrate_bn, card_for
from tests.inference.toy import scene


@pytest.fixture(scope="module")
def pair(random_model_file: Path) -> tuple[Predictor, Predictor]:
    return (Predictor.from_file(random_model_file, backend="torch"),
            Predictor.from_file(random_model_file, backend="onnx"))


def test_backends_agree_at_odd_sizes(pair: tuple[Predictor, Predictor]) -> None:
    torch_p, onnx_p = pair
    assert "torch cpu" in torch_p.backend.name and "onnxruntime" in onnx_p.backend.name
    rng = np.random.default_rng(0)
    for h, w in [(37, 53), (64, 64), (101, 77), (5, 9)]:
        image = rng.integers(0, 256, (h, w, 3), np.uint8)
        a = torch_p.predict(image, probabilities=True)
        b = onnx_p.predict(image, probabilities=True)
        assert a.labels.shape == (h, w) and a.labels.dtype == np.uint8
        assert a.probabilities is not None and b.probabilities is not None
        assert a.probabilities.shape == (3, h, w)
        assert np.abs(a.probabilities.astype(np.float32) - b.probabilities).max() < 2e-3
        assert (a.labels == b.labels).mean() > 0.999


def test_uncertainty_outputs(pair: tuple[Predictor, Predictor]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (48, 80, 3), np.uint8)
    for p in pair:
        out = p.predict(image, confidence=True, probabilities=True)
        probs = out.probabilities.astype(np.float32)
        assert np.allclose(probs.sum(0), 1.0, atol=3e-3)
        assert out.confidence.dtype == np.float16 and out.entropy.dtype == np.float16
        assert np.allclose(out.confidence, probs.max(0), atol=1e-3)
        top2 = np.sort(probs, 0)[-2:]
        decided = top2[1] - top2[0] > 2e-3  # float16 probabilities cannot order near-ties
        assert decided.mean() > 0.5 and (out.labels == probs.argmax(0))[decided].all()
        ent = -(probs * np.log(np.maximum(probs, 1e-12))).sum(0) / np.log(3)
        assert np.allclose(out.entropy, ent, atol=3e-3)
        assert float(out.entropy.min()) >= 0.0 and float(out.entropy.max()) <= 1.0 + 1e-3
        plain = p.predict(image)
        assert plain.confidence is None and plain.probabilities is None
        assert np.array_equal(plain.labels, out.labels)


def test_input_types(pair: tuple[Predictor, Predictor]) -> None:
    _, p = pair
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (40, 44, 3), np.uint8)
    base = p.predict(rgb, probabilities=True).probabilities
    # The same picture as uint16 (×257 maps 255 to 65535), as float 0..1 and with an alpha channel.
    for same in (rgb.astype(np.uint16) * 257, rgb.astype(np.float32) / 255,
                 np.dstack([rgb, np.full((40, 44), 255, np.uint8)])):
        other = p.predict(same, probabilities=True).probabilities
        assert np.abs(other.astype(np.float32) - base).max() < 2e-3
    gray = rng.integers(0, 256, (40, 44), np.uint8)
    assert np.array_equal(p.predict(gray).labels, p.predict(np.repeat(gray[:, :, None], 3, 2)).labels)
    with pytest.raises(ValueError, match="dtype"):
        p.predict(np.zeros((8, 8, 3), np.int64))
    with pytest.raises(ValueError, match="H×W"):
        p.predict(np.zeros((8, 8, 2), np.uint8))


def test_gray_model_and_16_bit_range() -> None:
    torch.manual_seed(0)
    model = calibrate_bn(nets.create("unet", num_classes=2, in_channels=1, base_width=4))
    card = card_for(model, classes=["a", "b"], in_channels=1, input_max=4095.0)
    p = Predictor.from_module(model, card)
    rng = np.random.default_rng(3)
    twelve_bit = rng.integers(0, 4096, (32, 32), np.uint16)
    as_float = p.predict(twelve_bit.astype(np.float32) / 4095, probabilities=True).probabilities
    as_uint16 = p.predict(twelve_bit, probabilities=True).probabilities
    assert np.abs(as_float.astype(np.float32) - as_uint16).max() < 2e-3
    rgb = rng.integers(0, 256, (32, 32, 3), np.uint8)
    luma = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255
    assert np.array_equal(p.predict(rgb).labels, p.predict(luma).labels)


def test_many_classes_give_uint16_labels() -> None:
    torch.manual_seed(0)
    model = calibrate_bn(nets.create("unet", num_classes=300, base_width=4))
    p = Predictor.from_module(model, card_for(model, classes=[f"c{i}" for i in range(300)]))
    out = p.predict(np.random.default_rng(0).integers(0, 256, (32, 40, 3), np.uint8))
    assert out.labels.dtype == np.uint16 and int(out.labels.max()) < 300


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_tiled_matches_untiled(toy_model_file: Path, backend: str) -> None:
    p = Predictor.from_file(toy_model_file, backend=backend)
    image, truth = scene(384, 512, seed=7)
    whole = p.predict(image, confidence=True)
    assert whole.windows == 1
    assert (whole.labels == truth).mean() > 0.8  # the toy model is a real (if weak) segmenter
    tiled = p.predict(image, confidence=True, tile_size=160)
    assert tiled.windows > 6
    same = (tiled.labels == whole.labels).mean()
    assert same >= 0.995, f"only {same:.2%} identical"
    assert np.abs(tiled.confidence.astype(np.float32) - whole.confidence).mean() < 0.01


def test_tiled_memory_does_not_grow_with_height(toy_model_file: Path) -> None:
    """Peak host memory of a tiled prediction: the documented bound, and only the outputs grow with H."""
    p = Predictor.from_file(toy_model_file, backend="onnx")
    tile, width, k = 256, 1000, 3
    peaks = {}
    for height in (1500, 3000):
        image = np.ascontiguousarray(np.tile(scene(300, 250, seed=9)[0], (height // 300, width // 250, 1)))
        tracemalloc.start()
        try:
            out = p.predict(image, tile_size=tile)
            peaks[height] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert out.labels.shape == (height, width) and out.windows > 25
        bands = 2 * (k + 1) * tile * width * 4 + 3 * k * tile * width * 4
        weights = 9 * tile * tile * 4
        bound = height * width + bands + weights + 2_000_000  # + the network's own buffers for one window
        assert peaks[height] < bound, f"{peaks[height] / 1e6:.1f} MB > bound {bound / 1e6:.1f} MB"
    grown = peaks[3000] - peaks[1500]
    full_logits_growth = k * 1500 * width * 4
    assert grown < 1500 * width * 1.5, f"peak grew by {grown / 1e6:.1f} MB for 1500 more rows"
    assert grown < 0.1 * full_logits_growth


def test_tta_is_flip_equivariant_and_reduces_to_plain(toy_model_file: Path) -> None:
    p = Predictor.from_file(toy_model_file, backend="onnx")
    image, truth = scene(128, 128, seed=11)
    tta = p.predict(image, tta=True, probabilities=True)
    mirrored = p.predict(image[:, ::-1], tta=True, probabilities=True)
    assert (mirrored.labels[:, ::-1] == tta.labels).mean() > 0.999
    assert np.abs(mirrored.probabilities[:, :, ::-1].astype(np.float32) - tta.probabilities).max() < 5e-3
    plain = p.predict(image, probabilities=True)
    assert np.abs(plain.probabilities.astype(np.float32) - tta.probabilities).max() > 0.01  # it did something
    assert (tta.labels == truth).mean() > 0.8
    single = p.predict(image, tta=TTA(scales=(1.0,), flip=False), probabilities=True)
    assert np.abs(single.probabilities.astype(np.float32) - plain.probabilities).max() < 2e-3


def test_cancel_stops_between_windows(toy_model_file: Path) -> None:
    p = Predictor.from_file(toy_model_file, backend="onnx")
    image = scene(400, 400, seed=3)[0]
    token = CancelToken()
    seen: list[Progress] = []

    def progress(pr: Progress) -> None:
        seen.append(pr)
        if pr.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        p.predict(image, tile_size=128, cancel=token, progress=progress)
    assert [s.done for s in seen] == [1, 2] and seen[0].total > 9
    # The predictor is still usable afterwards.
    assert p.predict(image[:64, :64]).labels.shape == (64, 64)


def test_one_caller_at_a_time_from_threads(pair: tuple[Predictor, Predictor]) -> None:
    torch_p, _ = pair
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (60 + 7 * i, 50, 3), np.uint8) for i in range(4)]
    expected = [torch_p.predict(im).labels for im in images]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(2):
            results[i] = torch_p.predict(images[i]).labels

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(np.array_equal(results[i], expected[i]) for i in range(4))


def test_predict_batch_equals_one_by_one(random_model_file: Path) -> None:
    model, card = load_model(random_model_file)
    p = Predictor.from_module(model, card)
    p.backend.batch_size = 3
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (40, 56, 3), np.uint8) for _ in range(4)] + [
        rng.integers(0, 256, (33, 20, 3), np.uint8)]
    batched = p.predict_batch(images, confidence=True)
    for image, got in zip(images, batched):
        one = p.predict(image, confidence=True)
        assert np.array_equal(one.labels, got.labels)
        assert np.abs(one.confidence.astype(np.float32) - got.confidence).max() < 2e-3
