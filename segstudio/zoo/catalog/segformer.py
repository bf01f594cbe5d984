"""SegFormer B0–B5 (MiT encoder + all-MLP decoder)."""

from __future__ import annotations

from typing import Any

from segstudio.zoo.spec import NetSpec, Speed

ORDER = 80
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_PAPER = "Xie et al., SegFormer, NeurIPS 2021 (arXiv:2105.15203)"
_SMALL = (32, 64, 160, 256)
_WIDE = (64, 128, 320, 512)


def _config(dims: tuple[int, ...], depths: tuple[int, ...], decoder_channels: int) -> dict[str, Any]:
    return {"dims": dims, "depths": depths, "decoder_channels": decoder_channels}


# name suffix: (speed, description, reference parameters at 19 classes, the builder's config) — the
# released code's mit_b0..b5 and SegFormerHead (docs/MODEL_NOTES.md §10)
_VARIANTS: tuple[tuple[str, Speed, str, int, dict[str, Any]], ...] = (
    ("b0", "fast", "MiT-B0 (dims 32…256, depths 2-2-2-2), decoder 256 channels. The smallest and fastest.",
     3_719_000, _config(_SMALL, (2, 2, 2, 2), 256)),
    ("b1", "fast", "MiT-B1 (dims 64…512, depths 2-2-2-2), decoder 256 channels.", 13_682_000,
     _config(_WIDE, (2, 2, 2, 2), 256)),
    ("b2", "heavy", "MiT-B2 (depths 3-4-6-3), decoder 768 channels.", 27_361_000, _config(_WIDE, (3, 4, 6, 3), 768)),
    ("b3", "heavy", "MiT-B3 (depths 3-4-18-3), decoder 768 channels.", 47_237_000,
     _config(_WIDE, (3, 4, 18, 3), 768)),
    ("b4", "heavy", "MiT-B4 (depths 3-8-27-3), decoder 768 channels.", 64_008_000,
     _config(_WIDE, (3, 8, 27, 3), 768)),
    ("b5", "heavy", "MiT-B5 (depths 3-6-40-3), decoder 768 channels. The largest.", 84_608_000,
     _config(_WIDE, (3, 6, 40, 3), 768)),
)

SPECS: tuple[NetSpec, ...] = tuple(
    NetSpec(
        name=f"segformer_{v}",
        builder="segstudio.nets.segformer:SegFormer",
        config=config,
        family="segformer",
        title=f"SegFormer-{v.upper()}",
        paper=_PAPER,
        output_stride=4,
        size_multiple=32,
        speed=speed,
        description="Hierarchical transformer with efficient (spatially reduced) self-attention, Mix-FFN "
        "and no positional encoding; all-MLP decoder at 1/4 resolution. " + text,
        reference_params=params,
        reference_note=f"docs/MODEL_NOTES.md §10, run count of NVlabs/SegFormer mit_{v} + SegFormerHead at 19 classes "
        f"({params / 1e6:.3f}M, given to 3 decimals); expansion 4 in every stage as in the released code",
    )
    for v, speed, text, params, config in _VARIANTS
)
