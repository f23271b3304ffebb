"""Shared fixtures: a private data home, the real WordNet, tiny real KeyedVectors."""
from __future__ import annotations

import numpy as np
import pytest

# Word groups for tiny skip-gram-like vectors: words of a group lie close together.
TINY_GROUPS = {
    "animal": ["dog", "domestic_dog", "canis", "familiaris", "cat", "tiger", "leopard",
               "snow_leopard", "lion", "wolf", "animal", "mammal", "carnivore", "feline", "canine", "shark"],
    "music": ["guitar", "violin", "fiddle", "piano", "drum", "instrument", "musical_instrument", "cello"],
    "vehicle": ["car", "auto", "automobile", "machine", "motorcar", "truck", "bicycle", "bike", "vehicle", "bus"],
    "food": ["apple", "banana", "pizza", "bread", "food", "fruit", "cake"],
}
TINY_DIM = 16


@pytest.fixture(scope="session", autouse=True)
def devise_home(tmp_path_factory):
    """Point ``$DEVISE_HOME`` at a per-session folder so tests never touch the user's data."""
    home = tmp_path_factory.mktemp("devise_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("DEVISE_HOME", str(home))
    yield home
    mp.undo()


@pytest.fixture(scope="session")
def tiny_kv():
    """Small gensim KeyedVectors (16-d) where words of one topic are neighbours."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(0)
    words, vecs = [], []
    for members in TINY_GROUPS.values():
        centre = rng.normal(size=TINY_DIM) * 3
        for w in members:
            words.append(w)
            vecs.append(centre + rng.normal(size=TINY_DIM))
    kv = KeyedVectors(TINY_DIM)
    kv.add_vectors(words, np.asarray(vecs, dtype=np.float32))
    return kv


@pytest.fixture(scope="session")
def tiny_kv_file(tiny_kv, tmp_path_factory):
    """``tiny_kv`` saved in gensim's native ``.kv`` format."""
    path = tmp_path_factory.mktemp("vectors") / "tiny.kv"
    tiny_kv.save(str(path))
    return path
