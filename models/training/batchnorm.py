"""Recompute a backbone's BatchNorm moving statistics on clean training images.

Why: phase 1 freezes the backbone and runs its BatchNorm layers in inference mode,
i.e. with their *moving* mean and variance. After a short phase 0 (or with random
initialisation) those averages lag far behind the weights — MobileNetV2's momentum is
0.999, so ~1,000 steps are not enough — and frozen features computed with them are
garbage: the emoji prototype scored chance (0.2 %) until the statistics were
recomputed, then 27 %. This is done for every backbone before phase 1.

How ("precise BN"): run the backbone in training mode over batches of un-augmented
training images and set each layer's moving statistics to the plain average of the
per-batch statistics. No weights other than the moving statistics change; momentum
and trainability are restored. (TensorFlow traces one ``tf.function``; other backends run
eagerly.)
"""
from __future__ import annotations

import numpy as np


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer inside ``model`` (nested models included)."""
    import keras

    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
    return found


def recompute_batchnorm_statistics(model, images: np.ndarray, batch_size: int = 64) -> int:
    """Reset the moving mean/variance of every BatchNorm in ``model`` to their average over ``images``.

    ``model`` maps raw images to anything (e.g. the backbone behind its preprocessing:
    :attr:`DeviseModel.feature_extractor`). Returns the number of batches used. Batches
    smaller than half of ``batch_size`` at the end are left out (noisy variance).

    Each batch runs in training mode with momentum 0, so afterwards every layer's
    moving statistics hold that batch's statistics; they are summed here and the
    averages assigned at the end. With momentum constant, one traced ``tf.function``
    serves all batches (eager for three batches or fewer, where tracing costs more).
    """
    import keras

    layers = batchnorm_layers(model)
    if not layers or len(images) == 0:
        return 0
    n = len(images)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < batch_size // 2:
        starts.pop()
    momenta = [(layer, layer.momentum) for layer in layers]
    flags = [(layer, layer.trainable) for layer in model._flatten_layers(include_self=True, recursive=True)]
    stats = {id(v) for layer in layers for v in (layer.moving_mean, layer.moving_variance)}
    others = [w for w in model.weights if id(w) not in stats]
    weights_before = [w.numpy() for w in others]
    sums = [[np.zeros(layer.moving_mean.shape, np.float64), np.zeros(layer.moving_variance.shape, np.float64)]
            for layer in layers]
    try:
        model.trainable = True
        for layer in layers:
            layer.trainable = True  # frozen Keras BN always runs in inference mode
            layer.momentum = 0.0

        def forward(x):
            return model(x, training=True)

        if len(starts) > 3 and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            forward = tf.function(forward)
        for start in starts:  # other backends run eagerly: the moving statistics are updated in place
            forward(keras.ops.convert_to_tensor(images[start:start + batch_size], dtype="float32"))
            for total, layer in zip(sums, layers):
                total[0] += layer.moving_mean.numpy()
                total[1] += layer.moving_variance.numpy()
        for total, layer in zip(sums, layers):
            layer.moving_mean.assign((total[0] / len(starts)).astype(np.float32))
            layer.moving_variance.assign((total[1] / len(starts)).astype(np.float32))
    finally:
        for layer, momentum in momenta:
            layer.momentum = momentum
        for layer, trainable in flags:  # outermost first, so nested flags win
            layer.trainable = trainable
    # the forward passes must not have touched any other weight
    for before, w in zip(weights_before, others):
        if not np.array_equal(before, w.numpy(), equal_nan=True):  # pragma: no cover - defensive
            raise RuntimeError(f"BatchNorm recomputation changed weight {w.path}")
    return len(starts)
