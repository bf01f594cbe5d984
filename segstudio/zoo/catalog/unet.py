"""The UNet family: UNet, UNet++, UNet 3+, LinkNet."""

from __future__ import annotations

from segstudio.zoo.spec import AuxOutput, NetSpec, Option

ORDER = 10
"""Where the family comes in listings (see ``segstudio.zoo.catalog``)."""

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="unet",
        builder="segstudio.nets.unet:UNet",
        family="unet",
        title="U-Net",
        paper="Ronneberger et al., U-Net, MICCAI 2015 (arXiv:1505.04597)",
        output_stride=1,
        size_multiple=16,
        speed="medium",
        description="Encoder-decoder with skip connections, widths 64…1024, padded convs + BN. "
        "Strong on small data sets and microscopy.",
        options=(
            Option("upsample", "transpose", "2×2 transposed conv (paper) or bilinear + 1×1 conv",
                   ("transpose", "bilinear")),
            Option("base_width", 64, "channels of the first level; doubles per level"),
        ),
        reference_params=31_038_803,
        reference_note="docs/MODEL_NOTES.md §1: padded + BN, bias-free 3×3 convs, ConvTranspose 2×2: "
        "31,037,633 at 1 class, +65 per extra class",
    ),
    NetSpec(
        name="unetpp",
        builder="segstudio.nets.unetpp:UNetPlusPlus",
        family="unet",
        title="UNet++",
        paper="Zhou et al., UNet++: A Nested U-Net Architecture, DLMIA 2018 (arXiv:1807.10165)",
        output_stride=1,
        size_multiple=16,
        speed="medium",
        description="Nested, densely connected skip pathways between a UNet's encoder and decoder, "
        "widths 32…512, deep supervision on four full-resolution heads; at inference the heads are "
        "averaged (accurate) or the network is pruned to one head (fast).",
        aux_outputs=(
            AuxOutput("head1", 1.0, "logits", "deep-supervision head on X^{0,1}"),
            AuxOutput("head2", 1.0, "logits", "deep-supervision head on X^{0,2}"),
            AuxOutput("head3", 1.0, "logits", "deep-supervision head on X^{0,3}"),
        ),
        options=(
            Option("upsample", "bilinear", "bilinear + 1×1 conv (PaddleSeg) or 2×2 transposed conv (paper's code)",
                   ("bilinear", "transpose")),
            Option("inference", "accurate", "accurate: average the four heads' probabilities; "
                   "fast: one head, pruned to the nodes it needs", ("accurate", "fast")),
            Option("prune_level", 3, "the head X^{0,L} used by fast inference (1 = smallest, 4 = no pruning)",
                   (1, 2, 3, 4)),
        ),
        reference_params=8_363_820,
        reference_note="docs/MODEL_NOTES.md §2: PaddleSeg UNet++ (bilinear up + 1×1 conv, four 1×1 heads), "
        "8,363,820 at 19 classes; ours drops the conv biases before BN (−3,648)",
    ),
    NetSpec(
        name="unet3p",
        builder="segstudio.nets.unet3p:UNet3Plus",
        family="unet",
        title="UNet 3+",
        paper="Huang et al., UNet 3+: A Full-Scale Connected UNet, ICASSP 2020 (arXiv:2004.08790)",
        output_stride=1,
        size_multiple=16,
        speed="heavy",
        description="Every decoder level gathers all five scales (full-scale skips, 5×64 channels), "
        "deep supervision on all five decoder outputs, and a classification-guided module that "
        "suppresses classes it finds absent from the image.",
        aux_outputs=(
            AuxOutput("ds2", 1.0, "logits", "deep supervision on decoder level 2 (1/2)"),
            AuxOutput("ds3", 1.0, "logits", "deep supervision on decoder level 3 (1/4)"),
            AuxOutput("ds4", 1.0, "logits", "deep supervision on decoder level 4 (1/8)"),
            AuxOutput("ds5", 1.0, "logits", "deep supervision on the bottom level (1/16, 1024 ch)"),
            AuxOutput("cls", 1.0, "presence", "classification-guided module: class-presence logits"),
        ),
        options=(
            Option("cgm", "gate", "classification-guided module: gate = train it and suppress absent "
                   "classes at inference; loss = train it only; off = no module", ("gate", "loss", "off")),
        ),
        reference_params=27_382_450,
        reference_note="docs/MODEL_NOTES.md §3: UNet_3Plus_DeepSup 26,989,637 at 1 class (run) + 18 × 20,741 "
        "per extra class + the CGM widened to 19 outputs (1×1 conv 1024→19: 19,475); ours drops the "
        "conv biases before BN (−6,528)",
    ),
    NetSpec(
        name="linknet",
        builder="segstudio.nets.linknet:LinkNet",
        family="unet",
        title="LinkNet (ResNet-18)",
        paper="Chaurasia & Culurciello, LinkNet, VCIP 2017 (arXiv:1707.03718)",
        output_stride=1,
        size_multiple=32,
        speed="fast",
        description="ResNet-18 encoder whose features are added to a light decoder at every scale: "
        "few parameters and fast.",
        reference_params=11_664_371,
        reference_note="docs/MODEL_NOTES.md §5: smp Linknet-R18 layout, 11,664,371 at 19 classes. Ours follows the "
        "authors' e-lab/pytorch-linknet layout (classifier full-conv/conv/full-conv): 11,535,635 (−1.1%), "
        "the paper's 11.5M",
    ),
)
