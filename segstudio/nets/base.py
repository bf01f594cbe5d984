"""What every network of the zoo is: a module that names its encoder.

The encoder (the feature extractor) is what fine-tuning freezes first and what a
new head is built on; the network says which of its sub-modules it is, the way
smp's ``SegmentationModel`` owns ``freeze_encoder``. Nothing guesses it from names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from torch import nn


class SegmentationNetwork(nn.Module):
    """A zoo network: logits at the input's size (see :mod:`segstudio.nets`), and its encoder declared."""

    encoder_modules: ClassVar[tuple[str, ...]] = ()
    """Names of the top-level sub-modules that make up the encoder; the rest (decoder, heads) is not."""

    def encoder_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(name as in ``named_parameters``, parameter) of every encoder parameter."""
        for module_name in self.encoder_modules:
            for name, parameter in getattr(self, module_name).named_parameters():
                yield f"{module_name}.{name}", parameter

    def set_encoder_trainable(self, trainable: bool) -> int:
        """Switch gradients of the encoder on or off; returns how many parameter tensors were affected."""
        n = 0
        for _, parameter in self.encoder_parameters():
            parameter.requires_grad_(trainable)
            n += 1
        return n
