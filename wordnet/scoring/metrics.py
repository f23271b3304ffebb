"""The paper's evaluation metrics, their chance levels and their uncertainty.

Pure NumPy (no Keras, no NLTK) so that every figure ``devise eval`` prints can be
checked by hand on a toy example:

* flat hit@k (Frome et al. 2013, "flat hit@k"): the share of images whose true
  label is among the top k predictions;
* hierarchical precision@k (Frome et al. 2013, sec. 4.2): the share of the top k
  predictions that fall into the ground-truth set grown from the true label through
  the WordNet hierarchy until it holds at least k candidate labels (the set itself
  comes from :mod:`wordnet.hierarchy`; here it is any ``ground_truth(wnid, k)``);
* chance levels of both for a uniformly random ranking of the candidates;
* bootstrap 95% intervals that resample *classes*, because zero-shot figures vary
  far more between classes than between images of one class;
* ConSE (Norouzi et al. 2014): a zero-training zero-shot baseline that embeds an
  image as the probability-weighted mean of its top-T training labels' vectors;
* calibrated stacking (Chao et al. 2016) for generalised zero-shot learning: a
  constant gamma is subtracted from every seen label's score; the seen-unseen accuracy
  curve over every gamma and the area under it (AUSUC);
* the zero-shot literature's class-balanced figures: per-class mean accuracy (Xian et
  al. 2018; CLIP_benchmark's ``mean_per_class_recall``) and the harmonic mean H of seen
  and unseen accuracy;
* a softmax temperature for readable scores: probabilities ``softmax(cosine / T)``
  (:func:`wordnet.vocab.top_k` computes them).

Score arrays are (n_images, n_candidates); index arrays are (n_images, k) of
candidate rows sorted best first; a true index of -1 means "not a candidate".
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

CONSE_T = 10
COMBINED_WEIGHT = 0.5  # the ConSE share of the combined embedding


# -- ranking ------------------------------------------------------------------
def top_k_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` highest scores per image, best first, and those scores.

    Ties among the returned labels are broken by the lower candidate row.
    """
    scores = np.atleast_2d(np.asarray(scores))
    n_cand = scores.shape[1]
    k = max(1, min(int(k), n_cand))
    if k < n_cand:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part.sort(axis=1)  # row order, so the stable sort below breaks ties by row
    else:
        part = np.broadcast_to(np.arange(n_cand), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


# -- per-image correctness ------------------------------------------------------
def hit_matrix(topk_idx: np.ndarray, true_idx: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """(n_images, len(ks)) floats: 1 where the true row is within the first k predictions.

    ``k`` larger than the number of predictions counts all of them.
    """
    topk_idx = np.atleast_2d(np.asarray(topk_idx))
    true_idx = np.asarray(true_idx).reshape(-1, 1)
    found = topk_idx == true_idx  # (n, K)
    first = np.where(found.any(axis=1), found.argmax(axis=1), np.iinfo(np.int64).max)
    return np.stack([(first < int(k)).astype(np.float64) for k in ks], axis=1)


def hit_at_k(topk_idx: np.ndarray, true_idx: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Flat hit@k for each k: the share of images whose true row is in the top k."""
    m = hit_matrix(topk_idx, true_idx, ks)
    return {int(k): float(m[:, j].mean()) for j, k in enumerate(ks)}


def hp_matrix(
    topk_idx: np.ndarray,
    true_wnids: Sequence[str],
    ks: Sequence[int],
    ground_truth: Callable[[str, int], Iterable[int]],
) -> np.ndarray:
    """(n_images, len(ks)) per-image hierarchical precision@k.

    For image i and each k: |top-k(i) ∩ ground_truth(true_i, k)| / k', where
    k' = min(k, number of predictions) so that a list shorter than k (fewer
    candidates than k) is not penalised for slots that cannot exist.
    """
    topk_idx = np.atleast_2d(np.asarray(topk_idx))
    n_pred = topk_idx.shape[1]
    out = np.zeros((topk_idx.shape[0], len(ks)))
    for i, wnid in enumerate(true_wnids):
        row = topk_idx[i]
        for j, k in enumerate(ks):
            kk = min(int(k), n_pred)
            gt = ground_truth(wnid, int(k))
            out[i, j] = np.isin(row[:kk], np.fromiter(gt, dtype=np.int64)).sum() / kk
    return out


def hierarchical_precision_at_k(
    topk_idx: np.ndarray,
    true_wnids: Sequence[str],
    ks: Sequence[int],
    ground_truth: Callable[[str, int], Iterable[int]],
) -> dict[int, float]:
    """Hierarchical precision@k averaged over images (hp@1 equals hit@1 when the
    ground truth for k=1 is the true label alone)."""
    m = hp_matrix(topk_idx, true_wnids, ks, ground_truth)
    return {int(k): float(m[:, j].mean()) for j, k in enumerate(ks)}


# -- chance -------------------------------------------------------------------
def chance_hit_matrix(true_idx: np.ndarray, n_candidates: int, ks: Sequence[int]) -> np.ndarray:
    """Expected hit@k of a uniformly random ranking: min(k, n)/n if the truth is a
    candidate, else 0 (per image, so it can be bootstrapped like the others)."""
    inside = (np.asarray(true_idx) >= 0).astype(np.float64).reshape(-1, 1)
    return inside * np.array([min(int(k), n_candidates) / n_candidates for k in ks])


def chance_hp_matrix(
    true_wnids: Sequence[str],
    n_candidates: int,
    ks: Sequence[int],
    ground_truth: Callable[[str, int], Iterable[int]],
) -> np.ndarray:
    """Expected hp@k of a uniformly random ranking: each of the k slots holds a
    uniformly drawn candidate, so the expected share is |ground truth| / n."""
    out = np.zeros((len(true_wnids), len(ks)))
    for i, wnid in enumerate(true_wnids):
        for j, k in enumerate(ks):
            out[i, j] = len(set(ground_truth(wnid, int(k)))) / n_candidates
    return out


# -- class-balanced figures ------------------------------------------------------
def per_class_mean(values: np.ndarray, classes: Sequence) -> np.ndarray:
    """(m,) the mean over classes of each class's mean (every class weighs the same).

    With top-1 correctness this is Xian et al.'s (2018) per-class averaged top-1
    accuracy, CLIP_benchmark's ``mean_per_class_recall``; the per-image mean lets
    classes with many images dominate.
    """
    sums, counts = _class_sums(values, classes)
    return (sums / counts[:, None]).mean(axis=0)


def harmonic_mean(seen: float, unseen: float) -> float:
    """H = 2 S U / (S + U), the generalised zero-shot summary (Xian et al. 2018); 0 when both are 0."""
    return 0.0 if seen + unseen <= 0 else 2.0 * seen * unseen / (seen + unseen)


# -- bootstrap over classes -----------------------------------------------------
def bootstrap_class_means(
    values: np.ndarray, classes: Sequence, reps: int = 1000, seed: int = 0
) -> np.ndarray:
    """(reps, m) bootstrap replicates of the per-image mean, resampling classes.

    ``values`` is (n_images,) or (n_images, m); ``classes`` labels each image.
    Each replicate draws as many classes as there are, with replacement, and
    takes the mean over all images of the drawn classes (a class drawn twice
    counts twice). Vectorised: the draws are a multinomial count per class.
    """
    sums, counts = _class_sums(values, classes)
    draws = _class_draws(len(counts), reps, seed)
    return (draws @ sums) / (draws @ counts)[:, None]


def bootstrap_per_class_means(
    values: np.ndarray, classes: Sequence, reps: int = 1000, seed: int = 0
) -> np.ndarray:
    """(reps, m) bootstrap replicates of the per-class mean (:func:`per_class_mean`).

    The same class draws as :func:`bootstrap_class_means` with the same seed, so the
    two intervals come from one resampling.
    """
    sums, counts = _class_sums(values, classes)
    draws = _class_draws(len(counts), reps, seed)
    return (draws @ (sums / counts[:, None])) / len(counts)


def _class_sums(values: np.ndarray, classes: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(n_classes, m) column sums over each class's images and (n_classes,) image counts,
    classes in sorted order."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    _, cls = np.unique(np.asarray(classes, dtype=object).astype(str), return_inverse=True)
    n_cls = int(cls.max()) + 1 if len(cls) else 0
    sums = np.zeros((n_cls, values.shape[1]))
    np.add.at(sums, cls, values)
    return sums, np.bincount(cls, minlength=n_cls).astype(np.float64)


def _class_draws(n_cls: int, reps: int, seed: int) -> np.ndarray:
    """(reps, n_cls) how often each class is drawn in each bootstrap replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_cls, np.full(n_cls, 1.0 / n_cls), size=int(reps)).astype(np.float64)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> np.ndarray:
    """(m, 2) percentile interval [lo, hi] of bootstrap replicates (reps, m)."""
    alpha = (1.0 - level) / 2.0
    return np.quantile(np.asarray(replicates), [alpha, 1.0 - alpha], axis=0).T


def bootstrap_ci(
    values: np.ndarray, classes: Sequence, reps: int = 1000, seed: int = 0, level: float = 0.95
) -> np.ndarray:
    """(m, 2) class-resampling bootstrap interval of the mean of each column."""
    return percentile_interval(bootstrap_class_means(values, classes, reps, seed), level)


# -- ConSE --------------------------------------------------------------------
def conse_embeddings(probs: np.ndarray, label_vectors: np.ndarray, T: int = CONSE_T) -> np.ndarray:
    """ConSE image embeddings (Norouzi et al. 2014, eq. 1).

    f(x) = (1/Z) sum_{t=1..T} p(y_t|x) s(y_t), the convex combination of the
    (unit) vectors s of the T most probable training labels, weighted by their
    probabilities renormalised over those T (Z = their sum). Rank candidates
    by cosine with the result. ``probs`` is (n, n_train), ``label_vectors``
    (n_train, d) in the same order.
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    vecs = np.asarray(label_vectors, dtype=np.float64)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    top, p = top_k_from_scores(probs, T)
    weights = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("nt,ntd->nd", weights, vecs[top]).astype(np.float32)


def combined_embeddings(devise: np.ndarray, conse: np.ndarray, weight: float = COMBINED_WEIGHT) -> np.ndarray:
    """Unit ``(1 - weight) * unit(devise) + weight * unit(conse)``: the two embeddings of one image, averaged.

    DeViSE's head and ConSE read the same backbone differently: the head regresses the
    pooled features onto the label space, ConSE mixes the label vectors of the classes
    the softmax believes in. Where the head was trained on other images than the ones it
    is shown (drawings vs photos), the classifier carries most of the signal and the head
    adds what the classes miss; both are unit vectors, so the mean weighs them alike.
    """
    def unit(x):
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return unit((1.0 - weight) * unit(devise) + weight * unit(conse)).astype(np.float32)


def method_embeddings(method: str, embeddings: np.ndarray, probs: np.ndarray | None, label_vectors: np.ndarray,
                      T: int = CONSE_T, weight: float = COMBINED_WEIGHT) -> np.ndarray:
    """The image embeddings a ranking ``method`` scores against candidate labels (one place for every caller).

    ``embeddings`` are the DeViSE head's; ``probs`` the softmax over the model's training
    labels, whose vectors are ``label_vectors`` (same order). ``softmax`` ranks no label
    vectors and has no embedding.
    """
    if method == "devise":
        return np.asarray(embeddings, dtype=np.float32)
    if probs is None:
        raise ValueError(f"the {method} method needs the softmax head's probabilities")
    if method == "conse":
        return conse_embeddings(probs, label_vectors, T)
    if method == "combined":
        return combined_embeddings(embeddings, conse_embeddings(probs, label_vectors, T), weight)
    raise ValueError(f"the {method} method has no embedding")


# -- calibrated stacking ----------------------------------------------------------
def calibrate(scores: np.ndarray, seen_mask: np.ndarray, gamma: float) -> np.ndarray:
    """Calibrated stacking (Chao et al. 2016): subtract ``gamma`` from seen labels' scores."""
    return np.asarray(scores) - float(gamma) * np.asarray(seen_mask, dtype=np.float64)


def stacking_gaps(
    scores: np.ndarray, seen_mask: np.ndarray, true_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What decides top-1 under any gamma, for each image.

    Returns (gap, seen_correct, unseen_correct): gap = best seen score - best unseen
    score (the prediction stays a seen label iff gamma <= gap), and whether the
    best seen / best unseen label is the true one. Needs both kinds of candidates.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    seen_mask = np.asarray(seen_mask, dtype=bool)
    seen_rows, unseen_rows = np.flatnonzero(seen_mask), np.flatnonzero(~seen_mask)
    if not len(seen_rows) or not len(unseen_rows):
        raise ValueError("calibrated stacking needs both seen and unseen candidates")
    s_arg = seen_rows[scores[:, seen_rows].argmax(axis=1)]
    u_arg = unseen_rows[scores[:, unseen_rows].argmax(axis=1)]
    rows = np.arange(scores.shape[0])
    gap = scores[rows, s_arg] - scores[rows, u_arg]
    true_idx = np.asarray(true_idx)
    return gap, s_arg == true_idx, u_arg == true_idx


def choose_gamma(
    gap: np.ndarray,
    seen_correct: np.ndarray,
    unseen_correct: np.ndarray,
    truth_seen: np.ndarray,
    *,
    max_seen_drop: float = 0.1,
) -> tuple[float, dict]:
    """Pick the calibration constant gamma >= 0 on validation images (exact, not a grid).

    Top-1 changes only where gamma crosses an image's ``gap``, so the candidates are
    0 and the midpoints between consecutive sorted positive gaps (plus one beyond
    the largest). The criterion depends on what the validation images hold:

    * images of both seen and unseen classes: maximise the harmonic mean of seen
      and unseen top-1 accuracy (Xian et al. 2018's H);
    * images of seen classes only (the usual case: unseen classes have no images
      at training time): the *largest* gamma that keeps seen accuracy at least
      (1 - ``max_seen_drop``) times its uncalibrated value — move as much score
      toward unseen labels as the seen classes can afford;
    * images of unseen classes only: the smallest gamma maximising unseen accuracy.

    Ties go to the smaller gamma. Returns (gamma, info) with the accuracies reached.
    """
    gap = np.asarray(gap, dtype=np.float64)
    truth_seen = np.asarray(truth_seen, dtype=bool)
    s_ok = np.sort(gap[truth_seen & np.asarray(seen_correct, dtype=bool)])
    u_ok = np.sort(gap[~truth_seen & np.asarray(unseen_correct, dtype=bool)])
    n_s, n_u = int(truth_seen.sum()), int((~truth_seen).sum())
    pos = np.unique(gap[gap > 0])
    mids = (pos[:-1] + pos[1:]) / 2 if len(pos) > 1 else np.empty(0)
    beyond = pos[-1:] + max(1e-6, 1e-3 * (pos[-1] if len(pos) else 1.0))
    gammas = np.concatenate([[0.0], mids, beyond])
    # seen image stays correct iff its best seen label is true and gap >= gamma
    seen_acc = (len(s_ok) - np.searchsorted(s_ok, gammas, side="left")) / max(n_s, 1)
    # unseen image becomes correct iff its best unseen label is true and gap < gamma
    unseen_acc = np.searchsorted(u_ok, gammas, side="left") / max(n_u, 1)
    if n_s and n_u:
        criterion = "harmonic mean of seen and unseen accuracy"
        h = np.where(seen_acc + unseen_acc > 0, 2 * seen_acc * unseen_acc / np.maximum(seen_acc + unseen_acc, 1e-12), 0)
        best = int(np.argmax(h))
    elif n_s:
        criterion = f"largest gamma keeping seen accuracy >= {1 - max_seen_drop:.0%} of uncalibrated"
        ok = np.flatnonzero(seen_acc >= (1.0 - max_seen_drop) * seen_acc[0] - 1e-12)
        best = int(ok.max())
    elif n_u:
        criterion = "unseen accuracy"
        best = int(np.argmax(unseen_acc))
    else:
        raise ValueError("no validation images to choose gamma on")
    info = {
        "criterion": criterion,
        "n_seen": n_s,
        "n_unseen": n_u,
        "seen_acc": float(seen_acc[best]) if n_s else None,
        "unseen_acc": float(unseen_acc[best]) if n_u else None,
    }
    return float(gammas[best]), info


def seen_unseen_curve(
    gap: np.ndarray,
    seen_correct: np.ndarray,
    unseen_correct: np.ndarray,
    truth_seen: np.ndarray,
    classes: Sequence | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated stacking's seen-unseen accuracy curve over every gamma (Chao et al. 2016).

    Inputs are :func:`stacking_gaps`' outputs and whether each image's true class is a
    seen one. A seen-class image is right under gamma iff its best seen label is true
    and ``gap >= gamma``; an unseen-class image iff its best unseen label is true and
    ``gap < gamma``. Both accuracies are constant between consecutive gaps, so the curve
    is exact at gamma = each distinct gap (its left end, every image predicted seen,
    unseen accuracy 0) plus one gamma beyond the largest (every image predicted unseen,
    seen accuracy 0). Returns ``(gammas, seen_acc, unseen_acc)``, gamma increasing.

    With ``classes`` (each image's class) the accuracies are per-class means, as the
    literature reports them (each class weighs the same within its kind); else per image.
    """
    gap = np.asarray(gap, dtype=np.float64)
    truth_seen = np.asarray(truth_seen, dtype=bool)
    if not truth_seen.any() or truth_seen.all():
        raise ValueError("the seen-unseen curve needs images of both seen and unseen classes")
    weight = np.empty(len(gap))
    for kind in (truth_seen, ~truth_seen):
        if classes is None:
            weight[kind] = 1.0 / kind.sum()
        else:
            cls = np.asarray(classes, dtype=object).astype(str)[kind]
            _, inverse, counts = np.unique(cls, return_inverse=True, return_counts=True)
            weight[kind] = 1.0 / (len(counts) * counts[inverse])
    distinct = np.unique(gap)
    gammas = np.concatenate([distinct, distinct[-1:] + max(1e-6, 1e-3 * abs(distinct[-1]))])

    def accuracy(mask: np.ndarray, stays_correct_above: bool) -> np.ndarray:
        order = np.argsort(gap[mask], kind="stable")
        g, w = gap[mask][order], weight[mask][order]
        below = np.concatenate([[0.0], np.cumsum(w)])[np.searchsorted(g, gammas, side="left")]
        return (w.sum() - below) if stays_correct_above else below

    seen_acc = accuracy(truth_seen & np.asarray(seen_correct, dtype=bool), True)
    unseen_acc = accuracy(~truth_seen & np.asarray(unseen_correct, dtype=bool), False)
    return gammas, seen_acc, unseen_acc


def ausuc(seen_acc: np.ndarray, unseen_acc: np.ndarray) -> float:
    """Area under the seen-unseen curve (Chao et al. 2016): the trapezoid rule over the
    curve's points with unseen accuracy on the x axis (it rises with gamma)."""
    u, s = np.asarray(unseen_acc, dtype=np.float64), np.asarray(seen_acc, dtype=np.float64)
    return float(np.sum((u[1:] - u[:-1]) * (s[1:] + s[:-1]) / 2.0))


# -- readable scores ------------------------------------------------------------------
TEMPERATURE_RANGE = (1e-3, 10.0)


def fit_temperature(scores: np.ndarray, true_idx: np.ndarray, grid: int = 64, rounds: int = 3) -> float:
    """The temperature T minimising the mean negative log-likelihood of the true labels
    under ``softmax(scores / T)`` (temperature scaling, Guo et al. 2017), on validation images.

    One parameter, so it is searched directly: a log-spaced grid over
    :data:`TEMPERATURE_RANGE`, then ``rounds`` finer grids around the best point (the
    likelihood is smooth and unimodal in log T for such scores). Images whose true label is
    not a candidate (index -1) are left out.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    true_idx = np.asarray(true_idx)
    keep = true_idx >= 0
    scores, true_idx = scores[keep], true_idx[keep]
    if not len(true_idx):
        raise ValueError("no image whose true label is a candidate to fit the temperature on")
    true_scores = scores[np.arange(len(true_idx)), true_idx]
    top = scores.max(axis=1, keepdims=True)

    def nll(t: float) -> float:
        lse = np.log(np.exp((scores - top) / t).sum(axis=1)) + top[:, 0] / t
        return float(np.mean(lse - true_scores / t))

    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    best = lo
    for _ in range(rounds + 1):
        points = np.linspace(lo, hi, grid)
        best = float(points[int(np.argmin([nll(np.exp(p)) for p in points]))])
        step = (hi - lo) / (grid - 1)
        lo, hi = best - step, best + step
    return float(np.exp(best))
