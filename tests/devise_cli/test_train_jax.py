"""`devise train` under KERAS_BACKEND=jax with TensorFlow absent; its bundle predicts under the default backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.devise_cli.test_train_cmd import make_data
from tests.tiny import TINY_TRAIN_ARGS

ROOT = Path(__file__).resolve().parents[2]


def hide_tensorflow(folder: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes ``import tensorflow`` fail as if it were not installed."""
    pkg = folder / "tensorflow"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'tensorflow'\", name='tensorflow')\n")
    return folder


def devise_jax(*args, tmp_path: Path, timeout: int = 600):
    """Run ``devise ARGS`` in a subprocess on the JAX backend, TensorFlow hidden; (exit code, stdout+stderr)."""
    hidden = hide_tensorflow(tmp_path / "no-tensorflow")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(hidden), str(ROOT)]),
           "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = "import sys\nfrom devise_cli.cli import main\nsys.exit(main())\n"
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         timeout=timeout, cwd=tmp_path)
    return res.returncode, res.stdout + res.stderr


def train_on_jax(tmp_path, kv_file, *, finetune_epochs: int, eager: bool):
    pytest.importorskip("jax")
    data = make_data(tmp_path / "d")
    (data / "dog" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "jax-run"
    code, output = devise_jax("train", data, "--vectors", kv_file, "-o", out, *TINY_TRAIN_ARGS,
                              "--val-split", "0.25", "-b", "4", "--bn-images", "0",
                              *(["--run-eagerly"] if eager else []), "--head-epochs", "2", "--finetune-epochs", finetune_epochs, "--decode-workers", "2",
                              "--seed", "1", tmp_path=tmp_path)
    assert code == 0, output
    lines = output.splitlines()
    assert "Traceback" not in output
    assert lines.count(f"skipped {data / 'dog' / 'broken.png'}: not an image PIL can read") == 1
    assert f"trained {out}: 12 training / 4 validation images, 4 classes, 1 unreadable image(s) skipped" in lines
    epochs = ["head epoch 1/2", "head epoch 2/2"] + [f"finetune epoch {e + 1}/{finetune_epochs}"
                                                     for e in range(finetune_epochs)]
    assert [line.split("  ")[0] for line in lines if " epoch " in line and "loss" in line] == epochs
    config = json.loads((out / "config.json").read_text())
    assert config["complete"] is True
    assert config["versions"]["backend"] == "jax" and "jax" in config["versions"]
    assert "tensorflow" not in config["versions"]
    assert config["data"]["failures"] == [{"path": str(data / "dog" / "broken.png"),
                                           "reason": "not an image PIL can read"}]
    return data, out


def predicts_on_tensorflow(data, out):
    """The bundle, trained on JAX, predicts here on the default (TensorFlow) backend."""
    pytest.importorskip("tensorflow")
    from click.testing import CliRunner

    from devise_cli.cli import main

    result = CliRunner().invoke(main, ["predict", str(data / "cat" / "0.png"), str(data / "car" / "1.png"),
                                       "--model", str(out), "--json", "--top", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["path"] for r in rows] == [str(data / "cat" / "0.png"), str(data / "car" / "1.png")], rows
    assert all(len(r["predictions"]) == 2 for r in rows), rows


def test_head_on_jax_without_tensorflow_then_predict_on_tensorflow(tmp_path, tiny_kv_file):
    """Phase 1 (feature cache, PIL in worker processes, head fit on a PyDataset) under JAX, TensorFlow absent."""
    predicts_on_tensorflow(*train_on_jax(tmp_path, tiny_kv_file, finetune_epochs=0, eager=False))


@pytest.mark.slow
def test_finetune_on_jax_without_tensorflow(tmp_path, tiny_kv_file):
    """Phase 2 too: augmented training images and validation from PyDatasets in ``fit`` (eager: XLA:CPU takes
    minutes to compile MobileNetV2's training step; eager JAX about one)."""
    predicts_on_tensorflow(*train_on_jax(tmp_path, tiny_kv_file, finetune_epochs=1, eager=True))
