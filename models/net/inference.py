"""Inference functions for a loaded model: ``images -> {output name: np.ndarray}``.

:class:`models.bundle.Bundle` picks one per call: a ``tf.function`` traced once for
streams of batches, or plain eager calls when a single batch would not repay tracing
(``devise predict one.jpg``).
"""
from __future__ import annotations

import numpy as np


def compiled_inference(model, outputs: tuple[str, ...] | None = None):
    """``images -> {name: np.ndarray}`` for the named outputs, one ``tf.function`` traced once.

    The batch dimension is left unknown, so the last, smaller batch does not retrace;
    outputs not asked for are pruned from the traced graph. ``outputs=None``: the model's
    own output as NumPy (an array for a one-output model such as the feature extractor).
    Other Keras backends fall back to ``predict_on_batch``.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        if outputs is None:
            return model.predict_on_batch
        return lambda images: {k: v for k, v in model.predict_on_batch(images).items() if k in outputs}
    import tensorflow as tf

    shape = (None,) + tuple(model.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def fn(x):
        out = model(x, training=False)
        return out if outputs is None else {k: out[k] for k in outputs}

    def run(images):
        return tf.nest.map_structure(lambda t: t.numpy(), fn(tf.cast(images, tf.float32)))

    return run


def eager_inference(model, outputs: tuple[str, ...]):
    """``images -> {name: np.ndarray}`` by calling ``model`` eagerly (no tracing)."""

    def run(images):
        out = model(np.asarray(images, np.float32), training=False)
        return {k: np.asarray(out[k]) for k in outputs}

    return run
