"""`devise pretrain` through Click: a tiny real run, its output, and one-line errors."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from devise_cli.cli import main

TINY = ("--alpha", "0.35", "--image-size", "32", "-b", "4", "--bn-images", "8", "--run-eagerly", "--style",
        "recolour,outline")


def make_pool(root, per_class=3):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("arrow-up", "calendar", "wallet")):
        for i in range(per_class):
            arr = np.full((32, 32, 3), 255, np.uint8)
            arr[4 + 8 * c:12 + 8 * c, 4:28] = rng.integers(0, 100)
            path = root / "images" / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
    return root / "images"


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_tiny_pretraining_then_training_from_it(tmp_path, tiny_kv_file):
    pool = make_pool(tmp_path / "pool")
    out = tmp_path / "backbone"
    code, output = run("pretrain", pool, "-o", out, "--epochs", "1", "--val-split", "0", *TINY)
    assert code == 0, output
    info = json.loads((out / "backbone.json").read_text())
    lines = output.splitlines()
    assert lines[-3] == f"pre-trained {out}: 9 training / 0 validation images, 3 classes"
    assert lines[-2].startswith("train accuracy ") and lines[-2].endswith("% after 1 epoch(s)")
    assert lines[-1] == (f"backbone mobilenet_v2 {{'alpha': 0.35}} at 32 px, sha256 {info['sha256'][:16]}; "
                         f"use it with --weights {out}")
    assert info["class_names"] == ["arrow-up", "calendar", "wallet"]
    assert info["pool"]["path"] == str(pool.resolve())
    # a second run into the same folder is refused; --resume of a finished run only rewrites its files
    code, output = run("pretrain", pool, "-o", out, "--epochs", "1", *TINY)
    assert (code, output) == (1, f"Error: {out} already exists; pass --resume to continue that run or "
                                 "--overwrite to replace it\n")
    # the backbone starts a DeViSE training (classes dog/cat: WordNet nouns this time)
    data = tmp_path / "data"
    for name, colour in (("dog", (200, 40, 40)), ("cat", (40, 200, 40))):
        for i in range(3):
            (data / name).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), colour).save(data / name / f"{i}.png")
    code, output = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "bundle", "--backbone",
                       "mobilenet_v2", "--alpha", "0.35", "--weights", out, "--image-size", "32",
                       "--hidden-units", "8", "--head-epochs", "1", "--finetune-epochs", "0", "--bn-images", "4",
                       "--val-split", "0", "--run-eagerly")
    assert code == 0, output
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert config["hyperparameters"]["weights"] == str(out)
    code, output = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "b2", "--backbone",
                       "mobilenet_v2", "--alpha", "0.5", "--weights", out, "--image-size", "32", "-e", "1")
    assert (code, output) == (1, f"Error: {out}: these are weights for mobilenet_v2 {{'alpha': 0.35}}, not "
                                 "mobilenet_v2 {'alpha': 0.5}; use --backbone mobilenet_v2 --alpha 0.35\n")
    code, output = run("train", data, "--vectors", tiny_kv_file, "-o", tmp_path / "b3", "--weights", "devise-pool-99")
    assert code == 1 and output.startswith("Error: no backbone weights named 'devise-pool-99' (shipped: ")


def test_bad_settings_are_one_line_errors(tmp_path):
    pool = make_pool(tmp_path / "pool")
    code, output = run("pretrain", pool, "-o", tmp_path / "o", "--style", "grey,sepia")
    assert (code, output) == (1, "Error: --style: unknown style op(s) sepia; choose from crop, colour, recolour, "
                                 "grey, blur, outline, all or none\n")
    code, output = run("pretrain", pool, "-o", tmp_path / "o", "--resume")
    assert (code, output) == (1, f"Error: {tmp_path / 'o'} holds no run to resume (no config.json); drop --resume "
                                 "to start one\n")
    code, output = run("pretrain", tmp_path / "missing", "-o", tmp_path / "o")
    assert code == 2 and "does not exist" in output
