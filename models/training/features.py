"""HDF5 cache of a frozen backbone's pooled features: computed once on every device, resumable, streamed.

With the backbone frozen and no augmentation, every phase-1 epoch would push the same
images through the same network; computing the pooled features once makes a head
epoch cost only the head (seconds instead of minutes for ResNet50). At ImageNet scale
(1.28 M images x 2,048 features) the cache is 5.2 GB, so:

- **computed under the distribution strategy**: batches of the inference pipeline
  (:func:`models.data.pipeline.inference_dataset`) are split over every replica
  (``strategy.run``) and gathered back in order;
- **float16 on disk**, half of float32: each row is stored divided by its largest
  magnitude (kept as a float32 ``scales`` entry), so rows keep float16's relative
  precision (2^-11) whatever their scale (an untrained backbone's features are ~1e-11,
  below float16's range); rows are read back as float32;
- **written in chunks**: rows go to ``<name>-<key>.partial.h5`` (its layout is written
  once, before any row, so later writes touch only row data) and a small
  ``.progress.json`` beside it commits how far the pass got (atomic rename) after each
  chunk: a pass killed at any moment resumes from its last committed chunk; the finished
  file is renamed to ``<name>-<key>.h5``;
- **in a seeded random order** for the training set, so contiguous blocks of rows are
  random samples: :meth:`FeatureCache.dataset` streams blocks in a fresh random order
  each epoch, shuffles rows within a few blocks and rebatches, never holding more than a
  few blocks in memory;
- **keyed by** the backbone config, the backbone's weight values (phase 0 or the
  BatchNorm recomputation invalidate it), the image size, the augmentation recipe and
  the dataset's manifest digest (:func:`models.data.headers.manifest_digest`: the path
  list, not a ``stat`` of every file).
"""
from __future__ import annotations

import hashlib
import json
import math
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from models.data import headers as H
from models.data.pipeline import FailureLog, inference_dataset, pad_to_replicas
from wordnet.base.files import atomic_write

CACHE_FORMAT = "devise-features-2"
_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # feature model -> {strategy: traced step}
CHUNK_ROWS = 4096   # rows committed at a time while computing
BLOCK_ROWS = 1024   # rows read at a time while streaming
GROUP_BLOCKS = 4    # blocks shuffled together: 4 x 1,024 rows x 2,048 x 2 bytes = 16 MB per group read


def inference_function(model):
    """``images -> outputs`` in inference mode, traced once for any batch size.

    ``predict_on_batch`` retraces for every new batch shape (the last, smaller batch of
    each split costs a full trace); a ``tf.function`` with an unknown batch dimension
    does not. Other Keras backends fall back to ``predict_on_batch``.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return model.predict_on_batch
    import tensorflow as tf

    shape = (None,) + tuple(model.inputs[0].shape[1:])
    fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)],
                     reduce_retracing=True)

    def run(images):
        return tf.nest.map_structure(lambda t: t.numpy(), fn(tf.cast(images, tf.float32)))

    return run


def weights_digest(model) -> str:
    """SHA-256 over every weight value of ``model`` (trainable or not), in order."""
    h = hashlib.sha256()
    for w in model.weights:
        arr = np.ascontiguousarray(w.numpy())
        h.update(w.path.encode() if hasattr(w, "path") else b"")
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def cache_key(model_config: dict, weights_hash: str, manifest: str, image_size: int, recipe: str = "square") -> str:
    """Hash of (model config, weights, dataset manifest digest, image size, recipe)."""
    h = hashlib.sha256()
    h.update(json.dumps(model_config, sort_keys=True, default=str).encode())
    for part in (weights_hash, manifest, str(int(image_size)), recipe, CACHE_FORMAT):
        h.update(b"\0" + part.encode())
    return h.hexdigest()


@dataclass
class FeatureCache:
    """A finished cache file: ``rows`` float16 feature rows and, per row, its position in the path list."""

    path: Path
    rows: int
    dim: int

    def index(self) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f["index"][: self.rows], np.int64)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` as float32 (small caches and tests; phase 1 streams :meth:`dataset`)."""
        import h5py

        stop = self.rows if stop is None else min(stop, self.rows)
        with h5py.File(self.path, "r") as f:
            return _unscale(f["features"][start:stop], f["scales"][start:stop])

    def dataset(self, labels: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                drop_remainder: bool = False, weights: bool = False, replicas: int = 1,
                outputs: tuple[str, ...] = ("embedding", "probs"), process: int = 0, processes: int = 1):
        """A tf.data stream of ``(float32 features, {output: y for output in outputs}[, weights])`` batches.

        ``labels[i]`` is the label of path ``i``. Rows are read ``BLOCK_ROWS`` at a time
        from the file (never the whole matrix); with ``shuffle``, each epoch visits the
        blocks in a new random order, ``GROUP_BLOCKS`` at a time with their rows
        permuted together. ``weights`` adds per-row weights (1) and pads a last batch
        smaller than ``replicas`` with weight-0 rows (see :func:`pad_to_replicas`).
        """
        from models.data.pil_pipeline import uses_tf_data

        if not uses_tf_data():  # other Keras backends: the same stream as a PyDataset
            return feature_batches(self, labels, batch_size, shuffle=shuffle, seed=seed,
                                   drop_remainder=drop_remainder, weights=weights, outputs=outputs,
                                   process=process, processes=processes)
        import h5py
        import tensorflow as tf

        y_rows = np.asarray(labels, np.int32)[self.index()]
        rows, path, dim = self.rows, str(self.path), self.dim
        blocks = max(1, math.ceil(rows / BLOCK_ROWS))

        def read(block_ids):  # float16 rows as stored, their scales and labels; shuffled together
            ids = np.sort(np.asarray(block_ids, np.int64))
            spans = [(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, rows)) for b in ids]
            n = sum(b - a for a, b in spans)
            x, sc, y = np.empty((n, dim), np.float16), np.empty(n, np.float32), np.empty(n, np.int32)
            with h5py.File(path, "r") as f:
                feats, scales = f["features"], f["scales"]
                at = 0
                for a, b in spans:
                    feats.read_direct(x, np.s_[a:b], np.s_[at:at + b - a])
                    sc[at:at + b - a] = scales[a:b]
                    y[at:at + b - a] = y_rows[a:b]
                    at += b - a
            if shuffle:
                order = np.random.default_rng([seed, *ids.tolist()]).permutation(n)
                x, sc, y = x[order], sc[order], y[order]
            return x, sc, y

        def load(block_ids):
            x, sc, y = tf.numpy_function(read, [block_ids], [tf.float16, tf.float32, tf.int32], stateful=False)
            return tf.ensure_shape(x, (None, dim)), tf.ensure_shape(sc, (None,)), tf.ensure_shape(y, (None,))

        ds = tf.data.Dataset.range(blocks)
        if shuffle:
            ds = ds.shuffle(blocks, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(GROUP_BLOCKS if shuffle else 1).map(load, num_parallel_calls=2, deterministic=not shuffle)
        ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)

        def targets(x, sc, y):  # unscaled per batch, in tf.data's threads
            return tf.cast(x, tf.float32) * sc[:, None], {name: y for name in outputs}

        def weighted(x, sc, y):
            x, y = targets(x, sc, y)
            return x, y, tf.ones(tf.shape(sc), tf.float32)

        ds = ds.map(weighted) if weights else ds.map(targets)
        if weights:
            ds = pad_to_replicas(ds, replicas)
        return ds.prefetch(2)


_FEATURE_BATCHES = None


def feature_batches(cache: FeatureCache, labels, batch_size: int, *, shuffle: bool, seed: int = 0,
                    drop_remainder: bool = False, weights: bool = False,
                    outputs: tuple[str, ...] = ("embedding", "probs"), process: int = 0, processes: int = 1):
    """:meth:`FeatureCache.dataset` as a ``keras.utils.PyDataset`` (backends other than TensorFlow).

    The same stream: each epoch (set by :class:`models.data.pil_pipeline.EpochSync`) visits
    the blocks in a seeded random order, ``GROUP_BLOCKS`` at a time with their rows
    permuted together, and batches the rows; one group is held in memory at a time.
    Read in the training process (HDF5 reads release the GIL; no worker processes).
    With ``processes`` > 1 (several hosts, each with the same cache), this process yields
    its rows of each global batch, ``batch_size // processes`` of them, in process order
    (a last, smaller batch is padded with weight-0 rows; needs ``weights`` or ``drop_remainder``).
    """
    global _FEATURE_BATCHES
    if _FEATURE_BATCHES is None:
        import keras

        class FeatureBatches(keras.utils.PyDataset):
            def __init__(self, cache, labels, batch_size, shuffle, seed, drop_remainder, weights, outputs,
                         process, processes):
                super().__init__()
                self.process, self.processes = process, processes
                self.local = batch_size // processes
                self.cache, self.batch_size, self.shuffle, self.seed = cache, int(batch_size), shuffle, int(seed)
                self.drop_remainder, self.weights, self.outputs = drop_remainder, weights, tuple(outputs)
                self.y_rows = np.asarray(labels, np.int32)[cache.index()]
                self.blocks = max(1, math.ceil(cache.rows / BLOCK_ROWS))
                self.set_epoch(0)

            def set_epoch(self, epoch):
                self.epoch = int(epoch)
                if self.shuffle:
                    order = np.random.default_rng([self.seed, self.epoch]).permutation(self.blocks)
                    self.groups = [order[g:g + GROUP_BLOCKS] for g in range(0, self.blocks, GROUP_BLOCKS)]
                else:
                    self.groups = [np.asarray([b]) for b in range(self.blocks)]
                sizes = [sum(min((b + 1) * BLOCK_ROWS, self.cache.rows) - b * BLOCK_ROWS for b in g)
                         for g in self.groups]
                self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
                self.loaded = {}

            def __len__(self):
                rows = self.cache.rows
                return rows // self.batch_size if self.drop_remainder else math.ceil(rows / self.batch_size)

            def _group(self, g):
                if g not in self.loaded:
                    import h5py

                    ids = np.sort(self.groups[g])
                    spans = [(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, self.cache.rows)) for b in ids]
                    with h5py.File(self.cache.path, "r") as f:
                        parts = [(f["features"][a:b], f["scales"][a:b]) for a, b in spans]
                    x = _unscale(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
                    y = np.concatenate([self.y_rows[a:b] for a, b in spans])
                    if self.shuffle:
                        order = np.random.default_rng([self.seed, self.epoch, *ids.tolist()]).permutation(len(x))
                        x, y = x[order], y[order]
                    self.loaded = {g: (x, y)}  # one group in memory
                return self.loaded[g]

            def __getitem__(self, i):
                a, b = i * self.batch_size, min((i + 1) * self.batch_size, self.cache.rows)
                xs, ys = [], []
                g = int(np.searchsorted(self.starts, a, side="right")) - 1
                while a < b:
                    x, y = self._group(g)
                    lo, hi = a - self.starts[g], min(b, self.starts[g + 1]) - self.starts[g]
                    xs.append(x[lo:hi])
                    ys.append(y[lo:hi])
                    a += hi - lo
                    g += 1
                x, y = np.concatenate(xs), np.concatenate(ys)
                w = np.ones(len(y), np.float32)
                if self.processes > 1:  # this process's rows of the global batch, padded to full
                    short = self.batch_size - len(y)
                    if short:
                        x = np.concatenate([x, np.repeat(x[:1], short, 0)])
                        y, w = np.concatenate([y, np.repeat(y[:1], short)]), np.concatenate([w, np.zeros(short)])
                    rows = slice(self.process * self.local, (self.process + 1) * self.local)
                    x, y, w = x[rows], y[rows], w[rows].astype(np.float32)
                targets = {name: y for name in self.outputs}
                return (x, targets, w) if self.weights else (x, targets)

        _FEATURE_BATCHES = FeatureBatches
    if batch_size % processes:
        raise ValueError(f"the batch size {batch_size} is not a multiple of the {processes} processes")
    return _FEATURE_BATCHES(cache, labels, batch_size, shuffle, seed, drop_remainder, weights, outputs, process,
                            processes)


def cached_features(
    feature_model,
    paths: Sequence[str | Path],
    *,
    image_size: int,
    batch_size: int,
    cache_dir: Path,
    name: str,
    key: str,
    log: FailureLog,
    recipe: str = "square",
    headers: H.ImageHeaders | None = None,
    strategy=None,
    shuffle_seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    workers: int = 0,
) -> FeatureCache:
    """The :class:`FeatureCache` of ``paths`` (rows for the images that decoded), computed if needed.

    Reads ``cache_dir/<name>-<key[:16]>.h5`` if it is finished and matches ``key``;
    resumes a matching ``.partial.h5`` where its last committed chunk ended; otherwise
    computes from scratch with ``feature_model`` (inference mode, on every replica of
    ``strategy``), and removes other caches of the same ``name``. Rows are in a random
    order seeded by ``shuffle_seed`` (``None``: input order). Failures recorded in the
    cache are replayed into ``log`` so they are counted on every run.
    """
    import h5py

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{key[:16]}"
    target, partial, state_file = (cache_dir / f"{stem}.h5", cache_dir / f"{stem}.partial.h5",
                                   cache_dir / f"{stem}.progress.json")
    total = len(paths)
    hit = _open_finished(target, key, log)
    if hit is not None:
        if progress is not None:  # a progress bar finishes only at done == total
            progress(total, total)
        return hit
    dim = int(feature_model.output.shape[-1])
    order = (np.random.default_rng(shuffle_seed).permutation(total) if shuffle_seed is not None
             else np.arange(total)).astype(np.int64)
    state = _resume_state(partial, state_file, key, total, log)
    if state is None:
        for stale in list(cache_dir.glob(f"{name}-*.h5")) + list(cache_dir.glob(f"{name}-*.progress.json")):
            stale.unlink(missing_ok=True)
        _create_partial(partial, key, total, dim)
        state = {"key": key, "done": 0, "rows": 0, "failures": []}
        _commit(state_file, state)
    done, rows = state["done"], state["rows"]
    if progress is not None:
        progress(done, total)
    todo = order[done:]
    paths = [str(p) for p in paths]
    if headers is None:
        headers = H.scan_headers(paths)
    sub_headers = headers.subset(todo)
    sub_paths = [paths[i] for i in todo]
    buffer_x, buffer_i = [], []
    mine, recorded = set(sub_paths), {p for p, _ in state["failures"]}
    with h5py.File(partial, "r+") as f:
        def commit(upto: int) -> None:
            nonlocal rows
            if buffer_x:
                rows = _write_rows(f, rows, np.concatenate(buffer_x), np.concatenate(buffer_i))
                buffer_x.clear()
                buffer_i.clear()
                f.flush()
            for p, r in log.items():
                if p in mine and p not in recorded:
                    recorded.add(p)
                    state["failures"].append([p, r])
            state.update(done=done + upto, rows=rows)
            _commit(state_file, state)

        pending, upto = 0, 0
        for x, positions in _batches(feature_model, sub_paths, image_size, batch_size, log, recipe, sub_headers,
                                     strategy, workers):
            buffer_x.append(np.asarray(x, np.float32))
            buffer_i.append(todo[positions])
            pending += len(positions)
            upto = int(positions[-1]) + 1
            if pending >= chunk_rows:
                commit(upto)
                pending = 0
            if progress is not None:
                progress(done + upto, total)
        commit(len(sub_paths))
        headers.kinds[todo] = sub_headers.kinds  # files found to need PIL stay marked for later pipelines
        _finish_file(f, rows, state["failures"])
    if progress is not None:  # the last images may have failed to decode
        progress(total, total)
    partial.replace(target)
    state_file.unlink(missing_ok=True)
    return FeatureCache(target, rows, dim)


def _batches(feature_model, paths, image_size, batch_size, log, recipe, headers, strategy, workers=0) -> Iterator:
    """``(features (n, dim) float32 numpy, positions (n,) int64)`` for each non-empty batch, in order."""
    from models.data.pil_pipeline import inference_batches, uses_tf_data

    if not uses_tf_data():  # other Keras backends: PIL in worker processes; batches padded to one shape
        infer = inference_function(feature_model)  # so that the compiled forward pass is traced once
        for images, positions in inference_batches(paths, image_size, batch_size, log=log, recipe=recipe,
                                                     workers=workers):
            if len(positions):
                padded = np.zeros((batch_size,) + images.shape[1:], np.uint8)
                padded[:len(images)] = images
                yield np.asarray(infer(padded))[:len(images)], positions
        return
    import tensorflow as tf

    ds = inference_dataset(paths, image_size, batch_size, log=log, recipe=recipe, headers=headers)

    def non_empty(images, positions):
        return tf.size(positions) > 0

    ds = ds.filter(non_empty)
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    if replicas <= 1:
        infer = inference_function(feature_model)
        for images, positions in ds:
            yield np.asarray(infer(images)), positions.numpy()
        return

    def with_marks(images, positions):
        return images, positions, tf.ones(tf.shape(positions), tf.float32)

    ds = pad_to_replicas(ds.map(with_marks), replicas)  # no replica may get an empty batch: Keras layers fail
    step = _STEPS.get(feature_model, {}).get(id(strategy))
    if step is None:
        @tf.function(reduce_retracing=True)
        def step(images, positions, marks):
            def replica(x, p, m):
                return feature_model(tf.cast(x, tf.float32), training=False), p, m

            out = strategy.run(replica, args=(images, positions, marks))
            return tuple(strategy.gather(t, axis=0) for t in out)

        _STEPS.setdefault(feature_model, {})[id(strategy)] = step  # traced once for train and val passes
    for images, positions, marks in strategy.experimental_distribute_dataset(ds):
        x, p, m = step(images, positions, marks)
        keep = m.numpy() > 0
        yield x.numpy()[keep], p.numpy()[keep]


def write_cache(path: Path, key: str, chunks, capacity: int, dim: int) -> FeatureCache:
    """A finished cache at ``path`` from ``(features float32 (n, dim), positions (n,))`` chunks.

    The layout :func:`cached_features` writes, for tools that already have the features
    (``benchmarks/feature_cache_memory.py`` builds a 150K-row cache this way).
    """
    import h5py

    path = Path(path)
    partial = path.with_name(path.stem + ".partial.h5")
    _create_partial(partial, key, capacity, dim)
    rows = 0
    with h5py.File(partial, "r+") as f:
        for x, idx in chunks:
            rows = _write_rows(f, rows, np.asarray(x, np.float32), np.asarray(idx, np.int64))
        _finish_file(f, rows, [])
    partial.replace(path)
    return FeatureCache(path, rows, dim)


def _write_rows(f, start: int, x: np.ndarray, idx: np.ndarray) -> int:
    """Store rows ``start:start + len(x)``: float16 divided by each row's largest magnitude, that scale apart."""
    s = np.abs(x).max(axis=1) if x.size else np.ones(len(x), np.float32)
    s = np.where(np.isfinite(s) & (s > 0), s, 1).astype(np.float32)
    stop = start + len(x)
    f["features"][start:stop] = (x / s[:, None]).astype(np.float16)
    f["scales"][start:stop] = s
    f["index"][start:stop] = idx
    return stop


def _finish_file(f, rows: int, failures: list) -> None:
    import h5py

    f.attrs["rows"] = rows
    str_dt = h5py.string_dtype("utf-8")
    f.create_dataset("failed_paths", data=[p for p, _ in failures], dtype=str_dt)
    f.create_dataset("failed_reasons", data=[r for _, r in failures], dtype=str_dt)


def _unscale(rows, scales) -> np.ndarray:
    return np.asarray(rows, np.float32) * np.asarray(scales, np.float32)[:, None]


def _create_partial(partial: Path, key: str, capacity: int, dim: int) -> None:
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


def _commit(state_file: Path, state: dict) -> None:
    with atomic_write(state_file, encoding="utf-8") as fh:
        json.dump(state, fh)


def _resume_state(partial: Path, state_file: Path, key: str, total: int, log: FailureLog) -> dict | None:
    """The committed progress of an interrupted pass over the same data, or None (start afresh)."""
    import h5py

    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        with h5py.File(partial, "r") as f:
            ok = f.attrs.get("key") == key and int(f.attrs.get("capacity", -1)) == total
    except (OSError, ValueError):
        return None
    if not ok or state.get("key") != key or not 0 <= state.get("done", -1) <= total:
        return None
    for p, r in state.get("failures", []):
        log.add(p, r)
    return state


def _open_finished(target: Path, key: str, log: FailureLog) -> FeatureCache | None:
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
