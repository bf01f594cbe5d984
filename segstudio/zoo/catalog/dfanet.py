"""The DFANet family: deep feature aggregation over three cascaded Xception backbones."""

from __future__ import annotations

from segstudio.zoo.spec import NetSpec

ORDER = 50
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_BUILDER = "segstudio.nets.dfanet:DFANet"
_PAPER = "Li, Xiong, Fan, Sun, DFANet: Deep Feature Aggregation for Real-Time Semantic Segmentation, CVPR 2019 " \
    "(arXiv:1904.02216)"

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="dfanet_a",
        builder=_BUILDER,
        config={"widths": (48, 96, 192)},
        family="dfanet",
        title="DFANet A",
        paper=_PAPER,
        output_stride=4,
        size_multiple=64,
        speed="realtime",
        description="Three cascaded XceptionA backbones (widths 48/96/192) with FC attention, sub-network "
        "and sub-stage feature aggregation and a two-path decoder at 1/4. Few FLOPs; trained from scratch here.",
        reference_params=None,
        reference_note="docs/MODEL_NOTES.md §13; no official code, so no reference count. Ours, built to the paper's "
        "Table 1 (three XceptionA backbones, fc-1000 attention each, decoder width 64): 1,842,843 at 19 "
        "classes. The paper's Table 5 gives 'Params 7.8M' (Table 3: one Backbone A 2.1M, ×3 7.6M), which "
        "Table 1's layers cannot reach (×4.2 ours). Ours ×4 bytes = 7.4 MB (one backbone 2.2 MB), so the "
        "paper's column may be float32 megabytes; unconfirmed, hence no reference_params.",
    ),
    NetSpec(
        name="dfanet_b",
        builder=_BUILDER,
        config={"widths": (32, 64, 128)},
        family="dfanet",
        title="DFANet B",
        paper=_PAPER,
        output_stride=4,
        size_multiple=64,
        speed="realtime",
        description="DFANet with the narrower XceptionB backbones (widths 32/64/128): about half the FLOPs "
        "of DFANet A.",
        reference_params=None,
        reference_note="docs/MODEL_NOTES.md §13; no official code, so no reference count. Ours, built to the paper's "
        "Table 1 (three XceptionB backbones 32/64/128, fc-1000 attention each, decoder width 64): 1,109,115 "
        "at 19 classes. The paper's Table 5 gives 'Params 4.8M' (Table 3: one Backbone B 1.4M, ×3 4.7M), "
        "×4.3 ours; ours ×4 bytes = 4.4 MB (one backbone 1.3 MB), consistent with float32 megabytes; "
        "unconfirmed, hence no reference_params.",
    ),
)
