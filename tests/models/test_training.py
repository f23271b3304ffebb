"""Training end to end (tiny MobileNetV2, 32 px, weights none): phases 0-2, bundle reload, resume."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from models.bundle import load_bundle, prepare_output  # noqa: E402
from models.data.tfdata import decode_images  # noqa: E402
from models.training.callbacks import InterruptAfter  # noqa: E402
from models.training.config import TrainConfig  # noqa: E402
from models.training.train import train_devise  # noqa: E402
from tests.tiny import TINY_TRAIN  # noqa: E402
from wordnet.base.errors import BundleError, DatasetError  # noqa: E402
from wordnet.vocab import Vocabulary  # noqa: E402

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 40, 220), (230, 220, 30)]


def make_dataset(root, per_class=4, bad=True):
    rng = np.random.default_rng(0)
    items = []
    for c, colour in enumerate(COLOURS):
        for i in range(per_class):
            arr = np.clip(np.array(colour) + rng.normal(0, 25, size=(36, 36, 3)), 0, 255).astype(np.uint8)
            path = root / f"class{c}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
            items.append((path, c))
    if bad:
        path = root / "class0" / "broken.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        items.append((path, 0))
    return items


def make_vocab(n=4, dim=8):
    rng = np.random.default_rng(1)
    names = [f"label{i}" for i in range(n)]
    return Vocabulary(wnids=[f"n{i:08d}" for i in range(n)], synsets=[f"{s}.n.01" for s in names],
                      labels=names, definitions=names, vectors=rng.normal(size=(n, dim)))


def tiny_config(**kw):
    return TrainConfig(**{**TINY_TRAIN, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One head-phase run (2 epochs) interrupted after epoch 1, checked, then resumed to the end."""
    root = tmp_path_factory.mktemp("train")
    items = make_dataset(root / "data")
    out = root / "bundle"
    with pytest.raises(KeyboardInterrupt):
        train_devise(items, make_vocab(), out, tiny_config(head_epochs=2), provenance={"data": "generated"},
                     callbacks=[InterruptAfter("head", 1)])
    interrupted = {"history": read_history(out / "history.csv")}
    with pytest.raises(BundleError) as err:
        load_bundle(out)
    interrupted["error"] = str(err.value)
    with pytest.raises(BundleError) as err:
        train_devise(items, make_vocab(), out, tiny_config())
    interrupted["rerun_error"] = str(err.value)
    # resume: settings and vocabulary come from the bundle (a different cfg is ignored)
    result = train_devise(items, make_vocab(), out, tiny_config(head_epochs=9), resume=True)
    return items, result, interrupted


def read_history(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_head_run_writes_a_complete_bundle_and_resumes_without_losing_epochs(trained):
    items, result, interrupted = trained
    out = result.path
    assert [r["epoch"] for r in interrupted["history"]] == ["1"]
    assert interrupted["error"] == (
        f"{out} is incomplete (training was interrupted or is still running); "
        f"finish it with `devise train ... --output {out} --resume`")
    assert interrupted["rerun_error"] == (
        f"{out} already exists; pass --resume to continue that run or --overwrite to replace it")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.json", "history.csv", "model.keras",
                                                     "vocab.h5"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["complete"] is True and cfg["softmax_trained"] is True
    assert cfg["format"] == "devise-bundle" and cfg["provenance"] == {"data": "generated"}
    assert TrainConfig.from_dict(cfg["hyperparameters"]) == tiny_config(head_epochs=2)
    assert cfg["data"]["failed_images"] == 1 and cfg["data"]["failures"][0]["path"].endswith("broken.png")
    assert set(cfg["versions"]) == {"devise", "tensorflow", "keras", "backend", "numpy"}
    assert cfg["versions"]["backend"] == "tensorflow"
    rows = read_history(out / "history.csv")
    assert [(r["phase"], r["epoch"]) for r in rows] == [("head", "1"), ("head", "2")]
    assert all(float(r["loss"]) >= 0 and 0 <= float(r["val_hit_at_1"]) <= 1 for r in rows)
    assert result.train_images == 12 and result.val_images == 4 and result.classes == 4
    assert [p for p, _ in result.failures] == [str(items[-1][0])]
    assert set(result.seconds) == {"head", "finish"}  # batchnorm was done before the interruption
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["done"] == ["batchnorm", "head"]


def test_phases_0_to_2_and_resume_inside_finetune(tmp_path):
    """Also: an explicit recipe is recorded and used by the bundle; several steps per host call."""
    items = make_dataset(tmp_path / "data")
    cfg = tiny_config(pretrain_epochs=1, head_epochs=1, finetune_epochs=2, augmentation="inception",
                      steps_per_execution=2)
    with pytest.raises(KeyboardInterrupt):
        train_devise(items, make_vocab(), tmp_path / "run", cfg, callbacks=[InterruptAfter("finetune", 1)])
    result = train_devise(items, make_vocab(), tmp_path / "run", cfg, resume=True)
    rows = read_history(tmp_path / "run" / "history.csv")
    assert [(r["phase"], r["epoch"]) for r in rows] == [
        ("pretrain", "1"), ("head", "1"), ("finetune", "1"), ("finetune", "2")]
    assert rows[0]["val_accuracy"] != "" and rows[3]["val_hit_at_1"] != ""
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preprocessing"] == {"recipe": "inception", "eval_crop": 0.875}
    bundle = load_bundle(result.path)
    assert bundle.recipe == "inception"
    x = decode_images([p for p, _ in items[:-1]], 32, recipe="inception")[0].astype(np.float32)
    out = bundle.run([p for p, _ in items], softmax=True)
    np.testing.assert_allclose(out.embeddings, np.asarray(result.model.embedder(x, training=False)), atol=5e-4)
    assert out.probs.shape == (16, 4) and bundle.softmax is not None


def test_reloaded_bundle_gives_the_same_embeddings(trained):
    items, result, _ = trained
    bundle = load_bundle(result.path)
    assert bundle.image_size == 32 and bundle.backbone == "mobilenet_v2" and len(bundle.vocab) == 4
    paths = [p for p, _ in items]
    ticks = []
    out = bundle.run(paths, batch_size=5, softmax=True, progress=lambda done, total: ticks.append((done, total)))
    assert out.paths == paths[:-1]
    # the file starts with a PNG signature, so the reason says what broke (issue 7: load_image's messages)
    assert out.failures == [(paths[-1], "damaged PNG file (broken PNG file (chunk b'ken'))")]
    assert ticks[-1] == (17, 17)
    images = decode_images(paths[:-1], 32)[0].astype(np.float32)
    want = np.asarray(result.model.embedder(images, training=False))
    np.testing.assert_allclose(out.embeddings, want, atol=5e-4)
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-4)
    assert out.probs.shape == (16, 4)
    np.testing.assert_allclose(out.probs.sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bundle.model(images[:2])), want[:2], atol=5e-4)
    assert bundle.softmax is not None


def test_steps_per_execution_and_jit_settings(monkeypatch):
    assert tiny_config(run_eagerly=False).steps_per_call() == 1  # no GPU here
    assert tiny_config(steps_per_execution=8).steps_per_call() == 8
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["gpu"] if kind == "GPU" else [])
    assert tiny_config(run_eagerly=False).steps_per_call() == 16
    assert [tiny_config(jit_compile=j).jit() for j in ("auto", "on", "off")] == ["auto", True, False]
    from wordnet.base.errors import DeviseError

    with pytest.raises(DeviseError, match="--augmentation must be one of auto, inception, square"):
        tiny_config(augmentation="cifar").validate()


def test_validate_checks_every_declared_choice_and_range():
    """validate() reads each field's choices and range from its declaration (what the CLI's option types read),
    so a library caller or a stored config.json is held to the same values, in one line naming the option."""
    import dataclasses

    from models.training.config import TrainConfig
    from wordnet.base.errors import DeviseError

    cases = {"loss": ("first", "--loss must be one of sum, sampled, got 'first'"),
             "jit_compile": ("yes", "--jit-compile must be one of auto, on, off, got 'yes'"),
             "image_size": (31, "--image-size must be at least 32, got 31"),
             "margin": (0.0, "--margin must be above 0, got 0.0"),
             "dropout": (1.0, "--dropout must be in [0, 1), got 1.0"),
             "head_epochs": (-1, "--head-epochs must be at least 0, got -1"),
             "batch_size": ("8", "--batch-size must be a number, got '8'")}
    for name, (value, message) in cases.items():
        with pytest.raises(DeviseError) as err:
            tiny_config(**{name: value}).validate()
        assert str(err.value) == message
    bounded = [f.name for f in dataclasses.fields(TrainConfig)
               if f.metadata["choices"] or f.metadata["min"] is not None or f.metadata["max"] is not None]
    for name in bounded:  # every declaration is checked, not only the ones listed above
        meta = TrainConfig.__dataclass_fields__[name].metadata
        bad = "no-such-choice" if meta["choices"] else (meta["min"] - 1 if meta["min"] is not None else meta["max"] + 1)
        with pytest.raises(DeviseError, match=f"^--{name.replace('_', '-')} must be "):
            tiny_config(**{name: bad}).validate()


def test_best_weights_never_keeps_a_non_finite_score(tmp_path):
    from models.training.callbacks import BestWeights
    from tests.tiny import tiny_model

    model = tiny_model()
    best = BestWeights(model, tmp_path / "best.weights.h5", tmp_path / "state.json", "head", "val_hit_at_1")
    best.on_epoch_end(0, {"val_embedding_hit_at_1": float("nan")})
    assert not (tmp_path / "best.weights.h5").exists()
    best.on_epoch_end(1, {"val_embedding_hit_at_1": 0.25})
    assert json.loads((tmp_path / "state.json").read_text())["best"]["epoch"] == 2
    layer = model.get_layer("head_projection")
    layer.kernel.assign(np.full(layer.kernel.shape, np.nan, np.float32))
    best.on_epoch_end(2, {"val_embedding_hit_at_1": 1.0})  # a perfect score from NaN weights: refused
    assert json.loads((tmp_path / "state.json").read_text())["best"]["epoch"] == 2


def test_bad_training_sets(tmp_path):
    items = make_dataset(tmp_path / "data", per_class=2, bad=False)
    one_class = [(p, 0) for p, c in items if c == 0]
    with pytest.raises(DatasetError, match="the training set has 1 class; DeViSE needs at least 2 classes"):
        train_devise(one_class, make_vocab(), tmp_path / "a", tiny_config())
    with pytest.raises(DatasetError, match="the training set has no images"):
        train_devise([], make_vocab(), tmp_path / "b", tiny_config())
    with pytest.raises(DatasetError, match=r"training labels \[7\] are outside the vocabulary of 4 labels"):
        train_devise(items + [(items[0][0], 7)], make_vocab(), tmp_path / "c", tiny_config())
    from wordnet.base.errors import DeviseError

    with pytest.raises(DeviseError, match="all epoch counts are 0: nothing to train"):
        train_devise(items, make_vocab(), tmp_path / "d", tiny_config(head_epochs=0))


def test_prepare_output_never_loses_a_folder(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="is not a devise bundle; refusing to overwrite it"):
        prepare_output(other, overwrite=True)
    with pytest.raises(BundleError, match="holds no run to resume"):
        prepare_output(other, resume=True)
    assert (other / "notes.txt").read_text() == "keep me"
    assert prepare_output(tmp_path / "new" / "bundle").is_dir()


def test_missing_and_corrupt_bundles(tmp_path):
    with pytest.raises(BundleError, match="no such model bundle; train one with `devise train DATA --output"):
        load_bundle(tmp_path / "none")
    (tmp_path / "b").mkdir()
    with pytest.raises(BundleError, match=r"config\.json is missing; .* is not a devise model bundle"):
        load_bundle(tmp_path / "b")
    (tmp_path / "b" / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"config\.json is corrupt \(JSONDecodeError\); retrain the bundle"):
        load_bundle(tmp_path / "b")


def test_corrupt_model_file_names_it(trained, tmp_path):
    import shutil

    _, result, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(result.path, copy, ignore=shutil.ignore_patterns("checkpoints"))
    (copy / "model.keras").write_bytes(b"garbage")
    with pytest.raises(BundleError, match=r"model\.keras is corrupt or not a devise model"):
        load_bundle(copy)
    (copy / "vocab.h5").unlink()
    with pytest.raises(BundleError, match=r"vocab\.h5 is missing; the bundle is damaged, retrain it"):
        load_bundle(copy)


@pytest.mark.slow
def test_mixed_precision_mirrored_strategy_and_sampled_loss(tmp_path):
    items = make_dataset(tmp_path / "data")
    cfg = tiny_config(mixed_precision=True, strategy="mirrored", loss="sampled", finetune_epochs=1, val_split=0,
                      run_eagerly=False)
    result = train_devise(items, make_vocab(), tmp_path / "run", cfg)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    bundle = load_bundle(result.path)
    out = bundle.run([p for p, _ in items])
    assert out.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-3)
    rows = read_history(tmp_path / "run" / "history.csv")
    assert [(r["phase"], r["epoch"]) for r in rows] == [("head", "1"), ("finetune", "1")]
    # no validation, so the fine-tuned weights are final and the softmax head was refit on their features
    assert len(list((result.path / "checkpoints" / "features").glob("train-final-*.h5"))) == 1


def test_bad_input_leaves_no_output_folder(tmp_path):
    items = make_dataset(tmp_path / "data", per_class=1, bad=False)
    with pytest.raises(DatasetError):
        train_devise(items[:1], make_vocab(), tmp_path / "never", tiny_config())
    assert not (tmp_path / "never").exists()


class PoisonAt(keras.callbacks.Callback):
    """Turn one head weight NaN during epoch ``epoch`` of ``phase`` (what an empty replica's BatchNorm did)."""

    def __init__(self, phase, epoch, model_ref):
        super().__init__()
        self.phase, self.epoch, self.model_ref = phase, epoch, model_ref
        self.current_phase, self._epoch = None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current_phase == self.phase and self._epoch == self.epoch:
            layer = self.model.get_layer("head_bn")
            gamma = layer.gamma
            gamma.assign(np.full(gamma.shape, np.nan, np.float32))


def test_non_finite_weights_stop_the_phase_and_keep_the_last_good_checkpoint(tmp_path):
    from models.training.callbacks import nonfinite_weights
    from wordnet.base.errors import DeviseError

    items = make_dataset(tmp_path / "data")
    out = tmp_path / "run"
    with pytest.raises(DeviseError) as err:
        train_devise(items, make_vocab(), out, tiny_config(head_epochs=3), callbacks=[PoisonAt("head", 2, None)])
    assert str(err.value) == (
        "training produced non-finite weights in the head phase (epoch 2): head_bn/gamma; nothing after the last good "
        "checkpoint was kept; --resume retries from the last good checkpoint with the stored settings, or start "
        "again with a lower --head-lr (--overwrite)")
    assert not (out / "model.keras").exists()
    assert [r["epoch"] for r in read_history(out / "history.csv")] == ["1"]  # epoch 2 was never recorded
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["best"]["epoch"] == 1 and "head" not in state["done"]
    backup = json.loads((out / "checkpoints" / "backup-head" / "training_metadata.json").read_text())
    assert backup["epoch"] == 1
    for name in ("best.weights.h5", f"backup-head/{backup['weights']}"):
        assert weights_file_is_finite(out / "checkpoints" / name)
    result = train_devise(items, make_vocab(), out, tiny_config(head_epochs=3), resume=True)  # from epoch 1 on
    assert [r["epoch"] for r in read_history(out / "history.csv")] == ["1", "2", "3"]
    assert nonfinite_weights(result.model) == []


def weights_file_is_finite(path) -> bool:
    import h5py

    arrays = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    floats = [a for a in arrays if np.issubdtype(np.asarray(a).dtype, np.floating)]
    return len(floats) > 10 and all(np.isfinite(a).all() for a in floats)
