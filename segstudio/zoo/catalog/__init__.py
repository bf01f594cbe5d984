"""All NetSpecs, one module per family. Add a family by adding its module to ``_FAMILIES``."""

from __future__ import annotations

from types import ModuleType

from segstudio.zoo.catalog import rtformer, unet
from segstudio.zoo.spec import NetSpec, UnknownNetworkError

_FAMILIES: tuple[ModuleType, ...] = (unet, rtformer)


def _collect() -> dict[str, NetSpec]:
    specs: dict[str, NetSpec] = {}
    for module in _FAMILIES:
        for spec in module.SPECS:
            if spec.name in specs:
                raise RuntimeError(f"network {spec.name!r} is declared twice")
            specs[spec.name] = spec
    return specs


SPECS: dict[str, NetSpec] = _collect()


def net_names() -> list[str]:
    """Every network name in the zoo, in catalogue order."""
    return list(SPECS)


def get_spec(name: str) -> NetSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownNetworkError(name, net_names()) from None
