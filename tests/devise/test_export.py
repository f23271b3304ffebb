"""devise.export: each exported model, run by its own runtime, against the Keras bundle on the same images.

A tiny bundle (random weights, so embeddings differ from image to image) and a vocabulary
of 12 random labels; each format exports the whole classifier once. The TensorFlow
SavedModel runs through ``tf.saved_model.load``, TFLite through the TFLite interpreter,
ONNX through onnxruntime; embeddings must agree with the bundle's to 1e-4 and the top-5
labels must be the same, in the same order.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.tiny import png, save_bundle, tiny_model

COLOURS = ["red", "navy", "olive", "orchid"]
TOL = 1e-4


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import keras

    from wordnet.vocab import Vocabulary

    keras.utils.set_random_seed(7)
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(1)
    vocab = Vocabulary(wnids=[f"n{i:08d}" for i in range(12)], synsets=[f"l{i}.n.01" for i in range(12)],
                       labels=[f"label {i}" for i in range(12)], definitions=[""] * 12,
                       vectors=rng.normal(size=(12, 8)))
    bundle = save_bundle(tiny_model(8, 12), vocab, root / "bundle")
    vocab.save(root / "labels.h5")
    Vocabulary(wnids=["n1", "n2"], synsets=["a.n.01", "b.n.01"], labels=["a", "b"], definitions=["", ""],
               vectors=np.eye(2, 4)).save(root / "dim4.h5")
    paths = [png(root / "imgs" / f"{c}.png", c, size=(48, 40)) for c in COLOURS]
    from models.bundle import load_bundle
    from models.data.images import load_image

    loaded = load_bundle(bundle)
    ref = loaded.run(paths, batch_size=4)
    top = vocab.top_k(ref.embeddings, 5)[0]
    pixels = np.stack([load_image(p, loaded.image_size) for p in paths]).astype(np.float32)
    return {"root": root, "bundle": bundle, "vocab": vocab, "emb": ref.embeddings, "top": top, "x": pixels}


def export(env, fmt, *extra):
    out = env["root"] / f"out-{fmt}-{len(extra)}"
    res = CliRunner().invoke(main, ["export", str(env["bundle"]), "--format", fmt, "-o", str(out), *map(str, extra)])
    assert res.exit_code == 0, res.output
    return out, res.stdout


def run_savedmodel(out, x):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out / "saved_model"))  # kept alive while serving: it owns the variables
    return {k: np.asarray(v) for k, v in loaded.serve(tf.constant(x)).items()}


def run_tflite(out, x):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated" (ai_edge_litert is its successor)
        interpreter = tf.lite.Interpreter(model_path=str(out / "model.tflite"))
    runner = interpreter.get_signature_runner()
    return {k: np.asarray(v) for k, v in runner(image=x).items()}


def run_onnx(out, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))


RUNNERS = {"savedmodel": run_savedmodel, "tflite": run_tflite, "onnx": run_onnx}
# converting to TFLite and ONNX takes 15-35 s each on 2 shared cores: those two run with -m slow
FORMATS = ["savedmodel", pytest.param("tflite", marks=pytest.mark.slow), pytest.param("onnx", marks=pytest.mark.slow)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_classifier_matches_the_bundle(env, fmt):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
    out, stdout = export(env, fmt, "--vocab", env["root"] / "labels.h5")
    artefact = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}[fmt]
    assert stdout == f"wrote {out / artefact} ({fmt}, image -> top-5 of 12 labels; input 32 px RGB 0-255)\n"
    got = RUNNERS[fmt](out, env["x"])
    assert sorted(got) == ["embedding", "indices", "scores"]
    assert np.abs(got["embedding"] - env["emb"]).max() <= TOL
    np.testing.assert_array_equal(got["indices"], env["top"])
    expected = np.take_along_axis(env["emb"] @ env["vocab"].vectors.T, env["top"], axis=1)
    assert np.abs(got["scores"] - expected).max() <= TOL
    labels = json.loads((out / "labels.json").read_text())
    assert [r["label"] for r in labels] == env["vocab"].labels and labels[3]["index"] == 3
    info = json.loads((out / "export.json").read_text())
    assert (info["format"], info["input"]["shape"], info["labels"], info["top"]) == (fmt, [None, 32, 32, 3], 12, 5)


@pytest.mark.slow
def test_exported_embedder_matches_the_bundle(env):
    out, stdout = export(env, "savedmodel")
    assert stdout.endswith("(savedmodel, image -> embedding; input 32 px RGB 0-255)\n")
    got = run_savedmodel(out, env["x"])
    assert list(got) == ["embedding"] and np.abs(got["embedding"] - env["emb"]).max() <= TOL
    assert not (out / "labels.json").exists()


def test_export_errors_are_one_line(env, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()

    def fails(*args):
        res = CliRunner().invoke(main, ["export", str(env["bundle"]), *map(str, args)])
        return res.exit_code, res.output

    assert fails("--format", "keras", "-o", tmp_path / "x") == (
        1, "Error: unknown export format 'keras'; choose savedmodel, tflite, onnx\n")
    assert fails("--format", "savedmodel", "-o", out) == (
        1, f"Error: {out} already exists; choose another --output or pass --overwrite\n")
    dim4 = env["root"] / "dim4.h5"
    assert fails("--format", "savedmodel", "-o", tmp_path / "y", "--vocab", dim4) == (
        1, f"Error: {dim4} has 4-d vectors but model {env['bundle']} is 8-d; "
           f"build the vocabulary with the same word vectors\n")
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob(".y.*"))


def crop_as_export_json_says(path, info):
    """The caller's preprocessing, from export.json alone (PIL, as README's onnxruntime example)."""
    from PIL import Image

    size, crop = info["input"]["shape"][1], info["input"]["crop"]
    img = Image.open(path).convert("RGB")
    side = min(img.size) if crop == 1 else max(1, round(min(img.size) * crop))
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return np.asarray(img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR), np.float32)


def test_an_inception_bundle_exports_the_crop_predict_uses(env, tmp_path):
    """Bundles trained with the photo recipe are evaluated on the centre 87.5 %: export.json must say
    so, and the export fed that way must give predict's embeddings (not the whole square's)."""
    import shutil

    from models.bundle import load_bundle, write_config

    bundle = tmp_path / "photo-bundle"
    shutil.copytree(env["bundle"], bundle)
    config = json.loads((bundle / "config.json").read_text())
    write_config(bundle, {**config, "preprocessing": {"recipe": "inception", "eval_crop": 0.875}})
    paths = [png(tmp_path / f"{c}.png", c, size=(64, 48)) for c in COLOURS]
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :16], img[:, 48:] = 255, 90  # the borders differ from the centre: a different crop embeds differently
    from PIL import Image

    Image.fromarray(img).save(paths[0])
    ref = load_bundle(bundle).run(paths, batch_size=4).embeddings
    out = tmp_path / "exp"
    res = CliRunner().invoke(main, ["export", str(bundle), "--format", "savedmodel", "-o", str(out)])
    assert res.exit_code == 0, res.output
    info = json.loads((out / "export.json").read_text())
    assert info["input"]["crop"] == 0.875
    x = np.stack([crop_as_export_json_says(p, info) for p in paths])
    got = run_savedmodel(out, x)["embedding"]
    assert np.abs(got - ref).max() <= TOL


def test_a_single_file_format_given_a_file_name_writes_that_file(tmp_path):
    from devise.deployment import side_file, single_file

    assert single_file(tmp_path / "model.tflite", "tflite") and single_file(tmp_path / "pets.onnx", "onnx")
    assert not single_file(tmp_path / "export" / "pets", "tflite")
    assert not single_file(tmp_path / "model.tflite", "savedmodel")
    assert side_file(tmp_path / "pets.onnx", "labels.json") == tmp_path / "pets.labels.json"


@pytest.mark.slow
def test_export_to_a_tflite_file(env, tmp_path):
    target = tmp_path / "pets.tflite"
    res = CliRunner().invoke(main, ["export", str(env["bundle"]), "--format", "tflite", "-o", str(target),
                                    "--vocab", str(env["root"] / "labels.h5")])
    assert res.exit_code == 0, res.output
    assert target.is_file() and res.stdout.startswith(f"wrote {target} (tflite")
    assert json.loads((tmp_path / "pets.export.json").read_text())["model"] == "pets.tflite"
    assert len(json.loads((tmp_path / "pets.labels.json").read_text())) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets.export.json", "pets.labels.json", "pets.tflite"]
