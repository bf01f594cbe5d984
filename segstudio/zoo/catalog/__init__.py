"""Every NetSpec, one module per family, found by looking: a new module here is in the catalogue.

A family module declares ``SPECS`` (a tuple of :class:`~segstudio.zoo.spec.NetSpec`) and may declare
``ORDER`` (an int: where the family comes in listings, lower first; a module without one comes after
those with one, by name). A wrapper module declares ``derive_specs(bases)`` instead of ``SPECS``: its specs
are made from every family's (the multi-scale attention wrapper, ``msa``). No list to keep in step: the
modules of this package are the catalogue. Pure metadata: nothing here imports torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from segstudio.zoo.spec import NetSpec, UnknownNetworkError

UNORDERED = 1000
"""``ORDER`` of a family module that declares none."""


def _modules() -> list[ModuleType]:
    found = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    return sorted(found, key=lambda m: (getattr(m, "ORDER", UNORDERED), m.__name__))


def _collect(modules: list[ModuleType]) -> dict[str, NetSpec]:
    specs: dict[str, NetSpec] = {}

    def add(spec: NetSpec, module: ModuleType) -> None:
        if spec.name in specs:
            raise RuntimeError(f"network {spec.name!r} is declared twice (again in {module.__name__})")
        specs[spec.name] = spec

    families = [m for m in modules if hasattr(m, "SPECS")]
    wrappers = [m for m in modules if hasattr(m, "derive_specs")]
    for module in families:
        for spec in module.SPECS:
            add(spec, module)
    bases = tuple(specs.values())
    for module in wrappers:
        for spec in module.derive_specs(bases):
            add(spec, module)
    return specs


SPECS: dict[str, NetSpec] = _collect(_modules())


def net_names() -> list[str]:
    """Every network name in the zoo, in catalogue order."""
    return list(SPECS)


def get_spec(name: str) -> NetSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownNetworkError(name, net_names()) from None
