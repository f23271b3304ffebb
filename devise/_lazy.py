"""Names a devise module re-exports from the two halves, imported on first use (PEP 562).

Each API module that hands on a name from :mod:`models` or :mod:`wordnet` lists it in a
module-level ``_EXPORTS`` table (``name -> "module"`` or ``"module:attribute"``) and sets
``__getattr__ = lazy_exports(__name__, _EXPORTS)``. Importing the API module then costs
nothing: ``devise --help`` stays instant, and the heavy module (numpy, PIL, gensim) is
imported by the command that uses the name. ``tests/test_layering.py`` reads these tables
as imports, so the layers are checked through them too.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(module: str, table: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that resolves ``table``'s names and caches them in the module."""

    def __getattr__(name: str):
        source = table.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, _, attr = source.partition(":")
        value = getattr(importlib.import_module(where), attr or name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
