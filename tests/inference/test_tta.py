"""Test-time augmentation: the views, the default a model's card gives, and that every view maps back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio import nets
from segstudio.inference.model_file import save_model
from segstudio.inference.predictor import Predictor
from segstudio.inference.tta import DIHEDRAL, TTA, View, card_tta, resolve_tta
from segstudio.training.config import finetune_recipe, small_data_recipe
from tests.inference.conftest import calibrate_bn, card_for


def _seen(image: np.ndarray, view: View) -> np.ndarray:
    """``image`` (H×W[×C]) as the view shows it to the network."""
    if view.transpose:
        image = image.swapaxes(0, 1)
    if view.flip_rows:
        image = image[::-1]
    if view.flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def _back(prob: np.ndarray, view: View) -> np.ndarray:
    """Probabilities (K×H×W) of a view mapped back onto the image's pixels."""
    if view.flip_cols:
        prob = prob[:, :, ::-1]
    if view.flip_rows:
        prob = prob[:, ::-1]
    return prob.swapaxes(1, 2) if view.transpose else prob


def test_dihedral_views_are_the_eight_symmetries_of_the_square() -> None:
    image = np.arange(16).reshape(4, 4)
    views = list(DIHEDRAL.views())
    assert len(views) == 8 == DIHEDRAL.passes
    turned = {np.rot90(image, k).tobytes() for k in range(4)} | {np.rot90(image[:, ::-1], k).tobytes()
                                                                 for k in range(4)}
    assert {_seen(image, v).tobytes() for v in views} == turned
    assert list(TTA(scales=(1.0,)).views()) == [View(), View(flip_cols=True)]
    assert TTA(scales=(0.5, 1.0), flip=False).passes == 2


def test_the_card_gives_the_eight_views_only_to_models_trained_with_quarter_turns() -> None:
    assert card_tta(small_data_recipe().to_dict()) == DIHEDRAL  # micrographs: turned and mirrored in training
    assert card_tta(finetune_recipe("street.safetensors", None).to_dict()) is None  # street scenes: mirrors only
    assert card_tta({"augment": {"rot90": True, "hflip": False, "vflip": False}}) is None
    assert card_tta({}) is None and card_tta(None) is None and card_tta({"augment": "odd"}) is None


def test_a_callers_choice_over_the_default() -> None:
    assert resolve_tta(None, DIHEDRAL) == DIHEDRAL
    assert resolve_tta(None, None) is None
    assert resolve_tta(False, DIHEDRAL) is None
    assert resolve_tta(True, None) == TTA()
    own = TTA(scales=(1.0,))
    assert resolve_tta(own, DIHEDRAL) is own


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_each_of_the_eight_views_maps_back_onto_its_pixels(random_model_file: Path, backend: str) -> None:
    """The predictor's average over the eight views equals the views predicted one by one and turned back by
    hand, on an image that is not square and whose sides are not multiples of the network's stride."""
    p = Predictor.from_file(random_model_file, backend=backend)
    image = np.random.default_rng(3).integers(0, 256, (37, 53, 3), np.uint8)
    got = p.predict(image, tta=DIHEDRAL, probabilities=True).probabilities
    assert got is not None and got.shape == (3, 37, 53)
    by_hand = np.mean([_back(p.predict(_seen(image, v), probabilities=True).probabilities.astype(np.float32), v)
                       for v in DIHEDRAL.views()], axis=0)
    assert np.abs(got.astype(np.float32) - by_hand).max() < 3e-3
    plain = p.predict(image, tta=False, probabilities=True).probabilities
    assert np.abs(plain.astype(np.float32) - by_hand).max() > 0.01  # a random network is not symmetric


def test_a_model_trained_with_quarter_turns_averages_its_views_by_default(tmp_path: Path,
                                                                        random_model_file: Path) -> None:
    torch.manual_seed(1)
    model = calibrate_bn(nets.create("unet", num_classes=3, base_width=4))
    path = save_model(tmp_path / "em.safetensors", model, card_for(model, recipe=small_data_recipe().to_dict()))
    image = np.random.default_rng(4).integers(0, 256, (40, 48, 3), np.uint8)
    for backend in ("torch", "onnx"):
        p = Predictor.from_file(path, backend=backend)
        assert p.tta == DIHEDRAL and any("8 turned and mirrored views" in n for n in p.notes)  # the status line
        default = p.predict(image, probabilities=True).probabilities
        assert np.array_equal(default, p.predict(image, tta=DIHEDRAL, probabilities=True).probabilities)
        alone = p.predict(image, tta=False, probabilities=True).probabilities
        assert np.abs(default.astype(np.float32) - alone).max() > 0.01
        assert Predictor.from_file(path, backend=backend, tta=False).tta is None
    assert Predictor.from_file(random_model_file).tta is None  # no recipe: the image alone, as before
