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
  seen candidates (the training labels added: ImageNet papers' "+1K"), with
  calibrated stacking rows (``devise+cal``, ``conse+cal``).
  A setting identical to ``given`` is not repeated.

Every method gets per-image figures (``hit@k``: the share of images) and per-class ones
(``mean_per_class_hit@k``: each class weighs the same, Xian et al. 2018; at k = 1 this is
CLIP_benchmark's ``mean_per_class_recall``). Where candidates are seen and unseen labels,
generalised zero-shot is also stated as the literature does: ``S`` and ``U``, per-class
mean top-1 accuracy on seen-class and on unseen-class images against all candidates,
their harmonic mean ``H``, and for DeViSE and ConSE the seen-unseen curve of calibrated
stacking over every gamma with the area under it, ``AUSUC`` (Chao et al. 2016).

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
    per_class: bool = False  # add the per-class table (:func:`per_class_rows`) of the "given" setting


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


def stacking_gaps(embeddings: np.ndarray, cands: Vocabulary, seen_mask: np.ndarray,
                  true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`metrics.stacking_gaps` of cosine scores, in memory-bounded chunks."""
    emb = label_matrix(np.atleast_2d(embeddings))
    step = max(1, CHUNK_CELLS // len(cands))
    parts = [metrics.stacking_gaps(emb[s:s + step] @ cands.vectors.T, seen_mask, true[s:s + step])
             for s in range(0, len(emb), step)]
    return tuple(np.concatenate(p) for p in zip(*parts))


def choose_gamma_for(val: Outputs, embeddings_of: Callable[[Outputs], np.ndarray], cands: Vocabulary,
                     seen_mask: np.ndarray, max_seen_drop: float) -> tuple[float, dict] | None:
    """Calibrated stacking's gamma for one candidate set, from validation outputs
    (None when no validation image's label is a candidate)."""
    val = val.take(np.array([w in cands for w in val.true_wnids], dtype=bool))
    if not val.true_wnids:
        return None
    true = np.array([cands.index(w) for w in val.true_wnids])
    gap, s_ok, u_ok = stacking_gaps(embeddings_of(val), cands, seen_mask, true)
    return metrics.choose_gamma(gap, s_ok, u_ok, seen_mask[true], max_seen_drop=max_seen_drop)


CURVE_POINTS = 201  # points of a seen-unseen curve kept in the report (AUSUC uses them all)


def stacking_curve(embeddings: np.ndarray, cands: Vocabulary, seen_mask: np.ndarray, true: np.ndarray,
                   truth_seen: np.ndarray, classes: Sequence[str]) -> dict:
    """The seen-unseen curve over gamma (per-class mean accuracies) and its AUSUC, JSON-ready."""
    gap, s_ok, u_ok = stacking_gaps(embeddings, cands, seen_mask, true)
    gammas, seen_acc, unseen_acc = metrics.seen_unseen_curve(gap, s_ok, u_ok, truth_seen, classes)
    area = metrics.ausuc(seen_acc, unseen_acc)
    keep = np.unique(np.linspace(0, len(gammas) - 1, min(len(gammas), CURVE_POINTS)).round().astype(int))
    return {"ausuc": round(area, 6), "gamma": [round(float(g), 6) for g in gammas[keep]],
            "seen": [round(float(a), 6) for a in seen_acc[keep]],
            "unseen": [round(float(a), 6) for a in unseen_acc[keep]]}


# -- one setting -------------------------------------------------------------------
def _columns(ks, hierarchical):
    return [f"hit@{k}" for k in ks] + ([f"hp@{k}" for k in ks] if hierarchical else [])


def score_setting(out: Outputs, cands: Vocabulary, training: Vocabulary, opts: EvalOptions,
                  gt_factory: GroundTruthFactory | None, val: Outputs | None = None) -> dict:
    """Per-image correctness of every method: ``{method: (n, m) array}`` plus extras.

    Also each method's per-image top-1 correctness (``top1``, for the seen/unseen
    accuracies of generalised zero-shot), DeViSE's top-1 rows (``devise_top1``, for the
    per-class table) and, when candidates and images are both seen and unseen, the
    seen-unseen stacking curves (``curves``).
    """
    ks = list(opts.ks)
    kmax = max(ks)
    true = np.array([cands.index(w) if w in cands else -1 for w in out.true_wnids], dtype=np.int64)
    gt = gt_factory(cands.wnids) if opts.hierarchical else None
    seen = set(training.wnids)
    seen_mask = np.array([w in seen for w in cands.wnids])
    truth_seen = np.array([w in seen for w in out.true_wnids], dtype=bool)
    mixed = seen_mask.any() and not seen_mask.all()

    def per_image(topk, truth, gtf):
        cols = [metrics.hit_matrix(topk, truth, ks)]
        if opts.hierarchical:
            cols.append(metrics.hp_matrix(topk, out.true_wnids, ks, gtf))
        return np.concatenate(cols, axis=1)

    embed = {"devise": lambda o: o.embeddings}
    for name in ("conse", "combined"):
        if out.probs is not None and name in opts.baselines:
            embed[name] = lambda o, name=name: metrics.method_embeddings(name, o.embeddings, o.probs,
                                                                         training.vectors, opts.conse_T)
    results, method_cands, gammas, top1, curves = {}, {}, {}, {}, {}
    devise_top1 = None
    for name, fn in embed.items():
        emb = fn(out)
        topk = rank(emb, cands, kmax)
        results[name] = per_image(topk, true, gt)
        top1[name] = (topk[:, 0] == true).astype(np.float64)
        if name == "devise":
            devise_top1 = topk[:, 0]
        method_cands[name] = len(cands)
        if mixed and truth_seen.any() and not truth_seen.all():
            curves[name] = stacking_curve(emb, cands, seen_mask, true, truth_seen, out.true_wnids)
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
            top1[f"{name}+cal"] = (topk[:, 0] == true).astype(np.float64)
            method_cands[f"{name}+cal"] = len(cands)
    if out.probs is not None and "softmax" in opts.baselines and softmax_covers(cands, training):
        topk = metrics.top_k_from_scores(softmax_over(out.probs, cands, training), kmax)[0]
        results["softmax"] = per_image(topk, true, gt)
        method_cands["softmax"] = len(cands)
    chance = [metrics.chance_hit_matrix(true, len(cands), ks)]
    if opts.hierarchical:
        chance.append(metrics.chance_hp_matrix(out.true_wnids, len(cands), ks, gt))
    results["chance"] = np.concatenate(chance, axis=1)
    top1["chance"] = metrics.chance_hit_matrix(true, len(cands), [1])[:, 0]
    method_cands["chance"] = len(cands)
    return {"per_image": results, "method_candidates": method_cands, "calibration": gammas,
            "n_images": len(out.true_wnids), "candidates": len(cands),
            "n_classes": len(set(out.true_wnids)), "cand_wnids": frozenset(cands.wnids),
            "not_candidates": int((true < 0).sum()), "top1": top1, "truth_seen": truth_seen,
            "mixed": bool(mixed), "curves": curves, "devise_top1": devise_top1}


def softmax_covers(cands: Vocabulary, training: Vocabulary) -> bool:
    """Whether the softmax baseline can rank ``cands``: only when every candidate is one of its
    training labels. Scored over its training labels instead, it would stand in a table of other
    candidates with figures that are not comparable (hp@k of 6 labels in a 1,570-label table)."""
    return all(w in training for w in cands.wnids)


def softmax_over(probs: np.ndarray, cands: Vocabulary, training: Vocabulary) -> np.ndarray:
    """The softmax probabilities of the candidates, in candidate order (every one a training label)."""
    return probs[:, [training.index(w) for w in cands.wnids]]


def drop_trivial_ks(summary: dict) -> dict:
    """Remove the k that are not results from a :func:`summarise` output: with k >= the number of
    candidates every method scores hit@k = 100 %. The smallest k stays, so a table is never empty;
    the removed ones are listed under ``k_not_scored``."""
    cands = summary["candidates"]
    fewest = min(cands) if isinstance(cands, list) else cands
    ks = summary["k"]
    drop = [k for k in ks if k >= fewest and k != min(ks)]
    if not drop:
        return summary
    gone = {f"{kind}{k}" for k in drop for kind in ("hit@", "hp@", "mean_per_class_hit@")}
    for entry in summary["methods"].values():
        for key in list(entry):
            if key in gone or (key.endswith("_ci") and key[:-3] in gone):
                del entry[key]
    summary["k"] = [k for k in ks if k not in drop]
    summary["k_not_scored"] = drop
    for sub in summary.get("splits", []):
        drop_trivial_ks(sub)
    return summary


def seen_unseen_accuracy(top1: np.ndarray, truth_seen: np.ndarray, classes: Sequence[str]) -> dict:
    """Generalised zero-shot as the literature states it (Xian et al. 2018): per-class mean top-1
    accuracy on seen-class images (``S``) and on unseen-class images (``U``), each against all
    the candidates, and their harmonic mean ``H`` (when both kinds of images are there)."""
    classes = np.asarray(classes, dtype=object)
    out = {}
    for key, mask in (("S", truth_seen), ("U", ~truth_seen)):
        if mask.any():
            out[key] = float(metrics.per_class_mean(top1[mask], classes[mask])[0])
    if "S" in out and "U" in out:
        out["H"] = metrics.harmonic_mean(out["S"], out["U"])
    return out


def _hit_columns(opts: EvalOptions) -> list[int]:
    """Positions of the hit@k columns (per-class means are reported for these)."""
    return list(range(len(opts.ks)))


def summarise(scored: Sequence[dict], classes: Sequence[Sequence[str]], opts: EvalOptions, name: str) -> dict:
    """Means and class-bootstrap intervals; several scored splits are averaged.

    Each hit@k comes twice: ``hit@k``, the share of images, and ``mean_per_class_hit@k``,
    the mean over classes of each class's share (every class weighs the same). In settings
    whose candidates are both seen and unseen labels, methods scored against all of them
    also get ``S``, ``U`` and ``H`` (:func:`seen_unseen_accuracy`), and DeViSE and ConSE
    the area under the seen-unseen stacking curve (``AUSUC``).
    """
    cols = _columns(opts.ks, opts.hierarchical)
    hit_cols = _hit_columns(opts)
    methods = {}
    for method in scored[0]["per_image"]:
        use = [(s, c) for s, c in zip(scored, classes) if method in s["per_image"] and len(s["per_image"][method])]
        if not use:
            continue
        per = [s["per_image"][method] for s, _ in use]
        cls = [c for _, c in use]
        mean = np.mean([p.mean(axis=0) for p in per], axis=0)
        class_mean = np.mean([metrics.per_class_mean(p[:, hit_cols], c) for p, c in zip(per, cls)], axis=0)
        entry = {"candidates": scored[0]["method_candidates"][method]}
        ci = class_ci = None
        if opts.bootstrap > 0:
            reps = np.mean([metrics.bootstrap_class_means(p, c, opts.bootstrap, opts.seed)
                            for p, c in zip(per, cls)], axis=0)
            ci = metrics.percentile_interval(reps)
            class_reps = np.mean([metrics.bootstrap_per_class_means(p[:, hit_cols], c, opts.bootstrap, opts.seed)
                                  for p, c in zip(per, cls)], axis=0)
            class_ci = metrics.percentile_interval(class_reps)
        for j, col in enumerate(cols):
            entry[col] = round(float(mean[j]), 6)
            if ci is not None:
                entry[f"{col}_ci"] = [round(float(ci[j, 0]), 6), round(float(ci[j, 1]), 6)]
        for j, pos in enumerate(hit_cols):
            col = f"mean_per_class_{cols[pos]}"
            entry[col] = round(float(class_mean[j]), 6)
            if class_ci is not None:
                entry[f"{col}_ci"] = [round(float(class_ci[j, 0]), 6), round(float(class_ci[j, 1]), 6)]
        against_all = [(s, c) for s, c in use if s["mixed"] and method in s["top1"]
                       and s["method_candidates"][method] == s["candidates"]]
        if len(against_all) == len(use):
            accs = [seen_unseen_accuracy(s["top1"][method], s["truth_seen"], c) for s, c in against_all]
            for key in ("S", "U", "H"):
                if all(key in a for a in accs):
                    entry[key] = round(float(np.mean([a[key] for a in accs])), 6)
            if all(method in s["curves"] for s, _ in use):
                entry["AUSUC"] = round(float(np.mean([s["curves"][method]["ausuc"] for s, _ in use])), 6)
        methods[method] = entry
    result = {"setting": name, "n_images": int(sum(s["n_images"] for s in scored)),
              "n_classes": int(sum(s["n_classes"] for s in scored)),
              "k": list(opts.ks), "candidates": scored[0]["candidates"],
              "not_candidates": int(sum(s["not_candidates"] for s in scored)), "methods": methods}
    if any(s["calibration"] for s in scored):
        result["calibration"] = [s["calibration"] for s in scored] if len(scored) > 1 else scored[0]["calibration"]
    if len(scored) == 1 and scored[0]["curves"]:
        result["stacking_curve"] = scored[0]["curves"]
    if len(scored) > 1:
        result["n_splits"] = len(scored)
        result["candidates"] = [s["candidates"] for s in scored]
    return drop_trivial_ks(result)


def per_class_rows(scored: dict, out: Outputs, cands: Vocabulary, opts: EvalOptions, wrong: int = 3) -> list[dict]:
    """One row per class of ``out`` for DeViSE in one scored setting: its images, hit@k and hp@k
    (shares of its images) and its ``wrong`` most frequent wrong top-1 labels (``"label (count)"``);
    worst first (by the first hit@k, then wnid)."""
    cols = _columns(opts.ks, opts.hierarchical)
    per = scored["per_image"]["devise"]
    top1 = np.asarray(scored["devise_top1"])
    classes, inverse = np.unique(np.asarray(out.true_wnids, dtype=object).astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # one pass over the images, grouped by class
    bounds = np.searchsorted(inverse[order], np.arange(len(classes) + 1))
    rows = []
    for c, wnid in enumerate(classes):
        members = order[bounds[c]:bounds[c + 1]]
        row = {"wnid": wnid, "label": cands.labels[cands.index(wnid)] if wnid in cands else "",
               "images": int(len(members))}
        row.update({col: round(float(v), 6) for col, v in zip(cols, per[members].mean(axis=0))})
        own = cands.index(wnid) if wnid in cands else -1
        picked, counts = np.unique(top1[members][top1[members] != own], return_counts=True)
        ordered = sorted(zip(counts.tolist(), picked.tolist()), key=lambda nc: (-nc[0], nc[1]))[:wrong]
        row["wrong_top1"] = [f"{cands.labels[i]} ({n})" for n, i in ordered]
        rows.append(row)
    rows.sort(key=lambda r: (r[cols[0]], r["wnid"]))
    return rows


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
    if opts.per_class:
        report["per_class"] = per_class_rows(given, out, cands, opts)
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
    if out.probs is not None and "softmax" in opts.baselines and not in_training.all():
        report["notes"].append("softmax is shown only where every candidate is a training label: it cannot "
                               "rank labels it was not trained on")
    report["candidate_kind"] = "seen" if in_training.all() else "zsl" if not in_training.any() else "gzsl"
    report["n_seen_images"] = int(truth_seen.sum())
    report["n_unseen_images"] = int((~truth_seen).sum())
    if settings:
        report["settings"] = settings
    return report
