"""Vectors of words and phrases: case variants, phrase tokens, means of unit vectors.

The building blocks every label vector is made of. A multi-word name uses its phrase
token (``snow_leopard``) when the vectors have it and the mean of its words otherwise;
a synset's names give :func:`lemma_vector`, the paper's label vector.
"""
from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray | None:
    """``v`` scaled to unit length as float32; None for a zero or non-finite vector."""
    n = float(np.linalg.norm(v))
    return None if n < 1e-12 or not np.isfinite(n) else (v / n).astype(np.float32)


def case_variants(token: str) -> list[str]:
    """``token`` as written, lower case, Capitalised, Title Case and UPPER CASE (no repeats)."""
    out = []
    for t in (token, token.lower(), token.capitalize(), token.title(), token.upper()):
        if t not in out:
            out.append(t)
    return out


def token_vector(kv, token: str) -> np.ndarray | None:
    """Unit vector of ``token`` (trying case variants), or None if the vectors lack it."""
    index = kv.key_to_index
    for t in case_variants(token):
        if t in index:
            return unit(np.asarray(kv.get_vector(t), dtype=np.float32))
    return None


def phrase_vector(kv, phrase: str) -> np.ndarray | None:
    """Unit vector of a word or phrase (``snow leopard``, ``snow_leopard``).

    The phrase token when the vectors have it, else the unit mean of its words' unit
    vectors (every word must have one); None if there is no vector.
    """
    token = "_".join(phrase.split())
    if not token:
        return None
    v = token_vector(kv, token)
    if v is not None:
        return v
    words = [w for w in token.replace("-", "_").split("_") if w]
    if len(words) < 2:
        return None
    vecs = [token_vector(kv, w) for w in words]
    if not vecs or any(x is None for x in vecs):
        return None
    return unit(np.mean(vecs, axis=0))


def lemma_vector(kv, synset) -> np.ndarray | None:
    """Unit mean of the phrase vectors of ``synset``'s lemma names (the paper's label vector), or None."""
    vecs = [v for v in (phrase_vector(kv, name) for name in synset.lemma_names()) if v is not None]
    return unit(np.mean(vecs, axis=0)) if vecs else None
