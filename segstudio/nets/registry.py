"""One registry and one factory for every network (timm's ``@register_model`` + ``create_model``).

A network module registers a builder under a name that must also have a
:class:`~segstudio.zoo.spec.NetSpec` in the zoo catalogue; :func:`create`
validates the options against the spec and builds the module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

from torch import nn

from segstudio.zoo import get_spec, net_names
from segstudio.zoo.spec import UnknownNetworkError

Builder = Callable[..., nn.Module]

_BUILDERS: dict[str, Builder] = {}

# Every module under segstudio.nets that registers networks.
_NET_MODULES: tuple[str, ...] = (
    "unet",
    "hrnet",
    "hardnet",
    "fastscnn",
    "dfanet",
    "pspnet",
    "deeplabv3",
    "segformer",
    "segnext",
    "unetpp",
    "unet3p",
    "linknet",
    "rtformer",
    "msa",
)
_loaded = False


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``@register("unet") def build(num_classes, in_channels, **options) -> nn.Module``."""

    def deco(fn: Builder) -> Builder:
        get_spec(name)  # a network without a spec is a bug: fail at import time
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise RuntimeError(f"network {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn

    return deco


def register_variants(prefix: str, variants: Iterable[str], build: Callable[[str, int, int], nn.Module]) -> None:
    """Register ``<prefix>_<variant>`` for each variant, built by ``build(variant, num_classes, in_channels)``."""

    def builder(variant: str) -> Builder:
        def fn(num_classes: int, in_channels: int = 3) -> nn.Module:
            return build(variant, num_classes, in_channels)

        fn.__name__ = f"build_{prefix}_{variant}"
        return fn

    for variant in variants:
        register(f"{prefix}_{variant}")(builder(variant))


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for mod in _NET_MODULES:
            importlib.import_module(f"segstudio.nets.{mod}")
        _loaded = True


def available() -> list[str]:
    """Names of the networks that can be built, in catalogue order."""
    _load_all()
    return [n for n in net_names() if n in _BUILDERS]


def create(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """Build network ``name`` with freshly initialised weights.

    Raises :class:`UnknownNetworkError` (listing the valid names) for an
    unknown network and :class:`~segstudio.zoo.spec.BadOptionError` for an
    option the network does not have. The module remembers how it was made in
    ``model.segstudio_arch`` and ``model.segstudio_options``.
    """
    _load_all()
    if name not in _BUILDERS:
        raise UnknownNetworkError(name, available())
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    opts = get_spec(name).resolve_options(options)
    model = _BUILDERS[name](num_classes=num_classes, in_channels=in_channels, **opts)
    model.segstudio_arch = name  # type: ignore[assignment]
    model.segstudio_options = opts  # type: ignore[assignment]
    return model
