"""Names to WordNet synsets: a training dataset's class names mapped to WordNet and a vocabulary
(for :func:`devise.train`), and the lookups of ``devise wordnet`` (:func:`lookup`, :func:`hop_split`).

This is the seam between the two halves: class names go through the label-space code
(:mod:`wordnet.labels`, NLTK), the vocabulary comes from ``--vocab`` or is built from
``--vectors``, and the result is plain ``(path, row)`` items that :mod:`models.training.train`
consumes without knowing about WordNet. Every problem is one :class:`DeviseError`
naming the classes concerned, raised before TensorFlow is even imported.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from devise._lazy import lazy_exports
from wordnet.base.errors import DatasetError

# names handed on from the label half, imported on first use (devise._lazy)
_EXPORTS = {
    "SHIPPED_LISTS": "wordnet.labels",  # the label lists shipped with devise, by name
    "synset_record": "wordnet.labels",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)


def _describe(pairs, limit: int = 10) -> str:
    shown = ", ".join(f"{name} ({wnid})" for name, wnid in pairs[:limit])
    return shown + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def dataset_labels(data: Path, val_data: Path | None, *, vocab_path=None, vectors=None, overrides=None,
                   label_text: str = "lemmas", resume_vocab: Path | None = None,
                   notify: Callable[[str], None] | None = None):
    """Return ``(items, val_items or None, vocabulary, provenance)``.

    The vocabulary holds exactly the training classes, in sorted wnid order; items are
    ``(path, row)``. With ``resume_vocab`` the stored training vocabulary is used.
    ``notify(text)`` hears about class names that were merged because they name one synset.
    """
    from models.data.datasets import scan_dataset
    from wordnet.labels import load_overrides, resolve_labels, wnid_of
    from wordnet.reader import load_wordnet
    from wordnet.vocab import Vocabulary

    scanned = scan_dataset(data)
    val_scanned = scan_dataset(val_data) if val_data else None
    names = sorted({c for _, c in scanned})
    if len(names) < 2:
        raise DatasetError(f"{data} has only one class ({names[0]}); DeViSE needs at least 2 classes")
    table = load_overrides(overrides) if overrides else None
    wn = load_wordnet()
    all_names = sorted(set(names) | {c for _, c in (val_scanned or [])})
    synset_of = dict(zip(all_names, resolve_labels(wn, all_names, table)))
    wnid_of_name = {n: wnid_of(s) for n, s in synset_of.items()}
    merged = _merged(names, wnid_of_name)
    if merged and notify is not None:
        notify(f"classes naming the same synset are merged: {merged}")
    wnids = sorted({wnid_of_name[n] for n in names})
    if len(wnids) < 2:
        raise DatasetError(f"{data}: all classes map to one synset ({wnids[0]}); DeViSE needs at least 2")
    provenance = {"data": str(Path(data).resolve()), "val": str(Path(val_data).resolve()) if val_data else None,
                  "overrides": str(overrides) if overrides else None,
                  "classes": {n: f"{wnid_of_name[n]} {synset_of[n].name()}" for n in names}}

    if resume_vocab is not None:
        vocab = Vocabulary.load(resume_vocab)
        source = str(resume_vocab)
    elif vocab_path is not None:
        vocab = Vocabulary.load(vocab_path)
        source = str(vocab_path)
        provenance["vocab"] = str(Path(vocab_path).resolve())
    else:
        vocab = None
    if vocab is not None:
        missing = [(n, wnid_of_name[n]) for n in names if wnid_of_name[n] not in vocab]
        if missing:
            raise DatasetError(
                f"{len(missing)} class(es) are not in the vocabulary {source}: {_describe(missing)}; "
                f"build a vocabulary with these labels or pass --vectors")
        if resume_vocab is not None and set(wnids) != set(vocab.wnids):
            raise DatasetError(
                f"{data} no longer has the classes of the interrupted run ({len(wnids)} now, "
                f"{len(vocab)} in {source}); restore the data or start again with --overwrite")
        vocab = vocab.subset(wnids)
    else:
        from wordnet.vectors.loading import load_vectors, resolve_vectors
        from wordnet.vocab_build import build_vocabulary

        vectors_path = resolve_vectors(vectors)
        kv = load_vectors(vectors_path)
        synsets = [synset_of[next(n for n in names if wnid_of_name[n] == w)] for w in wnids]
        vocab, _ = build_vocabulary(synsets, kv, vector_source=vectors_path, source=f"training classes of {data}",
                                    label_text=label_text)
        provenance["vectors"] = str(Path(vectors_path).resolve())
    provenance["vector_checksum"] = vocab.attrs.get("vector_checksum", "")

    items = [(p, vocab.index(wnid_of_name[c])) for p, c in scanned]
    val_items = None
    if val_scanned is not None:
        unknown = sorted({c for _, c in val_scanned if wnid_of_name[c] not in vocab})
        if unknown:
            raise DatasetError(f"{val_data}: validation classes not among the training classes: "
                               f"{', '.join(unknown[:10])}")
        val_items = [(p, vocab.index(wnid_of_name[c])) for p, c in val_scanned]
    return items, val_items, vocab, provenance


def _merged(names, wnid_of_name) -> str:
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(wnid_of_name[n], []).append(n)
    return "; ".join(" = ".join(g) for g in groups.values() if len(g) > 1)


def lookup(query: str, *, overrides: str | Path | None = None, first_only: bool = False) -> list[dict]:
    """The WordNet noun senses of a label ``query`` as records (:func:`wordnet.labels.synset_record`).

    ``query`` is a wnid, a synset name or words; words give every noun sense, the one a
    label of these words maps to first (the most frequent, or the one the ``overrides``
    CSV pins), unless ``first_only``.
    """
    from wordnet.labels import load_overrides, noun_senses, synset_record
    from wordnet.reader import load_wordnet

    wn = load_wordnet()
    table = load_overrides(overrides) if overrides else None
    return [synset_record(s) for s in noun_senses(wn, query, table, first_only=first_only)]


def hop_split(seen, universe, hops: int) -> tuple[list[str], list[str], list[str]]:
    """``(seen wnids, universe wnids, wnids within hops of seen)``: a zero-shot split of ImageNet's kind.

    ``seen`` and ``universe`` are label lists (files or shipped names, see ``SHIPPED_LISTS``;
    ``universe`` None is every noun synset). A bad list fails before WordNet loads.
    """
    from wordnet.labels import read_label_list
    from wordnet.reader import load_wordnet
    from wordnet.vocab_build import hop_wnids

    read_label_list(seen)
    if universe:
        read_label_list(universe)
    return hop_wnids(load_wordnet(), hops, seen, universe)
