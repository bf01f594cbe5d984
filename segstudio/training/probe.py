"""How long one optimizer step of a recipe takes on this machine: the honest part of a time estimate.

Building the network and timing two steps on random data at the recipe's
batch and crop size (after one warm-up step) takes a few seconds for small
networks and up to a minute for the largest on a CPU; the app runs it in a
worker when the user picks a network to train from scratch.
"""

from __future__ import annotations

import time

import torch

from segstudio import nets
from segstudio.training.config import FULL_IMAGE, TrainConfig
from segstudio.training.engine import resolve_device
from segstudio.training.losses import SegLoss
from segstudio.zoo import get_spec


def step_seconds(cfg: TrainConfig, num_classes: int, in_channels: int = 3, image_hw: tuple[int, int] = (512, 512),
                 steps: int = 2) -> float:
    """Seconds per optimizer step of ``cfg`` (a network from scratch: ``cfg.arch``/``cfg.options``), median of
    ``steps`` timed steps on random inputs."""
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _time_steps(cfg, num_classes, in_channels, image_hw, steps)
    finally:
        torch.set_num_threads(threads)  # the caller's process keeps its own setting


def _time_steps(cfg: TrainConfig, num_classes: int, in_channels: int, image_hw: tuple[int, int], steps: int
                ) -> float:
    device = resolve_device(cfg.device)
    spec = get_spec(cfg.arch)
    size = cfg.crop_stages[-1][1]
    m = spec.size_multiple
    h, w = image_hw if size == FULL_IMAGE else (min(size, image_hw[0]), min(size, image_hw[1]))
    h, w = -(-h // m) * m, -(-w // m) * m
    model = nets.create(cfg.arch, num_classes=num_classes, in_channels=in_channels, **cfg.options).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    loss_fn = SegLoss(cfg.loss_stages[0][1], spec, num_classes, 255, None, cfg.ohem_thresh, cfg.ohem_min_kept)
    x = torch.randn(cfg.batch_size, in_channels, h, w, device=device)
    y = torch.randint(0, num_classes, (cfg.batch_size, h, w), device=device)
    complete = torch.ones(cfg.batch_size, dtype=torch.bool, device=device)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        loss, _ = loss_fn(model(x), y, complete)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
