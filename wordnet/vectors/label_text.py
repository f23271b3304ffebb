"""What a label vector is made of (``--label-text``): names, definition, hypernyms.

DeViSE's label vector is the skip-gram vector of the label's name. For zero-shot
transfer what matters is that an unseen label lands near the seen labels it looks
like, and a name alone often carries little of that ("hartebeest"). WordNet says more
about every label: its definition ("large African antelope with lyrate horns") and its
hypernyms ("antelope"). The richer label texts add their vectors to the name's, so an
unseen label inherits its category. The same text must build a model's training labels
and the labels it is scored against; vocabularies record which one they used.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Sequence

from wordnet.base.errors import VectorsError

if TYPE_CHECKING:
    import numpy as np

# numpy and wordnet.vectors.words are imported inside the functions: the CLI reads LABEL_TEXTS for its
# --label-text choices, and `devise --help` must not pay for numpy.

# What a label vector is made of (``--label-text``). "lemmas" is the paper's: the label's
# own names. The richer texts add WordNet's words about the label, which carry the
# category an unseen label belongs to ("large feline ...", hypernym "big cat").
LABEL_TEXTS = ("lemmas", "lemmas+gloss", "lemmas+hypernyms", "lemmas+gloss+hypernyms")
GLOSS_WEIGHT = 1.0       # the definition's vector, beside the unit lemma vector
HYPERNYM_WEIGHT = 0.5    # the direct hypernyms' lemma vector
SIF_A = 1e-3             # smooth inverse frequency: a word of frequency p weighs a / (a + p)


def check_label_text(text: str) -> str:
    if text not in LABEL_TEXTS:
        raise VectorsError(f"unknown label text {text!r}; choose one of {', '.join(LABEL_TEXTS)}")
    return text


def _word_frequency(kv):
    """word -> relative frequency from the vectors' own counts (gensim stores them; files
    without counts get gensim's rank-ordered stand-ins), cached on ``kv``."""
    import numpy as np

    freq = getattr(kv, "_devise_frequency", None)
    if freq is None:
        try:
            counts = np.asarray([kv.get_vecattr(w, "count") for w in kv.index_to_key], dtype=np.float64)
        except (KeyError, ValueError):
            counts = np.ones(len(kv.index_to_key))
        freq = counts / max(counts.sum(), 1.0)
        kv._devise_frequency = freq
    return freq


def gloss_vector(kv, synset) -> np.ndarray | None:
    """:func:`text_vector` of ``synset``'s definition; None if no word of it has a vector."""
    return text_vector(kv, synset.definition())


def text_vector(kv, text: str) -> np.ndarray | None:
    """Unit SIF-weighted mean of the word vectors of ``text`` (Arora et al., 2017): frequent
    words ("of", "a", "used") count for little without a stop list; None if no word has one.

    What a definition (``--label-text lemmas+gloss``) or a class description
    (``--label-descriptions``) is embedded as.
    """
    import numpy as np

    from wordnet.vectors.words import case_variants, unit

    freq = _word_frequency(kv)
    vecs, weights = [], []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]*", text or ""):
        for t in case_variants(word):
            if t in kv.key_to_index:
                i = kv.key_to_index[t]
                v = unit(np.asarray(kv.vectors[i], dtype=np.float32))
                if v is not None:
                    vecs.append(v)
                    weights.append(SIF_A / (SIF_A + freq[i]))
                break
    if not vecs:
        return None
    return unit(np.average(vecs, axis=0, weights=weights))


def hypernym_vector(kv, synset) -> np.ndarray | None:
    """Unit mean of the lemma vectors of ``synset``'s direct (and instance) hypernyms."""
    import numpy as np

    from wordnet.vectors.words import lemma_vector, unit

    parents = synset.hypernyms() + synset.instance_hypernyms()
    vecs = [v for v in (lemma_vector(kv, p) for p in parents) if v is not None]
    return unit(np.mean(vecs, axis=0)) if vecs else None


def synset_vector(kv, synset, text: str = "lemmas") -> np.ndarray | None:
    """Unit label vector of ``synset``; None if its lemma names have no vector.

    ``text="lemmas"`` (the paper): the mean of the unit vectors of its lemma names.
    The richer :data:`LABEL_TEXTS` add the definition (``GLOSS_WEIGHT``) and the direct
    hypernyms (``HYPERNYM_WEIGHT``) to that lemma vector, then renormalise.
    """
    import numpy as np

    from wordnet.vectors.words import lemma_vector, unit

    base = lemma_vector(kv, synset)
    if base is None or text == "lemmas":
        return base
    parts = [base]
    if "gloss" in check_label_text(text):
        g = gloss_vector(kv, synset)
        if g is not None:
            parts.append(GLOSS_WEIGHT * g)
    if "hypernyms" in text:
        h = hypernym_vector(kv, synset)
        if h is not None:
            parts.append(HYPERNYM_WEIGHT * h)
    return unit(np.sum(parts, axis=0))


def label_vectors(kv, synsets: Sequence, text: str = "lemmas") -> tuple[np.ndarray, list]:
    """Vectors of ``synsets`` that have one, and the synsets that do not.

    Returns ``(matrix, missing)``: ``matrix`` is (n_found, dim) float32 with one unit row
    per synset that has a vector, in input order; ``missing`` lists the others.
    ``text`` is one of :data:`LABEL_TEXTS` (see :func:`synset_vector`).
    """
    import numpy as np

    check_label_text(text)
    rows, missing = [], []
    for s in synsets:
        v = synset_vector(kv, s, text)
        if v is None:
            missing.append(s)
        else:
            rows.append(v)
    matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, kv.vector_size), np.float32)
    return matrix, missing


def coverage(kv, synsets: Iterable) -> tuple[int, int]:
    """(number of synsets, number with a vector)."""
    synsets = list(synsets)
    return len(synsets), sum(synset_vector(kv, s) is not None for s in synsets)
