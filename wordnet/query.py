"""Text queries for image search: a word, phrase, synset name or wnid -> one unit vector.

A search query lands in the same space as the label vectors a model was trained on, so
it is embedded exactly as ``devise vocab nearest`` embeds one
(:func:`wordnet.vocab_build.query_vector`): a wnid or synset name gets its label vector
(built as the model's training labels were: ``label_text``), a word or phrase gets
its own vector. What this module adds is the error a person needs when a word has no
vector: the words of the vectors' vocabulary spelt most like it.
"""
from __future__ import annotations

import difflib
import functools

import numpy as np

from wordnet.base.errors import VectorsError

MAX_SUGGESTED = 3


def text_query_vector(kv, query: str, wn=None, vectors_name: str = "the word vectors",
                      vocab=None, label_text: str | None = None) -> np.ndarray:
    """The unit vector of ``query``; :class:`VectorsError` with spelling suggestions if it has none.

    ``wn`` is a WordNet reader or a callable returning one, loaded only for synset and
    wnid queries not in ``vocab``.
    """
    from wordnet.labels import SYNSET_NAME_RE, WNID_RE
    from wordnet.vocab_build import query_vector

    try:
        return query_vector(kv, query, vocab, wn, label_text)
    except VectorsError:
        q = query.strip()
        if WNID_RE.match(q) or SYNSET_NAME_RE.match(q):
            raise
        close = similar_words(kv, q)
        hint = f"did you mean: {', '.join(close)}?" if close else "try another word"
        raise VectorsError(f"{q!r} has no vector in {vectors_name}; {hint} "
                           f"(a synset like dog.n.01 works too)") from None


@functools.lru_cache(maxsize=2)
def _words_by_length(kv) -> dict[int, list[str]]:
    """The vectors' words, lower case, bucketed by length (suggestions then scan few of them)."""
    buckets: dict[int, list[str]] = {}
    for word in dict.fromkeys(k.lower() for k in kv.index_to_key if isinstance(k, str)):
        buckets.setdefault(len(word), []).append(word)
    return buckets


def similar_words(kv, word: str, n: int = MAX_SUGGESTED) -> list[str]:
    """Words of ``kv`` spelt like ``word`` (difflib ratio >= 0.75), phrases with spaces."""
    token = "_".join(word.lower().split())
    if not token:
        return []
    buckets = _words_by_length(kv)
    slack = max(1, len(token) * 2 // 5)  # ratio >= 0.75 is impossible beyond ~40% length difference
    pool = [w for size in range(len(token) - slack, len(token) + slack + 1) for w in buckets.get(size, ())]
    return [m.replace("_", " ") for m in difflib.get_close_matches(token, pool, n=n, cutoff=0.75)]
