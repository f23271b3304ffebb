"""wordnet.scoring.metrics against values computed by hand on toy predictions and a toy hierarchy."""
from __future__ import annotations

import numpy as np
import pytest

from wordnet.scoring import metrics

# Five candidates: 0=dog 1=wolf 2=cat 3=car 4=truck.  Hand-made ground-truth sets
# (what the hierarchy gives: k=1 -> the label; larger k -> its neighbourhood).
GT = {
    ("dog", 1): {0}, ("dog", 2): {0, 1}, ("dog", 3): {0, 1, 2},
    ("cat", 1): {2}, ("cat", 2): {2, 0, 1}, ("cat", 3): {2, 0, 1},
    ("car", 1): {3}, ("car", 2): {3, 4}, ("car", 3): {3, 4},
}
TOPK = np.array([[0, 1, 2],   # dog image: dog, wolf, cat
                 [1, 0, 3],   # dog image: wolf, dog, car
                 [4, 3, 0]])  # car image: truck, car, dog
TRUE_IDX = np.array([0, 0, 3])
TRUE_WNIDS = ["dog", "dog", "car"]


def gt(wnid, k):
    return GT[(wnid, k)]


def test_hit_at_k_hand_computed():
    assert metrics.hit_at_k(TOPK, TRUE_IDX, [1, 2, 3]) == {1: pytest.approx(1 / 3), 2: 1.0, 3: 1.0}
    # truth outside the candidates (-1) never hits; k beyond the list counts the list
    assert metrics.hit_at_k(TOPK, np.array([-1, 3, 2]), [1, 3, 10]) == {
        1: 0.0, 3: pytest.approx(1 / 3), 10: pytest.approx(1 / 3)}


def test_hierarchical_precision_hand_computed():
    hp = metrics.hierarchical_precision_at_k(TOPK, TRUE_WNIDS, [1, 2, 3], gt)
    # k=1: [1, 0, 0]; k=2: [2/2, 2/2, 2/2]; k=3: dog {0,1,2}: 3/3, 2/3; car {3,4}: 2/3
    assert hp[1] == pytest.approx(1 / 3)
    assert hp[2] == pytest.approx(1.0)
    assert hp[3] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    # hp@1 == hit@1 whenever the k=1 ground truth is the true label alone
    assert hp[1] == metrics.hit_at_k(TOPK, TRUE_IDX, [1])[1]


def test_hp_on_a_toy_hierarchy_with_the_generic_ground_truth():
    """The label-space issue's graph ground truth, on a hierarchy small enough to check by hand."""
    from wordnet.hierarchy import ground_truth

    # animal -> {canine -> {dog, wolf}, feline -> {cat, tiger}}; vehicle -> {car, truck}
    parent = {"canine": "animal", "feline": "animal", "dog": "canine", "wolf": "canine",
              "cat": "feline", "tiger": "feline", "car": "vehicle", "truck": "vehicle"}
    children = {}
    for c, p in parent.items():
        children.setdefault(p, []).append(c)

    def neighbours(node):
        return ([parent[node]] if node in parent else []) + children.get(node, [])

    cands = ["dog", "wolf", "cat", "tiger", "car", "truck"]
    row = {w: i for i, w in enumerate(cands)}

    def gt_idx(wnid, k):
        return {row[w] for w in ground_truth(wnid, cands, k, neighbours)}

    assert gt_idx("dog", 1) == {0}
    assert gt_idx("dog", 2) == {0, 1}            # dog -> canine -> wolf (2 hops)
    assert gt_idx("dog", 3) == {0, 1, 2, 3}      # 4 hops reaches cat and tiger together
    topk = np.array([[1, 0, 4], [2, 4, 0]])      # dog images: wolf,dog,car / cat,car,dog
    hp = metrics.hierarchical_precision_at_k(topk, ["dog", "dog"], [1, 2, 3], gt_idx)
    assert hp == {1: 0.0, 2: pytest.approx((2 / 2 + 0 / 2) / 2), 3: pytest.approx((2 / 3 + 2 / 3) / 2)}


def test_chance_levels():
    ch = metrics.chance_hit_matrix(np.array([0, -1]), 5, [1, 2, 10])
    np.testing.assert_allclose(ch, [[0.2, 0.4, 1.0], [0, 0, 0]])
    chp = metrics.chance_hp_matrix(["dog", "car"], 5, [1, 2, 3], gt)
    np.testing.assert_allclose(chp, [[1 / 5, 2 / 5, 3 / 5], [1 / 5, 2 / 5, 2 / 5]])


def test_top_k_from_scores_sorted_and_ties_by_row():
    s = np.array([[0.1, 0.5, 0.5, 0.9], [0.2, 0.2, 0.9, 0.0]])
    idx, val = metrics.top_k_from_scores(s, 3)
    np.testing.assert_array_equal(idx, [[3, 1, 2], [2, 0, 1]])
    np.testing.assert_allclose(val, [[0.9, 0.5, 0.5], [0.9, 0.2, 0.2]])
    np.testing.assert_array_equal(metrics.top_k_from_scores(s, 9)[0], [[3, 1, 2, 0], [2, 0, 1, 3]])


def test_bootstrap_resamples_classes_not_images():
    # two classes of 50 images: all right / all wrong -> class resampling can give 0 or 1
    values = np.r_[np.ones(50), np.zeros(50)]
    classes = ["a"] * 50 + ["b"] * 50
    lo, hi = metrics.bootstrap_ci(values, classes, reps=1000, seed=0)[0]
    assert (lo, hi) == (0.0, 1.0)
    # identical classes -> no spread at all
    lo, hi = metrics.bootstrap_ci(np.tile([1.0, 0.0], 50), ["a", "a", "b", "b"] * 25)[0]
    assert lo == hi == 0.5


def test_bootstrap_replicates_match_a_loop_reference():
    rng = np.random.default_rng(3)
    values = rng.random((40, 2))
    classes = rng.integers(0, 7, size=40)
    reps = metrics.bootstrap_class_means(values, classes, reps=50, seed=11)
    draws = np.random.default_rng(11).multinomial(7, np.full(7, 1 / 7), size=50)
    for r in range(50):
        picked = np.concatenate([np.repeat(np.flatnonzero(classes == c), draws[r, c]) for c in range(7)])
        np.testing.assert_allclose(reps[r], values[picked].mean(axis=0))
    assert reps.shape == (50, 2)


def test_conse_matches_numpy_reference():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(30), size=6)
    vecs = rng.normal(size=(30, 8))
    got = metrics.conse_embeddings(probs, vecs, T=10)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for i in range(6):
        top = np.argsort(-probs[i])[:10]
        w = probs[i, top] / probs[i, top].sum()
        np.testing.assert_allclose(got[i], (w[:, None] * unit[top]).sum(axis=0), rtol=1e-5, atol=1e-6)
    # T=1 is the most probable label's own vector
    np.testing.assert_allclose(metrics.conse_embeddings(probs, vecs, T=1), unit[probs.argmax(axis=1)], rtol=1e-5)


def test_calibrated_stacking_and_gamma_choice():
    # candidates 0,1 seen; 2 unseen.  Image truths: 0 (seen), 1 (seen), 2 (unseen), 2 (unseen)
    scores = np.array([[0.9, 0.1, 0.5],    # gap 0.4, seen right
                       [0.2, 0.6, 0.5],    # gap 0.1, seen right
                       [0.7, 0.0, 0.6],    # gap 0.1, unseen would be right
                       [0.8, 0.0, 0.3]])   # gap 0.5, unseen would be right
    seen = np.array([True, True, False])
    truth = np.array([0, 1, 2, 2])
    np.testing.assert_allclose(metrics.calibrate(scores, seen, 0.2)[0], [0.7, -0.1, 0.5])
    gap, s_ok, u_ok = metrics.stacking_gaps(scores, seen, truth)
    np.testing.assert_allclose(gap, [0.4, 0.1, 0.1, 0.5])
    np.testing.assert_array_equal(s_ok, [True, True, False, False])
    np.testing.assert_array_equal(u_ok, [False, False, True, True])
    truth_seen = seen[truth]
    # gamma in (0.1, 0.4): seen 1/2, unseen 1/2 -> H 0.5; gamma 0: H 0; gamma > 0.5: seen 0
    gamma, info = metrics.choose_gamma(gap, s_ok, u_ok, truth_seen)
    assert gamma == pytest.approx(0.25)
    assert (info["seen_acc"], info["unseen_acc"]) == (0.5, 0.5)
    # seen images only: largest gamma keeping >= 90% of seen accuracy -> just below 0.1
    gamma, info = metrics.choose_gamma(gap[:2], s_ok[:2], u_ok[:2], truth_seen[:2])
    assert gamma == 0.0 and info["seen_acc"] == 1.0
    gamma, info = metrics.choose_gamma(gap[:2], s_ok[:2], u_ok[:2], truth_seen[:2], max_seen_drop=0.5)
    assert gamma == pytest.approx(0.25) and info["seen_acc"] == 0.5
    # unseen only: smallest gamma that turns both into unseen predictions
    gamma, _ = metrics.choose_gamma(gap[2:], s_ok[2:], u_ok[2:], truth_seen[2:])
    assert gamma > 0.5
    top1 = metrics.top_k_from_scores(metrics.calibrate(scores, seen, gamma), 1)[0][:, 0]
    np.testing.assert_array_equal(top1, [2, 2, 2, 2])


def test_per_class_mean_and_harmonic_mean_by_hand():
    # class a: 3 images, 2 right; class b: 2 images, 1 right -> per image 3/5, per class (2/3 + 1/2) / 2
    values = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    classes = ["a", "a", "a", "b", "b"]
    assert metrics.per_class_mean(values, classes)[0] == pytest.approx(7 / 12)
    assert values.mean() == pytest.approx(3 / 5)
    two = np.stack([values, 1 - values], axis=1)
    np.testing.assert_allclose(metrics.per_class_mean(two, classes), [7 / 12, 5 / 12])
    assert metrics.harmonic_mean(0.5, 0.25) == pytest.approx(1 / 3)  # 2 * 0.125 / 0.75
    assert metrics.harmonic_mean(0.0, 0.0) == 0.0 and metrics.harmonic_mean(0.6, 0.0) == 0.0


def test_per_class_bootstrap_matches_a_loop_reference_with_the_same_draws():
    values = np.random.default_rng(4).random((30, 2))
    classes = np.arange(30) % 5
    draws = np.random.default_rng(9).multinomial(5, np.full(5, 1 / 5), size=40)  # what seed 9 draws
    means = np.stack([values[classes == c].mean(axis=0) for c in range(5)])
    # each replicate: the mean of the drawn classes' means, a class drawn twice counting twice
    np.testing.assert_allclose(metrics.bootstrap_per_class_means(values, classes, reps=40, seed=9), draws @ means / 5)


def test_seen_unseen_curve_and_ausuc_by_hand():
    # seen images (classes a, b) with gaps 0.3, 0.1, both right as seen; unseen (c, d) with gaps
    # 0.2, -0.1, both right as unseen. Gamma at each distinct gap, then beyond the largest:
    #   gamma  -0.1  0.1  0.2  0.3  0.3+
    #   S       1    1    .5   .5   0      (a seen image stays right while gap >= gamma)
    #   U       0    .5   .5   1    1      (an unseen one is right once gap < gamma)
    gap = np.array([0.3, 0.1, 0.2, -0.1])
    s_ok = np.array([True, True, False, False])
    u_ok = np.array([False, False, True, True])
    truth_seen = np.array([True, True, False, False])
    gammas, seen, unseen = metrics.seen_unseen_curve(gap, s_ok, u_ok, truth_seen)
    np.testing.assert_allclose(gammas[:4], [-0.1, 0.1, 0.2, 0.3])
    assert gammas[4] > 0.3
    np.testing.assert_allclose(seen, [1, 1, 0.5, 0.5, 0])
    np.testing.assert_allclose(unseen, [0, 0.5, 0.5, 1, 1])
    # trapezoids under (U, S): 0.5 x 1 + 0 + 0.5 x 0.5 + 0 = 0.75
    assert metrics.ausuc(seen, unseen) == pytest.approx(0.75)
    # per-class weighting: a second, wrong image of class a halves a's share -> S starts at (1/2 + 1) / 2
    gap2, s2, u2, t2 = np.r_[gap, 0.5], np.r_[s_ok, False], np.r_[u_ok, False], np.r_[truth_seen, True]
    _, seen_pc, _ = metrics.seen_unseen_curve(gap2, s2, u2, t2, classes=["a", "b", "c", "d", "a"])
    _, seen_img, _ = metrics.seen_unseen_curve(gap2, s2, u2, t2)
    assert seen_pc[0] == pytest.approx(0.75) and seen_img[0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="both seen and unseen"):
        metrics.seen_unseen_curve(gap[:2], s_ok[:2], u_ok[:2], truth_seen[:2])


def test_temperature_fit_matches_the_closed_form():
    # two candidates whose cosines differ by d for every image, the first right for a share p:
    # the likelihood p log s(d/T) + (1-p) log s(-d/T) peaks where s(d/T) = p, T = d / logit(p)
    d, p = 0.4, 0.75
    scores = np.tile([0.5, 0.5 - d], (8, 1))
    truth = np.array([0] * 6 + [1] * 2)
    t = metrics.fit_temperature(scores, truth)
    assert t == pytest.approx(d / np.log(p / (1 - p)), rel=1e-4)
    # the probabilities wordnet.vocab.top_k gives with it: unit vectors at cosines 0.5 and 0.1 to the image
    from wordnet.vocab import top_k

    image = np.array([1.0, 0.0])
    labels = np.array([[0.5, np.sqrt(0.75)], [0.1, np.sqrt(0.99)]])
    idx, probs = top_k(image, labels, 2, temperature=t)
    assert idx.tolist() == [[0, 1]]
    np.testing.assert_allclose(probs, [[p, 1 - p]], rtol=1e-4)
    assert top_k(image, labels, 1, temperature=t)[1][0, 0] == pytest.approx(p, rel=1e-4)  # over every label
    with pytest.raises(ValueError, match="no image"):
        metrics.fit_temperature(scores, np.full(8, -1))


def test_metrics_module_imports_no_keras_or_nltk():
    import subprocess
    import sys

    code = ("import sys, wordnet.scoring.metrics, wordnet.scoring.evaluation; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'nltk') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
