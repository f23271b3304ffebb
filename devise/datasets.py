"""Offline benchmark datasets from art installed on this machine (what ``devise data`` builds).

Emoji sets, Iconify icon sets and Open Clip Art rendered (and real photographs extracted) into zero-shot benchmarks with
seen/unseen concept splits, and the pre-training pool of icon classes disjoint from them.
The builders live in :mod:`wordnet.datasets`; this module hands them on, each imported on
first use (:mod:`devise._lazy`).
"""
from __future__ import annotations

from devise._lazy import lazy_exports

# names handed on from the label half, imported on first use (devise._lazy)
_EXPORTS = {
    "load_wordnet": "wordnet.reader",
    # the concept table
    "load_concepts": "wordnet.datasets.emoji_concepts",
    "select_concepts": "wordnet.datasets.emoji_concepts",
    # emoji sets
    "STYLES": "wordnet.datasets.emoji_sources",  # every emoji style devise knows (light: no PIL at import)
    "open_sources": "wordnet.datasets.emoji_sources",
    "build_emoji_dataset": "wordnet.datasets.emoji",
    "read_emoji_splits": "wordnet.datasets.emoji",
    # Iconify sets
    "HOW_TO_GET": "wordnet.datasets.icons",
    "iconify_collections": "wordnet.datasets.icons",
    "usable_collections": "wordnet.datasets.icons",
    "build_icon_dataset": "wordnet.datasets.icons",
    # Open Clip Art
    "read_clipart_table": "wordnet.datasets.clipart",
    "build_clipart_dataset": "wordnet.datasets.clipart",
    # the pre-training pool
    "pool_collections": "wordnet.datasets.icon_pool",
    "brand_names": "wordnet.datasets.icon_pool",
    "build_icon_pool": "wordnet.datasets.icon_pool",
    # labelled real photographs (GCompris, scikit-image)
    "PHOTO_SOURCES": "wordnet.datasets.photos",
    "read_photo_table": "wordnet.datasets.photos",
    "build_photo_dataset": "wordnet.datasets.photos",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
