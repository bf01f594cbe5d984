"""Shared pieces of the zoo benchmarks: which networks, how to build them, parameters and MACs.

Multiply-accumulates are counted with ``torch.utils.flop_counter.FlopCounterMode``
on the ``meta`` device (shapes only: no memory, no arithmetic, so 1024×2048 costs
nothing even for the heaviest network). The counter covers convolutions,
transposed convolutions, matrix products and attention; normalisation,
activations, pooling, resizing and other element-wise work are not counted,
which is the usual convention of papers. It reports FLOPs = 2 × MACs; we print
GMACs (what papers usually call "GFLOPs").
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segstudio import nets, zoo

NUM_CLASSES = 19
"""Cityscapes' class count: the reference parameter counts (docs/MODEL_NOTES.md) are given for it."""


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"1024x2048,512x512"`` → ``[(1024, 2048), (512, 512)]`` (height × width)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            h, w = (int(v) for v in part.split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {part!r} is not HEIGHTxWIDTH, e.g. 1024x2048") from None
        if h < 1 or w < 1:
            raise argparse.ArgumentTypeError(f"size {part!r} must be positive")
        sizes.append((h, w))
    if not sizes:
        raise argparse.ArgumentTypeError("no size given")
    return sizes


def size_label(hw: tuple[int, int]) -> str:
    return f"{hw[0]}×{hw[1]}"


def select_networks(only: str | None, skip: str | None = None) -> list[str]:
    """Every buildable network in catalogue order, or the comma-separated ``only`` list (checked)."""
    names = nets.available()
    if only:
        wanted = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise SystemExit(f"unknown network(s): {', '.join(unknown)}; available: {', '.join(names)}")
        names = wanted
    if skip:
        dropped = {n.strip() for n in skip.split(",")}
        names = [n for n in names if n not in dropped]
    return names


def build(name: str, num_classes: int = NUM_CLASSES) -> nn.Module:
    """Network ``name`` in eval mode, with the options its reference parameter count was taken under."""
    spec = zoo.get_spec(name)
    return nets.create(name, num_classes=num_classes, **dict(spec.reference_options)).eval()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, hw: tuple[int, int], in_channels: int = 3) -> int:
    """Multiply-accumulates of one eval-mode forward pass at batch 1 and ``hw``.

    Runs on the meta device; if the network cannot run there (an op without a
    meta kernel), it runs for real on the CPU, which gives the same count slowly.
    """
    try:
        meta = _on_meta(model)
        return _macs(meta, torch.empty(1, in_channels, *hw, device="meta"))
    except Exception as exc:  # any failure on meta: fall back to real tensors
        print(f"  note: counting on the CPU ({type(exc).__name__}: {exc})", file=sys.stderr)
    return _macs(model, torch.zeros(1, in_channels, *hw))


def _on_meta(model: nn.Module) -> nn.Module:
    # a copy: moving parameters to meta would destroy the caller's weights
    clone = copy.deepcopy(model)
    return clone.to("meta")


def _macs(model: nn.Module, x: torch.Tensor) -> int:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
    """A GitHub-flavoured Markdown table; ``right`` marks right-aligned (numeric) columns."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
    """A plain aligned table for the terminal."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    out = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in cells[1:]]
    return "\n".join(out)
