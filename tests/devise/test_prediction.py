"""The streaming inference path: one pipeline, one compiled function, input order kept, --approx.

A tiny bundle (MobileNetV2 alpha 0.35, weights=None, 32 px) with random weights; the
reference is the DeviseModel itself called on the decoded images.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.tiny import png, save_bundle, tiny_model


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from models.bundle import load_bundle
    from wordnet.vocab import Vocabulary

    root = tmp_path_factory.mktemp("perf_predict")
    rng = np.random.default_rng(0)
    n = 40
    vocab = Vocabulary(wnids=[f"n{i:08d}" for i in range(n)], synsets=[f"s{i}.n.01" for i in range(n)],
                       labels=[f"label {i}" for i in range(n)], definitions=[f"def {i}" for i in range(n)],
                       vectors=rng.normal(size=(n, 8)))
    bundle = save_bundle(tiny_model(8, n), vocab, root / "bundle")
    vocab.save(root / "other.h5")
    (root / "imgs").mkdir()
    bad = root / "imgs" / "b_bad.png"
    bad.write_bytes(b"not a png")
    paths = [png(root / "imgs" / "a.png", "red"), bad, png(root / "imgs" / "c.png", "blue", (30, 50)),
             png(root / "imgs" / "d.png", "green"), png(root / "imgs" / "e.png", "white")]
    last_bad = root / "imgs" / "f_bad.jpg"
    last_bad.write_bytes(b"\xff\xd8 truncated")
    paths.append(last_bad)
    return {"root": root, "bundle_path": bundle, "bundle": load_bundle(bundle), "paths": paths, "vocab": vocab}


def reference(bundle, paths):
    from models.data.tfdata import decode_images

    x = decode_images(paths, 32)[0].astype(np.float32)
    return np.asarray(bundle.full(x, training=False)["embedding"])


def test_run_batches_streams_input_order_without_building_sub_models(env, monkeypatch):
    from models.net.devise_model import DeviseModel

    def boom(self):
        raise AssertionError("the inference path must not build a sub-model")

    monkeypatch.setattr(DeviseModel, "embedder", property(boom))
    monkeypatch.setattr(DeviseModel, "classifier", property(boom))
    bundle, paths = env["bundle"], env["paths"]
    pieces = list(bundle.run_batches(paths, batch_size=2))
    covered = [p for piece in pieces for p in sorted(piece.paths + [f for f, _ in piece.failures])]
    assert covered == paths  # every input exactly once, in order
    # batches of 2 decoded images, each piece with the failures before its last image; a last piece carries
    # the trailing failure only
    assert [len(p.paths) for p in pieces] == [2, 2, 0]
    assert pieces[0].failures == [(paths[1], "not an image PIL can read")] and pieces[1].failures == []
    assert [f for f, _ in pieces[-1].failures] == [paths[5]]
    good = [p for p in paths if "bad" not in p.name]
    emb = np.concatenate([p.embeddings for p in pieces])
    np.testing.assert_allclose(emb, reference(bundle, good), atol=5e-5)
    out = bundle.run(paths, batch_size=4)
    assert out.paths == good and [f for f, _ in out.failures] == [paths[1], paths[5]]
    np.testing.assert_allclose(out.embeddings, emb, atol=1e-6)
    ones = bundle.run(paths, batch_size=1)  # batches that hold only a bad file are empty and skipped
    assert ones.paths == good and ones.failures == out.failures
    np.testing.assert_allclose(ones.embeddings, emb, atol=1e-5)
    assert list(bundle.run_batches([], batch_size=2)) == []


def test_no_softmax_head_is_refused(env):
    from wordnet.base.errors import BundleError

    assert env["bundle"].softmax is None and not env["bundle"].has_softmax
    with pytest.raises(BundleError, match="has no trained softmax head"):
        env["bundle"].run(env["paths"][:1], softmax=True)


def test_predictions_are_records_in_input_order(env):
    from devise.prediction import predictions

    bundle, vocab, paths = env["bundle"], env["vocab"], env["paths"]
    ticks = []
    recs = list(predictions(bundle, vocab, paths, 3, batch_size=2, progress=ticks.append))
    assert [r["path"] for r in recs] == [str(p) for p in paths]
    assert ["error" in r for r in recs] == [False, True, False, False, False, True]
    assert ticks[-1] == len(paths) and ticks == sorted(ticks)
    good = [p for p in paths if "bad" not in p.name]
    want_idx, want_scores = vocab.top_k(reference(bundle, good), 3)
    got = [r for r in recs if "predictions" in r]
    for r, wi, ws in zip(got, want_idx, want_scores):
        assert [p["wnid"] for p in r["predictions"]] == [vocab.wnids[i] for i in wi]
        assert [p["rank"] for p in r["predictions"]] == [1, 2, 3]
        np.testing.assert_allclose([p["score"] for p in r["predictions"]], ws, atol=1e-5)


def test_predict_approx_gives_the_exact_labels_on_a_small_vocabulary(env, devise_home, monkeypatch):
    import models.bundle

    monkeypatch.setattr(models.bundle, "load_bundle", lambda path: env["bundle"])  # loaded once, in the fixture
    args = ["predict", *map(str, env["paths"]), "--model", str(env["bundle_path"]), "--vocab",
            str(env["root"] / "other.h5"), "--json", "--top", "3", "--batch-size", "2"]
    exact = CliRunner().invoke(main, args, catch_exceptions=False)
    approx = CliRunner().invoke(main, args + ["--approx"], catch_exceptions=False)
    assert exact.exit_code == approx.exit_code == 3
    rows = lambda res: [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]  # noqa: E731
    # the same labels in the same order; scores agree to float32 rounding (the index re-scores with its own
    # dot products, so the 6th decimal may differ)
    shape = lambda recs: [(r["path"], r.get("error"), [(p["rank"], p["wnid"]) for p in r.get("predictions", [])])  # noqa: E731
                          for r in recs]
    assert shape(rows(approx)) == shape(rows(exact)) and len(rows(exact)) == 6
    for a, e in zip(rows(approx), rows(exact)):
        np.testing.assert_allclose([p["score"] for p in a.get("predictions", [])],
                                   [p["score"] for p in e.get("predictions", [])], atol=2e-6)
    assert "building the approximate index of 40 labels" in approx.stderr
    assert list((devise_home / "indexes").glob("other-*.faiss"))


def test_a_single_batch_runs_eagerly_with_the_same_result(env, monkeypatch):
    import models.bundle as mb

    good = [p for p in env["paths"] if "bad" not in p.name][:3]
    traced = env["bundle"].run(good, batch_size=1).embeddings  # several batches: the compiled function
    fresh = mb.Bundle(path=env["bundle_path"], full=env["bundle"].full, vocab=env["vocab"], config={})

    def no_tracing(*args, **kwargs):
        raise AssertionError("one batch must not trace the model")

    monkeypatch.setattr(mb, "compiled_inference", no_tracing)
    out = fresh.run(env["paths"][:4], batch_size=4)
    assert out.paths == good and [f for f, _ in out.failures] == [env["paths"][1]]
    np.testing.assert_allclose(out.embeddings, traced, atol=5e-5)
