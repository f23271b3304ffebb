"""The feature cache's HDF5 file: its layout, row scaling, and reading rows back a block at a time.

One file per (backbone weights, dataset, image size, recipe) holds a frozen backbone's pooled
features (:mod:`models.training.feature_cache` computes it and chooses its key):

- ``features`` (rows, dim) float16: each row divided by its largest magnitude, kept as the
  float32 ``scales`` entry, so rows keep float16's relative precision (2^-11) whatever their
  scale (an untrained backbone's features are ~1e-11, below float16's range); half the
  bytes of float32 (ImageNet: 1.28 M x 2,048 features is 5.2 GB);
- ``index`` (rows,) int64: each row's position in the dataset's path list;
- ``failed_paths`` / ``failed_reasons``: the files that did not decode, replayed into the run's log;
- attributes ``format``, ``key``, ``capacity`` and, once finished, ``rows``.

The datasets are laid out once, before any row (contiguous, allocated early, never filled),
so writing a chunk touches only row data. Readers (the two input implementations'
``feature_stream``) read :data:`BLOCK_ROWS` rows at a time through :meth:`FeatureCache.read_blocks`,
never the whole matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data.failures import FailureLog
from wordnet.base.files import atomic_write

CACHE_FORMAT = "devise-features-2"
BLOCK_ROWS = 1024   # rows read at a time while streaming
GROUP_BLOCKS = 4    # blocks shuffled together: 4 x 1,024 rows x 2,048 x 2 bytes = 16 MB per group read


@dataclass
class FeatureCache:
    """A finished cache file: ``rows`` float16 feature rows and, per row, its position in the path list."""

    path: Path
    rows: int
    dim: int

    @property
    def blocks(self) -> int:
        """How many :data:`BLOCK_ROWS`-row blocks the rows make (at least 1)."""
        return max(1, -(-self.rows // BLOCK_ROWS))

    def block_rows(self, block: int) -> int:
        return min((block + 1) * BLOCK_ROWS, self.rows) - block * BLOCK_ROWS

    def index(self) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f["index"][: self.rows], np.int64)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` as float32 (small caches and tests; training streams :meth:`read_blocks`)."""
        import h5py

        stop = self.rows if stop is None else min(stop, self.rows)
        with h5py.File(self.path, "r") as f:
            return unscale(f["features"][start:stop], f["scales"][start:stop])

    def read_blocks(self, block_ids, y_rows: np.ndarray, order_seed: list[int] | None = None):
        """The rows of blocks ``block_ids`` as stored: ``(float16 rows, float32 scales, int32 labels)``.

        ``y_rows[r]`` is row ``r``'s label. With ``order_seed`` the rows of all the blocks are
        permuted together by a generator seeded with it (a shuffle group), else kept in order.
        """
        import h5py

        ids = np.sort(np.asarray(block_ids, np.int64))
        spans = [(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, self.rows)) for b in ids]
        n = sum(b - a for a, b in spans)
        x, sc, y = np.empty((n, self.dim), np.float16), np.empty(n, np.float32), np.empty(n, np.int32)
        with h5py.File(self.path, "r") as f:
            feats, scales = f["features"], f["scales"]
            at = 0
            for a, b in spans:
                if b > a:
                    feats.read_direct(x, np.s_[a:b], np.s_[at:at + b - a])
                sc[at:at + b - a] = scales[a:b]
                y[at:at + b - a] = y_rows[a:b]
                at += b - a
        if order_seed is not None:
            order = np.random.default_rng(order_seed).permutation(n)
            x, sc, y = x[order], sc[order], y[order]
        return x, sc, y


def unscale(rows, scales) -> np.ndarray:
    """Stored float16 rows times their scales, as float32."""
    return np.asarray(rows, np.float32) * np.asarray(scales, np.float32)[:, None]


def create_partial(partial: Path, key: str, capacity: int, dim: int) -> None:
    """Lay out the partial file once (then closed): later writes only fill rows of its contiguous datasets."""
    import h5py

    with atomic_write(partial, "w+b") as fh, h5py.File(fh, "w") as f:  # see atomic_write
        f.attrs["format"] = CACHE_FORMAT
        f.attrs["key"] = key
        f.attrs["capacity"] = capacity
        rows = max(capacity, 1)
        for name, shape, dtype in (("features", (rows, dim), np.float16), ("scales", (rows,), np.float32),
                                   ("index", (rows,), np.int64)):
            space = h5py.h5s.create_simple(shape)
            plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            plist.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            plist.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            h5py.h5d.create(f.id, name.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=plist)


def write_rows(f, start: int, x: np.ndarray, idx: np.ndarray) -> int:
    """Store rows ``start:start + len(x)``: float16 divided by each row's largest magnitude, that scale apart."""
    s = np.abs(x).max(axis=1) if x.size else np.ones(len(x), np.float32)
    s = np.where(np.isfinite(s) & (s > 0), s, 1).astype(np.float32)
    stop = start + len(x)
    f["features"][start:stop] = (x / s[:, None]).astype(np.float16)
    f["scales"][start:stop] = s
    f["index"][start:stop] = idx
    return stop


def finish_file(f, rows: int, failures: list) -> None:
    """Record the row count and the failed files: the file is complete once renamed to its final name."""
    import h5py

    f.attrs["rows"] = rows
    str_dt = h5py.string_dtype("utf-8")
    f.create_dataset("failed_paths", data=[p for p, _ in failures], dtype=str_dt)
    f.create_dataset("failed_reasons", data=[r for _, r in failures], dtype=str_dt)


def open_finished(target: Path, key: str, log: FailureLog) -> FeatureCache | None:
    """The finished cache at ``target`` if it has this format and ``key`` (its failures replayed into ``log``),
    else None (absent, stale or unreadable: recompute)."""
    import h5py

    if not target.is_file():
        return None
    try:
        with h5py.File(target, "r") as f:
            if f.attrs.get("format") != CACHE_FORMAT or f.attrs.get("key") != key:
                return None
            rows, dim = int(f.attrs["rows"]), int(f["features"].shape[1])
            for p, r in zip(f["failed_paths"][()], f["failed_reasons"][()]):
                log.add(p.decode() if isinstance(p, bytes) else str(p), r.decode() if isinstance(r, bytes) else str(r))
    except (OSError, KeyError, ValueError):
        return None  # unreadable cache: recompute
    return FeatureCache(target, rows, dim)


def write_cache(path: Path, key: str, chunks, capacity: int, dim: int) -> FeatureCache:
    """A finished cache at ``path`` from ``(features float32 (n, dim), positions (n,))`` chunks.

    The layout :func:`models.training.feature_cache.cached_features` writes, for tools that
    already have the features (``benchmarks/feature_cache_memory.py`` builds a 150K-row cache this way).
    """
    import h5py

    path = Path(path)
    partial = path.with_name(path.stem + ".partial.h5")
    create_partial(partial, key, capacity, dim)
    rows = 0
    with h5py.File(partial, "r+") as f:
        for x, idx in chunks:
            rows = write_rows(f, rows, np.asarray(x, np.float32), np.asarray(idx, np.int64))
        finish_file(f, rows, [])
    partial.replace(path)
    return FeatureCache(path, rows, dim)
