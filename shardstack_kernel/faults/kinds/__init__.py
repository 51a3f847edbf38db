"""One module per fault kind; the table of kinds is built from what this folder holds, so
adding a kind is adding a file with one `Fault` subclass."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from shardstack_kernel.faults.kind import Fault


def _load() -> Mapping[str, type[Fault]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    kinds = sorted(Fault.__subclasses__(), key=lambda kind: (kind.on_listener, kind.order))
    return {kind.kind_name(): kind for kind in kinds}


# Kind name -> class, in the order firing faults act on a request.
FAULT_KINDS: Mapping[str, type[Fault]] = _load()
