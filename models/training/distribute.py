"""Where training runs: the ``tf.distribute`` strategy and the mixed-precision policy.

``devise train --strategy auto`` mirrors over every local GPU when there are several;
``multi-worker`` follows ``TF_CONFIG``. On the JAX and PyTorch backends there is no
``tf.distribute``, so only ``auto``/``one`` are accepted and the scope is a no-op.
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


@contextlib.contextmanager
def determinism(enabled: bool):
    """TensorFlow's op determinism inside the block (restored after): a seeded run then repeats exactly.

    Without it two runs with the same ``--seed`` differ from the first epoch on (measured: phase-0
    loss 1.72 vs 1.87 on the same tiny data): random ops inside tf.data's parallel ``map`` (the flip
    and crop augmentation) draw from one stateful generator in whatever order the threads reach it.
    """
    import keras

    if not enabled or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # only enable_op_determinism is public

    was = getattr(tf_config, "is_op_determinism_enabled", lambda: True)()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            tf_config.disable_op_determinism()


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
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


class NoStrategy:
    """Stand-in for JAX/torch backends, which have no ``tf.distribute``."""

    def scope(self):
        return contextlib.nullcontext()
