"""DeViSE model: preprocessing, config/save round trips, backbones, weights errors, BatchNorm recomputation."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from models.net.backbones import Preprocess, WeightsError, build_backbone  # noqa: E402
from models.net.devise_model import DeviseModel, L2Normalize  # noqa: E402
from models.training.batchnorm import batchnorm_layers, recompute_batchnorm_statistics  # noqa: E402
from tests.tiny import TINY_MODEL  # noqa: E402
from wordnet.base.errors import BundleError  # noqa: E402

TINY = {**TINY_MODEL, "embedding_dim": 8, "num_classes": 3, "hidden_units": 16}


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return DeviseModel(**TINY)


def _images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("mode,app", [("caffe", "resnet50"), ("tf", "mobilenet_v2"), ("torch", "densenet")])
def test_preprocess_matches_keras_applications(mode, app):
    import importlib

    x = _images(2)
    want = importlib.import_module(f"keras.applications.{app}").preprocess_input(x.copy())
    got = np.asarray(Preprocess(mode)(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert Preprocess.from_config(Preprocess(mode).get_config()).mode == mode


def test_l2_normalize_layer():
    x = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)
    np.testing.assert_allclose(np.asarray(L2Normalize()(x)), [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)
    assert L2Normalize.from_config(L2Normalize(epsilon=1e-6).get_config()).epsilon == 1e-6


def test_structure_and_views(tiny_model):
    m = tiny_model
    names = [layer.name for layer in m.layers]
    assert names[:4] == ["image", "preprocess", "backbone", "head_dropout"]
    assert ["head_pool", "head_hidden", "head_bn", "head_projection", "embedding"] == [
        n for n in names if n.startswith("head_p") or n in ("head_hidden", "head_bn", "embedding")]
    assert m.get_layer("head_dropout").rate == 0.3
    assert m.get_layer("head_hidden").units == 16
    x = _images()
    out = m(x, training=False)
    assert tuple(out["embedding"].shape) == (4, 8) and tuple(out["probs"].shape) == (4, 3)
    np.testing.assert_allclose(np.asarray(out["probs"]).sum(1), 1.0, rtol=1e-5)
    emb = np.asarray(m.embedder(x, training=False))
    np.testing.assert_allclose(emb, np.asarray(out["embedding"]), atol=1e-6)
    feats = np.asarray(m.feature_extractor(x, training=False))
    assert feats.shape == (4, m.feature_dim)
    head = m.head_on_features()
    np.testing.assert_allclose(np.asarray(head(feats, training=False)["embedding"]), emb, atol=1e-5)


def test_config_and_keras_file_round_trip(tiny_model, tmp_path):
    m = tiny_model
    cfg = m.get_config()
    assert cfg["weights"] is None and cfg["backbone_options"] == {"alpha": 0.35}
    m.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert isinstance(loaded, DeviseModel) and loaded.get_config() == cfg
    x = _images(3, seed=1)
    np.testing.assert_allclose(np.asarray(loaded(x)["embedding"]), np.asarray(m(x)["embedding"]), atol=1e-6)


def test_resnet50_builds_and_runs_at_32px():
    m = DeviseModel(backbone="resnet50", embedding_dim=5, num_classes=2, image_size=32, hidden_units=8)
    assert m.feature_dim == 2048
    assert m.get_layer("preprocess").mode == "caffe"
    out = m(np.full((1, 32, 32, 3), 128, np.uint8), training=False)
    assert tuple(out["embedding"].shape) == (1, 5)


def test_unknown_backbone_and_option():
    with pytest.raises(BundleError, match="unknown backbone 'vgg99'; choose one of: convnext_tiny"):
        build_backbone("vgg99", 32)
    with pytest.raises(BundleError, match="backbone resnet50 takes no option alpha"):
        build_backbone("resnet50", 32, options={"alpha": 0.5})


def test_weights_files_and_errors(tiny_model, tmp_path, monkeypatch):
    opts = {"alpha": 0.35}
    with pytest.raises(WeightsError, match=r"weights file .*missing\.h5 does not exist"):
        build_backbone("mobilenet_v2", 32, weights=str(tmp_path / "missing.h5"), options=opts)
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(WeightsError, match="junk.weights.h5: cannot load these weights into mobilenet_v2"):
        build_backbone("mobilenet_v2", 32, weights=str(junk), options=opts)
    # a local weights file (here: the tiny model's backbone) is loaded as is
    tiny_model.backbone.save_weights(tmp_path / "bb.weights.h5")
    b = build_backbone("mobilenet_v2", 32, weights=str(tmp_path / "bb.weights.h5"), options=opts)
    for wa, wb in zip(tiny_model.backbone.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())

    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsError) as err:
        build_backbone("mobilenet_v2", 32, weights="imagenet", options=opts)
    assert str(err.value) == (
        "could not download ImageNet weights for mobilenet_v2 (Exception); pass --weights PATH to a local "
        "weights file, or --weights none to start from scratch")


def test_batchnorm_recomputation_moves_statistics_to_the_data():
    """The first BN after the stem conv must end up with the data's per-channel mean and variance."""
    keras.utils.set_random_seed(1)
    m = DeviseModel(**TINY)
    net = m.backbone
    layers = batchnorm_layers(net)
    assert len(layers) > 10
    first = layers[0]
    np.testing.assert_allclose(first.moving_mean.numpy(), 0.0)  # stale: fresh initialisation
    rng = np.random.default_rng(0)
    images = np.clip(rng.normal(180, 30, size=(48, 32, 32, 3)), 0, 255).astype(np.uint8)
    kernel_before = net.layers[1].weights[0].numpy().copy()
    momentum_before = first.momentum
    m.backbone.trainable = False  # frozen, as in phase 1: recomputation must still work
    batches = recompute_batchnorm_statistics(m.feature_extractor, images, batch_size=16)
    assert batches == 3
    # reference: the stem conv's output statistics, averaged over the same 3 batches
    conv_in = keras.Model(net.inputs, first.input)
    pre = np.asarray(m.get_layer("preprocess")(images.astype(np.float32)))
    acts = [np.asarray(conv_in(pre[i:i + 16], training=False)) for i in range(0, 48, 16)]
    want_mean = np.mean([a.mean(axis=(0, 1, 2)) for a in acts], axis=0)
    want_var = np.mean([a.var(axis=(0, 1, 2)) for a in acts], axis=0)
    np.testing.assert_allclose(first.moving_mean.numpy(), want_mean, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(first.moving_variance.numpy(), want_var, rtol=1e-3, atol=1e-4)
    assert np.abs(want_mean).max() > 0.05  # the data really differ from the initial statistics
    # nothing else changed, flags restored
    np.testing.assert_array_equal(net.layers[1].weights[0].numpy(), kernel_before)
    assert first.momentum == momentum_before and not net.trainable and not first.trainable
    # with recomputed statistics the deep features are no longer vanishingly small
    feats = np.asarray(m.feature_extractor(images[:8].astype(np.float32), training=False))
    assert np.abs(feats).mean() > 1e-3
