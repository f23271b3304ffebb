"""`devise train` through Click: bad input (one-line errors, nothing lost) and a tiny real run."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from devise_cli.cli import main

COLOURS = {"dog": (220, 30, 30), "cat": (30, 200, 40), "car": (40, 40, 220), "guitar": (230, 220, 30)}


def make_data(root, classes=("dog", "cat", "car", "guitar"), per_class=4):
    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(per_class):
            arr = np.clip(np.array(COLOURS.get(name, (128, 128, 128))) + rng.normal(0, 25, (36, 36, 3)), 0, 255)
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr.astype(np.uint8)).save(path)
    return root


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_unknown_class_names_are_listed(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", classes=("dog", "dgo", "cat"))
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "out")
    assert code == 1
    assert out == ("Error: unknown label: 'dgo' (did you mean: dago, go, do?). Use a wnid (n02084071), a synset "
                   "name (dog.n.01) or noun words, or map it in an overrides CSV (label,synset)\n")
    assert not (tmp_path / "out").exists()


def test_one_class_and_empty_datasets(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", classes=("dog",))
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "out")
    assert (code, out) == (1, f"Error: {data} has only one class (dog); DeViSE needs at least 2 classes\n")
    (tmp_path / "empty").mkdir()
    code, out = run("train", tmp_path / "empty", "--vectors", tiny_kv_file, "-o", tmp_path / "out")
    assert code == 1 and out.startswith(f"Error: {tmp_path / 'empty'}: no images found")


def test_classes_without_vectors(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", classes=("dog", "cat", "zebra"))
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "out")
    assert code == 1
    assert out.startswith("Error: 1 of 3 labels have no vector in tiny.kv: n02391049 (zebra.n.01)")


def test_vocabulary_missing_a_class_and_wrong_dimension(tmp_path, tiny_kv, tiny_kv_file):
    from wordnet.labels import resolve_labels
    from wordnet.reader import load_wordnet
    from wordnet.vocab_build import build_vocabulary

    wn = load_wordnet()
    vocab, _ = build_vocabulary(resolve_labels(wn, ["dog", "cat", "car"]), tiny_kv, vector_source=tiny_kv_file)
    vocab.save(tmp_path / "v.h5")
    data = make_data(tmp_path / "d")
    code, out = run("train", data, "--vocab", tmp_path / "v.h5", "-o", tmp_path / "out")
    assert (code, out) == (1, f"Error: 1 class(es) are not in the vocabulary {tmp_path / 'v.h5'}: guitar "
                              f"(n03467517); build a vocabulary with these labels or pass --vectors\n")
    data3 = make_data(tmp_path / "d3", classes=("dog", "cat", "car"))
    code, out = run("train", data3, "--vocab", tmp_path / "v.h5", "--embedding-dim", 300, "-o", tmp_path / "out")
    assert (code, out) == (1, f"Error: {tmp_path / 'v.h5'} has 16-d vectors but --embedding-dim is 300-d; "
                              f"build the vocabulary with the same word vectors\n")
    code, out = run("train", data3, "--vocab", tmp_path / "v.h5", "--vectors", tiny_kv_file)
    assert code == 2 and "give --vocab or --vectors, not both" in out


def test_existing_output_is_never_overwritten_silently(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", per_class=1)
    out_dir = tmp_path / "models" / "x"
    out_dir.mkdir(parents=True)
    (out_dir / "keep.txt").write_text("mine")
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", out_dir)
    assert (code, out) == (1, f"Error: {out_dir} already exists; pass --resume to continue that run or "
                              f"--overwrite to replace it\n")
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", out_dir, "--overwrite")
    assert (code, out) == (1, f"Error: {out_dir} is not a devise bundle; refusing to overwrite it, "
                              f"choose another --output\n")
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", out_dir, "--resume")
    assert (code, out) == (1, f"Error: {out_dir} holds no run to resume (no config.json); drop --resume "
                              f"to start one\n")
    assert (out_dir / "keep.txt").read_text() == "mine"


def test_config_file_errors(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", per_class=1)
    bad = tmp_path / "bad.toml"
    bad.write_text('head_lr = 0.5\nlearning_rat = 3\n')
    code, out = run("train", data, "--config", bad)
    assert code == 2 and f"{bad}: unknown setting(s) learning_rat" in out
    broken = tmp_path / "broken.toml"
    broken.write_text("head_lr = = 1\n")
    code, out = run("train", data, "--config", broken)
    assert code == 2 and "cannot parse config file" in out


def test_help_has_an_example():
    code, out = run("train", "--help")
    assert code == 0 and "devise train photos/ --vectors vectors.kv --output runs/pets" in out
    assert "-b, --batch-size" in out and "-e, --epochs" in out


def test_tiny_run_end_to_end_with_a_config_file(tmp_path, tiny_kv_file):
    pytest.importorskip("tensorflow")
    data = make_data(tmp_path / "d")
    (data / "dog" / "broken.png").write_bytes(b"not an image")
    cfg = tmp_path / "train.toml"
    cfg.write_text('[train]\nbackbone = "mobilenet_v2"\nalpha = 0.35\nweights = "none"\nimage-size = 32\n'
                   'hidden_units = 16\nval_split = 0.25\nbn_images = 50\nrun_eagerly = true\nhead_epochs = 5\n')
    out_dir = tmp_path / "models" / "tiny"
    code, out = run("train", data, "--vectors", tiny_kv_file, "--config", cfg, "-o", out_dir,
                    "-b", 8, "-e", 1, "--finetune-epochs", 0, "--seed", 1)
    assert code == 0, out
    lines = out.splitlines()
    assert f"trained {out_dir}: 12 training / 4 validation images, 4 classes, 1 unreadable image(s) skipped" in lines
    assert f"skipped {data / 'dog' / 'broken.png'}: not an image PIL can read" in lines
    assert any(line.startswith("head epoch 1/1  loss ") and "val hit@1" in line for line in lines)
    config = json.loads((out_dir / "config.json").read_text())
    hp = config["hyperparameters"]
    # -e 1 wins over the config file's head_epochs = 5 (explicit options beat the file)
    assert (hp["head_epochs"], hp["finetune_epochs"], hp["alpha"], hp["image_size"]) == (1, 0, 0.35, 32)
    assert (hp["batch_size"], hp["seed"], hp["val_split"]) == (8, 1, 0.25)
    assert config["provenance"]["classes"]["dog"] == "n02084071 dog.n.01"
    assert config["provenance"]["vectors"] == str(tiny_kv_file.resolve())
    from models.bundle import load_bundle

    bundle = load_bundle(out_dir)
    assert bundle.vocab.synsets == ["dog.n.01", "cat.n.01", "car.n.01", "guitar.n.01"]  # sorted by wnid
    emb = bundle.run([data / "cat" / "0.png"]).embeddings
    assert emb.shape == (1, 16)

    # a resumed run must see the classes it started with, or its label rows would shift
    import shutil

    shutil.rmtree(data / "guitar")
    code, out = run("train", data, "-o", out_dir, "--resume")
    assert (code, out) == (1, f"Error: {data} no longer has the classes of the interrupted run (3 now, 4 in "
                              f"{out_dir / 'vocab.h5'}); restore the data or start again with --overwrite\n")


def test_options_come_from_the_training_config():
    """Every TrainConfig field is an option with the field's default, choices and range; nothing is copied."""
    import dataclasses

    from devise_cli.train_cmd import train
    from models.net.catalog import LOSS_VARIANTS, backbone_names
    from models.training.config import TrainConfig, cli_fields

    options = {p.name: p for p in train.params}
    fields = cli_fields()
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {f.name for f in fields} == {"top_k"}
    for f in fields:
        opt = options[f.name]
        assert opt.default == f.default, f.name
        assert opt.help == f.metadata["help"], f.name
        if f.metadata["choices"]:
            assert tuple(opt.type.choices) == f.metadata["choices"], f.name
        if f.metadata["min"] is not None:
            assert (opt.type.min, opt.type.min_open) == (f.metadata["min"], f.metadata["min_open"]), f.name
        if f.metadata["max"] is not None:
            assert (opt.type.max, opt.type.max_open) == (f.metadata["max"], f.metadata["max_open"]), f.name
    assert tuple(options["backbone"].type.choices) == tuple(backbone_names())
    assert tuple(options["loss"].type.choices) == LOSS_VARIANTS
    assert tuple(options["strategy"].type.choices) == ("auto", "mirrored", "multi-worker", "one")
    assert (options["margin"].type.min, options["margin"].type.min_open) == (0, True)
    assert options["batch_size"].opts == ["-b", "--batch-size"]
    assert options["augment"].secondary_opts == ["--no-augment"]
    assert options["seed"].envvar == "DEVISE_SEED"


def test_default_output_is_under_runs_and_records_every_setting(tmp_path, tiny_kv_file, monkeypatch):
    """Without --output the bundle goes to runs/<DATA name> in the working directory, never models/;
    its config.json's hyperparameters are exactly TrainConfig's fields (what --resume reads back)."""
    import dataclasses

    from models.training.config import TrainConfig

    data = make_data(tmp_path / "pets", classes=("dog", "cat"), per_class=2)
    monkeypatch.chdir(tmp_path)
    code, out = run("train", data, "--vectors", tiny_kv_file, "--backbone", "mobilenet_v2", "--alpha", 0.35,
                    "--weights", "none", "--image-size", 32, "--hidden-units", 8, "--head-epochs", 1,
                    "--finetune-epochs", 0, "--bn-images", 0, "--val-split", 0, "--run-eagerly")
    assert code == 0, out
    assert (tmp_path / "runs" / "pets" / "model.keras").is_file()
    assert "trained runs/pets: 4 training / 0 validation images, 2 classes" in out.splitlines()
    hp = json.loads((tmp_path / "runs" / "pets" / "config.json").read_text())["hyperparameters"]
    assert list(hp) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert TrainConfig.from_dict(hp) == TrainConfig(**hp) and hp["image_size"] == 32


def test_multi_worker_is_refused_with_one_line_before_anything_is_written(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", per_class=1)
    code, out = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "out", "--strategy", "multi-worker")
    assert (code, out) == (1, "Error: --strategy multi-worker does not work with this Keras: every worker crashes "
                              "in its first fit (keras-team/keras#20585); train on several hosts with the JAX "
                              "backend instead (KERAS_BACKEND=jax; see the README, \"Training on ImageNet with "
                              "GPUs\")\n")
    assert not (tmp_path / "out").exists()


def test_several_process_settings_are_checked_with_one_line(tmp_path, tiny_kv_file):
    data = make_data(tmp_path / "d", per_class=1)
    base = ("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "out")
    cases = [
        (("--num-processes", 2), "Error: --num-processes above 1 needs --coordinator HOST:PORT (process 0's "
                                 "address, the same on every process)\n"),
        (("--num-processes", 2, "--process-id", 2, "--coordinator", "127.0.0.1:1"),
         "Error: --process-id must be 0 to 1 (--num-processes 2), got 2\n"),
        (("--num-processes", 2, "--coordinator", "127.0.0.1:1", "-b", 5),
         "Error: --batch-size 5 must be a multiple of --num-processes 2\n"),
        (("--num-processes", 2, "--coordinator", "127.0.0.1:1"),  # this test process runs TensorFlow
         "Error: --num-processes 2 needs the JAX backend (KERAS_BACKEND=jax), not tensorflow\n"),
    ]
    for extra, expected in cases:
        assert run(*base, *extra) == (1, expected), extra
        assert not (tmp_path / "out").exists()
    code, out = run(*base, "--num-processes", 2, "--coordinator", "127.0.0.1:1", "--resume")
    assert (code, out) == (1, f"Error: {tmp_path / 'out'} holds no run to resume (no config.json); drop --resume to "
                              f"start one\n")  # process 0 checks its folder before it joins the others
