"""The UNet family: UNet, UNet++, UNet 3+, LinkNet."""

from __future__ import annotations

from segstudio.zoo.spec import NetSpec, Option

SPECS: tuple[NetSpec, ...] = (
    NetSpec(
        name="unet",
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
        reference_note="MODEL_SPECS §1: padded + BN, bias-free 3×3 convs, ConvTranspose 2×2: "
        "31,037,633 at 1 class, +65 per extra class",
    ),
)
