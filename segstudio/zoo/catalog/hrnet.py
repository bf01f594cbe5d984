"""The HRNetV2 family: W18-Small-v2, W18, W48 with the concatenation head at 1/4."""

from __future__ import annotations

from segstudio.zoo.spec import NetSpec

ORDER = 20
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_BUILDER = "segstudio.nets.hrnet:build_hrnet"
_PAPER = "Wang, Sun et al., Deep High-Resolution Representation Learning, TPAMI 2020 (arXiv:1908.07919)"

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="hrnet_w18s",
        builder=_BUILDER,
        # seg_hrnet_w18_small_v2_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml
        config={"widths": (18, 36, 72, 144), "stage1_blocks": 2, "modules": (1, 3, 2), "blocks": (2, 2, 2)},
        family="hrnet",
        title="HRNetV2-W18-Small-v2",
        paper=_PAPER,
        output_stride=4,
        size_multiple=32,
        speed="fast",
        description="Four parallel branches (18/36/72/144 channels at 1/4…1/32) exchanging information "
        "in every module; all branches concatenated at 1/4. Small and sharp at object boundaries.",
        reference_params=3_939_579,
        reference_note="docs/MODEL_NOTES.md §4: seg_hrnet.py with the W18-Small-v2 yaml, 19 classes. Ours has "
        "270 fewer (no bias on the head's 1×1 conv, which a BN follows).",
    ),
    NetSpec(
        name="hrnet_w18",
        builder=_BUILDER,
        # HRNetV2-W18: W48's module/block counts (hrnet_w18 config of the HRNet repos) at width 18
        config={"widths": (18, 36, 72, 144), "stage1_blocks": 4, "modules": (1, 4, 3), "blocks": (4, 4, 4)},
        family="hrnet",
        title="HRNetV2-W18",
        paper=_PAPER,
        output_stride=4,
        size_multiple=32,
        speed="medium",
        description="Full HRNetV2 at width 18: W48's depth (4 bottlenecks, then 1/4/3 modules of 4 blocks "
        "per branch) with 18/36/72/144 channels. Between W18-Small-v2 and W48 in accuracy and cost.",
        reference_params=None,
        reference_note="docs/MODEL_NOTES.md §4 gives no count. The official HRNetV2-W18 config (hrnet_w18 of the HRNet "
        "classification repo, mmseg fcn_hr18: stage 1 four bottlenecks at 64; stages 2/3/4 with 1/4/3 modules of "
        "4 basic blocks per branch; widths 18/36/72/144) fed to HRNet-Semantic-Segmentation's seg_hrnet.py "
        "(0bbb2880) gives 9,641,119 parameters at 19 classes (backbone without last_layer 9,562,260). Ours: "
        "9,640,849, 270 fewer (no bias on the head's 1×1 conv); tests/nets/test_hrnet.py pins it.",
    ),
    NetSpec(
        name="hrnet_w48",
        builder=_BUILDER,
        # seg_hrnet_w48_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml
        config={"widths": (48, 96, 192, 384), "stage1_blocks": 4, "modules": (1, 4, 3), "blocks": (4, 4, 4)},
        family="hrnet",
        title="HRNetV2-W48",
        paper=_PAPER,
        output_stride=4,
        size_multiple=32,
        speed="heavy",
        description="The large HRNetV2 (48/96/192/384 channels): the Cityscapes 80.9 mIoU model of the "
        "paper. Accurate, but slow on CPU and hungry for memory when training.",
        reference_params=65_859_379,
        reference_note="docs/MODEL_NOTES.md §4: seg_hrnet.py with the W48 yaml, 19 classes. Ours has 720 fewer "
        "(no bias on the head's 1×1 conv, which a BN follows).",
    ),
)
