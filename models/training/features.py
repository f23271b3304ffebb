"""HDF5 cache of a frozen backbone's pooled features (phase 1 trains the head on them).

With the backbone frozen and no augmentation, every phase-1 epoch would push the same
images through the same network; computing the pooled features once makes a head
epoch cost only the head (seconds instead of minutes for ResNet50). The cache file is
keyed by a hash of everything that determines the features — backbone config, the
backbone's actual weight values (so phase 0 or the BatchNorm recomputation
invalidate it), image size and the image list with sizes and mtimes — and written
atomically, so a killed run never leaves a cache that looks valid but is not.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.data.pipeline import FailureLog, image_dataset
from wordnet.base.files import atomic_path

CACHE_FORMAT = "devise-features"


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


def cache_key(model_config: dict, weights_hash: str, paths: Sequence[str | Path], image_size: int) -> str:
    """Hash of (model config, weights, image list with size/mtime, image size)."""
    h = hashlib.sha256()
    h.update(json.dumps(model_config, sort_keys=True, default=str).encode())
    h.update(weights_hash.encode())
    h.update(str(int(image_size)).encode())
    for p in paths:
        try:
            st = os.stat(p)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{p}\0{stamp}\n".encode())
    return h.hexdigest()


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
    progress: Callable[[int, int], None] | None = None,
    infer: Callable | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of ``paths`` (rows for the images that decoded) and their indices.

    Reads ``cache_dir/<name>-<key[:16]>.h5`` if it matches ``key``; otherwise computes
    the features with ``feature_model`` (inference mode; ``infer`` may pass a ready
    :func:`inference_function` of it), writes the cache atomically
    and removes stale caches of the same ``name``. Failures recorded in the cache are
    replayed into ``log`` so they are counted on every run.
    """
    import h5py

    cache_dir = Path(cache_dir)
    target = cache_dir / f"{name}-{key[:16]}.h5"
    hit = _read(target, key, log)
    if hit is not None:
        if progress is not None:  # a progress bar finishes only at done == total
            progress(len(paths), len(paths))
        return hit
    feats, index = [], []
    ds = image_dataset(paths, None, image_size, batch_size, log=log, with_index=True)
    infer = infer or inference_function(feature_model)
    for images, idx in ds:
        feats.append(np.asarray(infer(images), np.float32))
        index.append(idx.numpy())
        if progress is not None:
            progress(int(index[-1][-1]) + 1, len(paths))
    if progress is not None:  # the last images may have failed to decode
        progress(len(paths), len(paths))
    dim = int(feature_model.output.shape[-1])
    features = np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)
    indices = np.concatenate(index).astype(np.int64) if index else np.zeros(0, np.int64)
    path_set = {str(p) for p in paths}
    failures = [(p, r) for p, r in log.items() if p in path_set]
    str_dt = h5py.string_dtype("utf-8")
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = CACHE_FORMAT
            f.attrs["key"] = key
            f.create_dataset("features", data=features)
            f.create_dataset("index", data=indices)
            f.create_dataset("failed_paths", data=[p for p, _ in failures], dtype=str_dt)
            f.create_dataset("failed_reasons", data=[r for _, r in failures], dtype=str_dt)
    for stale in cache_dir.glob(f"{name}-*.h5"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return features, indices


def _read(target: Path, key: str, log: FailureLog):
    import h5py

    if not target.is_file():
        return None
    try:
        with h5py.File(target, "r") as f:
            if f.attrs.get("format") != CACHE_FORMAT or f.attrs.get("key") != key:
                return None
            features = np.asarray(f["features"][()], np.float32)
            indices = np.asarray(f["index"][()], np.int64)
            for p, r in zip(f["failed_paths"][()], f["failed_reasons"][()]):
                log.add(p.decode() if isinstance(p, bytes) else str(p), r.decode() if isinstance(r, bytes) else str(r))
    except (OSError, KeyError, ValueError):
        return None  # unreadable cache: recompute
    return features, indices
