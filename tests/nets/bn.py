"""BatchNorm statistics for freshly built networks, shared by the zoo tests."""

from __future__ import annotations

import torch


def calibrate_bn(model: torch.nn.Module, shape: tuple[int, ...] = (2, 3, 96, 128)) -> None:
    """Give BatchNorm realistic running statistics, as a trained model has, before eval-mode checks.

    Two seeded random batches in train mode with a cumulative average; the momenta are restored and
    the model is left in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = None  # cumulative average
    model.train()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(*shape, generator=gen))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()
