"""The Fast-SCNN family: the zoo's real-time network, the app's default on CPU."""

from __future__ import annotations

from segstudio.zoo.spec import AuxOutput, NetSpec, Option

ORDER = 40
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="fastscnn",
        builder="segstudio.nets.fastscnn:FastSCNN",
        family="fastscnn",
        title="Fast-SCNN",
        paper="Poudel, Liwicki, Cipolla, Fast-SCNN: Fast Semantic Segmentation Network, BMVC 2019 "
        "(arXiv:1902.04502)",
        output_stride=8,
        size_multiple=32,
        speed="realtime",
        description="Two-branch real-time network (1.1M parameters): a shallow learning-to-downsample "
        "branch at 1/8 and a MobileNetV2 global feature extractor with pyramid pooling at 1/32, fused "
        "at 1/8. Designed to be trained from scratch; the default network on CPU.",
        aux_outputs=(
            AuxOutput("aux_downsample", 0.4, "logits",
                      "FCN head on the learning-to-downsample output (64 ch, 1/8)"),
            AuxOutput("aux_global", 0.4, "logits",
                      "FCN head on the global feature extractor output (128 ch, 1/32)"),
        ),
        options=(
            Option("aux", True, "two auxiliary FCN heads (loss weight 0.4 each, as mmseg) in train mode",
                   (True, False)),
        ),
        reference_params=1_138_051,
        reference_options={"aux": False},
        reference_note="docs/MODEL_NOTES.md §12: Tramac/Fast-SCNN-pytorch built at 19 classes without aux heads "
        "(1,138,051). Ours drops the two biases before BN in the fusion module (-256). With aux=True "
        "ours adds two heads (64→32 and 128→32 3×3 convs), mmseg's pair, not Tramac's single head "
        "(1,157,174).",
    ),
)
