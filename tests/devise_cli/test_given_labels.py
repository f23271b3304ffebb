"""Labels given where they are used, readable scores and the new eval outputs, end to end on a tiny bundle.

As in test_predict_eval: the head is set by hand so every image embeds to the unit dog
vector, so every expected ranking is a NumPy cosine ranking of known label vectors. The
bundle records the tiny vectors, its label text and where its training data is, as
`devise train` does, so labels can be embedded and a temperature fitted.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.devise_cli.test_predict_eval import SEEN, make_vocab, rank_of
from tests.tiny import bundles_loaded_once, png, save_bundle, tiny_model


@pytest.fixture(scope="module")
def env(tiny_kv, tiny_kv_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("given_labels")
    seen = make_vocab(tiny_kv, SEEN)
    seen.attrs.update({"vector_source": str(tiny_kv_file), "label_text": "lemmas"})
    model = tiny_model(seen.dim, 3)
    proj = model.get_layer("head_projection")
    proj.set_weights([np.zeros_like(proj.get_weights()[0]), seen.vectors[0]])
    train = root / "train"
    for cls, colours in (("dog", ["red", "blue", "green"]), ("cat", ["white", "black", "gray"]),
                         ("car", ["yellow", "pink", "orange"])):
        for i, c in enumerate(colours):
            png(train / cls / f"{i}.png", c)
    bundle = save_bundle(model, seen, root / "bundle", provenance={"data": str(train)},
                         hyperparameters={"val_split": 0.34, "seed": 0, "weights": "imagenet"})
    imgs = [png(root / "imgs" / "a.png", "red"), png(root / "imgs" / "b.png", "blue")]
    with bundles_loaded_once():
        yield {"root": root, "bundle": bundle, "seen": seen, "imgs": imgs, "train": train, "kv": tiny_kv}


def invoke(*args, batch=True):
    extra = ["--batch-size", "2"] if batch else []
    return CliRunner().invoke(main, [str(a) for a in args] + extra, catch_exceptions=False)


def label_vectors(kv, names):
    from wordnet.reader import load_wordnet
    from wordnet.vectors.label_text import synset_vector

    wn = load_wordnet()
    return np.stack([synset_vector(kv, wn.synset(n)) for n in names])


# -- predict --labels ------------------------------------------------------------------
def test_predict_with_labels_against_numpy_and_a_free_phrase(env):
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--labels", "cat, wolf, guitar piano, car",
                 "--json")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ("note: 'guitar piano' is not a WordNet noun: embedded from its words, no synset, so "
                          "hierarchical scores do not apply to it\n")
    from wordnet.vectors.words import phrase_vector

    vecs = np.concatenate([label_vectors(env["kv"], ["cat.n.01", "wolf.n.01"]),
                           phrase_vector(env["kv"], "guitar piano")[None], label_vectors(env["kv"], ["car.n.01"])])
    dog = env["seen"].vectors[0]
    order = rank_of(vecs, dog)
    rec = json.loads(res.stdout)
    names = ["cat", "wolf", "guitar piano", "car"]
    assert [p["label"] for p in rec["predictions"]] == [names[i] for i in order]
    expected = vecs @ dog / np.linalg.norm(vecs, axis=1)
    assert [p["score"] for p in rec["predictions"]] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    phrase = next(p for p in rec["predictions"] if p["label"] == "guitar piano")
    assert (phrase["wnid"], phrase["synset"]) == ("text:guitar piano", "")


def test_labels_file_descriptions_and_bad_labels(env, tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("cat\nwolf\n")
    d = tmp_path / "d.csv"
    d.write_text("class,text\nwolf,a wild canine\n")
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--labels-file", f, "--label-descriptions", d,
                 "--json", "--top", 1)
    assert res.exit_code == 0, res.stderr
    from wordnet.vectors.label_text import text_vector

    cands = np.stack([label_vectors(env["kv"], ["cat.n.01"])[0], text_vector(env["kv"], "a wild canine")])
    dog = env["seen"].vectors[0]
    best = int(np.argmax(cands @ dog))
    assert json.loads(res.stdout)["predictions"][0]["label"] == ["cat", "wolf"][best]
    assert json.loads(res.stdout)["predictions"][0]["score"] == pytest.approx(float(cands[best] @ dog), abs=1e-5)

    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--labels", " , ")
    assert (res.exit_code, res.stderr) == (
        1, 'Error: --labels is empty; give labels separated by commas, like --labels "cat, dog, snow leopard"\n')
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--labels", "dog, zebra, tigr")
    assert (res.exit_code, res.stderr) == (
        1, "Error: 2 labels have no vector in tiny.kv: 'zebra'; 'tigr' (did you mean: tiger?)\n")
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--labels", "dog", "--vocab", f)
    assert res.exit_code == 2 and res.stderr.endswith("Error: give --vocab or --labels/--labels-file, not both\n")


def test_softmax_scores_use_the_temperature_fitted_on_the_validation_images(env, devise_home):
    from models.data.datasets import scan_dataset, stratified_split
    from wordnet.scoring.metrics import fit_temperature

    res = invoke("predict", *env["imgs"], "--model", env["bundle"], "--scores", "softmax", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == "fitting the softmax temperature on the bundle's 3 validation images (once per model) ...\n"
    # the reference: the same seeded split, every image embeds to the dog vector
    seen = env["seen"]
    items = [(p, seen.labels.index(c)) for p, c in scan_dataset(env["train"])]
    val = stratified_split(items, 0.34, 0)[1]
    cos = seen.vectors @ seen.vectors[0]
    t = fit_temperature(np.tile(cos, (len(val), 1)), np.array([r for _, r in val]))
    probs = np.exp(cos / t) / np.exp(cos / t).sum()
    rec = json.loads(res.stdout.splitlines()[0])
    assert [p["score"] for p in rec["predictions"]] == pytest.approx(sorted(probs, reverse=True), abs=1e-5)
    cache = json.loads((devise_home / "temperatures.json").read_text())
    assert [v["temperature"] for v in cache.values()] == [pytest.approx(t, rel=1e-6)]
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--scores", "softmax")
    assert res.stderr == "" and "probability" in res.stdout  # cached: no second fit


def test_min_score_answers_unknown(env):
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--min-score", "0.999", "--json")
    rec = json.loads(res.stdout)
    assert [p["label"] for p in rec["predictions"]] == ["dog"] and rec["unknown"] is False
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--min-score", "1.5", "--json")
    rec = json.loads(res.stdout)
    assert rec["predictions"] == [] and rec["unknown"] is True and rec["best_score"] == pytest.approx(1.0, abs=1e-5)
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--min-score", "1.5")
    assert res.stdout == f"{env['imgs'][0]}: unknown (no label scores 1.5 or more; best 1.000)\n"


# -- eval ----------------------------------------------------------------------------------
def test_eval_with_labels_per_class_file_result_file_and_leakage(env, tmp_path):
    data = tmp_path / "data"
    for cls, n in (("wolf", 2), ("tiger.n.02", 1), ("guitar piano", 1)):
        for i in range(n):
            png(data / cls / f"{i}.png", "red")
    per_class, result = tmp_path / "classes.csv", tmp_path / "result.json"
    res = invoke("eval", data, "--model", env["bundle"], "--labels", "wolf, tiger.n.02, guitar piano",
                 "--k", "1,2", "--hierarchical", "--bootstrap", 0, "--per-class", per_class, "--result", result)
    assert res.exit_code == 0, res.stderr
    from wordnet.vectors.words import phrase_vector

    vecs = np.concatenate([label_vectors(env["kv"], ["wolf.n.01", "tiger.n.02"]),
                           phrase_vector(env["kv"], "guitar piano")[None]])
    top = rank_of(vecs, env["seen"].vectors[0])
    hit1 = {c: float(top[0] == i) for i, c in enumerate(["wolf", "tiger.n.02", "guitar piano"])}
    rows = {r["class"]: r for r in csv.DictReader(per_class.open())}
    assert list(rows["wolf"]) == ["class", "wnid", "label", "images", "hit@1", "hit@2", "hp@1", "hp@2", "wrong_top1"]
    for c, h in hit1.items():
        assert float(rows[c]["hit@1"]) == h
    assert rows["wolf"]["images"] == "2" and rows["guitar piano"]["wnid"] == "text:guitar piano"
    names = ["wolf", "tiger", "guitar piano"]  # a synset name is shown by its name
    wrong = f"{names[top[0]]} (2)" if top[0] != 0 else ""
    assert rows["wolf"]["wrong_top1"] == wrong
    records = json.loads(result.read_text())
    devise = next(r for r in records if r["method"] == "devise")
    assert set(devise) == {"dataset", "model", "task", "setting", "candidate_labels", "method", "candidates",
                           "images", "classes", "metrics", "versions"}
    assert (devise["task"], devise["setting"], devise["candidate_labels"]) == ("zeroshot_classification", "given",
                                                                             "unseen")
    per_image = (2 * hit1["wolf"] + hit1["tiger.n.02"] + hit1["guitar piano"]) / 4
    per_cls = sum(hit1.values()) / 3
    m = devise["metrics"]
    assert (m["acc1"], m["hit@1"]) == (pytest.approx(per_image), pytest.approx(per_image))
    assert (m["mean_per_class_recall"], m["mean_per_class_hit@1"]) == (pytest.approx(per_cls), pytest.approx(per_cls))
    assert devise["versions"]["devise"]
    # tiger (n02129604) is an ImageNet-1K class and the bundle says its backbone started from ImageNet weights
    assert ("note: leakage: the backbone started from ImageNet weights (--weights imagenet) and 1 of the candidate "
            "labels not trained on are ImageNet-1K classes (tiger (n02129604))") in res.stdout
    assert "treats the free-phrase labels as having no WordNet relatives" in res.stdout


def test_eval_per_class_images_and_the_json_per_class_file(env, tmp_path):
    data = tmp_path / "data"
    for cls in ("dog", "cat"):
        for i in range(4):
            png(data / cls / f"{i}.png", "red")
    out, per_class = tmp_path / "r.json", tmp_path / "classes.json"
    res = invoke("eval", data, "--model", env["bundle"], "--per-class-images", "0.5", "--json", out,
                 "--per-class", per_class, "--bootstrap", 0, "--k", "1")
    assert res.exit_code == 0, res.stderr
    rep = json.loads(out.read_text())
    assert rep["n_images"] == 4 and rep["per_class_images"] == {"per_class": 0.5, "seed": 0, "images": 4, "of": 8}
    rows = json.loads(per_class.read_text())
    assert [(r["class"], r["images"], r["hit@1"]) for r in rows] == [("cat", 2, 0.0), ("dog", 2, 1.0)]
    assert rows[0]["wrong_top1"] == ["dog (2)"]
    res = invoke("eval", data, "--model", env["bundle"], "--per-class-images", "1", "--json", out, "--k", "1",
                 "--bootstrap", 0)
    assert json.loads(out.read_text())["n_images"] == 2
    res = invoke("eval", data, "--model", env["bundle"], "--per-class-images", "1.5")
    assert res.exit_code == 2 and res.stderr.endswith(
        "Invalid value for '--per-class-images': '1.5': expected a whole number of images >= 1 or a share in (0, 1)\n")


def test_search_with_labels_ranks_the_index_for_each(env, tmp_path):
    index = tmp_path / "pics.h5"
    res = invoke("index", *env["imgs"], "--model", env["bundle"], "--output", index)
    assert res.exit_code == 0, res.stderr
    res = invoke("search", index, "--labels", "dog, cat", "--json", "--top", 1, batch=False)
    assert res.exit_code == 0, res.stderr
    found = json.loads(res.stdout)
    assert [q["query"] for q in found["queries"]] == ["dog", "cat"]
    vecs = label_vectors(env["kv"], ["dog.n.01", "cat.n.01"])
    dog = env["seen"].vectors[0]
    for q, v in zip(found["queries"], vecs):
        assert q["results"][0]["score"] == pytest.approx(float(v @ dog / np.linalg.norm(v)), abs=1e-5)
    res = invoke("search", index, "dog", "--labels", "cat", batch=False)
    assert res.exit_code == 2 and "give no QUERY" in res.stderr
