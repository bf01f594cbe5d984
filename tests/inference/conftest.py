"""Fixtures for the inference tests: tiny UNets saved as model files.

``random_model_file`` has random weights (fast, for plumbing); ``toy_model_file``
is the UNet trained on :mod:`tests.inference.toy` scenes, for tests about
tiling and TTA that need decided outputs, as a real model's are, rather than
the near-ties of random weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from segstudio import nets
from segstudio.core.classes import ClassTable
from segstudio.inference.model_file import save_model
from segstudio.zoo import ModelCard
from tests.inference.toy import CLASSES, TOY_MODEL

torch.set_num_threads(2)


def card_for(model: torch.nn.Module, classes: list[str] = CLASSES, **kw) -> ModelCard:
    return ModelCard(arch="unet", classes=ClassTable.from_names(classes),
                     options=dict(model.segstudio_options), **kw)  # type: ignore[arg-type]


def calibrate_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Realistic BatchNorm statistics for a random model (as a trained one has)."""
    model.train()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model(torch.randn(2, model.inc[0][0].in_channels, 64, 64, generator=gen))  # type: ignore[index]
    return model.eval()


@pytest.fixture(scope="session")
def random_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = calibrate_bn(nets.create("unet", num_classes=3, base_width=4))
    path = tmp_path_factory.mktemp("models") / "random.safetensors"
    save_model(path, model, card_for(model))
    return path


@pytest.fixture
def toy_model_file(tmp_path: Path) -> Path:
    """A private copy of the trained toy model (tests may write caches beside it)."""
    assert TOY_MODEL.is_file(), f"{TOY_MODEL} is missing: run `python -m tests.inference.toy`"
    return Path(shutil.copy(TOY_MODEL, tmp_path / "toy.safetensors"))
