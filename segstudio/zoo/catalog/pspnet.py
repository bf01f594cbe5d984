"""The PSPNet family: pyramid pooling on a dilated ResNetV1c at output stride 8.

The mmseg layout, docs/MODEL_NOTES.md §6.
"""

from __future__ import annotations

from segstudio.zoo.spec import AuxOutput, NetSpec, Option

ORDER = 60
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

_BUILDER = "segstudio.nets.pspnet:PSPNet"
_PAPER = "Zhao et al., Pyramid Scene Parsing Network, CVPR 2017 (arXiv:1612.01105)"
_AUX = AuxOutput("aux", 0.4, "logits", "FCN head on ResNet stage 3 (1024→256→classes, at 1/8), as in mmseg")
_OPTIONS = (Option("aux", True, "auxiliary FCN head on stage 3 (train mode only, loss weight 0.4)", (True, False)),)
_LAYOUT = ("mmseg pspnet_r*-d8 layout (ResNetV1c deep stem, PPM 512 ch, dropout 0.1, aux FCN 1024→256), "
           "except the 1-bin branch: biased 1×1 conv without BN (trains at batch 1), 512 fewer parameters")

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="pspnet_r50",
        builder=_BUILDER,
        config={"depth": 50},
        family="pspnet",
        title="PSPNet (ResNet-50, OS 8)",
        paper=_PAPER,
        output_stride=8,
        size_multiple=8,
        speed="medium",
        description="Dilated ResNetV1c-50 (output stride 8) with a pyramid pooling module (bins 1, 2, 3, 6) "
        "for global context. Strong on scene parsing; heavy at full resolution.",
        aux_outputs=(_AUX,),
        options=_OPTIONS,
        reference_params=48_975_494,
        reference_options={"aux": True},
        reference_note="No count in docs/MODEL_NOTES.md §6; counted from the mmseg pspnet_r50-d8 config at 19 classes "
        "WITH the aux head: ResNetV1c-50 23,527,264 (torchvision ResNet-50 without fc 23,508,032 + 19,232 for the "
        "deep stem) + PSPHead 23,083,539 (4 × 1×1 2048→512 + BN, 3×3 4096→512 + BN, 512→19) + aux FCNHead "
        "2,364,691 (3×3 1024→256 + BN, 256→19) = 48,975,494; without aux 46,610,803. " + _LAYOUT,
    ),
    NetSpec(
        name="pspnet_r101",
        builder=_BUILDER,
        config={"depth": 101},
        family="pspnet",
        title="PSPNet (ResNet-101, OS 8)",
        paper=_PAPER,
        output_stride=8,
        size_multiple=8,
        speed="heavy",
        description="Dilated ResNetV1c-101 (output stride 8) with a pyramid pooling module (bins 1, 2, 3, 6). "
        "The larger PSPNet; slow without a GPU.",
        aux_outputs=(_AUX,),
        options=_OPTIONS,
        reference_params=68_100_000,
        reference_options={"aux": True},
        reference_note="docs/MODEL_NOTES.md §6, SegFormer paper Table 2: PSPNet-R101 68.1M. That figure includes "
        "the aux FCN head (the mmseg config counts 68,068,492 at 150 ADE20K classes with aux, 65,670,134 without; "
        "67,967,622 at 19 classes with aux). " + _LAYOUT,
    ),
)
