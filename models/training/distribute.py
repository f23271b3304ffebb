"""Where training runs: the ``tf.distribute`` strategy and the mixed-precision policy.

``devise train --strategy auto`` mirrors over every local GPU when there are several.
``multi-worker`` (``MultiWorkerMirroredStrategy``) is refused with one line: on the pinned
Keras 3 every worker crashes in its first ``fit`` (keras-team/keras#20585, measured in
issue 14's spike). On the JAX and PyTorch backends there is no ``tf.distribute``, so only
``auto``/``one`` are accepted and the scope is a no-op.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def precision(mixed: bool):
    """``mixed_float16`` as the global dtype policy inside the block (restored after), or nothing."""
    import keras

    if not mixed:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def gpu_count() -> int:
    """GPUs this process sees, on whichever Keras backend runs."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(1 for d in jax.local_devices() if d.platform == "gpu")
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def distribution_strategy(name: str):
    """A ``tf.distribute`` strategy: auto = mirrored over all GPUs when there are several."""
    import keras

    from wordnet.base.errors import DeviseError

    if keras.backend.backend() != "tensorflow":
        if name not in ("auto", "one"):
            raise DeviseError(f"--strategy {name} needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
        return NoStrategy()
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        from models.training.config import MULTI_WORKER_REFUSED

        raise DeviseError(MULTI_WORKER_REFUSED)  # TrainConfig.validate refuses it first
    return tf.distribute.get_strategy()


class NoStrategy:
    """Stand-in for JAX/torch backends, which have no ``tf.distribute``."""

    def scope(self):
        return contextlib.nullcontext()
