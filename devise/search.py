"""Image search: embed a photo collection once, then rank it by a word, a synset or another image.

A trained model puts photos and label vectors in one space. :func:`index_images` embeds
files into an image index file (incrementally: only new or changed files are embedded;
crash-safe; one shard of the files with ``shard``), :func:`merge_indexes` joins the parts
of a sharded run, and :func:`search` ranks an index without reading it into memory. A text
query needs only the index and the model's word vectors (no TensorFlow); an image query
loads the model recorded in the index.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from models.index import COMMIT_EVERY  # numpy-free: the CLI shows it in --help


def index_images(photos: Sequence[str | os.PathLike], model: str | os.PathLike, output: str | os.PathLike, *,
                 batch_size: int = 32, rebuild: bool = False, shard=None, commit_every: int = COMMIT_EVERY,
                 progress: Callable[[int, int], None] | None = None, on_model: Callable | None = None,
                 method: str | None = None):
    """Embed ``photos`` (files, folders, globs; default: the last run's) with ``model`` into the index ``output``.

    Returns :class:`models.index.update.IndexStats` (new, changed, unchanged, removed,
    resumed, failures). ``shard`` (``"I/N"`` or a :class:`models.data.shards.Shard`) keeps
    only that shard's files, for N processes that each write a part (joined with
    :func:`merge_indexes`); a part re-run without ``photos`` keeps its shard. Progress is
    committed every ``commit_every`` images, so a killed run loses at most that many and a
    rerun continues. A model other than the one
    that built an existing index, or an index another process is writing, is refused
    before TensorFlow loads; ``on_model(bundle)`` is called once the model is loaded.
    The index holds the embeddings of ``method`` (default: the model's own,
    :func:`devise.prediction.default_method`; the default model's is ``combined``), so text
    queries rank in the space ``predict`` ranks labels in; it is recorded, and an index made
    with another method is refused like one made with another model.
    """
    from devise.prediction import check_method, default_method
    from models.bundle import model_checksum, read_config
    from models.data.datasets import expand_image_paths
    from models.data.shards import Shard
    from models.index.store import check_output
    from models.index.update import update_index
    from wordnet.base.errors import DatasetError, UsageError
    from wordnet.base.files import ensure_unlocked, lock_path_for, names_target

    index_path, model_path = Path(output), Path(model)
    shard = Shard.parse(shard) if shard is not None else None
    ensure_unlocked(lock_path_for(index_path), f"index {index_path}")  # a run is writing it right now
    old = check_output(index_path, rebuild)
    try:
        if not photos:
            if old is None or not old.attrs.get("sources"):
                raise UsageError("give the PHOTOS to index (files, folders or globs)")
            photos = tuple(old.attrs["sources"])
            if shard is None and old.attrs.get("shard"):
                shard = Shard.parse(old.attrs["shard"])  # a part of a sharded run: the same shard again
        paths = expand_image_paths(photos)
        if not paths:
            raise DatasetError("no image files found in " + " ".join(map(str, photos)))
        if old is not None:  # a wrong model or method fails before TensorFlow loads
            old.check_model(model_checksum(model_path), model_path)
            old.check_method(method or default_method(read_config(model_path)))
    finally:
        if old is not None:
            old.close()
    from models.bundle import load_bundle

    bundle = load_bundle(model_path)
    method = check_method(bundle, method)
    if method == "softmax":
        raise UsageError("the softmax method ranks the model's own classes and makes no embedding to index; "
                         "use devise, conse or combined")
    if on_model is not None:
        on_model(bundle)
    sources = [os.path.abspath(os.path.expanduser(p)) for p in photos]
    with names_target(index_path):  # a full disk names the index, not a chunk of its journal
        return update_index(bundle, paths, index_path, rebuild=rebuild, sources=sources, batch_size=batch_size,
                            commit_every=commit_every, shard=shard, progress=progress, method=method)


def merge_indexes(output: str | os.PathLike, parts: Sequence[str | os.PathLike]):
    """Join the part indexes of a sharded run (``index_images(..., shard="I/N")``) into ``output``.

    The result holds the rows one process indexing every file would have written (same
    order, same embeddings). Parts made with another model or label text, parts being
    written or left unfinished are refused, naming the part. Returns
    :class:`models.index.merge.MergeStats` (parts, rows, duplicates). Needs no TensorFlow.
    """
    from models.index.merge import merge_indexes as merge

    return merge(output, parts)


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
           warn: Callable[[str], None] | None = None, on_build: Callable[[int], None] | None = None) -> dict:
    """Rank the images of ``index`` (an index or its file) by similarity to ``query``.

    ``query`` is a word or phrase, a synset or wnid (its label vector, built as the model's
    training labels were), or an image file (image-to-image; loads the model). Returns
    ``{"index", "query", "kind": "text"|"image", "images", "results": [{"rank", "path",
    "score"}]}``. ``warn(text)`` hears when ``vectors`` differ from the model's. The index
    file is memory-mapped and scored a block at a time (never read whole); ``approx`` uses
    the approximate index kept beside it (trained on first use: ``on_build(n_images)``).
    """
    from models.bundle import model_checksum
    from models.index.store import ImageIndex, IndexFile

    idx = index if isinstance(index, (ImageIndex, IndexFile)) else IndexFile.open(index)
    try:
        if isinstance(idx, IndexFile) and warn is not None:
            from models.index.journal import Journal

            if Journal(idx.path).exists():
                warn(f"{idx.location} has an unfinished `devise index` run; the images it committed are searchable "
                     f"once the same command runs again")
        idx.require_images()
        if model is not None:
            idx.check_model(model_checksum(model), model)
        image = image_query(query)
        qvec = _embed_image(idx, image, model) if image is not None else _embed_text(idx, query, vectors, warn)
        rows, scores = idx.search(qvec, top, approx=approx, on_build=on_build)
        results = [{"rank": r + 1, "path": p, "score": round(float(s), 6)}
                   for r, (p, s) in enumerate(zip(idx.paths_at(rows), scores))]
        return {"index": idx.location, "query": query, "kind": "image" if image is not None else "text",
                "images": len(idx), "results": results, "query_image": str(image) if image is not None else None}
    finally:
        if idx is not index:
            idx.close()


def search_labels(index, labels, *, top: int = 10, approx: bool = False,
                  on_build: Callable[[int], None] | None = None) -> dict:
    """Rank the images of ``index`` for each of several labels (:class:`~devise.vocabularies.GivenLabels`).

    The labels are embedded as a vocabulary, with the word vectors and label text the
    model was trained with (recorded in the index; cached, as for ``predict --labels``),
    and scored in one pass over the memory-mapped index. Returns ``{"index", "images",
    "queries": [{"query", "wnid", "results": [{"rank", "path", "score"}]}]}``, the labels
    in the order given.
    """
    from models.index.store import ImageIndex, IndexFile

    idx = index if isinstance(index, (ImageIndex, IndexFile)) else IndexFile.open(index)
    try:
        idx.require_images()
        vocab = labels.vocabulary(idx.attrs.get("vectors"), idx.attrs.get("label_text") or None,
                                  f"index {idx.location}")
        vocab.check_dim(idx.dim, f"the embeddings of {idx.location}")
        rows, scores = idx.search_many(vocab.vectors, top, approx=approx, on_build=on_build)
        paths = idx.paths_at(rows.ravel())
        queries = []
        for q, label in enumerate(vocab.labels):
            found = paths[q * rows.shape[1]:(q + 1) * rows.shape[1]]
            queries.append({"query": label, "wnid": vocab.wnids[q], "results": [
                {"rank": r + 1, "path": p, "score": round(float(s), 6)}
                for r, (p, s) in enumerate(zip(found, scores[q]))]})
        return {"index": idx.location, "images": len(idx), "queries": queries}
    finally:
        if idx is not index:
            idx.close()


def _embed_image(idx, image: Path, model_path):
    from models.bundle import load_bundle, model_checksum
    from models.index.store import ImageIndexError
    from wordnet.base.errors import ImageError

    if model_path is None:
        model_path = Path(idx.attrs.get("model_path", ""))
        if not (model_path / "model.keras").is_file():
            raise ImageIndexError(f"{idx.location} was built with model {model_path}, which cannot be found; "
                                  f"pass --model to embed the query image")
        idx.check_model(model_checksum(model_path), model_path)
    res = load_bundle(model_path).run([image], batch_size=1, method=idx.method)  # the index's embedding space
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
