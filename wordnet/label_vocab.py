"""Vocabularies of labels given where they are used (``--labels``, ``--labels-file``, ``--label-descriptions``).

``devise predict photo.jpg --labels "cat, dog, snow leopard"`` needs no ``vocab build``
step: the labels are resolved and embedded here, with the word vectors and label text a
model was trained with (recorded in its training vocabulary), and the result is cached in
the data home, keyed on the labels, the vectors' checksum, the label text and the
descriptions, so the second call loads neither the vectors nor WordNet.

A label is what :mod:`wordnet.labels` accepts (a wnid, a synset name or noun words,
their first noun sense unless an override pins another), embedded as
:func:`wordnet.vectors.label_text.synset_vector`. A label that is not a WordNet noun ("red
sports car") is allowed: its vector is its words' (:func:`wordnet.vectors.words.phrase_vector`),
it has no synset (its id is ``text:<label>``) and hierarchical scores do not apply to it. A
class with a description (a CSV ``class,text``) gets the description's vector instead
(:func:`wordnet.vectors.label_text.text_vector`). A label with no vector at all is an error
naming it, with the vectors' words spelt like it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

from wordnet.base.errors import DeviseError, VectorsError

FREE_PREFIX = "text:"  # id of a label that names no WordNet synset: "text:red sports car"
FREE_DEFINITION = "(free phrase: no WordNet synset)"
CACHE_DIR = "label-vocabularies"  # in the data home
CACHE_VERSION = 2  # bump when what a cached vocabulary holds changes


def is_free_phrase(wnid: str) -> bool:
    """True for the id of a label that is not a WordNet synset (see :data:`FREE_PREFIX`)."""
    return wnid.startswith(FREE_PREFIX)


def parse_labels(text: str, what: str = "--labels") -> list[str]:
    """``"cat, dog, snow leopard"`` -> ``["cat", "dog", "snow leopard"]``; an empty list is an error."""
    labels = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not labels:
        raise DeviseError(f"{what} is empty; give labels separated by commas, like --labels \"cat, dog, snow leopard\"")
    return labels


def read_labels_file(path: str | os.PathLike) -> list[str]:
    """Labels one a line (``#`` comments, blank lines skipped); an empty file is an error."""
    from wordnet.labels import read_label_list

    if not Path(path).expanduser().is_file():
        raise DeviseError(f"labels file {path} does not exist")
    return read_label_list(Path(path))


def read_descriptions(path: str | os.PathLike) -> dict[str, str]:
    """A CSV ``class,text`` (optional header): each class's description."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DeviseError(f"descriptions file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviseError(f"{path}: cannot read descriptions ({exc.__class__.__name__})") from None
    from wordnet.labels import csv_rows

    table: dict[str, str] = {}
    for lineno, row, cells in csv_rows(text, ("class", "text"), ("class", "description"), ("label", "text"),
                                       ("label", "description")):
        if len(cells) < 2 or not cells[0] or not ",".join(cells[1:]).strip():
            raise DeviseError(f"{path}:{lineno}: expected 'class,text' (like: okapi,a zebra-striped "
                              f"forest giraffe), got {','.join(row)!r}")
        table[cells[0]] = ",".join(row[1:]).strip()
    if not table:
        raise DeviseError(f"{path}: no descriptions (expected rows class,text)")
    return table


def _key(labels, checksum, label_text, descriptions, overrides) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "labels": list(labels), "vectors": checksum, "label_text": label_text,
                       "descriptions": descriptions or {}, "overrides": overrides or {}}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def labels_vocabulary(labels: Sequence[str], vectors: str | os.PathLike, *, label_text: str = "lemmas",
                      descriptions: dict[str, str] | None = None, overrides: dict[str, str] | None = None,
                      notify: Callable[[str], None] | None = None, cache: bool = True):
    """The :class:`~wordnet.vocab.Vocabulary` of ``labels`` (in order), from a cache file when there is one.

    ``vectors`` is the word-vector file, ``label_text`` the recipe of the model's training
    labels. ``notify(text)`` hears one line about labels that are free phrases and about
    labels merged because they name one synset (on cached calls too).
    """
    from wordnet.base.home import data_home
    from wordnet.vectors.loading import file_checksum
    from wordnet.vocab import Vocabulary

    vectors = Path(vectors)
    if not vectors.is_file():
        raise VectorsError(f"the word vectors {vectors} cannot be found; labels are embedded with the vectors "
                           f"the model was trained with")
    labels = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if not labels:
        raise DeviseError("the label list is empty; give at least one label")
    descriptions = {k: v for k, v in (descriptions or {}).items() if k in labels}
    path = data_home() / CACHE_DIR / f"{_key(labels, file_checksum(vectors), label_text, descriptions, overrides)}.h5"
    vocab = None
    if cache and path.is_file():
        try:
            vocab = Vocabulary.load(path)
        except DeviseError:
            vocab = None  # a damaged cache file is rebuilt
    if vocab is None:
        vocab = _build(labels, vectors, label_text, descriptions, overrides)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            vocab.save(path)
    notes = json.loads(vocab.attrs.get("notes", "[]"))
    if notify is not None:
        for note in notes:
            notify(note)
    return vocab


def _build(labels, vectors: Path, label_text, descriptions, overrides):
    import numpy as np

    from wordnet.base.errors import UnknownLabelError
    from wordnet.labels import SYNSET_NAME_RE, WNID_RE, display_label, resolve_label, short_definition, wnid_of
    from wordnet.query import similar_words
    from wordnet.reader import load_wordnet
    from wordnet.vectors.label_text import check_label_text, synset_vector, text_vector
    from wordnet.vectors.loading import file_checksum, load_vectors
    from wordnet.vectors.words import phrase_vector
    from wordnet.vocab import Vocabulary

    check_label_text(label_text)
    kv = load_vectors(vectors)
    wn = load_wordnet()
    rows: dict[str, tuple] = {}  # id -> (synset name, label, definition, vector)
    free, merged, missing = [], [], []
    for label in labels:
        try:
            synset = resolve_label(wn, label, overrides)
        except UnknownLabelError:
            if WNID_RE.match(label.strip()) or SYNSET_NAME_RE.match(label.strip()):
                raise  # an id names a synset or nothing: it is never a phrase to embed
            synset = None
        described = descriptions.get(label)
        shown = label  # words are shown as written, ids by their synset's name
        if synset is not None:
            key, name, definition = wnid_of(synset), synset.name(), described or short_definition(synset)
            if WNID_RE.match(label) or SYNSET_NAME_RE.match(label):
                shown = display_label(synset)
            vec = text_vector(kv, described) if described else synset_vector(kv, synset, label_text)
        else:
            key, name, definition = FREE_PREFIX + label, "", described or FREE_DEFINITION
            vec = text_vector(kv, described) if described else phrase_vector(kv, label)
            free.append(label)
        if vec is None:
            missing.append(label)
            continue
        if key in rows:
            merged.append(f"{rows[key][1]!r} = {shown!r} ({name})")
            continue
        rows[key] = (name, shown, definition, vec)
    if missing:
        parts = []
        for label in missing:
            close = [w for w in similar_words(kv, label) if w.lower() != label.lower()]
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            why = " (no word of its description has one)" if label in descriptions else ""
            parts.append(f"{label!r}{why}{hint}")
        noun = "label has" if len(missing) == 1 else f"{len(missing)} labels have"
        raise VectorsError(f"{noun} no vector in {vectors.name}: {'; '.join(parts)}")
    notes = []
    if free:
        shown = ", ".join(repr(f) for f in free)
        notes.append(f"{shown} {'is not a WordNet noun' if len(free) == 1 else 'are not WordNet nouns'}: "
                     f"embedded from {'its' if len(free) == 1 else 'their'} words, no synset, so hierarchical "
                     f"scores do not apply to {'it' if len(free) == 1 else 'them'}")
    if merged:
        notes.append(f"labels naming the same synset are kept once: {'; '.join(merged)}")
    ids = list(rows)  # labels are shown as the user wrote them
    return Vocabulary(
        wnids=ids, synsets=[rows[i][0] for i in ids], labels=[rows[i][1] for i in ids],
        definitions=[rows[i][2] for i in ids], vectors=np.stack([rows[i][3] for i in ids]),
        attrs={"vector_source": str(vectors.resolve()), "vector_checksum": file_checksum(vectors),
               "label_text": label_text, "source": "labels: " + ", ".join(labels),
               "requested": len(labels), "skipped": 0, "free_phrases": len(free),
               "described": len(descriptions), "notes": json.dumps(notes)})
