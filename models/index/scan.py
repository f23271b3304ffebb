"""Exact search over embeddings that need not fit in memory: a memory map scored a block at a time.

An index of 10M photos holds 12 GB of float32 embeddings; reading them into memory
for each query would cost that much RAM and tens of seconds. The embeddings are one
contiguous, uncompressed HDF5 dataset, so :class:`MappedRows` maps its bytes straight
from the file (the trick :func:`wordnet.vocab._read_vectors` uses for vocabularies)
and :func:`scan_top_k` scores them a block of rows at a time
(:func:`wordnet.vocab.top_k` on each block), keeping a running top-k. Pages of a block
are populated in one call before scoring and dropped from the process after it
(``madvise``), so resident memory stays about one block whatever the index size,
while the page cache still serves the next query from RAM.
"""
from __future__ import annotations

import mmap
import os
from typing import Iterable, Iterator

import numpy as np

from wordnet.vocab import top_k

BLOCK_BYTES = 64 << 20  # rows scored at a time: the resident memory a search needs
_POPULATE_READ = 22  # Linux MADV_POPULATE_READ (5.14+): map a block's pages in one call, not one fault each
_RELEASE_ALIGN = 2 << 20  # the largest page-cache folio (a PMD): pages are dropped in whole such regions


class MappedRows:
    """A read-only (n, d) float32 matrix stored contiguously at ``offset`` in ``path``, read through mmap.

    Slicing and fancy indexing return copies (so no view keeps the map alive);
    :meth:`blocks` yields views whose pages are released after each block.
    """

    def __init__(self, path: str | os.PathLike, offset: int, shape: tuple[int, int], fileno: int | None = None) -> None:
        self.path = str(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(np.float32)
        self._offset = int(offset)
        self._row_bytes = self.shape[1] * 4
        if fileno is not None:  # the file already open (the inode the caller read the layout from)
            self._map = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
        else:
            with open(self.path, "rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._rows = np.frombuffer(self._map, np.float32, count=self.shape[0] * self.shape[1],
                                   offset=self._offset).reshape(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return 2

    def __getitem__(self, key) -> np.ndarray:
        out = np.array(self._rows[key], np.float32)
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.shape[0])
            self._release(start, stop)
        elif not isinstance(key, tuple) and np.size(key):
            rows = np.asarray(key, np.int64).ravel() % max(1, self.shape[0])
            self._release(int(rows.min()), int(rows.max()) + 1)
        return out

    def __array__(self, dtype=None, copy=None):  # the whole matrix in memory: for small indexes and tests
        return np.array(self._rows, dtype=dtype or np.float32)

    def block_rows(self, block_bytes: int = BLOCK_BYTES) -> int:
        return max(1, int(block_bytes) // max(1, self._row_bytes))

    def blocks(self, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, view)`` of consecutive blocks of about ``block_bytes``; each view is valid
        until the next one is yielded (its pages are then dropped from this process)."""
        step = self.block_rows(block_bytes)
        for start in range(0, self.shape[0], step):
            stop = min(self.shape[0], start + step)
            self._populate(start, stop)
            yield start, self._rows[start:stop]
            self._release(start, stop)

    def _advise(self, option: int, first: int, length: int) -> None:
        if length <= 0 or not hasattr(self._map, "madvise"):
            return  # Windows: the OS pages it as it likes
        try:
            self._map.madvise(option, first, length)
        except (OSError, ValueError):
            pass  # an older kernel without MADV_POPULATE_READ: pages fault in one by one

    def _populate(self, start: int, stop: int) -> None:
        first = (self._offset + start * self._row_bytes) // mmap.PAGESIZE * mmap.PAGESIZE
        self._advise(_POPULATE_READ, first, self._offset + stop * self._row_bytes - first)

    def _release(self, start: int, stop: int) -> None:
        """Drop rows ``start:stop`` from this process (read-only file pages: the page cache keeps them).

        The range is widened to whole ``_RELEASE_ALIGN`` regions: dropping part of a large
        page-cache folio would make the kernel split it, unmapping it from every process
        that maps the file (other searches), which then fault it in again.
        """
        if stop <= start or not hasattr(mmap, "MADV_DONTNEED"):
            return
        first = (self._offset + start * self._row_bytes) // _RELEASE_ALIGN * _RELEASE_ALIGN
        end = -(-(self._offset + stop * self._row_bytes) // _RELEASE_ALIGN) * _RELEASE_ALIGN
        self._advise(mmap.MADV_DONTNEED, first, min(end, len(self._map)) - first)

    def close(self) -> None:
        self._rows = None
        try:
            self._map.close()
        except BufferError:  # a caller still holds a block view: the map closes when that goes
            pass


def row_blocks(matrix, block_bytes: int = BLOCK_BYTES) -> Iterable[tuple[int, np.ndarray]]:
    """Consecutive ``(first row, rows)`` blocks of an in-memory array or a :class:`MappedRows`."""
    if isinstance(matrix, MappedRows):
        return matrix.blocks(block_bytes)
    step = max(1, int(block_bytes) // max(1, 4 * matrix.shape[1]))
    return ((s, matrix[s:s + step]) for s in range(0, matrix.shape[0], step))


def scan_top_k(query: np.ndarray, matrix, k: int, block_bytes: int = BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Rows and cosines of the ``k`` rows of ``matrix`` (unit rows) nearest each query, best first.

    The result of :func:`wordnet.vocab.top_k` over the whole matrix (ties broken by the
    lower row), computed block by block so only one block's rows and scores are in
    memory at a time.
    """
    q = np.atleast_2d(np.asarray(query, np.float32))
    n = matrix.shape[0]
    k = max(1, min(int(k), n))
    best_idx = np.zeros((q.shape[0], 0), np.int64)
    best = np.zeros((q.shape[0], 0), np.float32)
    for start, rows in row_blocks(matrix, block_bytes):
        idx, scores = top_k(q, rows, k)
        cand_idx = np.concatenate([best_idx, idx + start], axis=1)
        cand = np.concatenate([best, scores], axis=1)
        order = np.lexsort((cand_idx, -cand), axis=-1)[:, :k]  # by score, then by row
        best_idx, best = np.take_along_axis(cand_idx, order, 1), np.take_along_axis(cand, order, 1)
    return best_idx, best
