"""The RTFormer family: RTFormer-Slim and RTFormer-Base (docs/MODEL_NOTES.md §14)."""

from __future__ import annotations

from segstudio.zoo.spec import AuxOutput, NetSpec, Option

ORDER = 100
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_BUILDER = "segstudio.nets.rtformer:RTFormer"
_PAPER = "Wang et al., RTFormer: Efficient Design for Real-Time Semantic Segmentation with Transformer, " \
         "NeurIPS 2022 (arXiv:2210.07124)"

_AUX = (AuxOutput("aux", 0.4, help="SegHead on the stage-3 high-resolution branch (PaddleSeg loss coef 0.4)"),)


def _options(injection: tuple[bool, bool]) -> tuple[Option, ...]:
    return (
        Option("aux_head", True, "train-time auxiliary head on the stage-3 high branch", (True, False)),
        Option("drop_path_rate", 0.2, "stochastic depth of every residual branch of the two RTFormer blocks"),
        Option("injection", injection,
               "per RTFormer block (stage 4, stage 5): add the down-sampled high branch to the low branch"),
        Option("cross_size", 12, "side of the pooled token grid of the cross-resolution attention "
               "(12: Cityscapes config, 8: ADE20K config)"),
        Option("bn_momentum", 0.1, "BatchNorm momentum in PyTorch's convention; 0.9 reproduces PaddleSeg's "
               "bn_mom=0.1 literally (docs/MODEL_NOTES.md §0 P1)"),
    )


SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="rtformer_slim",
        builder=_BUILDER,
        config={"base_channels": 32, "head_channels": 64},
        family="rtformer",
        title="RTFormer-Slim",
        paper=_PAPER,
        output_stride=8,
        size_multiple=32,
        speed="realtime",
        description="Dual-resolution real-time network: convolutional stages, then two RTFormer blocks with "
        "GPU-friendly external attention on the 1/32 branch and cross-resolution attention on the 1/8 branch, "
        "DAPPM context head. 5.4M parameters.",
        aux_outputs=_AUX,
        options=_options((True, True)),
        reference_params=5_365_000,
        reference_options={"aux_head": False},
        reference_note="docs/MODEL_NOTES.md §14: 5.365M at 19 classes without the auxiliary head (5.403M with), "
        "re-derived from PaddleSeg rtformer.py, Cityscapes config (base 32, head 64, injection [True, True])",
    ),
    NetSpec(
        name="rtformer_base",
        builder=_BUILDER,
        config={"base_channels": 64, "head_channels": 128},
        family="rtformer",
        title="RTFormer-Base",
        paper=_PAPER,
        output_stride=8,
        size_multiple=32,
        speed="fast",
        description="RTFormer with twice the width of Slim (base 64, head 128); injection only after stage 4, "
        "as in the Cityscapes config. 17.8M parameters.",
        aux_outputs=_AUX,
        options=_options((True, False)),
        reference_params=17_766_000,
        reference_options={"aux_head": False},
        reference_note="docs/MODEL_NOTES.md §14: 17.766M at 19 classes without the auxiliary head (17.916M with), "
        "re-derived from PaddleSeg rtformer.py, Cityscapes config (base 64, head 128, injection [True, False])",
    ),
)
