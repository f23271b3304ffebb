"""HingeRankLoss and HitAtK against NumPy references; config round trips."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from models.net.losses import HingeRankLoss, HitAtK, hinge_rank_loss_numpy  # noqa: E402


@pytest.fixture()
def problem():
    rng = np.random.default_rng(3)
    labels = rng.normal(size=(7, 5)).astype(np.float32) * rng.uniform(0.5, 3, size=(7, 1))
    emb = rng.normal(size=(9, 5)).astype(np.float32)
    y = rng.integers(0, 7, size=9)
    return labels, emb, y


def test_sum_variant_matches_numpy(problem):
    labels, emb, y = problem
    loss = HingeRankLoss(labels, margin=0.1, reduction=None)
    got = np.asarray(loss(y, emb))
    want = hinge_rank_loss_numpy(emb, y, labels, margin=0.1)
    assert got.shape == (9,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.all(want > 0)  # random embeddings violate margins: the test is not trivially zero


def test_mean_reduction_and_big_margin(problem):
    labels, emb, y = problem
    got = float(HingeRankLoss(labels, margin=2.5)(y, emb))
    want = hinge_rank_loss_numpy(emb, y, labels, margin=2.5).mean()
    assert got == pytest.approx(want, rel=1e-5)
    # margin 2.5 > any cosine gap (max 2): every negative contributes
    assert want > 6 * 0.5


def test_perfect_embedding_has_zero_loss(problem):
    labels, _, y = problem
    eye = np.eye(7, dtype=np.float32)
    loss = HingeRankLoss(eye, margin=0.1, reduction=None)
    np.testing.assert_allclose(np.asarray(loss(y, eye[y] * 3.0)), 0.0, atol=1e-7)
    np.testing.assert_allclose(
        np.asarray(HingeRankLoss(eye, variant="sampled", reduction=None)(y, eye[y])), 0.0, atol=1e-7)


def test_sampled_variant_is_a_first_violation_term(problem):
    labels, emb, y = problem
    loss = HingeRankLoss(labels, margin=0.3, variant="sampled", seed=1, reduction=None)
    got = np.asarray(loss(y, emb))
    per_term = []
    t = labels / np.linalg.norm(labels, axis=1, keepdims=True)
    v = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for i in range(len(y)):
        s = t @ v[i]
        per_term.append({j: max(0.0, 0.3 - s[y[i]] + s[j]) for j in range(7) if j != y[i]})
    for i, value in enumerate(got):
        violating = [x for x in per_term[i].values() if x > 0]
        if violating:  # the sampled loss is one of the violating terms, never 0
            assert min(abs(value - x) for x in violating) < 1e-5
        else:
            assert value == 0
    # with a fixed order the NumPy reference picks the first violation in that order
    order = np.tile(np.arange(7), (len(y), 1))
    ref = hinge_rank_loss_numpy(emb, y, labels, margin=0.3, order=order)
    for i in range(len(y)):
        first = next((per_term[i][j] for j in range(7) if j != y[i] and per_term[i][j] > 0), 0.0)
        assert ref[i] == pytest.approx(first)


def test_sampled_variant_expectation_over_orders():
    """Averaged over random orders, each violating term is picked equally often."""
    labels = np.eye(4, dtype=np.float32)
    emb = np.array([[1.0, 0.9, 0.5, 0.0]], np.float32)  # true label 0; 1 and 2 violate margin 0.6
    loss = HingeRankLoss(labels, margin=0.6, variant="sampled", seed=0, reduction=None)
    v = emb / np.linalg.norm(emb)
    terms = [float(max(0.0, 0.6 - v[0, 0] + v[0, j])) for j in (1, 2, 3)]
    assert terms[0] > 0 and terms[1] > 0 and terms[2] == 0
    batch = np.zeros(400, np.int64)  # one call, 400 independent random orders
    draws = np.asarray(loss(batch, np.repeat(emb, 400, axis=0)), np.float64)
    assert np.all(np.isclose(draws, terms[0], atol=1e-5) | np.isclose(draws, terms[1], atol=1e-5))
    assert 0.4 < np.mean(np.isclose(draws, terms[0], atol=1e-5)) < 0.6


def test_loss_config_round_trip(problem):
    labels, emb, y = problem
    loss = HingeRankLoss(labels, margin=0.2, variant="sampled", seed=5)
    cfg = loss.get_config()
    again = HingeRankLoss.from_config(cfg)
    assert again.get_config() == cfg
    np.testing.assert_allclose(again.label_vectors, loss.label_vectors)
    ser = keras.saving.serialize_keras_object(HingeRankLoss(labels))
    back = keras.saving.deserialize_keras_object(ser)
    assert isinstance(back, HingeRankLoss)
    np.testing.assert_allclose(float(back(y, emb)), float(HingeRankLoss(labels)(y, emb)), rtol=1e-6)


def test_bad_variant_is_refused(problem):
    with pytest.raises(ValueError, match="variant"):
        HingeRankLoss(problem[0], variant="max")


def test_hit_at_k_matches_numpy(problem):
    labels, emb, y = problem
    t = labels / np.linalg.norm(labels, axis=1, keepdims=True)
    scores = emb @ t.T
    ranks = (scores > scores[np.arange(9), y][:, None]).sum(1)
    for k in (1, 3):
        metric = HitAtK(labels, k=k)
        metric.update_state(y, emb)
        assert float(metric.result()) == pytest.approx(np.mean(ranks < k))
        assert metric.name == f"hit_at_{k}"
        assert HitAtK.from_config(metric.get_config()).k == k


def test_hit_at_k_counts_non_finite_scores_as_misses():
    """A NaN embedding compares false with everything: without the finite check its label would rank first."""
    rng = np.random.default_rng(0)
    labels = rng.normal(size=(1000, 16)).astype(np.float32)
    y = rng.integers(0, 1000, size=8)
    nan = np.full((8, 16), np.nan, np.float32)
    for k in (1, 5):
        metric = HitAtK(labels, k)
        metric.update_state(y, nan)
        assert float(metric.result()) == 0.0
    mixed = labels[y].copy()  # perfect embeddings...
    mixed[:3] = np.nan  # ...but three of them NaN, one with an infinity
    mixed[3, 0] = np.inf
    metric = HitAtK(labels, 1)
    metric.update_state(y, mixed)
    assert float(metric.result()) == pytest.approx(4 / 8)
