"""Hierarchical multi-scale attention (docs/MODEL_NOTES.md §8): a wrapper around any other network.

Its NetSpec is derived from the specs of every other network in the catalogue, so that it
stays static (the training engine weights auxiliary outputs by name from the spec alone)
while the wrapped base varies:

- ``scale_<s>x`` (weight 0.05, the paper's ``SUPERVISED_MSCALE_WT``): the base's own
  prediction at training scale ``s``, one per scale in ``train_scales``. Training scales are
  restricted to :data:`TRAIN_SCALE_CHOICES` so that every name that can appear is declared.
- ``<base>.<aux>``: the base network's own auxiliary outputs, taken from the scale-1.0 pass
  and passed through with the base's weight and kind. The name carries the base's name
  because two bases may use the same aux name with different weights or kinds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from segstudio.zoo.spec import AuxOutput, NetSpec, Option

NAME = "msa"
DEFAULT_BASE = "hrnet_w18s"  # the paper wraps an HRNet (HRNet-OCR W48); W18-Small-v2 keeps it affordable
DEFAULT_SCALES: tuple[float, ...] = (0.5, 1.0, 2.0)
DEFAULT_TRAIN_SCALES: tuple[float, ...] = (0.5, 1.0)
TRAIN_SCALE_CHOICES: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
SUPERVISED_SCALE_WEIGHT = 0.05


def scale_aux_name(scale: float) -> str:
    """Name of the per-scale prediction output: ``scale_0.5x``, ``scale_1x``, ``scale_1.25x``."""
    return f"scale_{float(scale):g}x"


def base_aux_name(base: str, aux: str) -> str:
    """Name under which the wrapper passes through a base network's auxiliary output."""
    return f"{base}.{aux}"


def derive_specs(bases: Sequence[NetSpec]) -> tuple[NetSpec, ...]:
    """The ``msa`` NetSpec for a catalogue holding ``bases`` (every network but the wrapper)."""
    by_name = {b.name: b for b in bases}
    if DEFAULT_BASE not in by_name:
        raise RuntimeError(f"the default MSA base {DEFAULT_BASE!r} is not in the catalogue")
    default = by_name[DEFAULT_BASE]
    scale_aux = tuple(
        AuxOutput(scale_aux_name(s), SUPERVISED_SCALE_WEIGHT,
                  help=f"the base's own prediction at training scale {s:g} (present when {s:g} is in train_scales)")
        for s in TRAIN_SCALE_CHOICES
    )
    passed = tuple(
        AuxOutput(base_aux_name(b.name, a.name), a.weight, a.kind, help=f"{b.title}: {a.help or a.name} (scale 1.0)")
        for b in bases for a in b.aux_outputs
    )
    # Inputs padded to this make the 0.5-scale image a multiple of every base's own multiple.
    multiple = 2 * math.lcm(*(b.size_multiple for b in bases))
    return (
        NetSpec(
            name=NAME,
            builder="segstudio.nets.msa:build_msa",
            family="msa",
            title="Hierarchical multi-scale attention",
            paper="Tao, Sapra, Catanzaro, Hierarchical Multi-Scale Attention for Semantic Segmentation, "
            "2020 (arXiv:2005.10821)",
            output_stride=default.output_stride,
            size_multiple=multiple,
            speed="heavy",
            description="Runs a base network of the zoo at several scales and merges the predictions with "
            "learned per-pixel attention, lower scales first. Training uses two scales; inference by "
            "default 0.5, 1.0 and 2.0 (about 5× the base's cost).",
            aux_outputs=scale_aux + passed,
            options=(
                Option("base", DEFAULT_BASE, "the network run at every scale (any network of the zoo but msa)",
                       tuple(b.name for b in bases)),
                Option("base_options", None, "options of the base network (a dict), or None for its defaults"),
                Option("scales", DEFAULT_SCALES, "inference scales; must contain 1.0"),
                Option("train_scales", DEFAULT_TRAIN_SCALES,
                       "training scales (at least two, with 1.0), each one of "
                       + ", ".join(f"{s:g}" for s in TRAIN_SCALE_CHOICES)),
            ),
            normalization=default.normalization,
            reference_params=None,
            reference_note="docs/MODEL_NOTES.md §8/§17: no MSA parameter count is published (UNCONFIRMED), and the "
            "paper's count is that of HRNet-W48-OCR. Ours is the base's count plus the attention head, "
            "60,752 + 576 per class parameters (71,696 at 19 classes; tests/nets/test_msa.py).",
        ),
    )
