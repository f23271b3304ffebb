"""DeViSE's hinge rank loss and the hit@k metric, both against a constant label matrix.

Frome et al. (2013), eq. 1: for an image embedding ``v`` with true label ``y``,

    loss(v, y) = sum_{j != y} max(0, margin - t_y . v + t_j . v)

with ``v`` and every label vector ``t`` unit-normalised, so the dot products are
cosine similarities. The label matrix is a constant of the loss (saved in its config)
and the training target is just the label's row index. ``variant="sampled"`` is the
paper's cheaper variant: visit the negatives in a random order and stop at the first
one that violates the margin; the loss is that single term (zero if none violates).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models.net.catalog import LOSS_VARIANTS
from wordnet.vocab import label_matrix


def _unit_rows(matrix) -> np.ndarray:
    """Unit rows as float32; rows that already are unit are kept bit for bit, so configs round-trip."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"label_vectors must be a 2-D matrix, got shape {m.shape}")
    return label_matrix(m)


def _scores(y_true, y_pred, labels):
    """Cosine scores (n, L) and true-label indices (n,)."""
    v = ops.cast(y_pred, "float32")
    v = v / ops.sqrt(ops.maximum(ops.sum(ops.square(v), axis=-1, keepdims=True), 1e-12))
    scores = ops.matmul(v, ops.transpose(labels))
    y = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    return scores, y


@keras.saving.register_keras_serializable(package="devise")
class HingeRankLoss(keras.losses.Loss):
    """DeViSE hinge rank loss; ``y_true`` are label indices, ``y_pred`` embeddings.

    Args:
        label_vectors: (L, d) label vectors (any norm; rows are normalised).
        margin: the hinge margin (0.1 in the paper).
        variant: ``"sum"`` over all negatives (default) or ``"sampled"`` (first violation
            in a random order).
        seed: seed for the ``sampled`` variant's random order.
    """

    def __init__(self, label_vectors, margin: float = 0.1, variant: str = "sum", seed: int | None = None,
                 name: str = "hinge_rank_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if variant not in LOSS_VARIANTS:
            raise ValueError(f"variant must be 'sum' or 'sampled', got {variant!r}")
        self.label_vectors = _unit_rows(label_vectors)
        self.margin = float(margin)
        self.variant = variant
        self.seed = seed
        self._labels = ops.convert_to_tensor(self.label_vectors)
        self._seed_gen = keras.random.SeedGenerator(seed) if variant == "sampled" else None

    def call(self, y_true, y_pred):
        scores, y = _scores(y_true, y_pred, self._labels)
        n_labels = self.label_vectors.shape[0]
        true_score = ops.take_along_axis(scores, ops.expand_dims(y, -1), axis=-1)
        negative = 1.0 - ops.one_hot(y, n_labels, dtype="float32")
        terms = ops.maximum(0.0, self.margin - true_score + scores) * negative
        if self.variant == "sum":
            return ops.sum(terms, axis=-1)
        # random order per sample: argsort of uniform keys; take the first violating term
        keys = keras.random.uniform(ops.shape(scores), seed=self._seed_gen)
        order = ops.argsort(keys, axis=-1)
        ordered = ops.take_along_axis(terms, order, axis=-1)
        violates = ops.cast(ordered > 0, "int32")
        first = ops.argmax(violates, axis=-1)
        picked = ops.take_along_axis(ordered, ops.expand_dims(first, -1), axis=-1)[:, 0]
        return picked  # zero when nothing violates (argmax -> 0, and that term is 0)

    def get_config(self):
        return {
            **super().get_config(),
            "label_vectors": self.label_vectors.tolist(),
            "margin": self.margin,
            "variant": self.variant,
            "seed": self.seed,
        }


def hinge_rank_loss_numpy(embeddings, labels_idx, label_vectors, margin=0.1, order=None) -> np.ndarray:
    """NumPy reference of :class:`HingeRankLoss` (per sample); ``order`` (n, L) selects the sampled variant."""
    v = np.asarray(embeddings, np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = np.asarray(label_vectors, np.float64)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    out = np.zeros(len(v))
    for i, (vi, yi) in enumerate(zip(v, np.asarray(labels_idx).reshape(-1))):
        s = t @ vi
        terms = [(j, max(0.0, margin - s[yi] + s[j])) for j in range(len(t)) if j != yi]
        if order is None:
            out[i] = sum(x for _, x in terms)
        else:
            by_j = dict(terms)
            out[i] = next((by_j[j] for j in order[i] if j != yi and by_j[j] > 0), 0.0)
    return out


@keras.saving.register_keras_serializable(package="devise")
class HitAtK(keras.metrics.Mean):
    """Fraction of samples whose true label is among the ``k`` labels nearest the embedding.

    A sample with any non-finite score (a NaN or infinite embedding) is a miss: every
    comparison with NaN is false, so its true label would otherwise rank first.
    """

    def __init__(self, label_vectors, k: int = 1, name: str | None = None, **kwargs):
        super().__init__(name=name or f"hit_at_{k}", **kwargs)
        self.label_vectors = _unit_rows(label_vectors)
        self.k = int(k)
        self._labels = ops.convert_to_tensor(self.label_vectors)

    def update_state(self, y_true, y_pred, sample_weight=None):
        scores, y = _scores(y_true, y_pred, self._labels)
        true_score = ops.take_along_axis(scores, ops.expand_dims(y, -1), axis=-1)
        rank = ops.sum(ops.cast(scores > true_score, "int32"), axis=-1)  # labels strictly better
        finite = ops.all(ops.isfinite(scores), axis=-1)
        hit = ops.cast(ops.logical_and(rank < self.k, finite), "float32")
        return super().update_state(hit, sample_weight=sample_weight)

    def get_config(self):
        return {"label_vectors": self.label_vectors.tolist(), "k": self.k, "name": self.name, "dtype": self.dtype}
