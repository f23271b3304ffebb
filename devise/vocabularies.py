"""Label vocabularies and word vectors: what a model is scored against, built without any image model.

A vocabulary is built from one label source (a label list, a WordNet subtree, every
noun, or the labels within N hops of a seen set) and word vectors; any vocabulary of
the model's dimension can be scored against it, which is how labels never seen in
training are added without retraining.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from devise._lazy import lazy_exports

# names handed on from the two halves, imported on first use (devise._lazy)
_EXPORTS = {
    "LABEL_TEXTS": "wordnet.vectors.label_text",  # what a label vector is made of (--label-text)
    "describe_synsets": "wordnet.vocab_build",
    "default_vectors_path": "wordnet.vectors.loading",
    "detect_format": "wordnet.vectors.loading",
    "file_checksum": "wordnet.vectors.loading",
    "load_vectors": "wordnet.vectors.loading",
    "nearest_words": "wordnet.vectors.loading",
    "resolve_vectors": "wordnet.vectors.loading",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)


def load_vocabulary(path: str | os.PathLike):
    """A vocabulary file (``.h5`` from :func:`build_vocabulary`) as a :class:`wordnet.vocab.Vocabulary`."""
    from wordnet.vocab import Vocabulary

    return Vocabulary.load(path)


def build_vocabulary(out: str | os.PathLike | None = None, *, synsets: str | os.PathLike | None = None,
                     subtree: str | None = None, all_nouns: bool = False, hops: int | None = None,
                     seen: str | os.PathLike | None = None, universe: str | os.PathLike | None = None,
                     vectors: str | os.PathLike | None = None, skip_missing: bool = False,
                     overrides: str | os.PathLike | None = None, label_text: str = "lemmas"):
    """Build a vocabulary from exactly one label source; save it to ``out`` when given.

    Sources: ``synsets`` (a label list file, or ``imagenet1k``/``imagenet21k``), ``subtree``
    (a synset and its hyponyms), ``all_nouns``, or ``hops`` N with ``seen`` (and an optional
    ``universe``). ``vectors`` defaults to the offline vectors of ``devise vectors train``.
    Returns ``(vocabulary, missing synsets, source description, vectors path)``; labels
    without a vector are an error unless ``skip_missing`` (``all_nouns`` implies it).
    """
    from wordnet import vocab_build as vb
    from wordnet.base.errors import DeviseError
    from wordnet.labels import load_overrides
    from wordnet.reader import load_wordnet
    from wordnet.vectors.loading import detect_format, load_vectors, resolve_vectors

    chosen = [name for name, on in (("synsets", synsets), ("subtree", subtree), ("all_nouns", all_nouns),
                                    ("hops", hops is not None)) if on]
    if len(chosen) != 1:
        raise DeviseError("give exactly one label source: synsets, subtree, all_nouns or hops"
                          + (f" (got {', '.join(chosen)})" if chosen else ""))
    if hops is not None and not seen:
        raise DeviseError("hops needs the seen labels")
    vectors_path = resolve_vectors(vectors)
    detect_format(vectors_path)  # unreadable vectors fail before WordNet is loaded
    table = load_overrides(overrides) if overrides else None
    wn = load_wordnet()
    if synsets:
        chosen_synsets, source = vb.synsets_from_file(wn, synsets, table), f"synsets {synsets}"
    elif subtree:
        chosen_synsets, source = vb.subtree_synsets(wn, subtree, table), f"subtree {subtree}"
    elif all_nouns:
        chosen_synsets, source, skip_missing = vb.all_noun_synsets(wn), "all nouns", True
    else:
        chosen_synsets = vb.hop_synsets(wn, hops, seen, universe, table)
        source = f"{hops} hops from {seen}" + (f" within {universe}" if universe else "")
    kv = load_vectors(vectors_path)
    vocab, missing = vb.build_vocabulary(chosen_synsets, kv, vector_source=vectors_path,
                                         skip_missing=skip_missing, source=source, label_text=label_text)
    if out is not None:
        vocab.save(out)
    return vocab, missing, source, vectors_path


def nearest_labels(vocab, query: str, *, top: int = 10, vectors: str | os.PathLike | None = None,
                   warn: Callable[[str], None] | None = None) -> list[dict]:
    """The ``top`` labels of ``vocab`` (a vocabulary or its file) nearest ``query`` (a word, phrase or synset).

    ``query`` is embedded with the word vectors the vocabulary was built with (or
    ``vectors``); ``warn(text)`` hears when those differ from the recorded ones. Returns
    ``[{"wnid", "synset", "label", "score", "definition"}]``, best first.
    """
    from wordnet.base.errors import VectorsError
    from wordnet.query import text_query_vector
    from wordnet.vectors.loading import file_checksum, load_vectors
    from wordnet.vocab import Vocabulary

    if not isinstance(vocab, Vocabulary):
        vocab = Vocabulary.load(vocab)
    where = Path(vocab.attrs.get("path", "the vocabulary")).name
    if vectors is None:
        source = vocab.attrs.get("vector_source", "")
        vectors = Path(source)
        if not source or not vectors.is_file():
            raise VectorsError(f"{vocab.attrs.get('path', 'the vocabulary')} was built with vectors "
                               f"{source or '(unknown)'}, which cannot be found; pass --vectors FILE")
    elif not Path(vectors).is_file():
        raise VectorsError(f"vectors file {vectors} does not exist")
    kv = load_vectors(vectors)
    vocab.check_dim(kv.vector_size, f"{Path(vectors).name}")
    built_with = vocab.attrs.get("vector_checksum")
    if built_with and file_checksum(vectors) != built_with and warn is not None:
        warn(f"{vectors} differs from the vectors {where} was built with")

    def wordnet():
        from wordnet.reader import load_wordnet

        return load_wordnet()

    qvec = text_query_vector(kv, query, wordnet, vectors_name=Path(vectors).name, vocab=vocab)  # spelling hints
    idx, scores = vocab.top_k(qvec, top)
    return [{"wnid": vocab.wnids[i], "synset": vocab.synsets[i], "label": vocab.labels[i],
             "score": round(float(s), 4), "definition": vocab.definitions[i]} for i, s in zip(idx[0], scores[0])]


@dataclass
class GivenLabels:
    """Labels given where they are used (``--labels``, ``--labels-file``, ``--label-descriptions``).

    Pass one wherever a vocabulary is taken (``predict``, ``evaluate``, ``search``): it
    becomes a vocabulary once the model's word vectors and label text are known
    (:func:`wordnet.label_vocab.labels_vocabulary`, cached in the data home).
    """

    labels: list[str]
    descriptions: dict[str, str] | None = None
    overrides: dict[str, str] | None = None
    notify: Callable[[str], None] | None = None

    def vocabulary(self, vectors: str | os.PathLike | None, label_text: str | None, what: str = "the model"):
        """The vocabulary, embedded with ``vectors`` and ``label_text`` (those of the model's training labels)."""
        from wordnet.base.errors import VectorsError
        from wordnet.label_vocab import labels_vocabulary

        if not vectors:
            raise VectorsError(f"{what} does not record its word vectors, so --labels cannot be embedded; "
                               f"build a vocabulary with `devise vocab build` and pass --vocab")
        return labels_vocabulary(self.labels, vectors, label_text=label_text or "lemmas",
                                 descriptions=self.descriptions, overrides=self.overrides, notify=self.notify)


def given_labels(labels: str | Sequence[str] | None = None, labels_file: str | os.PathLike | None = None,
                 descriptions: str | os.PathLike | dict | None = None, overrides: str | os.PathLike | None = None,
                 notify: Callable[[str], None] | None = None) -> GivenLabels | None:
    """:class:`GivenLabels` from ``labels`` ("cat, dog" or a list) and/or a ``labels_file`` (one a line),
    or None when neither is given; ``descriptions`` is a CSV ``class,text`` (or a dict) whose text
    becomes its class's label vector. Bad input fails here, before any model loads."""
    from wordnet.base.errors import DeviseError, UsageError
    from wordnet.label_vocab import parse_labels, read_descriptions, read_labels_file
    from wordnet.labels import load_overrides

    if labels is None and labels_file is None:
        if descriptions is not None:
            raise UsageError("--label-descriptions goes with --labels or --labels-file")
        return None
    chosen = []
    if labels is not None:
        chosen += (parse_labels(labels) if isinstance(labels, str)
                   else [str(x).strip() for x in labels if str(x).strip()])
        if not chosen:
            raise DeviseError("--labels is empty; give labels separated by commas")
    if labels_file is not None:
        chosen += read_labels_file(labels_file)
    table = descriptions if isinstance(descriptions, dict) or descriptions is None else read_descriptions(descriptions)
    if table:
        unknown = [c for c in table if c not in chosen]
        if unknown:
            raise UsageError(f"--label-descriptions describes {', '.join(repr(c) for c in unknown[:5])}, "
                             f"which {'is' if len(unknown) == 1 else 'are'} not among the labels")
    return GivenLabels(chosen, table or None, load_overrides(overrides) if overrides else None, notify)


def train_vectors(out: str | os.PathLike | None = None, *, dim: int = 300, window: int = 15, min_count: int = 3,
                  epochs: int = 5, workers: int | None = None, seed: int = 1, gcide: str | os.PathLike | None = None,
                  use_gcide: bool = True, texts=(), keep_lemmas: bool = True, rebuild_corpus: bool = False,
                  corpus_only: bool = False, progress=None,
                  on_corpus: Callable | None = None):
    """Offline skip-gram vectors on WordNet (+ GCIDE, + ``texts``); saved to ``out`` (default: the data home's).

    Returns ``(corpus statistics, (KeyedVectors, training result) or None with corpus_only)``.
    Every WordNet noun lemma keeps a vector however rare, unless ``keep_lemmas`` is off;
    ``on_corpus(stats)`` is called once the corpus is ready, before training.
    """
    from wordnet.base.errors import VectorsError
    from wordnet.reader import load_wordnet
    from wordnet.vectors.gcide import GCIDE_PATH
    from wordnet.vectors.loading import default_vectors_path
    from wordnet.vectors.skipgram import train_vectors as train_skipgram
    from wordnet.vectors.text_corpus import build_corpus, lemma_tokens

    out = Path(out) if out else default_vectors_path()
    if gcide is not None and not Path(gcide).is_file():
        raise VectorsError(f"GCIDE file {gcide} does not exist; install dict-gcide or pass --no-gcide")
    source = None if not use_gcide else (gcide or GCIDE_PATH)
    wn = load_wordnet()
    stats = build_corpus(wn, gcide=source, extra=texts, rebuild=rebuild_corpus, progress=progress)
    if on_corpus is not None:
        on_corpus(stats)
    if corpus_only:
        return stats, None
    keep = lemma_tokens(wn.all_synsets("n")) if keep_lemmas else ()
    return stats, train_skipgram(stats, out, dim=dim, window=window, min_count=min_count, epochs=epochs,
                                 workers=workers, seed=seed, keep=keep, progress=progress)
