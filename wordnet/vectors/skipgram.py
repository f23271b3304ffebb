"""Offline skip-gram vectors, trained with gensim on the text corpus of :mod:`wordnet.vectors.text_corpus`.

Training follows the paper: skip-gram (``sg=1``) with hierarchical softmax
(``hs=1, negative=0``). Label lemmas are kept however rare they are, so every WordNet
noun gets a vector; the vectors are written atomically as one gensim ``.kv`` file.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from wordnet.base.errors import VectorsError
from wordnet.base.files import atomic_path
from wordnet.vectors.text_corpus import CorpusFile, CorpusStats, Progress


@dataclass
class TrainResult:
    path: str
    vocabulary: int
    dim: int
    seconds: float
    corpus_tokens: int


def train_vectors(
    corpus: CorpusStats, out: str | os.PathLike, *, dim: int = 300, window: int = 15, min_count: int = 3,
    epochs: int = 5, workers: int | None = None, seed: int = 1, keep: Iterable[str] = (),
    progress: Progress | None = None,
):
    """Train skip-gram (hierarchical softmax) vectors on ``corpus``; save ``out`` atomically.

    Words in ``keep`` get a vector however rare they are (``min_count`` does not apply
    to them): passing the label lemma tokens (:func:`lemma_tokens`) lets rare labels
    such as dog breeds, seen once or twice in their own gloss, still have a vector.
    Returns ``(KeyedVectors, TrainResult)``.
    """
    from gensim import utils
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    for name, value in (("dim", dim), ("window", window), ("min_count", min_count), ("epochs", epochs)):
        if int(value) < 1:
            raise VectorsError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    workers = max(1, int(workers or os.cpu_count() or 1))
    total = corpus.tokens * epochs

    class EpochProgress(CallbackAny2Vec):
        def __init__(self, stream: CorpusFile):
            self.stream, self.epoch = stream, 0

        def on_epoch_begin(self, model):
            self.epoch += 1
            self.stream.label = f"epoch {self.epoch}/{epochs}"

    t0 = time.perf_counter()
    scan = CorpusFile(corpus.path, progress, "vocabulary", corpus.tokens)
    model = Word2Vec(vector_size=dim, window=window, min_count=min_count, sg=1, hs=1, negative=0,
                     workers=workers, seed=seed)
    keep = frozenset(keep)

    def trim_rule(word, count, min_count):
        return utils.RULE_KEEP if word in keep else utils.RULE_DEFAULT

    model.build_vocab(scan, trim_rule=trim_rule if keep else None)
    if len(model.wv) == 0:
        raise VectorsError(f"corpus {corpus.path} has no word seen {min_count} times; lower --min-count")
    stream = CorpusFile(corpus.path, progress, "training", total)
    model.train(stream, total_examples=model.corpus_count, epochs=epochs, callbacks=[EpochProgress(stream)])
    if progress:
        progress(stream.label, total, total)
    kv = model.wv
    out = Path(out)
    with atomic_path(out) as tmp:
        kv.save(str(tmp), separately=[])  # one file, so the rename is atomic
    seconds = time.perf_counter() - t0
    return kv, TrainResult(str(out), len(kv), dim, round(seconds, 1), corpus.tokens)
