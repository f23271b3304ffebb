"""``--weights BUNDLE``: one trained backbone (e.g. one softmax pre-training) reused by later runs."""
from __future__ import annotations

import numpy as np
import pytest

from models.bundle import copy_backbone
from models.net.backbones import WeightsError, build_backbone
from tests.tiny import save_bundle, tiny_model


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from wordnet.vocab import Vocabulary

    model = tiny_model(4, 2)
    rng = np.random.default_rng(0)
    # weights no fresh model has: every backbone variable (BatchNorm statistics too) set at random
    model.backbone.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.backbone.get_weights()])
    vocab = Vocabulary(["n02084071", "n02121808"], ["dog.n.01", "domestic_cat.n.01"], ["dog", "cat"], ["", ""],
                       np.eye(2, 4, dtype=np.float32))
    path = save_bundle(model, vocab, tmp_path_factory.mktemp("bundle") / "pre")
    return path, model


def _fresh(image_size):
    return tiny_model(4, 2, image_size=image_size)


def test_a_bundle_folder_gives_its_backbone(bundle):
    path, model = bundle
    net = copy_backbone(_fresh(32), path).backbone
    mine, theirs = net.get_weights(), model.backbone.get_weights()
    assert len(mine) == len(theirs) > 100
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


def test_a_bundle_with_another_backbone_is_refused(bundle):
    path, _ = bundle
    with pytest.raises(WeightsError) as err:
        copy_backbone(_fresh(64), path)
    assert str(err.value) == (f"{path}: its backbone is mobilenet_v2 at 32 px {{'alpha': 0.35}}, not mobilenet_v2 "
                              f"at 64 px {{'alpha': 0.35}}; use the same --backbone, --image-size and options")


def test_a_folder_is_not_a_weights_file(bundle):
    path, _ = bundle
    with pytest.raises(WeightsError) as err:
        build_backbone("mobilenet_v2", 32, weights=str(path), options={"alpha": 0.35})
    assert str(err.value) == (f"{path} is a folder, not a weights file; a bundle's backbone is copied with "
                              f"models.bundle.copy_backbone (`devise train --weights BUNDLE` does this)")
