"""Open-vocabulary prediction: images -> the nearest labels of any vocabulary.

A model's embeddings are scored against a vocabulary's unit label vectors (one matrix
product and a top-k, or an approximate index for very large vocabularies); any
vocabulary built with the model's word vectors works, which is how labels never seen
in training are predicted without retraining.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

TRAINED = "trained"  # --vocab value: the bundle's own training labels


def load_model(path: str | Path):
    """The bundle (model + training vocabulary + config) at ``path``: a :class:`models.bundle.Bundle`."""
    from models.bundle import load_bundle

    return load_bundle(path)


def resolve_vocab(vocab, bundle=None):
    """``vocab`` as a :class:`~wordnet.vocab.Vocabulary`: one already loaded, a ``.h5`` path, or
    ``"trained"`` (``bundle``'s own labels); checked against ``bundle``'s dimension when given."""
    from wordnet.vocab import Vocabulary

    if vocab is None or (isinstance(vocab, str) and vocab == TRAINED):
        if bundle is None:
            raise ValueError("vocab='trained' needs the bundle")
        return bundle.vocab
    if not isinstance(vocab, Vocabulary):
        vocab = Vocabulary.load(vocab)
    if bundle is not None:
        vocab.check_dim(bundle.dim, f"model {bundle.path}")
    return vocab


def load_model_and_vocab(model_path: str | Path, vocab_arg="trained"):
    """The bundle and the candidate vocabulary (checked against the model's dimension).

    A vocabulary file is read first (cheap), so a wrong path fails before TensorFlow loads.
    """
    from wordnet.vocab import Vocabulary

    vocab = vocab_arg
    if isinstance(vocab, (str, Path)) and str(vocab) != TRAINED:
        vocab = Vocabulary.load(vocab)
    bundle = load_model(model_path)
    return bundle, resolve_vocab(vocab, bundle)


def predict(images: Iterable[str | Path], model, vocab="trained", *, top: int = 5, batch_size: int = 32,
            approx: bool = False, progress: Callable[[int], None] | None = None,
            on_index_build: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Label ``images`` (files; see :func:`models.data.datasets.expand_image_paths` for folders and globs).

    ``model`` is a bundle or its folder, ``vocab`` a vocabulary, its file or ``"trained"``.
    Yields, in input order, ``{"path", "predictions": [{"rank", "wnid", "synset", "label",
    "score"}]}`` or ``{"path", "error"}`` for a file that could not be read. ``approx``
    searches an approximate (faiss) index of the vocabulary, built once and cached
    (``on_index_build(n_labels)`` is called before a build); ``progress(done)`` counts files.
    """
    if isinstance(model, (str, Path)):
        model, vocab = load_model_and_vocab(model, vocab)
    else:
        vocab = resolve_vocab(vocab, model)
    search = None
    if approx:
        from wordnet.ann import vector_index

        search = vector_index(vocab, on_build=on_index_build).search
    return predictions(model, vocab, list(images), top, batch_size, progress=progress, search=search)


def predictions(bundle, vocab, paths: Sequence, top: int, batch_size: int = 32, progress=None, search=None):
    """:func:`predict`'s records for a loaded bundle and vocabulary, streamed batch by batch from one pipeline.

    ``search(embeddings, k) -> (idx, scores)`` replaces the exact ``vocab.top_k`` (e.g. an
    approximate index); ``progress(done)`` counts input files.
    """
    import numpy as np

    search = search or vocab.top_k
    paths = list(paths)
    wnids, synsets, labels = vocab.wnids, vocab.synsets, vocab.labels
    done = 0
    for piece in bundle.run_batches(paths, batch_size=batch_size):
        idx, scores = search(piece.embeddings, top) if len(piece.paths) else ([], [])
        kept = list(zip(piece.paths, np.asarray(idx).tolist(), np.asarray(scores).tolist()))
        fails = iter(piece.failures)
        n = len(kept) + len(piece.failures)
        k = 0
        for q in paths[done:done + n]:  # this piece covers the next n inputs: merge back into input order
            if k < len(kept) and str(kept[k][0]) == str(q):
                p, ii, ss = kept[k]
                k += 1
                yield {"path": str(p), "predictions": [
                    {"rank": j + 1, "wnid": wnids[i], "synset": synsets[i], "label": labels[i], "score": round(s, 6)}
                    for j, (i, s) in enumerate(zip(ii, ss))]}
            else:
                p, reason = next(fails)
                yield {"path": str(p), "error": reason}
        done += n
        if progress is not None:
            progress(done)
