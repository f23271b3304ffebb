"""Pre-training (phase 0 alone on a pool of plain-named classes): the backbone folder, resume, --weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from models.net.backbones import WeightsError, resolve_weights  # noqa: E402
from models.net.catalog import WEIGHTS_DIR, shipped_weights  # noqa: E402
from models.training.backbone_pretraining import pretrain_backbone, sha256_of  # noqa: E402
from models.training.callbacks import InterruptAfter  # noqa: E402
from models.training.config import pretrain_config  # noqa: E402
from tests.tiny import tiny_model  # noqa: E402
from wordnet.base.errors import DatasetError, DeviseError  # noqa: E402

TINY_PRETRAIN = dict(alpha=0.35, image_size=32, batch_size=4, val_split=0.25, bn_images=8, run_eagerly=True,
                     seed=1, style="grey,blur")
SHAPES = {"bar": (4, 12, 12, 20), "block": (6, 6, 26, 26), "dot": (14, 14, 18, 18)}


def make_pool(root, per_class=4):
    rng = np.random.default_rng(0)
    items, classes = [], sorted(SHAPES)
    for c, name in enumerate(classes):
        y0, x0, y1, x1 = SHAPES[name]
        for i in range(per_class):
            arr = np.full((32, 32, 3), 255, np.uint8)
            arr[y0:y1, x0:x1] = rng.integers(0, 120)
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
            items.append((path, c))
    return items, classes


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """A two-epoch pre-training interrupted after epoch 1, then resumed to the end."""
    root = tmp_path_factory.mktemp("pretrain")
    items, classes = make_pool(root / "pool")
    out = root / "backbone"
    cfg = pretrain_config(**TINY_PRETRAIN, pretrain_epochs=2)
    with pytest.raises(KeyboardInterrupt):
        pretrain_backbone(items, classes, out, cfg, provenance={"pool": "generated"},
                          callbacks=[InterruptAfter("pretrain", 1)])
    interrupted = json.loads((out / "config.json").read_text())
    result = pretrain_backbone(items, classes, out, cfg, resume=True)
    return out, result, interrupted, items, classes


def test_writes_a_backbone_with_its_provenance(backbone):
    out, result, interrupted, _items, classes = backbone
    assert interrupted["kind"] == "backbone" and interrupted["complete"] is False
    info = json.loads((out / "backbone.json").read_text())
    assert info == result.info
    assert info["format"] == "devise-backbone" and info["backbone"] == "mobilenet_v2"
    assert info["options"] == {"alpha": 0.35} and info["image_size"] == 32
    assert info["class_names"] == classes and info["classes"] == 3
    assert info["pool"] == {"pool": "generated"}
    assert info["sha256"] == sha256_of(out / "backbone.weights.h5")
    training = info["training"]
    assert training["epochs"] == training["epochs_done"] == 2
    assert training["style"] == "grey,blur" and training["schedule"] == "cosine"
    assert training["train_images"] == 9 and training["val_images"] == 3
    assert json.loads((out / "config.json").read_text())["complete"] is True
    history = (out / "history.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in history[1:]] == [["pretrain", "1"], ["pretrain", "2"]]  # each once


def test_any_build_loads_the_pretrained_backbone(backbone):
    out, *_ = backbone
    model = tiny_model(weights=str(out))
    reference = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(48, 48, 3), alpha=0.35)
    reference.load_weights(out / "backbone.weights.h5")
    for mine, theirs in zip(model.backbone.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert resolve_weights(str(out), "mobilenet_v2", {"alpha": 0.35}) == str(out / "backbone.weights.h5")
    with pytest.raises(WeightsError) as err:
        tiny_model(weights=str(out), backbone_options={"alpha": 0.5})
    assert str(err.value) == (f"{out}: these are weights for mobilenet_v2 {{'alpha': 0.35}}, not mobilenet_v2 "
                              "{'alpha': 0.5}; use --backbone mobilenet_v2 --alpha 0.35")


def test_refuses_what_it_cannot_train(tmp_path, backbone):
    out, _result, _i, items, classes = backbone
    cfg = pretrain_config(**TINY_PRETRAIN, pretrain_epochs=1)
    with pytest.raises(DatasetError, match="the pool has 1 class; pre-training needs at least 2"):
        pretrain_backbone(items[:2], classes[:1], tmp_path / "one", cfg)
    with pytest.raises(DatasetError, match="the pool's classes differ from the run's"):
        pretrain_backbone(items, ["a", "b", "c"], out, cfg, resume=True)
    with pytest.raises(DeviseError, match="not a pre-training setting: head_epochs"):
        pretrain_config(head_epochs=3)
    with pytest.raises(DeviseError, match="--style: unknown style op\\(s\\) sepia"):
        pretrain_config(style="sepia")


def test_named_weights(tmp_path):
    with pytest.raises(WeightsError, match="no backbone weights named 'devise-pool-99' \\(shipped: "):
        resolve_weights("devise-pool-99", "mobilenet_v2", {"alpha": 0.5})
    assert resolve_weights("none", "mobilenet_v2", {}) == "none"
    assert resolve_weights(str(tmp_path / "w.h5"), "mobilenet_v2", {}) == str(tmp_path / "w.h5")  # a file: as is
    for name in shipped_weights():
        info = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
        path = resolve_weights(name, info["backbone"], info["options"])
        assert sha256_of(path) == info["sha256"]  # the shipped file is the one its provenance describes
        with pytest.raises(WeightsError, match=f"{name}: these are weights for {info['backbone']}"):
            resolve_weights(name, "resnet50", {})



def test_resume_refuses_the_other_kind_of_run(backbone, tmp_path):
    from models.training.train import train_devise
    from wordnet.vocab import Vocabulary

    out, _result, _interrupted, items, classes = backbone
    vocab = Vocabulary(wnids=["n00000001", "n00000002"], synsets=["a.n.01", "b.n.01"], labels=["a", "b"],
                       definitions=["a", "b"], vectors=np.eye(2, 4))
    with pytest.raises(DeviseError) as err:
        train_devise(items, vocab, out, pretrain_config(**TINY_PRETRAIN), resume=True)
    assert str(err.value) == f"{out} is a pre-training run, not a DeViSE bundle; resume it with devise pretrain"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"complete": False, "hyperparameters": {}}))  # what train writes
    with pytest.raises(DeviseError) as err:
        pretrain_backbone(items, classes, bundle, pretrain_config(**TINY_PRETRAIN), resume=True)
    assert str(err.value) == f"{bundle} is a DeViSE bundle, not a pre-training run; resume it with devise train"
