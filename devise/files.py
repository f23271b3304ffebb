"""Files devise writes whole or not at all (the CLI's reports, tables and pages use these).

Re-exports of :mod:`wordnet.base.files` (standard library only), so the CLI needs no
import from the implementation packages.
"""
from __future__ import annotations

from wordnet.base.files import atomic_path, atomic_write

__all__ = ["atomic_path", "atomic_write"]
