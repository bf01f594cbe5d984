"""One factory for every network (timm's ``create_model``), driven by the zoo's specs.

A network is declared once, by its :class:`~segstudio.zoo.spec.NetSpec` in the
catalogue (``segstudio/zoo/catalog/``): the spec names its ``builder``
(``"<module>:<function>"``, imported on first use), the hyper-parameters of the
variant (``config``) and the user options with their defaults (``options``).
:func:`create` checks the options against the spec and calls the builder with
the variant's config and every option resolved — a builder has no defaults of
its own. There is no list of modules to keep in step: a spec whose builder
cannot be found is a bug that :func:`available` and the contract test report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from segstudio.zoo import get_spec, net_names
from segstudio.zoo.spec import NetSpec

Builder = Callable[..., nn.Module]
"""``builder(num_classes=, in_channels=, **spec.config, **options) -> nn.Module``."""

_builders: dict[str, Builder] = {}


def builder_of(spec: NetSpec) -> Builder:
    """The function a spec names, its module imported now (``RuntimeError`` when it does not exist)."""
    found = _builders.get(spec.builder)
    if found is None:
        module, _, function = spec.builder.partition(":")
        try:
            found = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(f"network {spec.name!r}: its spec names the builder {spec.builder!r}, "
                               f"which cannot be found ({exc})") from exc
        if not callable(found):
            raise RuntimeError(f"network {spec.name!r}: {spec.builder!r} is not a function")
        _builders[spec.builder] = found
    return found


def available() -> list[str]:
    """Names of the networks that can be built, in catalogue order (every builder is imported)."""
    names = net_names()
    for name in names:
        builder_of(get_spec(name))
    return names


def create(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """Build network ``name`` with freshly initialised weights.

    Raises :class:`~segstudio.zoo.spec.UnknownNetworkError` (listing the valid
    names) for an unknown network and :class:`~segstudio.zoo.spec.BadOptionError` for an
    option the network does not have. The module remembers how it was made in
    ``model.segstudio_arch`` and ``model.segstudio_options``.
    """
    spec = get_spec(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    opts = spec.resolve_options(options)
    model = builder_of(spec)(num_classes=num_classes, in_channels=in_channels, **spec.config, **opts)
    model.segstudio_arch = name  # type: ignore[assignment]
    model.segstudio_options = opts  # type: ignore[assignment]
    return model
