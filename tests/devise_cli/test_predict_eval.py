"""`devise predict` and `devise eval` end to end on a tiny bundle (MobileNetV2, weights=None, 32 px).

The bundle's head is set by hand so its outputs are known exactly: the projection has a
zero kernel and the dog vector as bias, so every image embeds to the unit dog vector;
the softmax has a zero kernel and log([0.7, 0.2, 0.1]) as bias. Expected rankings are
then NumPy cosine rankings of known vectors. The real ``load_bundle`` reads the bundle
once; later commands get that same loaded bundle (memoised per path), so the module
does not pay a Keras model load per command.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.tiny import bundles_loaded_once, png, save_bundle, tiny_model

SEEN = [("dog", "dog.n.01"), ("cat", "cat.n.01"), ("car", "car.n.01")]
UNSEEN = [("wolf", "wolf.n.01"), ("tiger", "tiger.n.02"), ("truck", "truck.n.01")]
PROBS = np.array([0.7, 0.2, 0.1])


def make_vocab(kv, pairs, dim=None):
    from wordnet.labels import wnid_of
    from wordnet.reader import load_wordnet
    from wordnet.vocab import Vocabulary

    wn = load_wordnet()
    syns = [wn.synset(name) for _, name in pairs]
    vecs = np.stack([kv[w] for w, _ in pairs]) if dim is None else np.ones((len(pairs), dim))
    return Vocabulary(wnids=[wnid_of(s) for s in syns], synsets=[s.name() for s in syns],
                      labels=[w for w, _ in pairs], definitions=[s.definition() for s in syns], vectors=vecs)


@pytest.fixture(scope="module")
def env(tiny_kv, tmp_path_factory):
    """A tiny bundle, vocabularies and images; returns a dict of paths and vocabularies."""
    root = tmp_path_factory.mktemp("predict_eval")
    seen = make_vocab(tiny_kv, SEEN)
    allv = make_vocab(tiny_kv, SEEN + UNSEEN)
    for v in (seen, allv):  # provenance as `devise vocab build` records it
        v.attrs.update(vector_source="/vectors/tiny.kv", vector_checksum="c0ffee", label_text="lemmas")
    model = tiny_model(seen.dim, 3)
    proj = model.get_layer("head_projection")
    proj.set_weights([np.zeros_like(proj.get_weights()[0]), seen.vectors[0]])
    probs = model.get_layer("probs")
    probs.set_weights([np.zeros_like(probs.get_weights()[0]), np.log(PROBS).astype(np.float32)])
    bundle = save_bundle(model, seen, root / "bundle", softmax_trained=True)
    allv.save(root / "all.h5")
    make_vocab(tiny_kv, UNSEEN).save(root / "unseen.h5")
    make_vocab(tiny_kv, SEEN, dim=8).save(root / "dim8.h5")
    for name, attrs in (("other_vectors", dict(vector_source="/vectors/other.bin", vector_checksum="bad",
                                               label_text="lemmas")),
                        ("other_text", dict(vector_source="/vectors/tiny.kv", vector_checksum="c0ffee",
                                            label_text="lemmas+definition"))):
        other = make_vocab(tiny_kv, SEEN + UNSEEN)  # same labels, same dimension: only the provenance differs
        other.attrs.update(attrs)
        other.save(root / f"{name}.h5")
    data = root / "data"
    for cls, colours in (("dog", ["red", "blue"]), ("cat", ["green", "white"]), ("tiger.n.02", ["black", "gray"])):
        for i, c in enumerate(colours):
            png(data / cls / f"{i}.png", c)
    imgs = [png(root / "imgs" / "a.png", "red"), png(root / "imgs" / "b.png", "blue")]
    with bundles_loaded_once():
        yield {"root": root, "bundle": bundle, "seen": seen, "all": allv, "data": data, "imgs": imgs}


def rank_of(vectors, query):
    """NumPy reference: candidate rows by decreasing cosine with ``query``."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return list(np.argsort(-(v @ (query / np.linalg.norm(query))), kind="stable"))


def invoke(*args):
    """Run the CLI. Batches of 2 everywhere: one input shape, so Keras traces predict once."""
    return CliRunner().invoke(main, [str(a) for a in args] + ["--batch-size", "2"], catch_exceptions=False)


# -- predict -----------------------------------------------------------------------
def test_predict_json_against_numpy(env):
    res = invoke("predict", *env["imgs"], "--model", env["bundle"], "--json", "--top", 5)
    assert res.exit_code == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["path"] for d in lines] == [str(p) for p in env["imgs"]]
    seen = env["seen"]
    order = rank_of(seen.vectors, seen.vectors[0])
    for d in lines:
        assert [p["wnid"] for p in d["predictions"]] == [seen.wnids[i] for i in order]  # 3 labels < top 5
        assert [p["rank"] for p in d["predictions"]] == [1, 2, 3]
        assert d["predictions"][0] == {"rank": 1, "wnid": seen.wnids[0], "synset": "dog.n.01", "label": "dog",
                                       "score": pytest.approx(1.0, abs=1e-5)}


def test_predict_zero_shot_vocab_and_table(env, monkeypatch):
    import wordnet.reader

    def no_wordnet():  # predict must not need WordNet: the vocabulary carries names
        raise AssertionError("predict loaded WordNet")

    monkeypatch.setattr(wordnet.reader, "load_wordnet", no_wordnet)
    res = invoke("predict", *env["imgs"], "--model", env["bundle"], "--vocab", env["root"] / "all.h5", "--top", 2)
    assert res.exit_code == 0, res.stderr
    assert str(env["imgs"][1]) in res.stdout
    allv = env["all"]
    first, second = rank_of(allv.vectors, env["seen"].vectors[0])[:2]
    assert str(env["imgs"][0]) in res.stdout
    for i in (first, second):
        assert allv.wnids[i] in res.stdout and allv.labels[i] in res.stdout
    assert "1.000" in res.stdout
    assert res.stdout.index(allv.wnids[first]) < res.stdout.index(allv.wnids[second])


def test_predict_failed_image_does_not_stop_others(env, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("not a png")
    res = invoke("predict", env["imgs"][0], bad, env["imgs"][1], "--model", env["bundle"], "--json")
    assert res.exit_code == 3
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert lines[1] == {"path": str(bad), "error": "not an image PIL can read"}
    assert [d["path"] for d in lines] == [str(env["imgs"][0]), str(bad), str(env["imgs"][1])]
    assert len(lines[0]["predictions"]) == len(lines[2]["predictions"]) == 3
    assert res.stderr.strip().endswith("1 of 3 images could not be read")


def test_predict_exact_errors(env, tmp_path):
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--vocab", env["root"] / "dim8.h5")
    assert res.exit_code == 1
    assert res.stderr == (f"Error: {env['root'] / 'dim8.h5'} has 8-d vectors but model {env['bundle']} is 16-d; "
                          f"build the vocabulary with the same word vectors\n")
    missing = tmp_path / "models" / "nope"
    res = invoke("predict", env["imgs"][0], "--model", missing)
    assert res.exit_code == 1
    assert res.stderr == (f"Error: {missing}: no such model bundle; "
                          f"train one with `devise train DATA --output {missing}`\n")
    res = invoke("predict", tmp_path / "nothing.png", "--model", env["bundle"])
    assert (res.exit_code, res.stderr) == (1, f"Error: {tmp_path / 'nothing.png'}: no such file or folder\n")


def test_predict_and_eval_refuse_a_vocabulary_from_other_vectors_or_label_text(env):
    """Same labels, same dimension, other word vectors or label text: cosines in another space would
    rank silently wrong labels, so predict and eval refuse with one line naming both sides."""
    vocab = env["root"] / "other_vectors.h5"
    for cmd in (("predict", env["imgs"][0]), ("eval", env["data"])):
        res = invoke(*cmd, "--model", env["bundle"], "--vocab", vocab)
        assert res.exit_code == 1, res.output
        assert res.stderr == (f"Error: {vocab} was built with word vectors other.bin but model {env['bundle']} was "
                              f"trained with tiny.kv (a different file): its scores would be meaningless; rebuild it "
                              f"with `devise vocab build ... --vectors /vectors/tiny.kv`\n")
    vocab = env["root"] / "other_text.h5"
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--vocab", vocab)
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: {vocab} was built with --label-text lemmas+definition but model "
                                 f"{env['bundle']} was trained with --label-text lemmas")
    assert res.stderr.count("\n") == 1


def test_predict_methods_against_numpy(env):
    """conse, combined and softmax rank as the NumPy formulas say, from one bundle's two heads."""
    seen, allv = env["seen"], env["all"]
    unit = lambda x: x / np.linalg.norm(x)  # noqa: E731
    conse = unit(PROBS @ np.stack([unit(v) for v in seen.vectors]))  # T=10 > 3 classes: all of them
    combined = unit(0.5 * unit(seen.vectors[0]) + 0.5 * conse)
    for method, query in (("conse", conse), ("combined", combined)):
        res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--vocab", env["root"] / "all.h5",
                     "--method", method, "--json", "--top", 6)
        assert res.exit_code == 0, res.stderr
        preds = json.loads(res.stdout)["predictions"]
        assert [p["wnid"] for p in preds] == [allv.wnids[i] for i in rank_of(allv.vectors, query)], method
        expected = unit(allv.vectors[rank_of(allv.vectors, query)[0]]) @ query
        assert preds[0]["score"] == pytest.approx(expected, abs=1e-5)
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--method", "softmax", "--json")
    assert res.exit_code == 0, res.stderr
    preds = json.loads(res.stdout)["predictions"]
    assert [(p["label"], round(p["score"], 4)) for p in preds] == [("dog", 0.7), ("cat", 0.2), ("car", 0.1)]
    res = invoke("predict", env["imgs"][0], "--model", env["bundle"], "--method", "softmax", "--vocab",
                 env["root"] / "all.h5")
    assert res.exit_code == 2
    assert "--method softmax ranks the model's own training labels only" in res.stderr


def test_predict_method_needs_a_softmax_head(env, tmp_path, tiny_kv):
    bundle = save_bundle(tiny_model(env["seen"].dim, 3), env["seen"], tmp_path / "nosoftmax")
    res = invoke("predict", env["imgs"][0], "--model", bundle, "--method", "conse")
    assert res.exit_code == 2
    assert f"--method conse needs a trained softmax head, and {bundle} has none" in res.stderr


# -- eval ----------------------------------------------------------------------------
def test_eval_json_against_numpy(env, tmp_path):
    out = tmp_path / "r.json"
    res = invoke("eval", env["data"], "--model", env["bundle"], "--vocab", env["root"] / "all.h5",
                 "--k", "1,2,5", "--json", out, "--bootstrap", 200, "--calibration", "none")
    assert res.exit_code == 0, res.stderr
    rep = json.loads(out.read_text())
    allv, seen = env["all"], env["seen"]
    truth = [allv.index(allv.wnids[i]) for i in (0, 0, 1, 1, 4, 4)]  # dog, dog, cat, cat, tiger, tiger

    def hits(order, truths, k):
        return float(np.mean([t in order[:k] for t in truths]))

    dev = rank_of(allv.vectors, seen.vectors[0])
    conse = rank_of(allv.vectors, (PROBS[:, None] * seen.vectors).sum(axis=0))
    assert "softmax" not in rep["methods"]  # it knows 3 of the 6 candidates: no row in their table
    assert (rep["n_images"], rep["candidates"], rep["k"], rep["n_failed"]) == (6, 6, [1, 2, 5], 0)
    for k in (1, 2, 5):
        assert rep["methods"]["devise"][f"hit@{k}"] == pytest.approx(hits(dev, truth, k), abs=1e-6)
        assert rep["methods"]["conse"][f"hit@{k}"] == pytest.approx(hits(conse, truth, k), abs=1e-6)
        assert rep["methods"]["chance"][f"hit@{k}"] == pytest.approx(k / 6, abs=1e-6)
        lo, hi = rep["methods"]["devise"][f"hit@{k}_ci"]
        assert lo <= rep["methods"]["devise"][f"hit@{k}"] <= hi
    z = rep["settings"]["zsl"]  # the tiger images against wolf, tiger, truck
    z_order = rank_of(allv.vectors[3:], seen.vectors[0])
    assert (z["n_images"], z["candidates"], z["k"], z["k_not_scored"]) == (2, 3, [1, 2], [5])
    assert "k = 5 not shown: k >= the 3 candidates is 100 % for any method" in res.stdout
    assert z["methods"]["devise"]["hit@1"] == pytest.approx(hits(z_order, [1, 1], 1), abs=1e-6)
    assert "gzsl" not in rep["settings"]  # seen + unseen is exactly the given vocabulary
    assert rep["candidate_kind"] == "gzsl"
    assert "as given (seen + unseen labels) — 6 images, 3 classes, 6 candidates" in res.stdout
    assert "zero-shot: unseen classes vs unseen labels — 2 images, 1 classes, 3 candidates" in res.stdout


def test_eval_hierarchical_calibration_plot_and_failures(env, tmp_path):
    data = tmp_path / "data"
    for cls in ("dog", "tiger.n.02"):
        png(data / cls / "0.png", "red")
    (data / "dog" / "broken.png").write_text("junk")
    out, fig = tmp_path / "r.json", tmp_path / "r.png"
    res = invoke("eval", data, "--model", env["bundle"], "--vocab", env["root"] / "unseen.h5", "--k", "1,2",
                 "--hierarchical", "--json", out, "--plot", fig, "--calibration", "0.05", "--bootstrap", 0)
    assert res.exit_code == 3, res.stderr
    rep = json.loads(out.read_text())
    assert rep["n_failed"] == 1 and rep["failed"][0]["path"] == str(data / "dog" / "broken.png")
    assert "1 images could not be read and are not counted:" in res.stdout
    # hp@1 == hit@1 wherever the true label is a candidate (in zsl/gzsl, except softmax,
    # whose candidates are the training labels); the dog image in "given" is not a candidate
    for s in rep["settings"].values():
        for name, m in s["methods"].items():
            assert 0.0 <= m["hp@2"] <= 1.0
            if name != "softmax":
                assert m["hp@1"] == m["hit@1"]
    # "given": dog + tiger images vs wolf, tiger, truck. The dog image never hits, but its
    # hp@1 ground truth is {wolf} (dog -> canine -> wolf is the nearest candidate)
    top1 = ["wolf", "tiger", "truck"][rank_of(env["all"].vectors[3:], env["seen"].vectors[0])[0]]
    given = rep["methods"]["devise"]
    assert given["hit@1"] == (0.5 if top1 == "tiger" else 0.0)
    assert given["hp@1"] == (0.5 if top1 in ("wolf", "tiger") else 0.0)
    assert rep["settings"]["gzsl"]["calibration"]["devise"]["gamma"] == 0.05
    assert "devise+cal" in rep["settings"]["gzsl"]["methods"]
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_usage_errors(env, tmp_path):
    res = invoke("eval", env["data"], "--model", env["bundle"], "--k", "1,x")
    assert res.exit_code == 2
    assert res.stderr.endswith(
        "Error: Invalid value for '--k': '1,x' is not a comma-separated list of positive integers\n")
    res = invoke("eval", env["data"], "--model", env["bundle"], "--baseline", "softmax,knn")
    assert res.exit_code == 2
    assert res.stderr.endswith(
        "Invalid value for '--baseline': unknown baseline knn (choose from softmax, conse, combined, or none)\n")
    res = invoke("eval", env["data"], "--model", env["bundle"], "--calibration", "-1")
    assert res.exit_code == 2 and res.stderr.endswith("'-1': expected a gamma >= 0, 'auto' or 'none'\n")
    res = invoke("eval", tmp_path / "none", "--model", env["bundle"])
    assert (res.exit_code, res.stderr) == (1, f"Error: {tmp_path / 'none'}: no such dataset folder or CSV file\n")


def test_eval_averages_the_splits_in_data_and_calibrates_on_given_images(env, tmp_path):
    data = tmp_path / "data"
    for cls in ("dog", "cat", "tiger.n.02", "wolf"):
        png(data / cls / "0.png", "red")
    (data / "splits.json").write_text(json.dumps(
        {"splits": [{"name": "a", "unseen": ["tiger.n.02", "truck"]}, {"name": "b", "unseen": ["wolf", "truck"]}]}))
    val = tmp_path / "val"
    png(val / "dog" / "0.png", "blue")
    png(val / "cat" / "0.png", "blue")
    out = tmp_path / "r.json"
    res = invoke("eval", data, "--model", env["bundle"], "--vocab", env["root"] / "all.h5", "--k", "1,2",
                 "--calibration-data", val, "--json", out, "--bootstrap", 50)
    assert res.exit_code == 0, res.stderr
    rep = json.loads(out.read_text())
    allv, dog = env["all"], env["seen"].vectors[0]
    z, g = rep["settings"]["zsl"], rep["settings"]["gzsl"]
    assert (z["n_splits"], z["candidates"], g["candidates"]) == (2, [2, 2], [5, 5])
    top_a = ["tiger", "truck"][rank_of(allv.vectors[[4, 5]], dog)[0]]
    top_b = ["wolf", "truck"][rank_of(allv.vectors[[3, 5]], dog)[0]]
    assert z["methods"]["devise"]["hit@1"] == pytest.approx(((top_a == "tiger") + (top_b == "wolf")) / 2, abs=1e-6)
    assert [s["n_images"] for s in g["splits"]] == [3, 3]  # dog, cat + that split's unseen class
    assert g["methods"]["devise"]["hit@1"] == pytest.approx(1 / 3, abs=1e-6)  # only the dog image, each split
    assert rep["calibration_data"] == str(val)
    for cal in g["calibration"]:
        assert cal["devise"]["criterion"] == "largest gamma keeping seen accuracy >= 90% of uncalibrated"
    assert "mean of 2 splits" in res.stdout
