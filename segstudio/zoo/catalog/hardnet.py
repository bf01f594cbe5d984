"""FC-HarDNet-70: harmonic densely connected encoder-decoder for real-time segmentation."""

from __future__ import annotations

from segstudio.zoo.spec import NetSpec

ORDER = 30
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="hardnet70",
        builder="segstudio.nets.hardnet:FCHarDNet",
        family="hardnet",
        title="FC-HarDNet-70",
        paper="Chao et al., HarDNet: A Low Memory Traffic Network, ICCV 2019 (arXiv:1909.00948)",
        output_stride=4,
        size_multiple=64,
        speed="realtime",
        description="Harmonic dense blocks (sparse power-of-two links) in a U-shaped encoder-decoder "
        "down to 1/64, logits at 1/4. Very fast with few parameters (4.1M). Inputs need at least "
        "61×61 pixels.",
        reference_params=4_119_257,
        reference_note="docs/MODEL_NOTES.md §9: PingoLH/FCHarDNet ptsemseg/models/hardnet.py built at 19 classes.",
    ),
)
