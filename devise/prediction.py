"""Open-vocabulary prediction: images -> the nearest labels of any vocabulary.

A model's embeddings are scored against a vocabulary's unit label vectors (one matrix
product and a top-k, or an approximate index for very large vocabularies); any
vocabulary built with the model's word vectors works, which is how labels never seen
in training are predicted without retraining.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from devise._lazy import lazy_exports

# names handed on from the two halves, imported on first use (devise._lazy)
_EXPORTS = {
    "expand_image_paths": "models.data.datasets",  # files, folders and globs -> image files
    "load_image": "models.data.images",  # one file -> an RGB array (raises ImageError)
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

TRAINED = "trained"  # --vocab value: the bundle's own training labels
DEFAULT = "default"  # --vocab value: the bundle's default labels (config.json "default_vocab"), else its own


def load_model(path: str | Path):
    """The bundle (model + training vocabulary + config) at ``path``: a :class:`models.bundle.Bundle`."""
    from models.bundle import load_bundle

    return load_bundle(path)


def resolve_vocab(vocab, bundle=None):
    """``vocab`` as a :class:`~wordnet.vocab.Vocabulary`: one already loaded, a ``.h5`` path, or
    ``"trained"`` (``bundle``'s own labels); checked against ``bundle``'s dimension when given."""
    from devise.vocabularies import GivenLabels
    from wordnet.vocab import Vocabulary

    if vocab is None or (isinstance(vocab, str) and vocab in (TRAINED, DEFAULT)):
        if bundle is None:
            raise ValueError(f"vocab={vocab!r} needs the bundle")
        return bundle.default_vocab() if vocab == DEFAULT else bundle.vocab
    if isinstance(vocab, GivenLabels):  # labels given on the command line: the bundle's vectors embed them
        attrs = bundle.vocab.attrs
        vocab = vocab.vocabulary(attrs.get("vector_source"), attrs.get("label_text"), f"model {bundle.path}")
    if not isinstance(vocab, Vocabulary):
        vocab = Vocabulary.load(vocab)
    if bundle is not None:
        vocab.check_dim(bundle.dim, f"model {bundle.path}")
        vocab.check_same_space(bundle.vocab, f"model {bundle.path}")
    return vocab


def load_model_and_vocab(model_path: str | Path, vocab_arg="trained"):
    """The bundle and the candidate vocabulary (checked against the model's dimension).

    A vocabulary file is read first (cheap), and labels given as :class:`~devise.vocabularies.GivenLabels`
    are embedded first (with the vectors the bundle's vocab.h5 records), so a wrong path
    or a label without a vector fails before TensorFlow loads.
    """
    from devise.vocabularies import GivenLabels
    from models.bundle import VOCAB_FILE
    from wordnet.vocab import Vocabulary

    vocab = vocab_arg
    if isinstance(vocab, (str, Path)) and str(vocab) not in (TRAINED, DEFAULT):
        vocab = Vocabulary.load(vocab)
    elif isinstance(vocab, GivenLabels) and (Path(model_path).expanduser() / VOCAB_FILE).is_file():
        attrs = Vocabulary.load(Path(model_path).expanduser() / VOCAB_FILE).attrs
        vocab = vocab.vocabulary(attrs.get("vector_source"), attrs.get("label_text"), f"model {model_path}")
    bundle = load_model(model_path)
    return bundle, resolve_vocab(vocab, bundle)


def default_method(bundle) -> str:
    """The ranking method a bundle (or its config) is scored with unless told otherwise: its ``config.json``'s
    ``default_method`` (the default model's is ``combined``), else DeViSE's own embedding."""
    from wordnet.scoring import METHODS

    config = bundle if isinstance(bundle, dict) else bundle.config  # a config.json read alone will do
    method = str(config.get("default_method") or "devise")
    return method if method in METHODS else "devise"


def check_method(bundle, method: str | None) -> str:
    """``method`` (or the bundle's default), refused with one line when the bundle cannot score it."""
    from wordnet.base.errors import UsageError
    from wordnet.scoring import METHODS

    method = method or default_method(bundle)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method != "devise" and not bundle.has_softmax:
        raise UsageError(f"--method {method} needs a trained softmax head, and {bundle.path} has none "
                         f"(train with --pretrain-epochs > 0, or use --method devise)")
    return method


def predict(images: Iterable[str | Path], model, vocab="trained", *, top: int = 5, batch_size: int = 32,
            approx: bool = False, temperature: float | None = None, min_score: float | None = None,
            method: str | None = None, progress: Callable[[int], None] | None = None,
            on_index_build: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Label ``images``: files, folders and globs, expanded as the CLI does
    (:func:`models.data.datasets.expand_image_paths`).

    ``model`` is a bundle or its folder, ``vocab`` a vocabulary, its file, ``"trained"`` or
    :class:`~devise.vocabularies.GivenLabels`. Yields, in input order, ``{"path", "predictions":
    [{"rank", "wnid", "synset", "label", "score"}]}`` or ``{"path", "error"}`` for a file that
    could not be read. Scores are cosines, or with ``temperature`` T (:func:`devise.temperature.score_temperature`)
    probabilities ``softmax(cosine / T)`` over the whole vocabulary. With ``min_score`` only
    predictions scoring at least that are kept, and a record whose best does not is marked
    ``"unknown": true`` (with its ``"best_score"``). ``approx`` searches an approximate (faiss)
    index of the vocabulary, built once and cached (``on_index_build(n_labels)`` is called
    before a build); ``progress(done)`` counts files. ``method`` ranks by the DeViSE embedding
    (``devise``), ConSE over the softmax head (``conse``), both averaged (``combined``), or the
    softmax itself over the model's own classes (``softmax``); by default the bundle's own
    (:func:`default_method`).
    """
    from models.data.datasets import expand_image_paths
    from wordnet.base.errors import UsageError

    images = expand_image_paths(images)  # a folder is its images, as on the command line
    if method == "softmax" and (vocab is None or (isinstance(vocab, str) and vocab == DEFAULT)):
        vocab = TRAINED  # the softmax ranks the model's own classes: those are its default labels
    if isinstance(model, (str, Path)):
        model, vocab = load_model_and_vocab(model, vocab)
    else:
        vocab = resolve_vocab(vocab, model)
    method = check_method(model, method)
    if method == "softmax":
        if vocab is not model.vocab and list(vocab.wnids) != list(model.vocab.wnids):
            raise UsageError("--method softmax ranks the model's own training labels only: drop --vocab/--labels, "
                             "or use --method devise|conse|combined for other labels")
        if approx or temperature is not None:
            raise UsageError("--method softmax already gives probabilities: drop --approx and --scores softmax")
    search = None
    if approx:
        if temperature is not None:
            raise UsageError("softmax scores need every label's score: drop --approx or use --scores cosine")
        from wordnet.ann import vector_index

        search = vector_index(vocab, on_build=on_index_build).search
    elif temperature is not None:
        search = lambda emb, k: vocab.top_k(emb, k, temperature=temperature)  # noqa: E731
    return predictions(model, vocab, images, top, batch_size, progress=progress, search=search,
                       min_score=min_score, method=method)


def predictions(bundle, vocab, paths: Sequence, top: int, batch_size: int = 32, progress=None, search=None,
                min_score: float | None = None, method: str = "devise"):
    """:func:`predict`'s records for a loaded bundle and vocabulary, streamed batch by batch from one pipeline.

    ``search(embeddings, k) -> (idx, scores)`` replaces the exact ``vocab.top_k`` (e.g. an
    approximate index, or softmax scores); ``progress(done)`` counts input files; ``method``
    as :func:`predict` takes it (already checked).
    """
    import numpy as np

    from wordnet.scoring.metrics import top_k_from_scores

    search = search or vocab.top_k
    paths = list(paths)
    wnids, synsets, labels = vocab.wnids, vocab.synsets, vocab.labels
    done = 0
    for piece in bundle.run_batches(paths, batch_size=batch_size, softmax=method == "softmax",
                                    method=None if method == "softmax" else method):
        if not len(piece.paths):
            idx, scores = [], []
        elif method == "softmax":
            idx, scores = top_k_from_scores(piece.probs, top)
        else:
            idx, scores = search(piece.embeddings, top)
        kept = list(zip(piece.paths, np.asarray(idx).tolist(), np.asarray(scores).tolist()))
        fails = iter(piece.failures)
        n = len(kept) + len(piece.failures)
        k = 0
        for q in paths[done:done + n]:  # this piece covers the next n inputs: merge back into input order
            if k < len(kept) and str(kept[k][0]) == str(q):
                p, ii, ss = kept[k]
                k += 1
                preds = [{"rank": j + 1, "wnid": wnids[i], "synset": synsets[i], "label": labels[i],
                          "score": round(s, 6)} for j, (i, s) in enumerate(zip(ii, ss))]
                yield {"path": str(p), "predictions": preds} if min_score is None else _threshold(preds, min_score, p)
            else:
                p, reason = next(fails)
                yield {"path": str(p), "error": reason}
        done += n
        if progress is not None:
            progress(done)


def _threshold(preds: list[dict], min_score: float, path) -> dict:
    """The record of one image under ``--min-score``: predictions scoring at least it, else ``unknown``."""
    kept = [p for p in preds if p["score"] >= min_score]
    record = {"path": str(path), "predictions": kept, "unknown": not kept}
    if not kept:
        record["best_score"] = preds[0]["score"] if preds else None
    return record
