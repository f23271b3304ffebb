"""Building label vocabularies from WordNet synsets and word vectors.

A vocabulary is what a DeViSE model is scored against; building one only needs word
vectors, never the image model, which is how new label sets are added without
retraining. The synsets come from one of four sources: a label list file, a WordNet
subtree, every noun, or the labels within N hops of a seen set (the papers' zero-shot
splits). Each synset's vector is :func:`wordnet.vectors.label_text.synset_vector`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from wordnet.base.errors import VectorsError, VocabularyError
from wordnet.vocab import Vocabulary

MAX_LISTED = 20  # labels named in a "no vector" error before "... and N more"


def _unique(synsets: Iterable) -> list:
    seen, out = set(), []
    for s in synsets:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def describe_synsets(synsets: Sequence, limit: int = MAX_LISTED) -> str:
    """``n02084071 (dog.n.01), …`` for the first ``limit`` synsets, then ``and N more``."""
    from wordnet.labels import wnid_of

    shown = ", ".join(f"{wnid_of(s)} ({s.name()})" for s in synsets[:limit])
    return shown + (f" and {len(synsets) - limit} more" if len(synsets) > limit else "")


def build_vocabulary(
    synsets: Sequence, kv, *, vector_source: str | os.PathLike, skip_missing: bool = False,
    source: str = "", label_text: str = "lemmas",
) -> tuple[Vocabulary, list]:
    """A :class:`Vocabulary` of ``synsets`` (duplicates dropped) with vectors from ``kv``.

    Returns ``(vocabulary, missing)``. Synsets without a vector raise
    :class:`VectorsError` listing them, unless ``skip_missing`` (then they are left out
    and returned as ``missing``). ``vector_source`` (the vectors file) and its checksum
    are recorded in the vocabulary's attributes, so queries later embed with the same
    vectors; so is ``label_text`` (:data:`wordnet.vectors.label_text.LABEL_TEXTS`), what each label
    vector is made of.
    """
    from wordnet.labels import display_label, short_definition, wnid_of
    from wordnet.vectors.label_text import label_vectors
    from wordnet.vectors.loading import file_checksum

    synsets = _unique(synsets)
    if not synsets:
        raise VocabularyError("the synset list is empty; give at least one label")
    matrix, missing = label_vectors(kv, synsets, label_text)
    where = Path(vector_source).name
    if missing and not skip_missing:
        raise VectorsError(
            f"{len(missing)} of {len(synsets)} labels have no vector in {where}: {describe_synsets(missing)}; "
            f"pass --skip-missing to leave them out, or use other vectors"
        )
    missing_set = set(missing)
    kept = [s for s in synsets if s not in missing_set]
    if not kept:
        raise VectorsError(f"none of the {len(synsets)} labels has a vector in {where}; use other vectors")
    path = Path(vector_source)
    attrs = {
        "vector_source": str(path.resolve()) if path.exists() else str(path),
        "vector_checksum": file_checksum(path) if path.is_file() else "",
        "source": source,
        "requested": len(synsets),
        "skipped": len(missing),
        "label_text": label_text,
    }
    vocab = Vocabulary(
        wnids=[wnid_of(s) for s in kept],
        synsets=[s.name() for s in kept],
        labels=[display_label(s) for s in kept],
        definitions=[short_definition(s) for s in kept],
        vectors=np.asarray(matrix, dtype=np.float32),
        attrs=attrs,
    )
    return vocab, missing


# -- where the synsets come from ----------------------------------------------------
def synsets_from_file(wn, path: str | os.PathLike, overrides: dict | None = None) -> list:
    """Synsets of a label list (wnids, synset names or words, one a line)."""
    from wordnet.labels import read_label_list, resolve_labels

    return resolve_labels(wn, read_label_list(path), overrides)


def subtree_synsets(wn, label: str, overrides: dict | None = None) -> list:
    """``label``'s synset and all its hyponyms (instance hyponyms included), root first."""
    from wordnet.labels import resolve_label

    root = resolve_label(wn, label, overrides)
    below = root.closure(lambda s: s.hyponyms() + s.instance_hyponyms())
    return _unique([root, *below])


def all_noun_synsets(wn) -> list:
    """Every WordNet noun synset (82,115 in WordNet 3.0), in WordNet's order."""
    return list(wn.all_synsets("n"))


def hop_wnids(wn, hops: int, seen: str | os.PathLike, universe: str | os.PathLike | None = None,
              overrides: dict | None = None) -> tuple[list[str], list[str], list[str]]:
    """``(seen wnids, universe wnids, wnids within hops)`` for label-list files.

    Without ``universe`` every noun synset is a candidate. Shared by ``vocab build --hops``
    and ``wordnet hops``.
    """
    from wordnet.hierarchy import hop_set
    from wordnet.labels import wnid_of

    if hops < 1:
        raise VocabularyError(f"--hops must be at least 1, got {hops}")
    seen_wnids = [wnid_of(s) for s in synsets_from_file(wn, seen, overrides)]
    if universe is None:
        universe_wnids = [wnid_of(s) for s in all_noun_synsets(wn)]
    else:
        universe_wnids = [wnid_of(s) for s in synsets_from_file(wn, universe, overrides)]
    return seen_wnids, universe_wnids, hop_set(wn, seen_wnids, universe_wnids, hops)


def hop_synsets(wn, hops: int, seen: str | os.PathLike, universe: str | os.PathLike | None = None,
                overrides: dict | None = None) -> list:
    """Synsets within ``hops`` tree hops of the ``seen`` labels (seen excluded).

    ``universe`` (a label list) limits the candidates, e.g. to ImageNet-21K; without it
    every noun synset is a candidate.
    """
    from wordnet.labels import synset_of_wnid

    _, _, wnids = hop_wnids(wn, hops, seen, universe, overrides)
    if not wnids:
        raise VocabularyError(f"no labels within {hops} hops of the labels in {seen} "
                              f"(the label itself is hop 1); try a larger --hops")
    return [synset_of_wnid(wn, w) for w in wnids]


# -- queries -----------------------------------------------------------------------
def query_vector(kv, query: str, vocab: Vocabulary | None = None, wn=None,
                 label_text: str | None = None) -> np.ndarray:
    """Embed a nearest-label query: a wnid or synset name, else a word or phrase.

    A synset already in ``vocab`` uses its stored vector (no WordNet needed); another
    synset gets :func:`~wordnet.vectors.label_text.synset_vector` (with ``label_text``, by default the
    vocabulary's own); words get their (phrase) vector.
    ``wn`` is a WordNet reader or a callable returning one (loaded only when needed).
    """
    from wordnet.labels import SYNSET_NAME_RE, WNID_RE
    from wordnet.vectors.label_text import synset_vector
    from wordnet.vectors.words import phrase_vector

    q = query.strip()
    if not q:
        raise VocabularyError("the query is empty; give a word, a phrase or a synset like dog.n.01")
    if WNID_RE.match(q) or SYNSET_NAME_RE.match(q):
        if vocab is not None:
            column = vocab.wnids if WNID_RE.match(q) else vocab.synsets
            if q in column:
                return vocab.vectors[column.index(q)]
        from wordnet.labels import resolve_label

        reader = wn() if callable(wn) else wn
        synset = resolve_label(reader, q)
        text = label_text or (str(vocab.attrs.get("label_text", "lemmas")) if vocab is not None else "lemmas")
        v = synset_vector(kv, synset, text)
        if v is None:
            raise VectorsError(f"{synset.name()} has no vector in these word vectors; query a word instead")
        return v
    v = phrase_vector(kv, q)
    if v is None:
        raise VectorsError(f"{q!r} has no vector in these word vectors; try another word or a synset like dog.n.01")
    return v
