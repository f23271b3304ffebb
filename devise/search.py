"""Image search: embed a photo collection once, then rank it by a word, a synset or another image.

A trained model puts photos and label vectors in one space. :func:`index_images` embeds
files into an :class:`models.index.store.ImageIndex` (incrementally: only new or changed
files are embedded); :func:`search` ranks it. A text query needs only the index and the
model's word vectors (no TensorFlow); an image query loads the model recorded in the index.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence


def index_images(photos: Sequence[str | os.PathLike], model: str | os.PathLike, output: str | os.PathLike, *,
                 batch_size: int = 32, rebuild: bool = False,
                 progress: Callable[[int, int], None] | None = None, on_model: Callable | None = None):
    """Embed ``photos`` (files, folders, globs; default: the last run's) with ``model`` into the index ``output``.

    Returns :class:`models.index.update.IndexStats` (new, changed, unchanged, removed,
    failures). A model other than the one that built an existing index is refused before
    TensorFlow loads; ``on_model(bundle)`` is called once the model is loaded.
    """
    from models.data.datasets import expand_image_paths
    from models.index.store import check_output, model_checksum
    from models.index.update import update_index
    from wordnet.base.errors import DatasetError, UsageError

    index_path, model_path = Path(output), Path(model)
    old = check_output(index_path, rebuild)
    if not photos:
        if old is None or not old.attrs.get("sources"):
            raise UsageError("give the PHOTOS to index (files, folders or globs)")
        photos = tuple(old.attrs["sources"])
    paths = expand_image_paths(photos)
    if not paths:
        raise DatasetError("no image files found in " + " ".join(map(str, photos)))
    if old is not None:  # a wrong model fails before TensorFlow loads
        old.check_model(model_checksum(model_path), model_path)
    from models.bundle import load_bundle

    bundle = load_bundle(model_path)
    if on_model is not None:
        on_model(bundle)
    sources = [os.path.abspath(os.path.expanduser(p)) for p in photos]
    return update_index(bundle, paths, index_path, old=old, sources=sources, batch_size=batch_size,
                        progress=progress)


def image_query(query: str) -> Path | None:
    """``query`` as an image file, or None for a text query; a missing image path is an error."""
    from models.data.datasets import IMAGE_EXTENSIONS
    from wordnet.base.errors import ImageError

    path = Path(query).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise ImageError(f"{query}: no such image file")
    return None


def search(index, query: str, *, top: int = 10, model: str | os.PathLike | None = None,
           vectors: str | os.PathLike | None = None, approx: bool = False,
           warn: Callable[[str], None] | None = None) -> dict:
    """Rank the images of ``index`` (an index or its file) by similarity to ``query``.

    ``query`` is a word or phrase, a synset or wnid (its label vector, built as the model's
    training labels were), or an image file (image-to-image; loads the model). Returns
    ``{"index", "query", "kind": "text"|"image", "images", "results": [{"rank", "path",
    "score"}]}``. ``warn(text)`` hears when ``vectors`` differ from the model's.
    """
    from models.index.store import ImageIndex, model_checksum

    idx = index if isinstance(index, ImageIndex) else ImageIndex.load(index)
    idx.require_images()
    if model is not None:
        idx.check_model(model_checksum(model), model)
    image = image_query(query)
    qvec = _embed_image(idx, image, model) if image is not None else _embed_text(idx, query, vectors, warn)
    rows, scores = idx.search(qvec, top, approx=approx)
    results = [{"rank": r + 1, "path": idx.paths[i], "score": round(float(s), 6)}
               for r, (i, s) in enumerate(zip(rows, scores))]
    return {"index": idx.location, "query": query, "kind": "image" if image is not None else "text",
            "images": len(idx), "results": results, "query_image": str(image) if image is not None else None}


def search_labels(index, labels, *, top: int = 10, approx: bool = False) -> dict:
    """Rank the images of ``index`` for each of several labels (:class:`~devise.vocabularies.GivenLabels`).

    The labels are embedded as a vocabulary, with the word vectors and label text the
    model was trained with (recorded in the index; cached, as for ``predict --labels``).
    Returns ``{"index", "images", "queries": [{"query", "wnid", "results": [{"rank", "path",
    "score"}]}]}``, the labels in the order given.
    """
    from models.index.store import ImageIndex

    idx = index if isinstance(index, ImageIndex) else ImageIndex.load(index)
    idx.require_images()
    vocab = labels.vocabulary(idx.attrs.get("vectors"), idx.attrs.get("label_text") or None, f"index {idx.location}")
    vocab.check_dim(idx.dim, f"the embeddings of {idx.location}")
    queries = []
    for row, label in enumerate(vocab.labels):
        rows, scores = idx.search(vocab.vectors[row], top, approx=approx)
        queries.append({"query": label, "wnid": vocab.wnids[row], "results": [
            {"rank": r + 1, "path": idx.paths[i], "score": round(float(s), 6)} for r, (i, s) in enumerate(zip(rows, scores))]})
    return {"index": idx.location, "images": len(idx), "queries": queries}


def _embed_image(idx, image: Path, model_path):
    from models.bundle import load_bundle
    from models.index.store import ImageIndexError, model_checksum
    from wordnet.base.errors import ImageError

    if model_path is None:
        model_path = Path(idx.attrs.get("model_path", ""))
        if not (model_path / "model.keras").is_file():
            raise ImageIndexError(f"{idx.location} was built with model {model_path}, which cannot be found; "
                                  f"pass --model to embed the query image")
        idx.check_model(model_checksum(model_path), model_path)
    res = load_bundle(model_path).run([image], batch_size=1)
    if res.failures:
        raise ImageError(f"{image}: {res.failures[0][1]}")
    return res.embeddings[0]


def _embed_text(idx, query: str, vectors, warn):
    from wordnet.base.errors import DimensionMismatchError, VectorsError
    from wordnet.query import text_query_vector
    from wordnet.vectors.loading import file_checksum, load_vectors

    if vectors is None:
        recorded = idx.attrs.get("vectors", "")
        if not recorded or not Path(recorded).is_file():
            raise VectorsError(f"{idx.location} does not say where its model's word vectors are "
                               f"({recorded or 'not recorded'}); pass --vectors FILE")
        vectors = Path(recorded)
    elif not Path(vectors).is_file():
        raise VectorsError(f"vectors file {vectors} does not exist")
    kv = load_vectors(vectors)
    if kv.vector_size != idx.dim:
        raise DimensionMismatchError(f"{vectors} has {kv.vector_size}-d vectors but {idx.location} holds "
                                     f"{idx.dim}-d embeddings; pass the vectors the model was trained with")
    built_with = idx.attrs.get("vector_checksum")
    if built_with and file_checksum(vectors) != built_with and warn is not None:
        warn(f"{vectors} differs from the vectors the model was trained with")

    def wordnet():
        from wordnet.reader import load_wordnet

        return load_wordnet()

    return text_query_vector(kv, query, wordnet, vectors_name=Path(vectors).name,
                             label_text=idx.attrs.get("label_text") or None)
