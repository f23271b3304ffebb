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

from .errors import VectorsError

# numpy and .vectors are imported inside the functions: the CLI reads LABEL_TEXTS for its
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
    """Unit SIF-weighted mean of the definition's word vectors (Arora et al., 2017): frequent
    words ("of", "a", "used") count for little without a stop list; None if no word has one."""
    import numpy as np

    from .vectors import _case_variants, _unit

    freq = _word_frequency(kv)
    vecs, weights = [], []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]*", synset.definition()):
        for t in _case_variants(word):
            if t in kv.key_to_index:
                i = kv.key_to_index[t]
                v = _unit(np.asarray(kv.vectors[i], dtype=np.float32))
                if v is not None:
                    vecs.append(v)
                    weights.append(SIF_A / (SIF_A + freq[i]))
                break
    if not vecs:
        return None
    return _unit(np.average(vecs, axis=0, weights=weights))


def hypernym_vector(kv, synset) -> np.ndarray | None:
    """Unit mean of the lemma vectors of ``synset``'s direct (and instance) hypernyms."""
    import numpy as np

    from .vectors import _lemma_vector, _unit
    parents = synset.hypernyms() + synset.instance_hypernyms()
    vecs = [v for v in (_lemma_vector(kv, p) for p in parents) if v is not None]
    return _unit(np.mean(vecs, axis=0)) if vecs else None
