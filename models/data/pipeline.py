"""tf.data input pipelines: parallel decode, skip-and-report bad files, augmentation, prefetch.

Decoding goes through :func:`models.data.images.load_image` (PIL) inside ``tf.numpy_function``
so training and prediction see identical pixels. A file that fails to decode yields an
``ok=False`` element that is filtered out; its path and reason go to a
:class:`FailureLog`, which reports each file once however many epochs revisit it, and
which later pipelines consult to leave known-bad files out.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.data.images import load_image
from wordnet.base.errors import ImageError


class FailureLog:
    """Thread-safe record of images that would not decode: ``{path: reason}``, first reason wins."""

    def __init__(self, on_new: Callable[[str, str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self.failures: dict[str, str] = {}
        self.on_new = on_new

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            if path in self.failures:
                return
            self.failures[path] = reason
        if self.on_new is not None:
            self.on_new(path, reason)

    def __contains__(self, path) -> bool:
        return str(path) in self.failures

    def __len__(self) -> int:
        return len(self.failures)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.failures.items())


def _decoder(size: int, log: FailureLog):
    blank = np.zeros((size, size, 3), np.uint8)

    def decode(path_bytes):
        path = path_bytes.decode("utf-8") if isinstance(path_bytes, bytes) else str(path_bytes)
        try:
            return load_image(path, size), True
        except ImageError as exc:
            reason = str(exc)
            prefix = f"{path}: "
            log.add(path, reason[len(prefix):] if reason.startswith(prefix) else reason)
        except Exception as exc:  # any decoder bug must not kill a long run
            log.add(path, f"{exc.__class__.__name__}: {exc}")
        return blank, False

    return decode


def image_dataset(
    paths: Sequence[str | Path],
    labels: Sequence[int] | np.ndarray | None,
    size: int,
    batch_size: int,
    *,
    log: FailureLog,
    shuffle: bool = False,
    augment: bool = False,
    seed: int | None = None,
    with_index: bool = False,
    drop_remainder: bool = False,
    style: str | None = None,
):
    """A batched ``tf.data.Dataset`` of float32 RGB images in [0, 255].

    Elements are ``images`` or ``(images, labels)``; with ``with_index`` the position
    of each image in ``paths`` is appended, so callers can tell which files survived.
    Known-bad files (already in ``log``) are left out before decoding. ``style`` is a recipe of
    :mod:`models.data.style` ops applied to each batch (training only).
    """
    import tensorflow as tf

    keep = [i for i, p in enumerate(paths) if str(p) not in log]
    path_arr = np.asarray([str(paths[i]) for i in keep], dtype=object)
    idx_arr = np.asarray(keep, dtype=np.int64)
    tensors = [tf.constant(path_arr.astype(str)), tf.constant(idx_arr)]
    if labels is not None:
        tensors.append(tf.constant(np.asarray(labels, dtype=np.int32)[idx_arr] if len(keep) else np.zeros(0, np.int32)))
    ds = tf.data.Dataset.from_tensor_slices(tuple(tensors))
    if shuffle:
        ds = ds.shuffle(max(1, len(keep)), seed=seed, reshuffle_each_iteration=True)
    decode = _decoder(size, log)

    def load(path, *rest):
        img, ok = tf.numpy_function(decode, [path], [tf.uint8, tf.bool], stateful=False)
        img.set_shape((size, size, 3))
        ok.set_shape(())
        return (img, ok) + tuple(rest)

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda img, ok, *rest: ok)
    aug = _augmenter(size, seed) if augment else None

    def finish(img, ok, idx, *label):
        x = tf.cast(img, tf.float32)
        if aug is not None:
            x = aug(x)
        out = (x,) + tuple(label)
        if with_index:
            out = out + (idx,)
        return out if len(out) > 1 else out[0]

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = _with_style(ds, style, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def _with_style(ds, recipe: str | None, seed: int | None):
    """Apply :mod:`models.data.style`'s ops of ``recipe`` to each batch, with a fresh stateless seed per batch
    and epoch (``Dataset.random`` re-randomised each iteration, seeded by ``seed``)."""
    import tensorflow as tf

    from models.data.style import style_augmenter

    apply = style_augmenter(recipe)
    if apply is None:
        return ds
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def styled(batch, batch_seed):
        if isinstance(batch, tuple):
            return (apply(batch[0], batch_seed),) + batch[1:]
        return apply(batch, batch_seed)

    return tf.data.Dataset.zip((ds, seeds)).map(styled, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def inference_dataset(paths: Sequence[str | Path], size: int, batch_size: int, *, log: FailureLog):
    """Batches of ``(uint8 images, int64 positions in paths)`` for inference, in input order.

    Unlike :func:`image_dataset` (one ``numpy_function`` call per image, which costs
    more than decoding a small image), paths are batched first and each batch is
    decoded by one Python call; several batches decode at once in tf.data's threads
    (PIL releases the GIL while decoding and resizing) ahead of the model. Files that
    fail are dropped from their batch (so a batch can be smaller, or empty) and go
    to ``log``. Pixels are identical to :func:`image_dataset`'s (same decoder).
    """
    import tensorflow as tf

    keep = [i for i, p in enumerate(paths) if str(p) not in log]
    path_arr = np.asarray([str(paths[i]) for i in keep], dtype=object).astype(str)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(path_arr), tf.constant(np.asarray(keep, np.int64))))
    decode = _decoder(size, log)

    def decode_batch(batch_paths):
        images = np.empty((len(batch_paths), size, size, 3), np.uint8)
        ok = np.empty(len(batch_paths), bool)
        for j, path in enumerate(batch_paths):
            images[j], ok[j] = decode(path)
        return images, ok

    def load(batch_paths, positions):
        images, ok = tf.numpy_function(decode_batch, [batch_paths], [tf.uint8, tf.bool], stateful=False)
        images.set_shape((None, size, size, 3))
        ok.set_shape((None,))
        return tf.boolean_mask(images, ok), tf.boolean_mask(positions, ok)

    ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _augmenter(size: int, seed: int | None):
    """Light augmentation (phases 0 and 2): random horizontal flip and a random crop of 7/8 area-ish."""
    import tensorflow as tf

    pad = max(1, size // 8)

    def aug(x):
        x = tf.image.random_flip_left_right(x, seed=seed)
        x = tf.image.resize_with_crop_or_pad(x, size + pad, size + pad)
        x = tf.image.random_crop(x, (size, size, 3), seed=seed)
        return x

    return aug


def decode_all(paths: Sequence[str | Path], size: int, log: FailureLog, limit: int | None = None, seed: int = 0):
    """Decode up to ``limit`` images (a seeded random sample) into one uint8 array, skipping failures."""
    order = np.arange(len(paths))
    if limit is not None and limit < len(paths):
        order = np.sort(np.random.default_rng(seed).choice(len(paths), size=limit, replace=False))
    images = []
    for i in order:
        p = str(paths[i])
        if p in log:
            continue
        try:
            images.append(load_image(p, size))
        except ImageError as exc:
            reason = str(exc)
            log.add(p, reason[len(p) + 2:] if reason.startswith(p + ": ") else reason)
    if not images:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(images)
