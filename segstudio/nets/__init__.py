"""Segmentation networks in plain PyTorch, built by name.

>>> from segstudio import nets
>>> model = nets.create("unet", num_classes=11)

Every network returns logits at the input's H×W for any input size; in
``train()`` mode it returns ``{"out": logits, <aux name>: ...}`` with the
auxiliary outputs its :class:`~segstudio.zoo.spec.NetSpec` lists. Each is a
:class:`~segstudio.nets.base.SegmentationNetwork`, which names its encoder.
"""

from segstudio.nets.base import SegmentationNetwork
from segstudio.nets.registry import available, create

__all__ = ["SegmentationNetwork", "available", "create"]
