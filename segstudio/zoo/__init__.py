"""The model catalogue: pure metadata (NetSpec, ModelCard), no torch.

The GUI and CLI list networks from here without importing torch; the modules
themselves are built by :func:`segstudio.nets.create`.
"""

from segstudio.zoo.card import CARD_KEY, CardError, ModelCard
from segstudio.zoo.catalog import get_spec, net_names
from segstudio.zoo.spec import (
    IMAGENET,
    AuxOutput,
    BadOptionError,
    NetSpec,
    Normalization,
    Option,
    UnknownNetworkError,
)

__all__ = [
    "CARD_KEY",
    "IMAGENET",
    "AuxOutput",
    "BadOptionError",
    "CardError",
    "ModelCard",
    "NetSpec",
    "Normalization",
    "Option",
    "UnknownNetworkError",
    "get_spec",
    "net_names",
]
