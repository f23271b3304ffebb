"""The TF-free input path: ``keras.utils.PyDataset`` pipelines that decode with PIL in worker processes.

On the TensorFlow backend training reads tf.data pipelines (:mod:`models.data.tfdata`).
On any other Keras backend (JAX, the engine of several hosts and of GPU machines that have
no TensorFlow) :func:`uses_tf_data` is False and the phases read these instead:

- :class:`TrainingImages`: full batches ``(uint8 images, int32 labels)`` of the recipe's
  augmented views (or its evaluation view), shuffled per epoch with a seeded permutation,
  optionally the share of one process out of several (sharded *before* decoding);
- :class:`EvaluationImages`: ``(uint8 images, int32 labels, float32 weights)`` in order,
  every image once;
- :func:`inference_batches`: ``(uint8 images, positions)`` in input order, for the
  feature cache and the BatchNorm recomputation.

Decoding: :func:`models.data.images.load_window` (the one loader, its bad-file rules) and
the recipe's NumPy ops (:data:`models.data.augment.NUMPY_OPS`), in ``workers`` processes
(``use_multiprocessing``: each has its own interpreter, so decoding is GIL-free) started
by ``forkserver`` (forking a process whose JAX runtime already runs threads can deadlock
the child). Randomness is keyed by (seed, epoch, image), never by a worker's stream, so
the views do not depend on the number of workers or processes.

Epochs: fit calls ``PyDataset.on_epoch_end`` once *before* the first epoch (after its
symbolic build), so an epoch counted there is off by one; :class:`EpochSync`, a callback,
sets the epoch from ``fit``'s own number in ``on_epoch_begin``, before the data adapter
starts that epoch's workers. :func:`build_before_fit` builds the compiled loss and metrics
from the batch shapes so that ``fit`` pulls no batch from the worker pool before epoch 0
(such a batch would be served first in epoch 0 and shift every later one).

Bad files: a worker process cannot reach the parent's :class:`FailureLog`, so it writes
each failure as a small file into a private folder; :meth:`collect` (called by
:class:`EpochSync` at every epoch boundary and after ``fit``) moves them into the log,
which prints the one ``skipped PATH: reason`` line. A training image that fails is
replaced in its batch by the next image of the epoch's order that decodes (batches stay
full: every process of a multi-host run must take the same number of steps); known-bad
files are left out of the next epoch's order. An evaluation image that fails is replaced
by a weight-0 copy, which counts in no metric.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import keras
import numpy as np

from models.data import augment as A
from models.data import feature_file as F
from models.data.failures import failure_reason
from models.data.images import load_window

MAX_WORKERS = 16


def uses_tf_data() -> bool:
    """True on the TensorFlow backend (tf.data pipelines); False elsewhere (this module's PyDatasets)."""
    return keras.backend.backend() == "tensorflow"


def decode_workers(requested: int = 0) -> int:
    """``--decode-workers``: ``requested`` processes, or (0) one per CPU core but one, at least 1 and at most 16.

    (The datasets below take the resolved count, where 0 means decoding in the calling process.)
    """
    if requested > 0:
        return requested
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 2) - 1))


def use_forkserver() -> None:
    """Start worker processes with ``forkserver`` (preloading this module) instead of ``fork``.

    Keras's PyDataset pools use the default start method. ``fork`` copies a parent whose
    JAX runtime runs threads (a deadlock risk in the child); ``forkserver`` forks every
    worker from a clean server process that imported this module once.
    """
    if multiprocessing.get_start_method(allow_none=True) in (None, "fork"):
        multiprocessing.set_start_method("forkserver", force=True)
        multiprocessing.set_forkserver_preload([__name__])


# -- one view ------------------------------------------------------------------------------------------
def view(path: str, size: int, recipe: A.Recipe, rng: np.random.Generator | None) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 view of ``path``: augmented by ``recipe`` when ``rng`` is given,
    else its evaluation view (the centre crop). Raises :class:`~wordnet.base.errors.ImageError`."""
    if rng is None:
        def centre(shape):
            return A.NUMPY_WINDOWS["centre_square"](shape, None, recipe.eval_crop)

        return load_window(path, size, centre, draft=size)
    window, ops = A.numpy_recipe(recipe)

    def sampled(shape):
        return window(shape, rng, **recipe.window_options)

    # no JPEG draft for training windows: an 8 %-area crop of a draft-decoded photo would be upscaled
    image = load_window(path, size, sampled)
    if not ops:
        return image
    x = image.astype(np.float32)
    for op in ops:
        x = op(x, rng, size)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), int(position)])


class _Failures:
    """Failures written by worker processes into a private folder, moved into a FailureLog by the parent."""

    def __init__(self, log):
        self.log = log
        self.folder = Path(tempfile.mkdtemp(prefix="devise-skipped-"))

    def write(self, path: str, exc: BaseException) -> None:
        """(In a worker.) Record one failure: one small file, written under a temporary name then renamed."""
        reason = failure_reason(path, exc)
        name = hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()
        tmp = self.folder / f".{name}.{os.getpid()}.tmp"
        try:
            tmp.write_text(f"{path}\n{reason.splitlines()[0] if reason else ''}", encoding="utf-8",
                           errors="surrogateescape")
            os.replace(tmp, self.folder / f"{name}.txt")
        except OSError:  # pragma: no cover - the folder vanished (run ending)
            pass

    def collect(self) -> None:
        """(In the parent.) Move every recorded failure into the log (which reports each file once)."""
        if self.log is None or not self.folder.is_dir():
            return
        for entry in sorted(self.folder.glob("*.txt")):
            try:
                path, _, reason = entry.read_text(encoding="utf-8", errors="surrogateescape").partition("\n")
            except OSError:  # pragma: no cover
                continue
            self.log.add(path, reason)

    def close(self) -> None:
        self.collect()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __getstate__(self):  # workers get the folder, never the log (a lock and the reporter)
        return {"log": None, "folder": self.folder}


class _Images(keras.utils.PyDataset):
    """What the image PyDatasets share: paths, known-bad files, the failure folder, worker settings."""

    def __init__(self, paths, labels, *, size: int, recipe: str, log, workers: int):
        if workers > 0:
            use_forkserver()
        super().__init__(workers=workers, use_multiprocessing=workers > 0, max_queue_size=max(4, 2 * workers))
        self.paths = [str(p) for p in paths]
        self.labels = (np.asarray(labels, np.int32).reshape(-1) if labels is not None
                       else np.zeros(len(self.paths), np.int32))
        self.size, self.recipe = int(size), A.get_recipe(recipe)
        self.failures = _Failures(log)
        self.bad = frozenset(p for p in self.paths if log is not None and p in log)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by :class:`EpochSync` before the epoch's workers start: the epoch, and what is known bad."""
        self.epoch = int(epoch)
        self.collect()
        if self.failures.log is not None:
            self.bad = frozenset(p for p in self.paths if p in self.failures.log)

    def collect(self) -> None:
        self.failures.collect()

    def close(self) -> None:
        """Collect the last failures and remove the failure folder (after ``fit``)."""
        self.failures.close()

    def _decode(self, pos: int, rng) -> np.ndarray | None:
        path = self.paths[pos]
        if path in self.bad:
            return None
        try:
            return view(path, self.size, self.recipe, rng)
        except Exception as exc:  # noqa: BLE001 - ImageError normally; any decoder bug is one line too
            self.failures.write(path, exc)
            return None


class TrainingImages(_Images):
    """Training batches ``(uint8 (b, size, size, 3), int32 (b,))`` for ``fit``, full batches only.

    ``batch_size`` is the *global* batch; with ``processes`` > 1 this process yields its
    share, ``batch_size // processes`` rows per batch: each epoch the usable files are
    permuted with the seed (the same permutation on every process), and this process
    decodes only its rows of each global batch (rows ``process * local`` on), so global
    batch ``i`` (the processes' batches ``i`` concatenated in process order, as
    ``keras.distribution.DataParallel`` assembles it) is batch ``i`` of a one-process
    run, row for row (dropout masks then fall on the same images). Every process yields
    ``len(usable) // batch_size`` batches.
    """

    def __init__(self, paths, labels, *, size: int, batch_size: int, log, recipe: str = "square",
                 augment: bool = True, seed: int = 0, shuffle: bool = True, workers: int = 0, process: int = 0,
                 processes: int = 1):
        super().__init__(paths, labels, size=size, recipe=recipe, log=log, workers=workers)
        if batch_size % processes:
            raise ValueError(f"the batch size {batch_size} is not a multiple of the {processes} processes")
        if augment:
            A.numpy_recipe(self.recipe)  # a recipe without NumPy ops fails here, not in a worker
        self.keep = np.asarray([i for i, p in enumerate(self.paths) if p not in self.bad], np.int64)
        self.batch_size, self.local = int(batch_size), int(batch_size) // processes
        self.augment, self.seed, self.shuffle = augment, int(seed), shuffle
        self.process, self.processes = int(process), int(processes)
        self.batches = len(self.keep) // self.batch_size

    def __len__(self) -> int:
        return self.batches

    def order(self) -> np.ndarray:
        """The epoch's order of the usable files (positions in ``paths``), the same on every process."""
        return (np.random.default_rng([self.seed, self.epoch]).permutation(self.keep) if self.shuffle
                else self.keep)

    def zeros_batch(self):
        """A batch of this dataset's shapes and dtypes, all zeros (nothing decoded)."""
        return np.zeros((self.local, self.size, self.size, 3), np.uint8), np.zeros(self.local, np.int32)

    def __getitem__(self, i):
        order, start = self.order(), i * self.batch_size + self.process * self.local
        take = order[start:start + self.local]  # this process's rows of global batch i
        spare = iter(np.concatenate([order[(i + 1) * self.batch_size:], order[:i * self.batch_size]]))
        x = np.empty((self.local, self.size, self.size, 3), np.uint8)
        y = np.empty(self.local, np.int32)
        for j, pos in enumerate(take):
            while True:
                image = self._decode(int(pos), _rng(self.seed, self.epoch, pos) if self.augment else None)
                if image is not None:
                    break
                pos = next(spare, None)  # the next image of the epoch's order takes the failed one's place
                if pos is None:
                    raise ValueError("no training image of this batch's process decodes")
            x[j], y[j] = image, self.labels[pos]
        return x, y


class EvaluationImages(_Images):
    """Validation batches ``(uint8 images, int32 labels, float32 weights)``: every usable image once, in order.

    A file that fails gets a weight-0 copy of another image of its batch (or black pixels)
    in its place: it counts in no metric, and every batch keeps its size. With
    ``processes`` > 1, global batch ``i`` (``batch_size`` images, the last one padded with
    weight-0 rows) is split in process order, ``batch_size // processes`` rows each.
    """

    def __init__(self, paths, labels, *, size: int, batch_size: int, log, recipe: str = "square",
                 workers: int = 0, process: int = 0, processes: int = 1):
        super().__init__(paths, labels, size=size, recipe=recipe, log=log, workers=workers)
        if batch_size % processes:
            raise ValueError(f"the batch size {batch_size} is not a multiple of the {processes} processes")
        self.keep = np.asarray([i for i, p in enumerate(self.paths) if p not in self.bad], np.int64)
        self.batch_size = int(batch_size)
        self.process, self.processes, self.local = int(process), int(processes), int(batch_size) // processes

    def __len__(self) -> int:
        return -(-len(self.keep) // self.batch_size)

    def __getitem__(self, i):
        take = self.keep[i * self.batch_size:(i + 1) * self.batch_size]
        if self.processes > 1:  # this process's rows of the padded global batch (-1: padding)
            take = np.concatenate([take, np.full(self.batch_size - len(take), -1, np.int64)])
            take = take[self.process * self.local:(self.process + 1) * self.local]
        x = np.zeros((len(take), self.size, self.size, 3), np.uint8)
        w = np.zeros(len(take), np.float32)
        for j, pos in enumerate(take):
            image = self._decode(int(pos), None) if pos >= 0 else None
            if image is not None:
                x[j], w[j] = image, 1.0
        if w.any() and not w.all():
            x[w == 0] = x[np.argmax(w > 0)]
        return x, self.labels[np.maximum(take, 0)], w


class EpochSync(keras.callbacks.Callback):
    """Sets each dataset's epoch from ``fit``'s epoch number (see the module docstring) and gathers failures."""

    def __init__(self, *datasets):
        super().__init__()
        self.datasets = [d for d in datasets if hasattr(d, "set_epoch")]

    def on_epoch_begin(self, epoch, logs=None):
        for d in self.datasets:
            d.set_epoch(epoch)

    def on_epoch_end(self, epoch, logs=None):
        for d in self.datasets:
            if hasattr(d, "collect"):
                d.collect()


def build_before_fit(model, dataset) -> None:
    """Build ``model``'s compiled loss and metrics from ``dataset``'s batch shapes (zeros, decoded nothing).

    ``fit`` would otherwise take its first batch from the worker pool to build them, and
    that batch, already prefetched, would be served again as the first of epoch 0.
    """
    batch = dataset.zeros_batch()
    if hasattr(model, "_symbolic_build"):
        model._symbolic_build(data_batch=batch)  # what fit itself calls (Keras 3), given this batch
    else:  # pragma: no cover - another Keras: one evaluation step on zeros builds them too
        model.evaluate(*batch, batch_size=len(batch[0]), verbose=0)


# -- inference: in order, failures left out -------------------------------------------------------------
def _decode_batch(task):
    """(In a worker.) ``(paths, positions, size, recipe name)`` -> (images, positions kept, failures)."""
    paths, positions, size, recipe = task
    rec = A.get_recipe(recipe)
    images, kept, failures = [], [], []
    for path, pos in zip(paths, positions):
        try:
            images.append(view(path, size, rec, None))
            kept.append(pos)
        except Exception as exc:  # noqa: BLE001
            failures.append((path, exc))
    x = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return x, np.asarray(kept, np.int64), failures


def inference_batches(paths: Sequence[str | Path], size: int, batch_size: int, *, log, recipe: str = "square",
                      workers: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(uint8 images, int64 positions in paths)`` batches in input order: the evaluation view of every file.

    Files that fail are left out of their batch (a batch can be smaller, or empty) and go
    to ``log`` before the batch is delivered; known-bad files (in ``log``) are not read.
    Decoded in ``workers`` processes (0: in this process).
    """
    paths = [str(p) for p in paths]
    keep = [i for i, p in enumerate(paths) if p not in log]
    tasks = [([paths[i] for i in keep[s:s + batch_size]], keep[s:s + batch_size], size, recipe)
             for s in range(0, len(keep), batch_size)]
    pool = None
    if workers > 0 and len(tasks) > 1:
        use_forkserver()
        pool = multiprocessing.Pool(min(workers, len(tasks)))
        results = pool.imap(_decode_batch, tasks)
    else:
        results = map(_decode_batch, tasks)
    try:
        for x, positions, failures in results:
            for path, exc in failures:
                log.add_error(path, exc)
            yield x, positions
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


# -- the feature cache, read back ------------------------------------------------------------------------
class FeatureBatches(keras.utils.PyDataset):
    """:func:`models.data.tfdata.feature_dataset`'s stream as a ``keras.utils.PyDataset``.

    The same stream: each epoch (set by :class:`EpochSync`) visits the blocks in a seeded
    random order, ``GROUP_BLOCKS`` at a time with their rows permuted together, and batches
    the rows; one group is held in memory at a time. Read in the training process (HDF5
    reads release the GIL; no worker processes). With ``processes`` > 1 (several hosts,
    each with the same cache), this process yields its rows of each global batch,
    ``batch_size // processes`` of them, in process order (a last, smaller batch is padded
    with weight-0 rows; needs ``weights`` or ``drop_remainder``).
    """

    def __init__(self, cache, labels, batch_size: int, *, shuffle: bool, seed: int = 0, drop_remainder: bool = False,
                 weights: bool = False, outputs: tuple[str, ...] = ("embedding", "probs"), process: int = 0,
                 processes: int = 1):
        super().__init__()
        if batch_size % processes:
            raise ValueError(f"the batch size {batch_size} is not a multiple of the {processes} processes")
        self.process, self.processes = int(process), int(processes)
        self.local = batch_size // processes
        self.cache, self.batch_size, self.shuffle, self.seed = cache, int(batch_size), shuffle, int(seed)
        self.drop_remainder, self.weights, self.outputs = drop_remainder, weights, tuple(outputs)
        self.y_rows = np.asarray(labels, np.int32)[cache.index()]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        blocks = self.cache.blocks
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(blocks)
            self.groups = [order[g:g + F.GROUP_BLOCKS] for g in range(0, blocks, F.GROUP_BLOCKS)]
        else:
            self.groups = [np.asarray([b]) for b in range(blocks)]
        sizes = [sum(self.cache.block_rows(int(b)) for b in g) for g in self.groups]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.loaded = {}

    def __len__(self) -> int:
        rows = self.cache.rows
        return rows // self.batch_size if self.drop_remainder else math.ceil(rows / self.batch_size)

    def _group(self, g: int):
        if g not in self.loaded:
            ids = np.sort(self.groups[g])
            seed = [self.seed, self.epoch, *ids.tolist()] if self.shuffle else None
            x, scales, y = self.cache.read_blocks(ids, self.y_rows, seed)
            self.loaded = {g: (F.unscale(x, scales), y)}  # one group in memory
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


def feature_pass(feature_model, paths, size: int, batch_size: int, *, log, recipe: str = "square", workers: int = 0):
    """``(float32 features, int64 positions)`` for each non-empty batch of :func:`inference_batches`, in order.

    Batches are padded to ``batch_size`` rows, so the compiled forward pass is traced once.
    """
    from models.net.inference import compiled_inference

    infer = compiled_inference(feature_model)
    for images, positions in inference_batches(paths, size, batch_size, log=log, recipe=recipe, workers=workers):
        if len(positions):
            padded = np.zeros((batch_size,) + images.shape[1:], np.uint8)
            padded[:len(images)] = images
            yield np.asarray(infer(padded))[:len(images)], positions


class Input:
    """This module as the run's :class:`~models.data.inputs.ImageInput` (every backend but TensorFlow).

    ``headers`` are accepted and unused: Pillow reads every file, whatever its header says.
    """

    name = "Pillow"
    supports_style = False

    def __init__(self, settings):
        self.settings = settings
        self.workers = decode_workers(settings.workers)
        self.shard = dict(process=settings.process, processes=settings.processes)

    def training(self, paths, labels, *, size, batch_size, log, recipe, augment, seed, style, headers):
        return TrainingImages(paths, labels, size=size, batch_size=batch_size, log=log, recipe=recipe,
                              augment=augment, seed=seed, workers=self.workers, **self.shard)

    def evaluation(self, paths, labels, *, size, batch_size, log, recipe, headers):
        return EvaluationImages(paths, labels, size=size, batch_size=batch_size, log=log, recipe=recipe,
                                workers=self.workers, **self.shard)

    def inference(self, paths, size, batch_size, *, log, recipe, headers):
        return inference_batches(paths, size, batch_size, log=log, recipe=recipe, workers=self.workers)

    def feature_pass(self, feature_model, paths, size, batch_size, *, log, recipe, headers, strategy):
        return feature_pass(feature_model, paths, size, batch_size, log=log, recipe=recipe, workers=self.workers)

    def feature_stream(self, cache, labels, batch_size, *, shuffle, seed=0, drop_remainder=False, weights=False,
                       outputs=("embedding", "probs")):
        return FeatureBatches(cache, labels, batch_size, shuffle=shuffle, seed=seed, drop_remainder=drop_remainder,
                              weights=weights, outputs=outputs, **self.shard)

    @contextlib.contextmanager
    def fitting(self, model, x, validation):
        """:class:`EpochSync` first in ``fit``'s callbacks; the model built from zeros before ``fit``
        (:func:`build_before_fit`); the streams' failure folders collected and removed afterwards."""
        streams = [d for d in (x, validation) if d is not None]
        if hasattr(x, "zeros_batch"):
            build_before_fit(model, x)
        try:
            yield [EpochSync(*streams)]
        finally:
            for d in streams:
                if hasattr(d, "close"):
                    d.close()
