"""``--weights BUNDLE``: one trained backbone (e.g. one softmax pre-training) reused by later runs."""
from __future__ import annotations

import numpy as np
import pytest

from models.backbones import WeightsError, build_backbone


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from models.bundle import MODEL_FILE, write_config
    from models.head import build_devise
    from wordnet.vocab import Vocabulary

    model = build_devise("mobilenet_v2", embedding_dim=4, num_classes=2, weights=None, image_size=32,
                         hidden_units=8, backbone_options={"alpha": 0.35})
    rng = np.random.default_rng(0)
    # weights no fresh model has: every backbone variable (BatchNorm statistics too) set at random
    model.backbone.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.backbone.get_weights()])
    path = tmp_path_factory.mktemp("bundle") / "pre"
    path.mkdir()
    model.save(path / MODEL_FILE)
    Vocabulary(["n02084071", "n02121808"], ["dog.n.01", "domestic_cat.n.01"], ["dog", "cat"], ["", ""],
               np.eye(2, 4, dtype=np.float32)).save(path / "vocab.h5")
    write_config(path, {"complete": True})
    return path, model


def test_a_bundle_folder_gives_its_backbone(bundle):
    path, model = bundle
    net = build_backbone("mobilenet_v2", 32, weights=str(path), options={"alpha": 0.35})
    mine, theirs = net.get_weights(), model.backbone.get_weights()
    assert len(mine) == len(theirs) > 100
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


def test_a_bundle_with_another_backbone_is_refused(bundle):
    path, _ = bundle
    with pytest.raises(WeightsError) as err:
        build_backbone("mobilenet_v2", 64, weights=str(path), options={"alpha": 0.35})
    assert str(err.value) == (f"{path}: its backbone is mobilenet_v2 at 32 px {{'alpha': 0.35}}, not mobilenet_v2 "
                              f"at 64 px {{'alpha': 0.35}}; use the same --backbone, --image-size and options")
