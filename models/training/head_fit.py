"""Fitting the DeViSE head of a model on feature vectors held in memory: the default model's head.

``devise train`` fits its head on features it extracts from a labelled image folder
(:mod:`models.training.phases`). The default model is built differently: its backbone is an
ImageNet classifier whose own knowledge is the training signal, so its head is fitted on
feature vectors that need no image at all (the 1K classifier's weight rows, each labelled
with its class's label vector) and, optionally, on features of images already extracted.
Everything is small enough for memory, so this is one ``fit`` on arrays with the paper's
hinge rank loss.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.net.losses import HingeRankLoss


def fit_head(model, features: np.ndarray, labels: np.ndarray, label_vectors: np.ndarray, *, epochs: int = 40,
             batch_size: int = 64, learning_rate: float = 1e-3, margin: float = 0.1, dropout: float = 0.0,
             sample_weight: np.ndarray | None = None, seed: int = 0,
             progress: Callable[[int, int, float], None] | None = None) -> list[float]:
    """Fit ``model``'s DeViSE head (a :class:`~models.net.devise_model.DeviseModel`) on ``features`` (n, feature_dim).

    ``labels`` are rows of ``label_vectors`` (the hinge rank loss's label matrix, margin
    ``margin``); Adam with ``learning_rate``. The backbone and the softmax head are not
    touched. ``progress(epoch, epochs, loss)`` hears each epoch. Returns the epoch losses.
    """
    import keras

    keras.utils.set_random_seed(seed)
    head = model.head_on_features(dropout=dropout)
    embedder = keras.Model(head.inputs, head.output["embedding"], name="devise_head_embedding")
    embedder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=HingeRankLoss(label_vectors, margin=margin))
    callbacks = []
    if progress is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: progress(epoch + 1, epochs, float(logs["loss"]))))
    history = embedder.fit(np.asarray(features, np.float32), np.asarray(labels, np.int32), epochs=epochs,
                           batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks,
                           sample_weight=sample_weight)
    losses = [float(v) for v in history.history["loss"]]
    if not np.isfinite(losses[-1]):
        raise FloatingPointError("the head's loss became NaN; lower the learning rate")
    return losses
