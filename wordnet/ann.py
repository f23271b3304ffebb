"""Approximate nearest-vector search for big matrices: vocabularies (up to millions of labels) and image indexes.

Exact scoring (:func:`wordnet.vocab.top_k`) is one matrix product over every label:
at a million labels a batch of 256 embeddings costs seconds. An inverted-file index
(`faiss <https://github.com/facebookresearch/faiss>`_ ``IndexIVFFlat``, inner product
on the unit rows) groups the labels into ~4*sqrt(n) k-means cells and scans only the
``nprobe`` cells nearest each query. faiss-cpu was chosen after measuring usearch,
hnswlib and faiss-cpu side by side at 1M labels: it built the index several times
faster and gave the best recall at the same speed (``benchmarks/label_search.py``;
figures in ``benchmarks/README.md``).

The index is built once per vocabulary file and cached under
``$DEVISE_HOME/indexes/`` (keyed by the file's path, size, mtime and the build
parameters; written atomically), so only the first ``--approx`` run pays the build.
Candidates the index returns are re-scored exactly against the vocabulary matrix, so
scores are true cosines and ties are ordered like the exact search; only *which*
labels come back can differ (recall@k < 1).
"""
from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from wordnet.base.errors import VocabularyError
from wordnet.base.files import atomic_path
from wordnet.base.home import data_home
from wordnet.vocab import Vocabulary, label_matrix

BACKEND = "faiss"
NPROBE = 16  # cells scanned per query (of ~4*sqrt(n))
TRAIN_PER_CELL = 40  # k-means training rows per cell (faiss's recommended minimum is 39)
SEED = 0
INDEX_DIR = "indexes"


def _faiss():
    try:
        import faiss
    except ImportError:
        raise VocabularyError(
            "approximate search needs the faiss-cpu package: pip install 'devise[ann]' (or pip install faiss-cpu)"
        ) from None
    return faiss


def n_cells(n: int) -> int:
    """~4*sqrt(n) cells, but never fewer than TRAIN_PER_CELL rows per cell (1 cell = exact)."""
    return int(max(1, min(4 * np.sqrt(n), n // TRAIN_PER_CELL)))


class VectorIndex:
    """An IVF index over a vocabulary's unit rows; :meth:`search` mirrors ``Vocabulary.top_k``."""

    def __init__(self, index, matrix: np.ndarray, nprobe: int = NPROBE, exact: Callable | None = None) -> None:
        self.index = index
        self.matrix = matrix  # rows by id: an array, or any read-only matrix that slices and fancy-indexes rows
        self.nprobe = int(nprobe)
        self.exact = exact or _exact_rows  # (queries, matrix, k) -> rows, for queries the probed cells leave short

    @classmethod
    def build(cls, matrix: np.ndarray, *, threads: int | None = None, nprobe: int = NPROBE) -> "VectorIndex":
        """Train the k-means cells on a seeded sample of rows, then add every row (in blocks).

        ``matrix`` holds unit rows (``Vocabulary.vectors``, or a memory-mapped matrix that
        slices and fancy-indexes rows); it is referenced, not copied.
        """
        faiss = _faiss()
        if threads:
            faiss.omp_set_num_threads(int(threads))
        if not (hasattr(matrix, "shape") and hasattr(matrix, "__getitem__")):
            matrix = np.asarray(matrix, dtype=np.float32)
        n, dim = matrix.shape
        cells = n_cells(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = SEED
        sample = np.sort(np.random.default_rng(SEED).choice(n, min(n, TRAIN_PER_CELL * cells), replace=False))
        index.train(np.ascontiguousarray(matrix[sample]))
        for s in range(0, n, 65536):
            index.add(np.ascontiguousarray(matrix[s:s + 65536]))
        return cls(index, matrix, nprobe)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            _faiss().write_index(self.index, str(tmp))
        return path

    @classmethod
    def load(cls, path: str | Path, matrix: np.ndarray, nprobe: int = NPROBE, *, mapped: bool = False,
             exact: Callable | None = None, rows: int | None = None) -> "VectorIndex":
        """Read a saved index for ``matrix``; ``mapped`` memory-maps its cells instead of reading them
        (a query then touches only the cells it probes; the index cannot be changed). It must
        hold ``rows`` vectors (default: one per row of ``matrix``)."""
        faiss = _faiss()
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mapped else 0)
        if index.ntotal != (matrix.shape[0] if rows is None else rows) or index.d != matrix.shape[1]:
            raise ValueError("index size does not match the vocabulary")
        return cls(index, matrix, nprobe, exact)

    def renumber(self, old_to_new: np.ndarray) -> None:
        """Give every row a new id, ``old_to_new[old id]``, dropping rows mapped to -1; nothing is re-trained.

        For a matrix whose rows were reordered or removed: each cell's ids (and their
        vectors) are rewritten in place, cell by cell.
        """
        faiss = _faiss()
        old_to_new = np.asarray(old_to_new, np.int64)
        ivf = faiss.extract_index_ivf(self.index)
        cells = faiss.downcast_InvertedLists(ivf.invlists)
        size = cells.code_size
        total = 0
        for cell in range(ivf.nlist):
            n = cells.list_size(cell)
            if not n:
                continue
            new = old_to_new[faiss.rev_swig_ptr(cells.get_ids(cell), n)]
            keep = new >= 0
            ids = np.ascontiguousarray(new[keep])
            codes = np.ascontiguousarray(faiss.rev_swig_ptr(cells.get_codes(cell), n * size).reshape(n, size)[keep])
            cells.resize(cell, len(ids))
            if len(ids):
                cells.update_entries(cell, 0, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
            total += len(ids)
        ivf.ntotal = self.index.ntotal = total

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add unit rows under the given ids (their rows in :attr:`matrix`)."""
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def cells(self) -> int:
        return int(_faiss().extract_index_ivf(self.index).nlist)

    def search(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate ``(idx, scores)``: (n, k) rows and exact cosines, best first."""
        q = label_matrix(np.atleast_2d(embeddings))
        k = max(1, min(int(k), len(self)))
        if q.shape[0] == 0:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        self.index.nprobe = min(self.nprobe, self.index.nlist)
        _, found = self.index.search(q, k)
        found = found.astype(np.int64)
        short = found < 0  # fewer than k labels in the scanned cells: fill from an exact search
        if short.any():
            rows = np.flatnonzero(short.any(axis=1))
            found[rows] = self.exact(q[rows], self.matrix, k)
        cand = np.sort(found, axis=1)  # row order: the stable sort breaks ties by row
        scores = np.einsum("nd,nkd->nk", q, self.matrix[cand.ravel()].reshape(cand.shape + (q.shape[1],)))
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(cand, order, axis=1), np.take_along_axis(scores, order, axis=1).astype(np.float32)


def _exact_rows(q: np.ndarray, matrix: np.ndarray, k: int) -> np.ndarray:
    from wordnet.vocab import top_k

    return top_k(q, matrix, k)[0]


def cache_path(vocab_path: str | Path) -> Path:
    """Where the index of the vocabulary file ``vocab_path`` is cached.

    ``<stem>-<hash of the path>-<hash of size, mtime and build parameters>.faiss``:
    the name changes when the file does, and older indexes of the same file share
    the prefix so they can be removed.
    """
    p = Path(vocab_path).resolve()
    st = p.stat()
    stamp = json.dumps([st.st_size, st.st_mtime_ns, BACKEND, "IVFFlat", TRAIN_PER_CELL, SEED])
    return data_home() / INDEX_DIR / f"{_prefix(p)}{hashlib.sha256(stamp.encode()).hexdigest()[:12]}.{BACKEND}"


def _prefix(resolved: Path) -> str:
    return f"{resolved.stem}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}-"


def vector_index(vocab: Vocabulary, *, nprobe: int = NPROBE, cache: bool = True,
                on_build: Callable[[int], None] | None = None) -> VectorIndex:
    """The approximate index of ``vocab``: loaded from the cache, or built (and cached).

    A vocabulary read from a file (``attrs["path"]``) is cached; an in-memory one is
    built each time. ``on_build(n_labels)`` is called before a build (e.g. to say it
    will take a while). A cached index that cannot be read is rebuilt.
    """
    src = vocab.attrs.get("path")
    target = cache_path(src) if cache and src and Path(src).is_file() else None
    if target is not None and target.is_file():
        try:
            return VectorIndex.load(target, vocab.vectors, nprobe)
        except (RuntimeError, ValueError, OSError):
            pass  # stale or damaged cache: rebuild below
    if on_build is not None:
        on_build(len(vocab))
    index = VectorIndex.build(vocab.vectors, nprobe=nprobe)
    if target is not None:
        index.save(target)
        for stale in target.parent.glob(glob.escape(_prefix(Path(src).resolve())) + f"*.{BACKEND}"):
            if stale != target:
                stale.unlink(missing_ok=True)  # an index of an older version of the same file
    return index


def recall_at_k(approx_idx: np.ndarray, exact_idx: np.ndarray) -> float:
    """Mean fraction of the exact top-k rows that the approximate top-k found."""
    approx_idx, exact_idx = np.atleast_2d(approx_idx), np.atleast_2d(exact_idx)
    k = exact_idx.shape[1]
    return float(np.mean([len(set(a[:k]) & set(e)) / k for a, e in zip(approx_idx.tolist(), exact_idx.tolist())]))
