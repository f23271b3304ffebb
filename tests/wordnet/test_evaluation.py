"""wordnet.scoring.evaluation on hand-made embeddings: every figure below is computed by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordnet.base.errors import DatasetError, DimensionMismatchError
from wordnet.scoring import evaluation as ev
from wordnet.vocab import Vocabulary

E = np.eye(8, dtype=np.float32)
WNIDS = ["n1", "n2", "n3", "n4", "n5"]  # n1..n3 trained on (seen), n4, n5 unseen


def vocab(wnids):
    rows = [WNIDS.index(w) for w in wnids]
    return Vocabulary(wnids=list(wnids), synsets=[f"{w}.n.01" for w in wnids], labels=list(wnids),
                      definitions=["" for _ in wnids], vectors=E[rows])


TRAINING = vocab(["n1", "n2", "n3"])
CANDS = vocab(WNIDS)
OUT = ev.Outputs(
    embeddings=np.stack([E[0] + 0.1 * E[3],        # n1 image: right
                         E[2],                     # n2 image: predicts n3
                         0.9 * E[0] + 0.8 * E[3],  # n4 image: pulled to seen n1, n4 second
                         E[4]]),                   # n5 image: right
    probs=np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]]),
    true_wnids=["n1", "n2", "n4", "n5"],
)
SIBLING = {"n1": "n4", "n4": "n1", "n2": "n3", "n3": "n2", "n5": "n2"}


def gt_factory(cand_wnids):
    row = {w: i for i, w in enumerate(cand_wnids)}

    def gt(wnid, k):
        labels = {wnid} if k == 1 else {wnid, SIBLING[wnid]}
        return {row[w] for w in labels if w in row}

    return gt


def opts(**kw):
    base = dict(ks=(1, 2), hierarchical=True, bootstrap=0, calibration=None)
    base.update(kw)
    return ev.EvalOptions(**base)


def test_given_setting_hand_computed():
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(), gt_factory)
    m = rep["methods"]
    assert (rep["n_images"], rep["candidates"], rep["k"]) == (4, 5, [1, 2])
    assert (m["devise"]["hit@1"], m["devise"]["hit@2"]) == (0.5, 0.75)
    assert m["devise"]["hp@1"] == m["devise"]["hit@1"]
    assert m["devise"]["hp@2"] == 0.75  # (2/2 + 1/2 + 2/2 + 1/2) / 4
    assert "softmax" not in m  # it can rank its 3 training labels, not these 5 candidates
    assert m["conse"]["hit@1"] == 0.25
    assert (m["chance"]["hit@1"], m["chance"]["hit@2"]) == (0.2, 0.4)
    assert m["chance"]["hp@2"] == 0.4  # every ground-truth set for k=2 holds 2 of 5 candidates
    # the split: zsl = the two unseen images against n4, n5; gzsl would repeat "given"
    assert list(rep["settings"]) == ["zsl"]
    z = rep["settings"]["zsl"]
    assert (z["n_images"], z["candidates"], z["methods"]["devise"]["hit@1"]) == (2, 2, 1.0)
    assert "softmax" not in z["methods"]
    assert z["k"] == [1] and z["k_not_scored"] == [2]  # hit@2 of 2 candidates is 100 % for anything
    assert "hit@2" not in z["methods"]["devise"] and "hp@2" not in z["methods"]["chance"]
    assert (rep["n_seen_images"], rep["n_unseen_images"]) == (2, 2)
    json.dumps(rep)  # JSON-ready


def test_softmax_is_scored_over_the_candidates_only_when_it_knows_them_all():
    """Over its training labels the softmax row is comparable; over other candidates it would be
    scored against its own 3 labels and stand in a table of 5 (hp@2 = 50 % beside hit@k = 0)."""
    rep = ev.evaluate(OUT, TRAINING, TRAINING, opts(), gt_factory)
    s = rep["methods"]["softmax"]
    # top-1 n1 (right), n3 (n2 image: second), n1 and n3 for the n4, n5 images (not candidates: misses)
    assert (s["hit@1"], s["hit@2"], s["candidates"]) == (0.25, 0.5, 3)
    two = vocab(["n2", "n1"])  # a subset, in another order: probabilities follow their labels
    rep = ev.evaluate(OUT, two, TRAINING, opts(hierarchical=False, ks=(1,)), None)
    # the n1 image: 0.8 vs 0.1, right; the n2 image: n2 0.2 beats n1 0.1 once n3 is no candidate
    assert (rep["methods"]["softmax"]["hit@1"], rep["methods"]["softmax"]["candidates"]) == (0.5, 2)
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(), gt_factory)
    assert "softmax" not in rep["methods"] and "softmax" not in rep["settings"]["zsl"]["methods"]
    assert "softmax is shown only where every candidate is a training label" in rep["notes"][0]


def test_k_at_least_the_candidates_is_not_a_result():
    rep = ev.evaluate(OUT, TRAINING, TRAINING, opts(ks=(1, 2, 3, 5)), gt_factory)
    assert rep["k"] == [1, 2] and rep["k_not_scored"] == [3, 5]
    assert sorted(c for c in rep["methods"]["devise"] if "@" in c) == [
        "hit@1", "hit@2", "hp@1", "hp@2", "mean_per_class_hit@1", "mean_per_class_hit@2"]


def test_calibrated_stacking_rows():
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(calibration=0.2, hierarchical=False), None)
    cal = rep["methods"]["devise+cal"]
    assert cal["hit@1"] == 0.75  # the n4 image flips to n4; seen images stay right/wrong
    assert rep["calibration"]["devise"] == {"gamma": 0.2, "criterion": "given"}
    # auto: the seen images' gaps are 0.895 (right) and 1.0 (wrong): any gamma > 0.895
    # loses the right one, so the 10% rule keeps gamma at 0
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(calibration="auto", hierarchical=False), None)
    assert rep["calibration"]["devise"]["gamma"] == 0.0
    assert rep["methods"]["devise+cal"]["hit@1"] == 0.5


def test_bootstrap_intervals_bracket_the_means():
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(bootstrap=300), gt_factory)
    for method in rep["methods"].values():
        for col in ("hit@1", "hit@2", "hp@2"):
            lo, hi = method[f"{col}_ci"]
            assert 0.0 <= lo <= method[col] <= hi <= 1.0
    assert rep["methods"]["devise"]["hit@1_ci"] == [0.0, 1.0]  # 4 classes, each all right or all wrong


def test_explicit_splits_are_averaged():
    splits = [ev.Split("a", ["n4", "n5"]), ev.Split("b", ["n5"])]
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(hierarchical=False), None, splits=splits)
    g = rep["settings"]["gzsl"]
    # a: all 4 images vs 5 labels -> 1/2; b: n1, n2, n5 images vs n5 + seen -> 2/3
    assert g["methods"]["devise"]["hit@1"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-6)
    assert [s["methods"]["devise"]["hit@1"] for s in g["splits"]] == [0.5, pytest.approx(2 / 3, abs=1e-6)]
    assert g["n_splits"] == 2 and g["candidates"] == [5, 4]
    assert rep["settings"]["zsl"]["methods"]["devise"]["hit@1"] == 1.0


def test_split_errors_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match=r"split x: n2 were trained on, so they cannot be unseen"):
        ev.evaluate(OUT, CANDS, TRAINING, opts(), gt_factory, splits=[ev.Split("x", ["n2", "n4"])])
    f = tmp_path / "splits.json"
    f.write_text(json.dumps({"splits": [{"name": "one", "unseen": ["zebra"]}, ["okapi", "tapir"]]}))
    assert ev.load_splits(f) == [{"name": "one", "unseen": ["zebra"]}, {"name": "2", "unseen": ["okapi", "tapir"]}]
    f.write_text('{"splits": [{"name": "one"}]}')
    with pytest.raises(DatasetError, match='split 1 needs a non-empty list "unseen"'):
        ev.load_splits(f)


def test_wrong_dimension_is_a_clear_error():
    bad = ev.Outputs(np.ones((1, 4), np.float32), None, ["n1"])
    with pytest.raises(DimensionMismatchError, match="has 8-d vectors but the model's embedding is 4-d"):
        ev.evaluate(bad, CANDS, TRAINING, opts(hierarchical=False), None)


def test_without_a_softmax_head_only_devise_and_chance():
    no_probs = ev.Outputs(OUT.embeddings, None, OUT.true_wnids)
    rep = ev.evaluate(no_probs, CANDS, TRAINING, opts(hierarchical=False), None)
    assert sorted(rep["methods"]) == ["chance", "devise"]
    assert rep["methods"]["devise"]["hit@1"] == 0.5


def test_unseen_classes_without_unseen_candidates_are_named():
    rep = ev.evaluate(OUT, TRAINING, TRAINING, opts(hierarchical=False), None)
    assert rep["candidate_kind"] == "seen" and "settings" not in rep
    assert rep["classes_not_candidates"] == ["n4", "n5"] and rep["not_candidates"] == 2
    assert rep["notes"] == ["2 classes are neither training labels nor candidates; "
                            "pass --vocab with their labels for zero-shot results"]
    assert rep["methods"]["devise"]["hit@1"] == 0.25  # only the n1 image; n2 goes to n3


def test_auto_calibration_without_seen_images_says_why_it_is_missing():
    unseen_only = OUT.take(np.array([False, False, True, True]))
    rep = ev.evaluate(unseen_only, CANDS, TRAINING, opts(hierarchical=False, calibration="auto"), None)
    assert "devise+cal" not in rep["methods"]
    assert rep["notes"][0] == ("calibrated stacking skipped: no validation image to choose gamma on; "
                               "pass --calibration GAMMA or --calibration-data DIR")


def test_per_class_means_seen_unseen_h_and_ausuc_by_hand():
    rep = ev.evaluate(OUT, CANDS, TRAINING, opts(calibration=0.2, hierarchical=False, bootstrap=100), None)
    d = rep["methods"]["devise"]
    # top-1: n1 right, n2 -> n3, n4 -> n1 (pulled to a seen label), n5 right; one image per class
    assert (d["hit@1"], d["mean_per_class_hit@1"]) == (0.5, 0.5)
    assert (d["S"], d["U"], d["H"]) == (0.5, 0.5, 0.5)
    # cosine gaps best seen - best unseen: 0.9/sqrt(1.01) = 0.8955 (n1, seen right), 1.0 (n2),
    # 0.1/sqrt(1.45) = 0.0830 (n4, unseen right),
    # -1 (n5, unseen right). Gamma -1: S 1/2, U 0; 0.083: U 1/2; 0.8955: U 1; 1.0: S 0
    # -> trapezoids 0.5 x 0.5 + 0.5 x 0.5 = 0.5
    assert d["AUSUC"] == 0.5
    curve = rep["stacking_curve"]["devise"]
    assert curve["seen"] == [0.5, 0.5, 0.5, 0.0, 0.0] and curve["unseen"] == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert curve["gamma"][:4] == pytest.approx([-1.0, 0.083045, 0.895533, 1.0], abs=1e-6)
    # gamma 0.2 flips the n4 image to n4: S 1/2, U 1, H = 2 x 0.5 / 1.5
    cal = rep["methods"]["devise+cal"]
    assert (cal["S"], cal["U"], cal["H"]) == (0.5, 1.0, pytest.approx(2 / 3, abs=1e-6))
    assert "AUSUC" not in cal and "softmax" not in rep["methods"]  # softmax sees only training labels
    lo, hi = d["mean_per_class_hit@1_ci"]
    assert lo <= 0.5 <= hi
    # zsl: unseen candidates only, so no S/U/H there
    assert "S" not in rep["settings"]["zsl"]["methods"]["devise"]


def test_per_class_mean_differs_from_per_image_with_unequal_classes():
    more = ev.Outputs(np.concatenate([OUT.embeddings, OUT.embeddings[:1]]),
                      np.concatenate([OUT.probs, OUT.probs[:1]]), OUT.true_wnids + ["n1"])
    rep = ev.evaluate(more, CANDS, TRAINING, opts(hierarchical=False, per_class=True), None)
    d = rep["methods"]["devise"]
    assert d["hit@1"] == pytest.approx(3 / 5) and d["mean_per_class_hit@1"] == 0.5  # (1 + 0 + 0 + 1) / 4
    assert d["hit@2"] == pytest.approx(4 / 5) and d["mean_per_class_hit@2"] == 0.75  # n2's top 2: n3, n1 (tie by row)
    rows = {r["wnid"]: r for r in rep["per_class"]}
    assert rows["n1"] == {"wnid": "n1", "label": "n1", "images": 2, "hit@1": 1.0, "hit@2": 1.0, "wrong_top1": []}
    assert rows["n4"]["wrong_top1"] == ["n1 (1)"] and rows["n2"]["wrong_top1"] == ["n3 (1)"]
    assert [r["wnid"] for r in rep["per_class"]][:2] == ["n2", "n4"]  # worst first
