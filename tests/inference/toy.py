"""A toy segmentation task and a tiny UNet trained on it, for tests that need a decided network.

Coloured discs and bars on a textured grey background; the class is the
colour. ``python -m tests.inference.toy`` retrains the network (a few minutes on
two CPU cores) and rewrites ``assets/toy_unet.safetensors``, which the tests
load instead of training it every run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from segstudio import nets
from segstudio.core.classes import ClassTable
from segstudio.inference.model_file import save_model
from segstudio.zoo import ModelCard

TOY_MODEL = Path(__file__).with_name("assets") / "toy_unet.safetensors"
CLASSES = ["background", "red", "blue"]
_COLOURS = np.array([[0, 0, 0], [200, 40, 40], [40, 60, 210]], np.float32)


def scene(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(H×W×3 uint8 image, H×W uint8 labels): a textured background with red and blue shapes."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(max(2, height * width // 1500)):
        cls = rng.integers(1, 3)
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        if rng.random() < 0.6:
            r = rng.integers(6, 20)
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        else:
            inside = (abs(yy - cy) < rng.integers(3, 8)) & (abs(xx - cx) < rng.integers(10, 40))
        labels[inside] = cls
    grey = rng.normal(120, 25, (height, width, 1)).astype(np.float32)
    image = np.where(labels[..., None] > 0, _COLOURS[labels], grey)
    image = image + rng.normal(0, 18, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), labels



def train_toy(steps: int = 600, size: int = 48, batch: int = 8) -> torch.nn.Module:
    """UNet (base width 4) trained from seed 0 on fresh toy scenes: Adam 1e-2, ×0.1 for the last fifth."""
    torch.manual_seed(0)
    model = nets.create("unet", num_classes=3, base_width=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(steps * 0.8)], 0.1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    model.train()
    for step in range(steps):
        pairs = [scene(size, size, 1000 + step * batch + i) for i in range(batch)]
        x = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(np.stack([p[1] for p in pairs])).long()
        out = model((x - mean) / std)["out"]
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0:
            hit = ((out.argmax(1) == y) & (y > 0)).sum().item() / max(1, int((y > 0).sum()))
            print(f"step {step}: loss {loss.item():.4f}, foreground recall {hit:.3f}", file=sys.stderr, flush=True)
    return model.eval()


def toy_card(model: torch.nn.Module) -> ModelCard:
    return ModelCard(arch="unet", classes=ClassTable.from_names(CLASSES),
                     options=dict(model.segstudio_options),  # type: ignore[arg-type]
                     train_resolution=(48, 48), name="toy",
                     description="tiny UNet trained on toy scenes (tests/inference/toy.py)")


if __name__ == "__main__":
    torch.set_num_threads(2)
    trained = train_toy()
    TOY_MODEL.parent.mkdir(exist_ok=True)
    save_model(TOY_MODEL, trained, toy_card(trained))
    print(f"wrote {TOY_MODEL}", file=sys.stderr)
