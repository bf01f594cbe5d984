"""The DeepLabv3 family: ASPP with image pooling on a dilated ResNetV1c (mmseg layout, docs/MODEL_NOTES.md §7)."""

from __future__ import annotations

from segstudio.zoo.spec import AuxOutput, NetSpec, Option

ORDER = 70
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_BUILDER = "segstudio.nets.deeplabv3:DeepLabV3"
_PAPER = "Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, 2017 (arXiv:1706.05587)"
_AUX = AuxOutput("aux", 0.4, "logits", "FCN head on ResNet stage 3 (1024→256→classes, at 1/8 or 1/16), as in mmseg")
_OPTIONS = (
    Option("output_stride", 8, "8: stages 3-4 dilated 2 and 4, ASPP rates 12/24/36 (mmseg D8); "
           "16: stage 4 dilated 2, ASPP rates 6/12/18, about 3× cheaper", (8, 16)),
    Option("multi_grid", False, "unit rates (1, 2, 4) for the three stage-4 blocks, multiplying the stage's "
           "dilation as in the paper (mmseg D16-MG124)", (False, True)),
    Option("aux", True, "auxiliary FCN head on stage 3 (train mode only, loss weight 0.4)", (True, False)),
)
_LAYOUT = ("mmseg deeplabv3_r*-d8 layout (ResNetV1c deep stem, ASPP 512 ch, 3×3 bottleneck, dropout 0.1, aux FCN "
           "1024→256), except the image-pool branch: biased 1×1 conv without BN (trains at batch 1), 512 fewer "
           "parameters. The count does not depend on output_stride or multi_grid")
_DESC = ("Dilated ResNetV1c-{d} with atrous spatial pyramid pooling (rates 12/24/36 at output stride 8, 6/12/18 "
         "at 16) and image pooling. {extra}")

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="deeplabv3_r50",
        builder=_BUILDER,
        config={"depth": 50},
        family="deeplabv3",
        title="DeepLabv3 (ResNet-50)",
        paper=_PAPER,
        output_stride=8,
        size_multiple=16,
        speed="medium",
        description=_DESC.format(d=50, extra="Output stride 16 is the cheaper option."),
        aux_outputs=(_AUX,),
        options=_OPTIONS,
        reference_params=68_113_030,
        reference_options={"aux": True},
        reference_note="No count in docs/MODEL_NOTES.md §7; counted from the mmseg deeplabv3_r50-d8 config at 19 "
        "classes WITH the aux head: ResNetV1c-50 23,527,264 + ASPPHead 42,221,075 (image pool and 1×1 branch 2048→512 "
        "+ BN, three 3×3 2048→512 + BN, 3×3 bottleneck 2560→512 + BN, 512→19) + aux FCNHead 2,364,691 = "
        "68,113,030; without aux 65,748,339. " + _LAYOUT,
    ),
    NetSpec(
        name="deeplabv3_r101",
        builder=_BUILDER,
        config={"depth": 101},
        family="deeplabv3",
        title="DeepLabv3 (ResNet-101)",
        paper=_PAPER,
        output_stride=8,
        size_multiple=16,
        speed="heavy",
        description=_DESC.format(d=101, extra="The largest network of the family; slow without a GPU."),
        aux_outputs=(_AUX,),
        options=_OPTIONS,
        reference_params=87_105_158,
        reference_options={"aux": True},
        reference_note="No count in docs/MODEL_NOTES.md §7; counted from the mmseg deeplabv3_r101-d8 config at 19 "
        "classes WITH the aux head: ResNetV1c-101 42,519,392 (torchvision ResNet-101 without fc 42,500,160 + 19,232 "
        "for the deep stem) + ASPPHead 42,221,075 + aux FCNHead 2,364,691 = 87,105,158; without aux 84,740,467. "
        + _LAYOUT,
    ),
)
