"""SegNeXt T/S/B/L (MSCAN encoder + light Hamburger head)."""

from __future__ import annotations

from segstudio.zoo.spec import NetSpec, Speed

_PAPER = "Guo et al., SegNeXt, NeurIPS 2022 (arXiv:2209.08575)"

# name suffix: (speed, description, reference parameters at 19 classes)
_VARIANTS: tuple[tuple[str, Speed, str, int], ...] = (
    ("t", "fast", "MSCAN-T (dims 32…256, depths 3-3-5-2), head 256 channels, NMF rank 16.", 4_230_000),
    ("s", "fast", "MSCAN-S (dims 64…512, depths 2-2-4-2), head 256 channels, NMF rank 16.", 13_899_000),
    ("b", "heavy", "MSCAN-B (depths 3-3-12-3), head 512 channels, NMF rank 64.", 27_569_000),
    ("l", "heavy", "MSCAN-L (depths 3-5-27-3), head 1024 channels, NMF rank 64.", 48_792_000),
)

SPECS: tuple[NetSpec, ...] = tuple(
    NetSpec(
        name=f"segnext_{v}",
        family="segnext",
        title=f"SegNeXt-{v.upper()}",
        paper=_PAPER,
        output_stride=8,
        size_multiple=32,
        speed=speed,
        description="Convolutional encoder with multi-scale strip-conv attention (MSCAN) and a light Hamburger "
        "head (NMF matrix decomposition with fixed, seeded bases: deterministic) at 1/8 resolution. " + text,
        reference_params=params,
        reference_note=f"MODEL_SPECS §11, run count of MSCAN-{v.upper()} + LightHamHead at 19 classes "
        f"({params / 1e6:.3f}M, given to 3 decimals); the NMF bases are a buffer, not parameters",
    )
    for v, speed, text, params in _VARIANTS
)
