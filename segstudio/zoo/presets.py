"""Named networks with settings of their own, offered beside the zoo's networks. Pure metadata.

:data:`SMALL_DATA` is the small-data U-Net: a U-Net of base width 8 that
learns from a handful of sparsely corrected images on a CPU in minutes
(benchmarks/train_hitl_isbi.py). It is an explicit choice of the user's, never
a stand-in for a model that cannot be trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A zoo network with fixed options, under a name of its own."""

    name: str
    arch: str
    title: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)


SMALL_DATA = Preset(
    name="small-data",
    arch="unet",
    options={"base_width": 8},
    title="Small-data U-Net (base width 8, from scratch)",
    description="A narrow U-Net (0.5 M parameters) trained from scratch on your corrections with flips and "
    "quarter turns: made for a few sparsely painted images on a CPU (microscopy, anything without a trained "
    "model). On ISBI EM slices, 2 minutes on 2 cores reach 0.76 mIoU from 2 % of the pixels.",
)
PRESETS: dict[str, Preset] = {SMALL_DATA.name: SMALL_DATA}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}") from None
