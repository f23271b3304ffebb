"""Phase 1's feature cache: which cache a run needs (its key), and computing it once, resumably.

With the backbone frozen and no augmentation, every phase-1 epoch would push the same
images through the same network; computing the pooled features once makes a head epoch
cost only the head (seconds instead of minutes for ResNet50). The file itself (float16
rows with per-row scales, its layout) is :mod:`models.data.feature_file`; the streams
that read it back are the input implementations' ``feature_stream``. Here:

- **the key** (:func:`cache_key`): the backbone config, the backbone's weight values
  (:func:`weights_digest`: phase 0 or the BatchNorm recomputation invalidate it), the
  image size, the augmentation recipe and the dataset's manifest digest
  (:func:`models.data.headers.manifest_digest`: the path list, not a ``stat`` of every file);
- **the pass** (:func:`cached_features`): batches come from the run's input
  (``feature_pass``: under the distribution strategy on every replica where the input
  supports it), rows go to ``<name>-<key>.partial.h5`` and a small ``.progress.json``
  beside it commits how far the pass got (atomic rename) after each chunk, so a pass
  killed at any moment resumes from its last committed chunk; the finished file is
  renamed to ``<name>-<key>.h5``;
- **in a seeded random order** for the training set, so contiguous blocks of rows are
  random samples: the streams visit blocks in a fresh random order each epoch and
  shuffle rows within a few blocks, never holding more than a few blocks in memory.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.data import feature_file as F
from models.data import headers as H
from models.data.failures import FailureLog
from wordnet.base.files import atomic_write

CHUNK_ROWS = 4096   # rows committed at a time while computing


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
    """Hash of (model config, weights, dataset manifest digest, image size, recipe, file format)."""
    h = hashlib.sha256()
    h.update(json.dumps(model_config, sort_keys=True, default=str).encode())
    for part in (weights_hash, manifest, str(int(image_size)), recipe, F.CACHE_FORMAT):
        h.update(b"\0" + part.encode())
    return h.hexdigest()


def cached_features(
    feature_model,
    paths: Sequence[str | Path],
    *,
    inputs,
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
) -> F.FeatureCache:
    """The :class:`~models.data.feature_file.FeatureCache` of ``paths`` (rows for the images that decoded),
    computed if needed with the run's input ``inputs`` (:func:`models.data.inputs.input_for`).

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
    hit = F.open_finished(target, key, log)
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
        F.create_partial(partial, key, total, dim)
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
                rows = F.write_rows(f, rows, np.concatenate(buffer_x), np.concatenate(buffer_i))
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
        for x, positions in inputs.feature_pass(feature_model, sub_paths, image_size, batch_size, log=log,
                                                recipe=recipe, headers=sub_headers, strategy=strategy):
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
        F.finish_file(f, rows, state["failures"])
    if progress is not None:  # the last images may have failed to decode
        progress(total, total)
    partial.replace(target)
    state_file.unlink(missing_ok=True)
    return F.FeatureCache(target, rows, dim)


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
