"""The approximate index of an image index: a faiss IVF index kept on disk beside it, updated as rows change.

``devise search --approx`` over millions of photos must neither train an index per
query nor read one into memory. The :class:`wordnet.ann.VectorIndex` of an index file
``INDEX`` (k-means cells trained on a sample of its rows, every row filed in its cell)
is saved beside it as ``INDEX.faiss``, and ``INDEX.faiss.json`` records which
``generation`` of the index file it matches. A query memory-maps it (only the probed
cells are read) and re-scores the candidates exactly from the memory-mapped embeddings.

``devise index`` keeps it current without re-training: when it rewrites the index
file, the rows that stayed are renumbered to their new positions, removed ones are
dropped and new ones filed into their cells (:meth:`~wordnet.ann.VectorIndex.renumber`,
:meth:`~wordnet.ann.VectorIndex.add`). Only when the index has grown so much that its
cells are too coarse (``GROWTH``), or the pair no longer matches (a run killed between
the two writes), is it dropped; the next ``--approx`` search trains a new one.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from models.index.scan import scan_top_k
from wordnet.base.files import atomic_write

SUFFIX = ".faiss"
GROWTH = 2  # re-train once the rows call for GROWTH x more cells than were trained (~4x more rows)
ADD_ROWS = 65536  # rows filed into their cells per call while updating


def sidecar(index_path: str | os.PathLike) -> Path:
    """``INDEX.faiss``: where the approximate index of ``index_path`` is kept."""
    return Path(os.fspath(index_path) + SUFFIX)


def _meta_path(index_path) -> Path:
    return Path(os.fspath(index_path) + SUFFIX + ".json")


def _exact(queries, matrix, k):
    return scan_top_k(queries, matrix, k)[0]


def _matches(index_path, generation: str | None, rows: int) -> bool:
    """Whether the sidecar of ``index_path`` was made for this generation and row count."""
    if not generation:
        return False
    try:
        meta = json.loads(_meta_path(index_path).read_text(encoding="utf-8"))
        return (meta.get("generation") == generation and meta.get("rows") == rows
                and sidecar(index_path).stat().st_size == meta.get("bytes"))
    except (OSError, ValueError, AttributeError):
        return False


def approximate_index(idx, on_build: Callable[[int], None] | None = None):
    """The :class:`~wordnet.ann.VectorIndex` of ``idx`` (an index file or one in memory), memory-mapped
    from beside its file when it is current; otherwise trained now (``on_build(rows)`` first) and
    kept there for the next query. An index not read from a file (or in a folder one cannot write
    to) gets one in memory only."""
    from wordnet.ann import VectorIndex

    path, generation, rows = idx.attrs.get("path"), idx.generation, len(idx)
    if path and _matches(path, generation, rows):
        try:
            return VectorIndex.load(sidecar(path), idx.embeddings, mapped=True, exact=_exact)
        except (RuntimeError, ValueError, OSError):
            pass  # damaged: train a new one
    if on_build is not None:
        on_build(rows)
    index = VectorIndex.build(idx.embeddings)
    index.exact = _exact
    if path and generation:
        with contextlib.suppress(OSError):  # a read-only folder: searched in memory, built again next time
            _save(index, path, generation, rows)
    return index


def _save(index, index_path, generation: str, rows: int) -> None:
    target = index.save(sidecar(index_path))
    with atomic_write(_meta_path(index_path), encoding="utf-8") as fh:
        json.dump({"generation": generation, "rows": rows, "cells": index.cells,
                   "bytes": target.stat().st_size}, fh)


def discard(index_path) -> None:
    """Remove the approximate index of ``index_path`` (it no longer matches the file)."""
    for p in (_meta_path(index_path), sidecar(index_path)):
        p.unlink(missing_ok=True)


def update(index_path, old_generation: str | None, old_to_new: np.ndarray, new_file) -> None:
    """Bring the approximate index of ``index_path`` from the file's previous generation to ``new_file``
    (the :class:`~models.index.store.IndexFile` just written): renumber the rows that stayed
    (``old_to_new[old row]``, -1 for removed), file the rows that are new, re-train nothing.
    Does nothing when there is no sidecar; drops one that matches neither."""
    if not sidecar(index_path).exists():
        return
    if not _matches(index_path, old_generation, len(old_to_new)):
        discard(index_path)
        return
    from wordnet.ann import VectorIndex, n_cells

    matrix = new_file.embeddings
    index = VectorIndex.load(sidecar(index_path), matrix, exact=_exact, rows=len(old_to_new))
    if n_cells(len(new_file)) > GROWTH * index.cells:
        discard(index_path)  # cells trained for far fewer rows: the next --approx search trains new ones
        return
    index.renumber(old_to_new)
    kept = np.zeros(len(new_file), bool)
    kept[old_to_new[old_to_new >= 0]] = True
    new_rows = np.flatnonzero(~kept)
    for s in range(0, len(new_rows), ADD_ROWS):
        block = new_rows[s:s + ADD_ROWS]
        index.add(matrix[block], block)
    _save(index, index_path, new_file.generation, len(new_file))
