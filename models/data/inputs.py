"""The input seam: how images reach a training run, chosen once per run from the Keras backend.

Every phase reads images through one :class:`ImageInput`, made by :func:`input_for` when
the run starts (``RunContext.inputs``). Two implementations stand behind it:

- :mod:`models.data.tfdata` (the TensorFlow backend): tf.data pipelines, native decoding
  in the graph, the style ops of :mod:`models.data.style`, a distribution strategy's replicas;
- :mod:`models.data.pydataset` (every other backend: JAX, and the GPU or several-host
  machines that have no TensorFlow): ``keras.utils.PyDataset`` streams decoded by Pillow in
  worker processes, sharded per process.

Both hand out the same thing for the same call: the same views of the same files, the
same bad-file rules (one :class:`~models.data.failures.FailureLog`), the same batch
contracts. The phases never ask which one runs; what an implementation cannot do it
refuses through :meth:`ImageInput.check_style`. A third backend is one new module with a
class of this shape, named in :data:`IMPLEMENTATIONS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np

# Keras backend -> the module whose ``Input`` class reads images for it ("*": every other backend)
IMPLEMENTATIONS = {"tensorflow": "models.data.tfdata", "*": "models.data.pydataset"}


@dataclass(frozen=True)
class RunSettings:
    """What a run fixes for every stream it reads: decoding workers, this process among several, replicas."""

    workers: int = 0        # --decode-workers (0: one per core but one); used where decoding runs in processes
    process: int = 0        # this process's index among ``processes`` (several hosts, JAX)
    processes: int = 1
    replicas: int = 1       # devices of the distribution strategy (batches are padded so none gets nothing)


class ImageInput(Protocol):
    """The contract of an input implementation (see the module docstring). Batches hold uint8 images."""

    name: str                # what messages call it: "TensorFlow" or "Pillow" (its decoder)
    supports_style: bool     # whether ``--style`` ops can run on its batches
    settings: RunSettings

    def training(self, paths: Sequence[str], labels: np.ndarray, *, size: int, batch_size: int, log,
                 recipe: str, augment: bool, seed: int, style: str | None, headers):
        """Full batches ``(images, int32 labels)`` for ``fit``, shuffled and augmented per epoch."""

    def evaluation(self, paths: Sequence[str], labels: np.ndarray, *, size: int, batch_size: int, log,
                   recipe: str, headers):
        """``(images, int32 labels, float32 weights)``: every usable image once, in order (padding weighs 0)."""

    def inference(self, paths: Sequence[str], size: int, batch_size: int, *, log, recipe: str,
                  headers) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """NumPy ``(images, int64 positions in paths)`` in input order; failed files left out and logged."""

    def feature_pass(self, feature_model, paths: Sequence[str], size: int, batch_size: int, *, log, recipe: str,
                     headers, strategy) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(float32 features, int64 positions)`` of ``feature_model`` for every non-empty batch, in order."""

    def feature_stream(self, cache, labels: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                       drop_remainder: bool = False, weights: bool = False,
                       outputs: tuple[str, ...] = ("embedding", "probs")):
        """Batches ``(float32 features, {output: labels}[, weights])`` read from a
        :class:`~models.data.feature_file.FeatureCache`, a few blocks at a time."""

    def fitting(self, model, x, validation):
        """A context manager around ``model.fit(x, validation_data=validation)``: yields the callbacks the
        streams need in that ``fit`` (first in the list), and releases the streams afterwards."""


def input_for(backend: str | None = None, settings: RunSettings | None = None) -> ImageInput:
    """The input implementation for ``backend`` (default: the running Keras backend), with ``settings``."""
    import importlib

    if backend is None:
        import keras

        backend = keras.backend.backend()
    module = importlib.import_module(IMPLEMENTATIONS.get(backend, IMPLEMENTATIONS["*"]))
    return module.Input(settings or RunSettings())


def check_style(inputs: ImageInput, style: str | None) -> None:
    """Refuse ``--style`` (one line naming the input) where ``inputs`` cannot run its ops."""
    from models.data.style import parse_recipe
    from wordnet.base.errors import DeviseError

    if parse_recipe(style) and not inputs.supports_style:
        raise DeviseError(f"--style {style} needs the TensorFlow input pipeline (its ops are TensorFlow ops) "
                          f"and this run uses the {inputs.name} one; drop --style or train with "
                          "KERAS_BACKEND=tensorflow")
