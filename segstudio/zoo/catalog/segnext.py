"""SegNeXt T/S/B/L (MSCAN encoder + light Hamburger head)."""

from __future__ import annotations

from typing import Any

from segstudio.zoo.spec import NetSpec, Speed

ORDER = 90
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_PAPER = "Guo et al., SegNeXt, NeurIPS 2022 (arXiv:2209.08575)"
_SMALL = (32, 64, 160, 256)
_WIDE = (64, 128, 320, 512)


def _config(dims: tuple[int, ...], depths: tuple[int, ...], drop_path: float, ham_channels: int,
            rank: int) -> dict[str, Any]:
    return {"dims": dims, "depths": depths, "drop_path": drop_path, "ham_channels": ham_channels, "rank": rank}


# name suffix: (speed, description, reference parameters at 19 classes, the builder's config: embed dims,
# depths, drop-path rate, Hamburger channels (= head channels), NMF rank — docs/MODEL_NOTES.md §11)
_VARIANTS: tuple[tuple[str, Speed, str, int, dict[str, Any]], ...] = (
    ("t", "fast", "MSCAN-T (dims 32…256, depths 3-3-5-2), head 256 channels, NMF rank 16.", 4_230_000,
     _config(_SMALL, (3, 3, 5, 2), 0.1, 256, 16)),
    ("s", "fast", "MSCAN-S (dims 64…512, depths 2-2-4-2), head 256 channels, NMF rank 16.", 13_899_000,
     _config(_WIDE, (2, 2, 4, 2), 0.1, 256, 16)),
    ("b", "heavy", "MSCAN-B (depths 3-3-12-3), head 512 channels, NMF rank 64.", 27_569_000,
     _config(_WIDE, (3, 3, 12, 3), 0.1, 512, 64)),
    ("l", "heavy", "MSCAN-L (depths 3-5-27-3), head 1024 channels, NMF rank 64.", 48_792_000,
     _config(_WIDE, (3, 5, 27, 3), 0.3, 1024, 64)),
)

SPECS: tuple[NetSpec, ...] = tuple(
    NetSpec(
        name=f"segnext_{v}",
        builder="segstudio.nets.segnext:SegNeXt",
        config=config,
        family="segnext",
        title=f"SegNeXt-{v.upper()}",
        paper=_PAPER,
        output_stride=8,
        size_multiple=32,
        speed=speed,
        description="Convolutional encoder with multi-scale strip-conv attention (MSCAN) and a light Hamburger "
        "head (NMF matrix decomposition with fixed, seeded bases: deterministic) at 1/8 resolution. " + text,
        reference_params=params,
        reference_note=f"docs/MODEL_NOTES.md §11, run count of MSCAN-{v.upper()} + LightHamHead at 19 classes "
        f"({params / 1e6:.3f}M, given to 3 decimals); the NMF bases are a buffer, not parameters",
    )
    for v, speed, text, params, config in _VARIANTS
)
