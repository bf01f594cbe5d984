"""All NetSpecs, one module per family. Add a family by adding its module to ``_FAMILIES``.

A wrapper (``_WRAPPERS``) derives its specs from all the families' specs (``derive_specs``).
"""

from __future__ import annotations

from types import ModuleType

from segstudio.zoo.catalog import (
    deeplabv3,
    dfanet,
    fastscnn,
    hardnet,
    hrnet,
    msa,
    pspnet,
    rtformer,
    segformer,
    segnext,
    unet,
)
from segstudio.zoo.spec import NetSpec, UnknownNetworkError

_FAMILIES: tuple[ModuleType, ...] = (
    unet,
    hrnet,
    hardnet,
    fastscnn,
    dfanet,
    pspnet,
    deeplabv3,
    segformer,
    segnext,
    rtformer,
)
# Wrappers around any network: their specs are derived from those of the families above.
_WRAPPERS: tuple[ModuleType, ...] = (msa,)


def _collect() -> dict[str, NetSpec]:
    specs: dict[str, NetSpec] = {}
    for module in _FAMILIES:
        for spec in module.SPECS:
            if spec.name in specs:
                raise RuntimeError(f"network {spec.name!r} is declared twice")
            specs[spec.name] = spec
    bases = tuple(specs.values())
    for module in _WRAPPERS:
        for spec in module.derive_specs(bases):
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
