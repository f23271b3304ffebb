"""Score a model's outputs the way ``devise eval`` reports them (no Keras, no WordNet here).

Inputs are what a bundle produced for the images that loaded — unit embeddings and,
when the bundle has a softmax head, class probabilities over the training labels —
plus each image's true WordNet id, the candidate :class:`~wordnet.vocab.Vocabulary`
and the training vocabulary. Hierarchical precision needs ground-truth sets; the
caller passes ``gt_factory(candidate_wnids) -> ground_truth(wnid, k) -> set[int]``
(the CLI builds it from :class:`wordnet.hierarchy.HierarchicalGroundTruth`).

Settings (each gets the issue's JSON shape ``{"n_images", "k", "candidates", "methods"}``):

* ``given``: every image against the candidates as given (``--vocab``);
* when some images' classes were not trained on and the candidates hold labels
  that were not trained on (a *split*): ``zsl`` — images of unseen classes against
  the unseen candidates only — and ``gzsl`` — all those images against unseen +
  seen candidates, with calibrated stacking rows (``devise+cal``, ``conse+cal``).
  A setting identical to ``given`` is not repeated.

With explicit splits (:func:`load_splits`), ``zsl``/``gzsl`` are computed per split
and averaged; the interval then comes from the bootstrap replicates averaged
over splits (same seed, so the class draws are paired).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from wordnet.base.errors import DatasetError
from wordnet.scoring import BASELINES, metrics
from wordnet.vocab import Vocabulary, concat, label_matrix

GroundTruthFactory = Callable[[Sequence[str]], Callable[[str, int], set]]
CHUNK_CELLS = 1 << 24  # score-matrix cells per chunk (64 MB of float32)


@dataclass
class EvalOptions:
    ks: tuple[int, ...] = (1, 2, 5, 10, 20)
    hierarchical: bool = False
    baselines: tuple[str, ...] = BASELINES
    bootstrap: int = 1000
    seed: int = 0
    calibration: float | str | None = "auto"  # a gamma, "auto" or None
    max_seen_drop: float = 0.1
    conse_T: int = metrics.CONSE_T


@dataclass
class Outputs:
    """What the model produced for a set of images (rows aligned)."""

    embeddings: np.ndarray
    probs: np.ndarray | None
    true_wnids: list[str]

    def take(self, mask: np.ndarray) -> "Outputs":
        rows = np.flatnonzero(mask)
        return Outputs(self.embeddings[rows], None if self.probs is None else self.probs[rows],
                       [self.true_wnids[r] for r in rows])


@dataclass
class Split:
    name: str
    unseen: list[str] | None = None  # None: the implicit split (classes not trained on)
    meta: dict = field(default_factory=dict)


def load_splits(path: str | Path) -> list[dict]:
    """Read a split file: JSON ``{"splits": [{"name": "1", "unseen": ["zebra", ...]}, ...]}``.

    ``unseen`` lists class names as written in the dataset (or wnids); a bare list
    of such lists is accepted too. The caller maps names to wnids.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"split file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a JSON split file ({exc})") from None
    raw = data.get("splits") if isinstance(data, dict) else data
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f'{path}: expected {{"splits": [{{"name": ..., "unseen": [class, ...]}}, ...]}}')
    out = []
    for i, item in enumerate(raw, start=1):
        if isinstance(item, list):
            item = {"name": str(i), "unseen": item}
        if not isinstance(item, dict) or not isinstance(item.get("unseen"), list) or not item["unseen"]:
            raise DatasetError(f"{path}: split {i} needs a non-empty list \"unseen\" of class names")
        out.append({"name": str(item.get("name", i)), "unseen": [str(c) for c in item["unseen"]]})
    return out


# -- ranking --------------------------------------------------------------------
def rank(embeddings: np.ndarray, vocab: Vocabulary, k: int, penalty: np.ndarray | None = None) -> np.ndarray:
    """(n, min(k, len(vocab))) candidate rows by cosine, best first, in memory-bounded chunks.

    ``penalty`` (per candidate) is subtracted from the scores (calibrated stacking).
    """
    emb = label_matrix(np.atleast_2d(embeddings))
    vocab.check_dim(emb.shape[1], "the model's embedding")
    step = max(1, CHUNK_CELLS // max(1, len(vocab)))
    out = []
    for s in range(0, len(emb), step):
        scores = emb[s:s + step] @ vocab.vectors.T
        if penalty is not None:
            scores = scores - penalty
        out.append(metrics.top_k_from_scores(scores, k)[0])
    return np.concatenate(out) if out else np.zeros((0, min(k, len(vocab))), np.int64)


def choose_gamma_for(val: Outputs, embeddings_of: Callable[[Outputs], np.ndarray], cands: Vocabulary,
                     seen_mask: np.ndarray, max_seen_drop: float) -> tuple[float, dict] | None:
    """Calibrated stacking's gamma for one candidate set, from validation outputs
    (None when no validation image's label is a candidate)."""
    val = val.take(np.array([w in cands for w in val.true_wnids], dtype=bool))
    if not val.true_wnids:
        return None
    emb = label_matrix(embeddings_of(val))
    true = np.array([cands.index(w) for w in val.true_wnids])
    step = max(1, CHUNK_CELLS // len(cands))
    parts = [metrics.stacking_gaps(emb[s:s + step] @ cands.vectors.T, seen_mask, true[s:s + step])
             for s in range(0, len(emb), step)]
    gap, s_ok, u_ok = (np.concatenate(p) for p in zip(*parts))
    return metrics.choose_gamma(gap, s_ok, u_ok, seen_mask[true], max_seen_drop=max_seen_drop)


# -- one setting -------------------------------------------------------------------
def _columns(ks, hierarchical):
    return [f"hit@{k}" for k in ks] + ([f"hp@{k}" for k in ks] if hierarchical else [])


def score_setting(out: Outputs, cands: Vocabulary, training: Vocabulary, opts: EvalOptions,
                  gt_factory: GroundTruthFactory | None, val: Outputs | None = None) -> dict:
    """Per-image correctness of every method: ``{method: (n, m) array}`` plus extras."""
    ks = list(opts.ks)
    kmax = max(ks)
    true = np.array([cands.index(w) if w in cands else -1 for w in out.true_wnids], dtype=np.int64)
    gt = gt_factory(cands.wnids) if opts.hierarchical else None
    seen = set(training.wnids)
    seen_mask = np.array([w in seen for w in cands.wnids])
    mixed = seen_mask.any() and not seen_mask.all()

    def per_image(topk, truth, gtf):
        cols = [metrics.hit_matrix(topk, truth, ks)]
        if opts.hierarchical:
            cols.append(metrics.hp_matrix(topk, out.true_wnids, ks, gtf))
        return np.concatenate(cols, axis=1)

    embed = {"devise": lambda o: o.embeddings}
    if out.probs is not None and "conse" in opts.baselines:
        embed["conse"] = lambda o: metrics.conse_embeddings(o.probs, training.vectors, opts.conse_T)
    results, method_cands, gammas = {}, {}, {}
    for name, fn in embed.items():
        emb = fn(out)
        results[name] = per_image(rank(emb, cands, kmax), true, gt)
        method_cands[name] = len(cands)
        if mixed and opts.calibration is not None:
            if opts.calibration == "auto":
                chosen = None if val is None else choose_gamma_for(val, fn, cands, seen_mask, opts.max_seen_drop)
                if chosen is None:
                    continue
                gamma, info = chosen
                gammas[name] = {"gamma": gamma, **info}
            else:
                gamma = float(opts.calibration)
                gammas[name] = {"gamma": gamma, "criterion": "given"}
            topk = rank(emb, cands, kmax, penalty=gamma * seen_mask)
            results[f"{name}+cal"] = per_image(topk, true, gt)
            method_cands[f"{name}+cal"] = len(cands)
    if out.probs is not None and "softmax" in opts.baselines:
        t_true = np.array([training.index(w) if w in training else -1 for w in out.true_wnids])
        topk = metrics.top_k_from_scores(out.probs, kmax)[0]
        results["softmax"] = per_image(topk, t_true, gt_factory(training.wnids) if opts.hierarchical else None)
        method_cands["softmax"] = len(training)
    chance = [metrics.chance_hit_matrix(true, len(cands), ks)]
    if opts.hierarchical:
        chance.append(metrics.chance_hp_matrix(out.true_wnids, len(cands), ks, gt))
    results["chance"] = np.concatenate(chance, axis=1)
    method_cands["chance"] = len(cands)
    return {"per_image": results, "method_candidates": method_cands, "calibration": gammas,
            "n_images": len(out.true_wnids), "candidates": len(cands),
            "n_classes": len(set(out.true_wnids)), "cand_wnids": frozenset(cands.wnids),
            "not_candidates": int((true < 0).sum())}


def summarise(scored: Sequence[dict], classes: Sequence[Sequence[str]], opts: EvalOptions, name: str) -> dict:
    """Means and class-bootstrap intervals; several scored splits are averaged."""
    cols = _columns(opts.ks, opts.hierarchical)
    methods = {}
    for method in scored[0]["per_image"]:
        per = [s["per_image"][method] for s in scored if method in s["per_image"] and len(s["per_image"][method])]
        cls = [c for s, c in zip(scored, classes) if method in s["per_image"] and len(s["per_image"][method])]
        if not per:
            continue
        mean = np.mean([p.mean(axis=0) for p in per], axis=0)
        entry = {"candidates": scored[0]["method_candidates"][method]}
        ci = None
        if opts.bootstrap > 0:
            reps = np.mean([metrics.bootstrap_class_means(p, c, opts.bootstrap, opts.seed)
                            for p, c in zip(per, cls)], axis=0)
            ci = metrics.percentile_interval(reps)
        for j, col in enumerate(cols):
            entry[col] = round(float(mean[j]), 6)
            if ci is not None:
                entry[f"{col}_ci"] = [round(float(ci[j, 0]), 6), round(float(ci[j, 1]), 6)]
        methods[method] = entry
    result = {"setting": name, "n_images": int(sum(s["n_images"] for s in scored)),
              "n_classes": int(sum(s["n_classes"] for s in scored)),
              "k": list(opts.ks), "candidates": scored[0]["candidates"],
              "not_candidates": int(sum(s["not_candidates"] for s in scored)), "methods": methods}
    if any(s["calibration"] for s in scored):
        result["calibration"] = [s["calibration"] for s in scored] if len(scored) > 1 else scored[0]["calibration"]
    if len(scored) > 1:
        result["n_splits"] = len(scored)
        result["candidates"] = [s["candidates"] for s in scored]
    return result


# -- the whole evaluation -------------------------------------------------------------
def evaluate(out: Outputs, cands: Vocabulary, training: Vocabulary, opts: EvalOptions,
             gt_factory: GroundTruthFactory | None = None, splits: Sequence[Split] | None = None,
             val: Outputs | None = None) -> dict:
    """Every setting the data supports; see the module docstring.

    ``val`` holds validation outputs for ``--calibration auto``; by default the
    images of seen classes in ``out`` (only their labels are used, never an unseen
    class's), so gamma is chosen without looking at unseen classes.
    """
    if opts.hierarchical and gt_factory is None:
        raise ValueError("hierarchical evaluation needs a ground-truth factory")
    seen = set(training.wnids)
    truth_seen = np.array([w in seen for w in out.true_wnids], dtype=bool)
    if val is None:
        val = out.take(truth_seen)
    cls_of = lambda o: o.true_wnids  # noqa: E731 - classes for the bootstrap are the true labels
    given = score_setting(out, cands, training, opts, gt_factory, val)
    report = summarise([given], [cls_of(out)], opts, "given")
    settings = {}
    if splits is None:
        unseen_c = [w for w in cands.wnids if w not in seen]
        splits = [Split("implicit", None)] if (~truth_seen).any() and unseen_c else []
    zsl, gzsl, zcls, gcls, names = [], [], [], [], []
    for sp in splits:
        if sp.unseen is None:
            unseen_w = [w for w in cands.wnids if w not in seen]
            z_mask, g_mask = ~truth_seen, np.ones(len(out.true_wnids), bool)
        else:
            clash = sorted(set(sp.unseen) & seen)
            if clash:
                raise DatasetError(f"split {sp.name}: {', '.join(clash[:5])} were trained on, so they cannot be unseen")
            missing = [w for w in sp.unseen if w not in cands]
            if missing:
                raise DatasetError(f"split {sp.name}: {len(missing)} unseen label(s) are not in the candidate "
                                   f"vocabulary ({', '.join(missing[:5])}); pass a --vocab that holds them")
            unseen_w = list(dict.fromkeys(sp.unseen))
            unseen_set = set(unseen_w)
            z_mask = np.array([w in unseen_set for w in out.true_wnids])
            g_mask = z_mask | truth_seen
        if not z_mask.any():
            raise DatasetError(f"split {sp.name}: no image of its unseen classes was loaded")
        z_c = cands.subset(unseen_w)
        g_c = concat([z_c, training]) if unseen_w else training
        zo, go = out.take(z_mask), out.take(g_mask)
        zsl.append(score_setting(zo, z_c, training, opts, gt_factory, val))
        gzsl.append(score_setting(go, g_c, training, opts, gt_factory, val))
        zcls.append(cls_of(zo))
        gcls.append(cls_of(go))
        names.append(sp.name)
    if zsl:
        for key, scored, cls in (("zsl", zsl, zcls), ("gzsl", gzsl, gcls)):
            res = summarise(scored, cls, opts, key)
            if len(scored) > 1:
                res["splits"] = [summarise([s], [c], opts, f"{key}:{n}") for s, c, n in zip(scored, cls, names)]
            elif res["n_images"] == given["n_images"] and scored[0]["cand_wnids"] == given["cand_wnids"]:
                continue  # identical to "given"
            settings[key] = res
    outside = sorted({w for w in out.true_wnids if w not in cands})
    report["classes_not_candidates"] = outside
    report["notes"] = []
    if outside and not any(w not in seen for w in cands.wnids):
        report["notes"].append(f"{len(outside)} classes are neither training labels nor candidates; pass "
                               f"--vocab with their labels for zero-shot results")
    in_training = np.array([w in seen for w in cands.wnids])
    mixed = in_training.any() and not in_training.all()
    if opts.calibration == "auto" and (mixed or zsl) and not val.true_wnids:
        report["notes"].append("calibrated stacking skipped: no validation image to choose gamma on; "
                               "pass --calibration GAMMA or --calibration-data DIR")
    report["candidate_kind"] = "seen" if in_training.all() else "zsl" if not in_training.any() else "gzsl"
    report["n_seen_images"] = int(truth_seen.sum())
    report["n_unseen_images"] = int((~truth_seen).sum())
    if settings:
        report["settings"] = settings
    return report
