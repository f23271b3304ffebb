"""tf.data input pipelines: native decoding in the graph, PIL where it must, skip-and-report bad files.

Three builders, each from a path list (+ labels) and options, each a ``tf.data.Dataset``:

- :func:`training_dataset`: shuffled, augmented by a recipe of :mod:`models.data.augment`
  (JPEG windows decoded with ``decode_and_crop_jpeg``), decoded out of order
  (``deterministic=False``), full batches only (``drop_remainder``: no replica of a
  distribution strategy ever gets an empty batch) -> ``(uint8 images, int32 labels)``;
- :func:`evaluation_dataset`: the recipe's evaluation view, in order, every image,
  ``(uint8 images, labels, weights)`` with a too-small last batch padded by weight-0
  copies so each replica gets at least one image;
- :func:`inference_dataset`: the evaluation view in input order -> ``(uint8 images,
  int64 positions in paths)`` (``predict``, ``eval``, ``index``, the feature cache).

Images stay uint8 until the model (its ``Preprocess`` layer casts on the device): a
quarter of float32's bytes per batch. Which decoder reads a file is decided once per
dataset by :mod:`models.data.headers`: TensorFlow's JPEG/PNG/GIF/BMP ops for plain files
(no Python, no GIL), :func:`models.data.images.read_rgb` through ``tf.numpy_function``
for the rest (CMYK, 16-bit, EXIF-rotated, WebP, transparency, damaged files). Both paths
then share the crop and resize ops, so a file gives the same pixels whichever path
reads it (``tf.io.decode_jpeg`` with ``INTEGER_ACCURATE`` matches PIL's libjpeg
exactly; the training crop of JPEGs, decoded window-only, may differ by a level or two
at chroma block edges).

Bad files: PIL's failures carry their reason to a :class:`FailureLog`, which reports each
file once however many epochs revisit it, and which later pipelines consult to leave
known-bad files out. A file that passed the header scan but that TensorFlow's decoder
still refuses is dropped from the stream (``ignore_errors``) and then handed to PIL:
in-order pipelines notice the gap at once and insert PIL's pixels in its place (or log
PIL's reason); training notices at the end of the epoch, logs the reason or, when PIL
reads it, routes the file to PIL from the next pipeline on.
"""
from __future__ import annotations

import contextlib
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

from models.data import augment as A
from models.data import feature_file as F
from models.data import headers as H
from models.data.failures import FailureLog
from models.data.images import read_rgb


def training_dataset(
    paths: Sequence[str | Path],
    labels: Sequence[int] | np.ndarray,
    *,
    size: int,
    batch_size: int,
    log: FailureLog,
    recipe: str = "square",
    augment: bool = True,
    headers: H.ImageHeaders | None = None,
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = True,
    style: str | None = None,
):
    """Batches of ``(uint8 images (b, size, size, 3), int32 labels (b,))`` for ``fit``.

    ``headers`` (from :func:`models.data.headers.cached_scan`, one row per path) says which
    decoder reads each file; it is scanned here when not given, and files that turn out
    to need PIL are marked in it for later pipelines. With ``augment=False`` the images
    are the recipe's evaluation view. ``drop_remainder`` keeps full batches only. ``style`` is
    a recipe of :mod:`models.data.style` ops applied to each batch (with ``augment`` only).
    """
    import tensorflow as tf

    src = _Source(paths, labels, headers, log)
    rec = A.get_recipe(recipe)
    token = tf.constant(_token(log), tf.int64)
    streams, choices = [], []
    # one stream per decoder kind, each a straight-line graph (no per-image tf.cond/switch_case:
    # they cost as much as the augmentation), merged in a shuffled order of kinds
    for lane, (kind, upright) in enumerate(src.lanes()):
        keep = src.lane(kind, upright)
        orientations = src.headers.orientations[keep].astype(np.int32)
        ds = tf.data.Dataset.from_tensor_slices((tf.constant(src.path_array(keep)), tf.constant(orientations),
                                                 tf.constant(keep)))
        if shuffle:
            ds = ds.shuffle(max(1, len(keep)), seed=seed + lane, reshuffle_each_iteration=True)
        rnd = tf.data.Dataset.random(seed=seed + 7919 * (lane + 1), rerandomize_each_iteration=True)
        element = _element_fn(kind, upright, size, rec, train=augment, draft=size)

        def decode(file, rnd, element=element, pil=kind == H.PIL):  # rnd: a fresh int64 per element and epoch
            path, orientation, pos = file
            image, ok = element(path, orientation, tf.bitcast(rnd, tf.int32), token)
            return (image, ok, pos) if pil else (image, pos)

        ds = tf.data.Dataset.zip(ds, rnd).map(_no_autograph(decode), **_parallel(deterministic=False))
        streams.append(_drop_failed(ds) if kind == H.PIL else ds.ignore_errors())
        choices.append(np.full(len(keep), lane, np.int64))
    if not streams:
        ds = _empty_batch(size).unbatch()
    elif len(streams) == 1:
        ds = streams[0]
    else:
        choice = tf.data.Dataset.from_tensor_slices(np.concatenate(choices))
        if shuffle:
            choice = choice.shuffle(len(src), seed=seed, reshuffle_each_iteration=True)
        ds = tf.data.Dataset.choose_from_datasets(streams, choice, stop_on_empty_dataset=False)
    watch = _EpochCheck(src, log)
    label_table = tf.constant(src.labels)

    def record(images, pos):
        return images, pos, tf.numpy_function(watch, [pos], tf.bool, stateful=True)

    def wanted(images, pos, _):
        n = tf.shape(pos)[0]
        return tf.equal(n, batch_size) if drop_remainder else n > 0

    def labelled(images, pos, _):
        y = tf.gather(label_table, pos)
        if drop_remainder:
            return tf.ensure_shape(images, (batch_size, size, size, 3)), tf.ensure_shape(y, (batch_size,))
        return images, y

    ds = ds.batch(batch_size).concatenate(_empty_batch(size))
    ds = ds.map(_no_autograph(record)).filter(_no_autograph(wanted)).map(_no_autograph(labelled))
    if augment:
        ds = _with_style(ds, style, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def _with_style(ds, recipe: str | None, seed: int):
    """Apply :mod:`models.data.style`'s ops of ``recipe`` to each ``(uint8 images, labels)`` batch, with
    a fresh stateless seed per batch and epoch (``Dataset.random`` re-randomised each iteration, seeded
    by ``seed``); the batch stays uint8."""
    import tensorflow as tf

    from models.data.style import style_augmenter

    apply = style_augmenter(recipe)
    if apply is None:
        return ds
    seeds = tf.data.Dataset.random(seed=seed + 104729, rerandomize_each_iteration=True).batch(2)

    def styled(batch, batch_seed):
        images, labels = batch
        x = apply(images, batch_seed)
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), labels

    return tf.data.Dataset.zip((ds, seeds)).map(styled, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def inference_dataset(
    paths: Sequence[str | Path],
    size: int,
    batch_size: int,
    *,
    log: FailureLog,
    recipe: str = "square",
    headers: H.ImageHeaders | None = None,
):
    """Batches of ``(uint8 images, int64 positions in paths)``, in input order, for inference.

    Every image is the recipe's evaluation view (the centre square, or its central
    ``eval_crop`` part, resized). Files that fail are left out of their batch (so a batch
    can be smaller, or empty) and go to ``log`` before the batch is delivered; a file
    TensorFlow refuses but PIL reads is decoded by PIL in its place, in order.
    """
    import tensorflow as tf

    src = _Source(paths, None, headers, log)
    rec = A.get_recipe(recipe)
    view, token = _view_fn(size, rec, draft=size), tf.constant(_token(log), tf.int64)

    def decode(path, kind, orientation, pos):
        image, ok = view(path, kind, orientation, token)
        return image, ok, pos

    ds = _drop_failed(src.dataset().map(_no_autograph(decode), **_parallel(deterministic=True)))
    fill = _GapFiller(src, log, size)
    recovered = _recovered_fn(size, rec)

    def fill_gaps(images, positions):
        padded, shapes, extra = tf.numpy_function(fill, [positions], [tf.uint8, tf.int32, tf.int64], stateful=True)
        padded.set_shape((None, None, None, 3))
        shapes.set_shape((None, 2))
        extra.set_shape((None,))

        def merge():
            more = recovered(padded, shapes)
            all_pos = tf.concat([positions, extra], 0)
            order = tf.argsort(all_pos)
            return tf.gather(tf.concat([images, more], 0), order), tf.gather(all_pos, order)

        return tf.cond(tf.size(extra) > 0, merge, lambda: (images, positions))

    ds = ds.batch(batch_size).concatenate(_empty_batch(size)).map(_no_autograph(fill_gaps))
    return ds.prefetch(tf.data.AUTOTUNE)


def decode_images(paths: Sequence[str | Path], size: int, *, recipe: str = "square", log: FailureLog | None = None,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 images (n, size, size, 3), their positions in paths)``: exactly what inference feeds a model."""
    log = log if log is not None else FailureLog()
    images, positions = [], []
    for x, pos in inference_dataset(paths, size, batch_size, log=log, recipe=recipe):
        images.append(x.numpy())
        positions.append(pos.numpy())
    if not positions:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(positions)


def evaluation_dataset(
    paths: Sequence[str | Path],
    labels: Sequence[int] | np.ndarray,
    *,
    size: int,
    batch_size: int,
    log: FailureLog,
    recipe: str = "square",
    headers: H.ImageHeaders | None = None,
    replicas: int = 1,
):
    """Validation batches ``(uint8 images, int32 labels, float32 weights)``: every image once, in order.

    A last batch smaller than ``replicas`` (a distribution strategy would hand some replica
    nothing, and Keras would average a 0/0 loss into NaN) is padded with copies of its
    first image at weight 0, which count in no metric.
    """
    import tensorflow as tf

    ds = inference_dataset(paths, size, batch_size, log=log, recipe=recipe, headers=headers)
    label_table = tf.constant(np.asarray(labels, np.int32).reshape(-1))

    def non_empty(images, pos):
        return tf.size(pos) > 0

    def weighted(images, pos):
        return images, tf.gather(label_table, pos), tf.ones(tf.shape(pos), tf.float32)

    return pad_to_replicas(ds.filter(_no_autograph(non_empty)).map(_no_autograph(weighted)), replicas)


def pad_to_replicas(ds, replicas: int):
    """Pad batches ``(x, y, weights)`` smaller than ``replicas`` with weight-0 copies of their first row.

    ``x`` and ``y`` may be tensors or dicts of tensors (their first dimension is the batch).
    """
    import tensorflow as tf

    if replicas <= 1:
        return ds

    def pad(x, y, w):
        n = tf.shape(w)[0]
        extra = tf.maximum(replicas - n, 0)
        take = tf.concat([tf.range(n), tf.zeros(extra, tf.int32)], 0)

        def grow(t):
            return tf.gather(t, take)

        x, y = tf.nest.map_structure(grow, x), tf.nest.map_structure(grow, y)
        return x, y, tf.concat([w, tf.zeros(extra, w.dtype)], 0)

    return ds.map(_no_autograph(pad))


# -- internals ---------------------------------------------------------------------------
class _Source:
    """The files a pipeline reads: known-bad ones left out, each with its decoder kind and position."""

    def __init__(self, paths, labels, headers, log: FailureLog):
        self.all_paths = [str(p) for p in paths]
        if headers is None:
            headers = H.scan_headers(self.all_paths)
        if len(headers) != len(self.all_paths):
            raise ValueError(f"headers describe {len(headers)} files, not {len(self.all_paths)}")
        self.headers = headers
        self.keep = np.asarray([i for i, p in enumerate(self.all_paths) if p not in log], np.int64)
        self.labels = (np.asarray(labels, np.int32).reshape(-1) if labels is not None
                       else np.zeros(len(self.all_paths), np.int32))

    def __len__(self) -> int:
        return len(self.keep)

    def lanes(self) -> list[tuple[int, bool]]:
        """The (decoder kind, upright) pairs present among the kept files (JPEGs with an EXIF turn apart)."""
        kinds = self.headers.kinds[self.keep]
        upright = self.headers.orientations[self.keep] == 1
        return sorted({(int(k), bool(u or k != H.JPEG)) for k, u in zip(kinds, upright)})

    def lane(self, kind: int, upright: bool) -> np.ndarray:
        kinds = self.headers.kinds[self.keep]
        mask = kinds == kind
        if kind == H.JPEG:
            mask &= (self.headers.orientations[self.keep] == 1) == upright
        return self.keep[mask]

    def path_array(self, positions) -> np.ndarray:
        return np.asarray([self.all_paths[i] for i in positions], dtype=object).astype(str) if len(positions) else \
            np.zeros(0, dtype=str)

    def dataset(self):
        import tensorflow as tf

        kept = np.asarray([self.all_paths[i] for i in self.keep], dtype=object).astype(str) if len(self.keep) else \
            np.zeros(0, dtype=str)
        kinds = self.headers.kinds[self.keep].astype(np.int32)
        orientations = self.headers.orientations[self.keep].astype(np.int32)
        return tf.data.Dataset.from_tensor_slices((tf.constant(kept, tf.string), tf.constant(kinds),
                                                   tf.constant(orientations), tf.constant(self.keep)))

    def to_pil(self, pos: int) -> None:
        self.headers.kinds[pos] = H.PIL


def _no_autograph(fn):
    """``fn`` for tf.data as written: it uses tf.cond/switch_case itself, so AutoGraph has nothing to convert."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def _parallel(deterministic: bool) -> dict:
    """``Dataset.map``'s parallelism for a map that decodes files: ``tf.data.AUTOTUNE`` calls, or a
    sequential map while op determinism is on (seeded runs). TensorFlow's determinism rewrite turns
    such a parallel map (its function reads files, and may call PIL through ``tf.numpy_function``)
    into a sequential one anyway, and since 2.18 logs an ``E0000 … NodeDef mentions attribute
    use_unbounded_threadpool`` line each time, through the progress bar; asking for the
    sequential map it would run gives the same pipeline and says nothing."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # the public API can only enable it

    if getattr(tf_config, "is_op_determinism_enabled", lambda: False)():
        return {}
    return {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": deterministic}


def _drop_failed(ds):
    """Drop the elements TensorFlow's decoders raised on, and PIL's failures (``ok`` False)."""

    def ok(image, good, pos):
        return good

    def strip(image, good, pos):
        return image, pos

    return ds.ignore_errors().filter(_no_autograph(ok)).map(_no_autograph(strip))


def _empty_batch(size: int):
    import tensorflow as tf

    return tf.data.Dataset.from_tensors((tf.zeros((0, size, size, 3), tf.uint8), tf.zeros((0,), tf.int64)))


class _GapFiller:
    """In-order pipelines: decode with PIL the files TensorFlow dropped between two delivered positions.

    Called once per batch with its positions (a final empty batch marks the end). Returns
    the recovered images padded to one shape, their shapes and their positions.
    """

    def __init__(self, src: _Source, log: FailureLog, size: int):
        self.src, self.log, self.size = src, log, size
        self.where = {int(p): j for j, p in enumerate(src.keep)}
        self.next = 0  # index into src.keep of the first position not yet accounted for

    def __call__(self, positions):
        keep = self.src.keep
        stop = self.where[int(positions[-1])] + 1 if len(positions) else len(keep)
        got = set(positions.tolist())
        missing = [int(p) for p in keep[self.next:stop]
                   if int(p) not in got and self.src.all_paths[int(p)] not in self.log]
        self.next = stop if len(positions) else 0  # the empty batch ends the stream: ready for another pass
        images, positions_out = [], []
        for pos in missing:
            path = self.src.all_paths[pos]
            try:
                images.append(read_rgb(path, draft=self.size))
                positions_out.append(pos)
                self.src.to_pil(pos)
            except Exception as exc:  # noqa: BLE001 - ImageError normally; any decoder bug is one line too
                self.log.add_error(path, exc)
        if not images:
            return np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 2), np.int32), np.zeros(0, np.int64)
        hmax, wmax = max(i.shape[0] for i in images), max(i.shape[1] for i in images)
        padded = np.zeros((len(images), hmax, wmax, 3), np.uint8)
        for j, img in enumerate(images):
            padded[j, :img.shape[0], :img.shape[1]] = img
        shapes = np.asarray([i.shape[:2] for i in images], np.int32)
        return padded, shapes, np.asarray(positions_out, np.int64)


class _EpochCheck:
    """Training pipelines: at the end of each pass, ask PIL about files TensorFlow dropped.

    A file PIL cannot read either is logged with PIL's reason; one it reads is routed to
    PIL in the shared headers, so the next pipeline (next phase, next run) trains on it.
    """

    def __init__(self, src: _Source, log: FailureLog):
        self.src, self.log = src, log
        self.seen = np.zeros(len(src.all_paths), bool)

    def __call__(self, positions) -> np.bool_:
        if len(positions):
            self.seen[positions] = True
            return np.bool_(True)
        for pos in self.src.keep[~self.seen[self.src.keep]]:
            path = self.src.all_paths[int(pos)]
            if path in self.log:
                continue
            try:
                read_rgb(path, draft=64)
                self.src.to_pil(int(pos))
            except Exception as exc:  # noqa: BLE001
                self.log.add_error(path, exc)
        self.seen[:] = False
        return np.bool_(True)


_LOGS: "weakref.WeakValueDictionary[int, FailureLog]" = weakref.WeakValueDictionary()
_FUNCTIONS: dict = {}  # traced tf.functions shared by every pipeline of the same geometry (tracing costs seconds)


def _token(log: FailureLog) -> int:
    """An int standing for ``log`` inside the graph (traced functions must not capture a particular log)."""
    _LOGS[id(log)] = log
    return id(log)


def _read_pil(path_bytes, token, draft):
    """PIL's whole image of one file, or (a 1x1 blank, False) with the reason in the pipeline's log."""
    path = path_bytes.decode("utf-8") if isinstance(path_bytes, bytes) else str(path_bytes)
    try:
        return read_rgb(path, draft=int(draft) or None), np.bool_(True)
    except Exception as exc:  # noqa: BLE001 - any decoder bug must not kill a long run
        log = _LOGS.get(int(token))
        if log is not None:
            log.add_error(path, exc)
    return np.zeros((1, 1, 3), np.uint8), np.bool_(False)


def _box_fn(rec: A.Recipe, train: bool):
    """``(shape (2,), seed) -> (top, left, h, w)``: the training window or the evaluation centre crop."""
    window = A.WINDOWS[rec.window]

    def box(shape, seed):
        if train:
            return window(shape, seed, **rec.window_options)
        return A.centre_window(shape, rec.eval_crop)

    return box


def _crop(image, box):
    import tensorflow as tf

    top, left, h, w = box
    return tf.slice(image, tf.stack([top, left, 0]), tf.stack([h, w, 3]))


ANTIALIAS_ABOVE = 2.0  # downscaling by more than this: antialiased resize (else plain bilinear, 2x cheaper)


def _resize(image, size: int):
    """Bilinear resize to ``size``; antialiased when shrinking by more than :data:`ANTIALIAS_ABOVE`.

    Plain bilinear reads 2x2 source pixels per output pixel: fine down to half size, and
    what the reference ImageNet input uses, but it aliases big photos (a 4000-pixel side
    at 224 samples one pixel in 18). The antialiased kernel costs twice as much CPU at
    224 px, so it is used only where it matters.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    big = tf.cast(tf.maximum(shape[0], shape[1]), tf.float32) > ANTIALIAS_ABOVE * size
    return tf.cond(big, lambda: tf.image.resize(image, (size, size), method="bilinear", antialias=True),
                   lambda: tf.image.resize(image, (size, size), method="bilinear"))


def _finish(image, size: int):
    """Cropped uint8 image -> ``(size, size, 3)`` uint8: resize (:func:`_resize`), round back."""
    return _to_uint8(_resize(image, size))


def _to_uint8(x):
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _decode(kind: int, path, token, draft: int | None):
    """The whole image of one file by the decoder ``kind`` names: ``(uint8 (h, w, 3), ok)``.

    TensorFlow's decoders raise on a bad file (the pipeline's ``ignore_errors`` drops it);
    PIL's failures come back as ``ok`` False, their reason in the pipeline's log.
    """
    import tensorflow as tf

    if kind == H.PIL:
        image, ok = tf.numpy_function(_read_pil, [path, token, draft or 0], [tf.uint8, tf.bool], stateful=False)
        return tf.ensure_shape(image, (None, None, 3)), tf.ensure_shape(ok, ())
    data = tf.io.read_file(path)
    if kind == H.JPEG:  # INTEGER_ACCURATE: the IDCT PIL's libjpeg uses, so both give the same pixels
        image = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    elif kind == H.PNG:
        image = tf.io.decode_png(data, channels=3)
    elif kind == H.PNG_ALPHA:
        image = _on_white(tf.io.decode_png(data, channels=4))
    elif kind == H.GIF:
        image = tf.io.decode_gif(data)[0]
    elif kind == H.BMP:
        image = tf.io.decode_bmp(data, channels=3)
    else:  # pragma: no cover - headers.py defines no other kind
        raise ValueError(f"unknown decoder kind {kind}")
    return tf.ensure_shape(image, (None, None, 3)), tf.constant(True)


def _element_fn(kind: int, upright: bool, size: int, rec: A.Recipe, *, train: bool, draft: int | None):
    """``(path, orientation, seed (2,), log token) -> (uint8 view, ok)`` for one file of one decoder kind.

    A straight-line graph per kind (the training pipeline keeps one stream per kind), a
    ``tf.function`` traced once per geometry and shared by every pipeline. With ``train``
    the recipe's window is sampled and its ops applied, each with a seed derived from
    ``seed``; an upright JPEG then decodes only its window (``decode_and_crop_jpeg``).
    """
    import tensorflow as tf

    key = ("element", kind, upright, size, rec.name, id(rec), train, draft)
    if key in _FUNCTIONS:
        return _FUNCTIONS[key]
    box = _box_fn(rec, train)
    ops = [A.OPS[name] for name in rec.ops] if train else []
    S = tf.TensorSpec

    @tf.function(input_signature=[S((), tf.string), S((), tf.int32), S((2,), tf.int32), S((), tf.int64)],
                 autograph=False)
    def element(path, orientation, seed, token):
        if kind == H.JPEG and upright and train:  # as the reference ImageNet input does
            data = tf.io.read_file(path)
            top, left, h, w = box(tf.io.extract_jpeg_shape(data)[:2], seed)
            image, ok = tf.io.decode_and_crop_jpeg(data, tf.stack([top, left, h, w]), channels=3), tf.constant(True)
        else:
            image, ok = _decode(kind, path, token, draft)
            if kind == H.JPEG and not upright:
                image = _orient(image, orientation)
            image = _crop(image, box(tf.shape(image)[:2], seed))
        x = _resize(image, size)
        for i, op in enumerate(ops):
            x = op(x, seed + tf.constant([0, i + 1], tf.int32), size)
        return _to_uint8(x), ok

    _FUNCTIONS[key] = element
    return element


def _view_fn(size: int, rec: A.Recipe, *, draft: int | None):
    """``(path, kind, orientation, log token) -> (uint8 evaluation view, ok)`` for any file (inference).

    In-order pipelines cannot split files by kind (a dropped file would reorder them), so
    one ``switch_case`` picks the decoder; a ``tf.function`` traced once per geometry.
    """
    import tensorflow as tf

    key = ("view", size, rec.name, id(rec), draft)
    if key in _FUNCTIONS:
        return _FUNCTIONS[key]
    box = _box_fn(rec, train=False)
    S = tf.TensorSpec

    @tf.function(input_signature=[S((), tf.string), S((), tf.int32), S((), tf.int32), S((), tf.int64)],
                 autograph=False)
    def view(path, kind, orientation, token):
        def branch(k):
            def decode():
                image, ok = _decode(k, path, token, draft)
                if k == H.JPEG:
                    image = tf.cond(tf.equal(orientation, 1), lambda: image, lambda: _orient(image, orientation))
                return image, ok

            return decode

        image, ok = tf.switch_case(kind, [branch(k) for k in range(len(H.KIND_NAMES))])
        image = tf.ensure_shape(image, (None, None, 3))
        return _finish(_crop(image, box(tf.shape(image)[:2], None)), size), ok

    _FUNCTIONS[key] = view
    return view


def _recovered_fn(size: int, rec: A.Recipe):
    """``(padded whole images, their shapes) -> evaluation views``: for files PIL read in TensorFlow's place."""
    import tensorflow as tf

    key = ("recovered", size, rec.name, id(rec))
    if key in _FUNCTIONS:
        return _FUNCTIONS[key]
    box = _box_fn(rec, train=False)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8), tf.TensorSpec((None, 2), tf.int32)],
                 autograph=False)
    def views(padded, shapes):
        def one(i):
            image = padded[i, :shapes[i, 0], :shapes[i, 1]]
            return _finish(_crop(image, box(shapes[i], None)), size)

        return tf.map_fn(one, tf.range(tf.shape(shapes)[0]), fn_output_signature=tf.TensorSpec((size, size, 3),
                                                                                                tf.uint8))

    _FUNCTIONS[key] = views
    return views


def _orient(image, orientation):
    """Apply an EXIF orientation (1-8) as PIL's ``ImageOps.exif_transpose`` does.

    5-8 swap the axes first; then 2, 3, 6, 7 mirror left-right and 3, 4, 7, 8 top-bottom.
    """
    import tensorflow as tf

    o = tf.cast(orientation, tf.int32)

    def maybe(flag, fn, x):
        return tf.cond(flag, lambda: fn(x), lambda: x)

    x = maybe(o >= 5, lambda t: tf.transpose(t, (1, 0, 2)), image)
    x = maybe(tf.reduce_any(tf.equal(o, [2, 3, 6, 7])), lambda t: tf.reverse(t, [1]), x)
    return maybe(tf.reduce_any(tf.equal(o, [3, 4, 7, 8])), lambda t: tf.reverse(t, [0]), x)


def _on_white(rgba):
    """Composite RGBA onto a white page with PIL's integer arithmetic (``Image.paste`` with a mask)."""
    import tensorflow as tf

    x = tf.cast(rgba, tf.int32)
    alpha = x[..., 3:]
    t = x[..., :3] * alpha + 255 * (255 - alpha) + 128
    shift = tf.bitwise.right_shift
    return tf.cast(shift(shift(t, 8) + t, 8), tf.uint8)


# -- the feature cache, read back ------------------------------------------------------------------------
def feature_dataset(cache, labels, batch_size: int, *, shuffle: bool, seed: int = 0, drop_remainder: bool = False,
                    weights: bool = False, replicas: int = 1, outputs: tuple[str, ...] = ("embedding", "probs")):
    """A tf.data stream of ``(float32 features, {output: y for output in outputs}[, weights])`` batches.

    ``labels[i]`` is the label of path ``i``. Rows are read a block at a time from the
    :class:`~models.data.feature_file.FeatureCache` (never the whole matrix); with
    ``shuffle``, each epoch visits the blocks in a new random order, ``GROUP_BLOCKS`` at a
    time with their rows permuted together. ``weights`` adds per-row weights (1) and pads
    a last batch smaller than ``replicas`` with weight-0 rows (see :func:`pad_to_replicas`).
    Rows stay float16 through the shuffle and are unscaled per batch, in tf.data's threads.
    """
    import tensorflow as tf

    y_rows = np.asarray(labels, np.int32)[cache.index()]
    dim = cache.dim

    def read(block_ids):
        ids = np.sort(np.asarray(block_ids, np.int64))
        return cache.read_blocks(ids, y_rows, [seed, *ids.tolist()] if shuffle else None)

    def load(block_ids):
        x, sc, y = tf.numpy_function(read, [block_ids], [tf.float16, tf.float32, tf.int32], stateful=False)
        return tf.ensure_shape(x, (None, dim)), tf.ensure_shape(sc, (None,)), tf.ensure_shape(y, (None,))

    ds = tf.data.Dataset.range(cache.blocks)
    if shuffle:
        ds = ds.shuffle(cache.blocks, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(F.GROUP_BLOCKS if shuffle else 1).map(load, num_parallel_calls=2, deterministic=not shuffle)
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)

    def targets(x, sc, y):
        return tf.cast(x, tf.float32) * sc[:, None], {name: y for name in outputs}

    def weighted(x, sc, y):
        x, y = targets(x, sc, y)
        return x, y, tf.ones(tf.shape(sc), tf.float32)

    ds = ds.map(weighted) if weights else ds.map(targets)
    if weights:
        ds = pad_to_replicas(ds, replicas)
    return ds.prefetch(2)


_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # feature model -> {strategy: traced step}


def feature_pass(feature_model, paths, size: int, batch_size: int, *, log: FailureLog, recipe: str = "square",
                 headers: H.ImageHeaders | None = None, strategy=None):
    """``(float32 features (n, dim), int64 positions (n,))`` for each non-empty batch of
    :func:`inference_dataset`, in order, computed on every replica of ``strategy`` (gathered back in order)."""
    import tensorflow as tf

    from models.net.inference import compiled_inference

    ds = inference_dataset(paths, size, batch_size, log=log, recipe=recipe, headers=headers)

    def non_empty(images, positions):
        return tf.size(positions) > 0

    ds = ds.filter(non_empty)
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    if replicas <= 1:
        infer = compiled_inference(feature_model)
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


def counting_iterators(ds):
    """``ds`` as a dataset that counts the iterators opened on it (the same elements, the same random
    streams), in ``iterators_opened``: what :class:`models.training.callbacks.AtomicBackupAndRestore`
    records so that a resumed ``fit`` trains on the uninterrupted run's draws.

    Each iterator opened on a dataset draws the next seeds of its ``reshuffle_each_iteration`` shuffles and
    re-randomised ``Dataset.random`` streams, and how many ``fit`` opens per epoch is Keras's business (one,
    or two when the number of batches is known: it opens the next epoch's ahead), so it is counted, not
    assumed. Keras opens a fresh one at the start of every epoch (no ``steps_per_epoch``), so a resumed
    ``fit`` that has opened as many as the interrupted one had trains on the same draws.
    """
    try:
        from tensorflow.python.data.ops import dataset_ops  # the pass-through base of tf.data's own wrappers
        base = dataset_ops.UnaryUnchangedStructureDataset
    except (ImportError, AttributeError):  # pragma: no cover - a TensorFlow without it: train, resume inexactly
        return ds

    class CountingIterators(base):
        def __init__(self, input_dataset):
            self._input_dataset = input_dataset
            self.iterators_opened = 0
            super().__init__(input_dataset, input_dataset._variant_tensor)

        def __iter__(self):
            self.iterators_opened += 1
            return super().__iter__()

    return CountingIterators(ds)


class Input:
    """This module as the run's :class:`~models.data.inputs.ImageInput` (the TensorFlow backend)."""

    name = "TensorFlow"
    supports_style = True

    def __init__(self, settings):
        self.settings = settings

    def training(self, paths, labels, *, size, batch_size, log, recipe, augment, seed, style, headers):
        return counting_iterators(training_dataset(paths, labels, size=size, batch_size=batch_size, log=log,
                                                   recipe=recipe, augment=augment, headers=headers, seed=seed,
                                                   style=style))

    def evaluation(self, paths, labels, *, size, batch_size, log, recipe, headers):
        return evaluation_dataset(paths, labels, size=size, batch_size=batch_size, log=log, recipe=recipe,
                                  headers=headers, replicas=self.settings.replicas)

    def inference(self, paths, size, batch_size, *, log, recipe, headers):
        for x, positions in inference_dataset(paths, size, batch_size, log=log, recipe=recipe, headers=headers):
            yield x.numpy(), positions.numpy()

    def feature_pass(self, feature_model, paths, size, batch_size, *, log, recipe, headers, strategy):
        return feature_pass(feature_model, paths, size, batch_size, log=log, recipe=recipe, headers=headers,
                            strategy=strategy)

    def feature_stream(self, cache, labels, batch_size, *, shuffle, seed=0, drop_remainder=False, weights=False,
                       outputs=("embedding", "probs")):
        return counting_iterators(feature_dataset(cache, labels, batch_size, shuffle=shuffle, seed=seed,
                                                  drop_remainder=drop_remainder, weights=weights,
                                                  replicas=self.settings.replicas, outputs=outputs))

    @contextlib.contextmanager
    def fitting(self, model, x, validation):
        yield []  # tf.data streams need no callback: fit iterates them afresh each epoch
