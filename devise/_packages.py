"""Bind the names ``models`` and ``wordnet`` to devise's own implementation packages.

devise is built from three top-level packages whose names are generic (``models``,
``wordnet``, ``devise_cli``). A script run from a folder that holds a ``models/``
directory (the usual place for trained models in ML projects) would otherwise import
that folder instead: Python's path search finds the folder first when devise is
installed in editable mode, and ``python script.py`` puts the script's own folder
first on ``sys.path``. Importing :mod:`devise` (the CLI does it first) loads both
packages from the folder devise itself was installed from, so every later
``import models.…`` / ``import wordnet.…`` gets devise's code whatever the working
directory holds.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

IMPLEMENTATION = ("wordnet", "models")  # bottom first: models imports wordnet
_ROOT = Path(__file__).resolve().parent.parent


class ShadowedPackageError(ImportError):
    """A package named like one of devise's was imported from somewhere else before devise."""


def _is_ours(module, init: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).resolve() == init


def bind() -> None:
    """Make ``sys.modules["models"]`` and ``["wordnet"]`` devise's packages (idempotent)."""
    for name in IMPLEMENTATION:
        init = _ROOT / name / "__init__.py"
        loaded = sys.modules.get(name)
        if loaded is not None:
            if _is_ours(loaded, init):
                continue
            if getattr(loaded, "__file__", None) is not None or any(
                    key.startswith(name + ".") for key in sys.modules):
                where = getattr(loaded, "__file__", None) or list(getattr(loaded, "__path__", []))
                raise ShadowedPackageError(
                    f"a package named {name!r} from {where} was imported before devise; devise needs its own "
                    f"{name!r} ({init.parent}): import devise first, or rename that package")
            del sys.modules[name]  # an empty namespace package (a folder of bundles): replace it
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
