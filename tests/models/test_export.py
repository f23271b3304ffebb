"""models.export: the classifier head of an exported model, and the float32 copy of a mixed-precision model."""
from __future__ import annotations

import numpy as np

from tests.tiny import tiny_model


def test_label_top_k_is_the_cosine_top_k():
    from models.export import LabelTopK

    rng = np.random.default_rng(0)
    labels = rng.normal(size=(9, 4)).astype(np.float32)
    emb = rng.normal(size=(5, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = LabelTopK(labels, k=3)(emb)
    unit = labels / np.linalg.norm(labels, axis=1, keepdims=True)
    scores = emb @ unit.T
    top = np.argsort(-scores, axis=1)[:, :3]
    np.testing.assert_array_equal(np.asarray(out["indices"]), top)
    np.testing.assert_allclose(np.asarray(out["scores"]), np.take_along_axis(scores, top, axis=1), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out["embedding"]), emb)
    assert LabelTopK(labels, k=50).k == 9  # never more than the labels


def test_float32_copy_of_a_mixed_precision_model():
    import keras

    from models.export import float32_copy

    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = tiny_model()
    finally:
        keras.config.set_dtype_policy("float32")
    copy = float32_copy(mixed)
    assert copy is not mixed and all(layer.compute_dtype == "float32" for layer in copy._flatten_layers())
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    a, b = mixed.embedder(x), copy.embedder(x)
    assert np.abs(np.asarray(a, np.float32) - np.asarray(b)).max() < 2e-2  # float16 vs float32 arithmetic
    plain = tiny_model()
    assert float32_copy(plain) is plain
