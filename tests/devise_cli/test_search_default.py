"""`devise index` and `devise search` with no --model: the default model, and its ``combined`` method.

The default model ranks with ``combined`` (unit DeViSE and unit ConSE embeddings averaged), so
its index must hold those embeddings for a text query to land in the space `predict` ranks
labels in. A tiny bundle stands in for the default model (placed where the data home keeps
it, ``default_method: combined`` in its config); both heads are scaled so embeddings and
softmax vary from image to image. Expected rankings are NumPy's formulas over the Keras
model's own outputs.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.devise_cli.test_search_cmds import LABELS, write_png
from tests.tiny import bundles_loaded_once, save_bundle, tiny_model


def unit(x):
    x = np.atleast_2d(np.asarray(x, np.float64))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def env(tiny_kv, tiny_kv_file, tmp_path_factory):
    import keras

    from devise.default_model import default_model_path
    from models.data.tfdata import decode_images
    from wordnet.vectors.loading import file_checksum
    from wordnet.vocab import Vocabulary

    keras.utils.set_random_seed(1)
    root = tmp_path_factory.mktemp("search_default")
    imgs = sorted(write_png(root / "photos" / f"noise{i}.png", seed=10 + i) for i in range(8))
    vocab = Vocabulary(wnids=[w for w, _, _ in LABELS], synsets=[s for _, s, _ in LABELS],
                       labels=[lab for _, _, lab in LABELS], definitions=["", "", ""],
                       vectors=np.stack([tiny_kv[lab] for _, _, lab in LABELS]))
    model = tiny_model(16, 3)
    x = decode_images(imgs, 32)[0].astype(np.float32)
    # the untrained backbone's activations are ~1e-11: rescale the hidden layer and the softmax to the test images
    hidden, bn = model.get_layer("head_hidden"), model.get_layer("head_bn")
    kernel, bias = hidden.get_weights()
    hidden.set_weights([kernel * 1e10, bias])
    acts = np.asarray(keras.Model(model.inputs, hidden.output)(x, training=False))
    gamma, beta, _, _ = bn.get_weights()
    bn.set_weights([gamma, beta, acts.mean(0), acts.var(0) + 1e-6])
    probs = model.get_layer("probs")
    pooled = np.asarray(keras.Model(model.inputs, probs.input)(x, training=False), np.float64)
    centred = (pooled - pooled.mean(0)) / (pooled.std(0) + 1e-30)
    w = np.random.default_rng(0).normal(size=(pooled.shape[1], 3)) / np.sqrt(pooled.shape[1])
    # logits = centred @ w * 2, written as one Dense layer on the raw pooled features
    kern = w * 2 / (pooled.std(0) + 1e-30)[:, None]
    probs.set_weights([kern.astype(np.float32), (-(pooled.mean(0) @ kern)).astype(np.float32)])
    out = model(x, training=False)
    emb, p = np.asarray(out["embedding"], np.float64), np.asarray(out["probs"], np.float64)
    assert np.ptp(p[:, 0]) > 0.1 and np.allclose(p, (lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True))(
        centred @ w * 2), atol=1e-4)  # the softmax really varies by image
    conse = unit(p @ unit(vocab.vectors))  # ConSE over the top T=10 >= 3 classes: all of them
    combined = unit(0.5 * unit(emb) + 0.5 * conse)

    home = root / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("DEVISE_HOME", str(home))
    mp.delenv("DEVISE_MODEL", raising=False)
    default = save_bundle(model, vocab, default_model_path(), softmax_trained=True, default_method="combined",
                          provenance={"vectors": str(tiny_kv_file), "vector_checksum": file_checksum(tiny_kv_file)})
    with bundles_loaded_once():
        yield {"root": root, "imgs": imgs, "default": default, "kv": tiny_kv, "devise": unit(emb),
               "combined": combined}
    mp.undo()


def test_index_without_model_holds_the_default_models_combined_embeddings(env):
    from models.bundle import model_checksum
    from models.index.store import ImageIndex

    index = env["root"] / "photos.h5"
    res = invoke("index", env["root"] / "photos", "--output", index)
    assert res.exit_code == 0, res.output
    idx = ImageIndex.load(index)
    assert idx.attrs["model_checksum"] == model_checksum(env["default"])
    assert idx.attrs["model_path"] == str(env["default"]) and idx.method == "combined"
    assert idx.paths == [str(p) for p in env["imgs"]]
    np.testing.assert_allclose(idx.embeddings, env["combined"], atol=1e-5)
    assert not np.allclose(idx.embeddings, env["devise"], atol=1e-2)  # not the DeViSE head's alone


@pytest.mark.parametrize("query", ["tiger", "guitar"])
def test_text_search_ranks_by_the_combined_embeddings(env, query):
    from wordnet.vectors.words import phrase_vector

    index = env["root"] / "photos.h5"
    if not index.exists():
        assert invoke("index", env["root"] / "photos", "--output", index).exit_code == 0
    q = unit(phrase_vector(env["kv"], query))[0]
    scores = env["combined"] @ q
    order = np.argsort(-scores, kind="stable")
    res = invoke("search", index, query, "--json", "--top", 8)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["results"]
    assert [r["path"] for r in out] == [str(env["imgs"][i]) for i in order]
    np.testing.assert_allclose([r["score"] for r in out], scores[order], atol=1e-5)


def test_image_query_is_embedded_with_the_index_method(env):
    index = env["root"] / "photos.h5"
    if not index.exists():
        assert invoke("index", env["root"] / "photos", "--output", index).exit_code == 0
    scores = env["combined"] @ env["combined"][3]
    order = np.argsort(-scores, kind="stable")
    res = invoke("search", index, env["imgs"][3], "--json", "--top", 8)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["results"]
    assert [r["path"] for r in out] == [str(env["imgs"][i]) for i in order]
    assert out[0]["score"] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose([r["score"] for r in out], scores[order], atol=1e-5)


def test_another_method_is_not_mixed_into_the_index(env, tmp_path):
    """Same model.keras (same checksum), config saying devise: refused before anything is embedded."""
    from models.bundle import read_config, write_config
    from models.index.store import ImageIndex

    index = tmp_path / "idx.h5"
    shutil.copy(env["imgs"][0], tmp_path / "one.png")
    assert invoke("index", tmp_path / "one.png", "--output", index).exit_code == 0
    plain = tmp_path / "plain"
    shutil.copytree(env["default"], plain)
    write_config(plain, {**read_config(plain), "default_method": "devise"})
    res = invoke("index", tmp_path / "one.png", env["imgs"][1], "--model", plain, "--output", index)
    assert res.exit_code == 1
    assert res.stderr == (f"Error: {index} holds combined embeddings, not devise; index it again with --rebuild "
                          f"(or search it with the method it was built with)\n")
    assert ImageIndex.load(index).paths == [str(tmp_path / "one.png")]
    res = invoke("index", tmp_path / "one.png", "--model", plain, "--output", index, "--rebuild")
    assert res.exit_code == 0, res.output
    assert ImageIndex.load(index).method == "devise"
