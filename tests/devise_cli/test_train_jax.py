"""`devise train` under KERAS_BACKEND=jax with TensorFlow absent; its bundle predicts under the default backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
                              *(["--run-eagerly"] if eager else []), "--head-epochs", "2",
                              "--finetune-epochs", finetune_epochs, "--decode-workers", "2",
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


def test_style_ops_refused_on_the_pillow_input(tmp_path, tiny_kv_file):
    pytest.importorskip("jax")
    data = make_data(tmp_path / "d")
    out = tmp_path / "styled"
    code, output = devise_jax("train", data, "--vectors", tiny_kv_file, "-o", out, *TINY_TRAIN_ARGS,
                              "--style", "grey", tmp_path=tmp_path)
    assert (code, output.splitlines()[-1]) == (1, "Error: --style grey needs the TensorFlow input pipeline (its ops "
                                               "are TensorFlow ops) and this run uses the Pillow one; drop --style or "
                                               "train with KERAS_BACKEND=tensorflow")
    assert "Traceback" not in output and not (out / "config.json").exists()


@pytest.mark.slow
def test_finetune_on_jax_without_tensorflow(tmp_path, tiny_kv_file):
    """Phase 2 too: augmented training images and validation from PyDatasets in ``fit`` (eager: XLA:CPU takes
    minutes to compile MobileNetV2's training step; eager JAX about one)."""
    predicts_on_tensorflow(*train_on_jax(tmp_path, tiny_kv_file, finetune_epochs=1, eager=True))


ORDER_SCRIPT = '''
import json, sys
import numpy as np
import keras
from logged import Logged
from models.data.pydataset import EpochSync, build_before_fit
from models.data.failures import FailureLog

paths, log_file, fix = sys.argv[1].split(","), sys.argv[2], sys.argv[3] == "fix"
ds = Logged(paths, np.arange(len(paths)) % 2, size=32, batch_size=4, log=FailureLog(), seed=5, workers=2,
            log_file=log_file)
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                          keras.layers.Dense(2)])
model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
callbacks = [EpochSync(ds)]
if fix:
    build_before_fit(model, ds)
model.fit(ds, epochs=2, verbose=0, shuffle=False, callbacks=callbacks)
'''

LOGGED = '''
from models.data.pydataset import TrainingImages


class Logged(TrainingImages):
    """Writes (epoch, batch) of every batch it makes, from whichever worker process makes it."""

    def __init__(self, *args, log_file, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_file = log_file

    def __getitem__(self, i):
        with open(self.log_file, "a") as fh:
            fh.write(f"{self.epoch} {i}\\n")
        return super().__getitem__(i)
'''


def test_pydataset_epochs_follow_fit_with_worker_processes(tmp_path):
    """fit builds before epoch 0 from a pulled batch; without build_before_fit that batch and its prefetched
    neighbours are made twice (and served in epoch 0); with it, each epoch makes exactly its own batches."""
    pytest.importorskip("jax")
    from PIL import Image

    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (40, 30), (20 * i, 0, 0)).save(paths[-1])
    (tmp_path / "logged.py").write_text(LOGGED)
    hidden = hide_tensorflow(tmp_path / "no-tensorflow")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(hidden), str(tmp_path), str(ROOT)])}
    made = {}
    for mode in ("fix", "control"):
        log_file = tmp_path / f"{mode}.txt"
        res = subprocess.run([sys.executable, "-c", ORDER_SCRIPT, ",".join(paths), str(log_file), mode],
                             capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        made[mode] = sorted(tuple(map(int, line.split())) for line in log_file.read_text().splitlines())
    assert made["fix"] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert len(made["control"]) > 6  # the trap the fix avoids: batches made before epoch 0 are served in it


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def final_weights(bundle):
    import keras

    import models.net.devise_model  # noqa: F401 - registers DeviseModel for loading

    return [w.numpy() for w in keras.saving.load_model(bundle / "model.keras", compile=False).weights]


@pytest.mark.slow
def test_two_processes_on_localhost_match_one(tmp_path, tiny_kv_file):
    """docs/training.md's launch of 2 processes (JAX, TensorFlow absent): phase 1 with the BatchNorm recomputation,
    the same bundle as one process (dropout 0: JAX draws other dropout masks for a sharded batch). ~3 min."""
    pytest.importorskip("jax")
    data = make_data(tmp_path / "d")
    args = ["train", data, "--vectors", tiny_kv_file, *TINY_TRAIN_ARGS, "--val-split", "0.25", "-b", "4",
            "--bn-images", "50", "--head-epochs", "2", "--finetune-epochs", "0", "--dropout", "0",
            "--decode-workers", "1", "--seed", "1"]
    code, output = devise_jax(*args, "-o", tmp_path / "one", tmp_path=tmp_path)
    assert code == 0, output
    hidden = tmp_path / "no-tensorflow"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(hidden), str(ROOT)]),
           "JAX_PLATFORMS": "cpu", "DEVISE_COORDINATOR": f"127.0.0.1:{free_port()}", "DEVISE_NUM_PROCESSES": "2"}
    code = "import sys\nfrom devise_cli.cli import main\nsys.exit(main())\n"
    procs = [subprocess.Popen([sys.executable, "-c", code, *map(str, args), "-o", tmp_path / "two"],
                              env={**env, "DEVISE_PROCESS_ID": str(i)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=tmp_path) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    epochs = [[line.rsplit("  (", 1)[0] for line in out.splitlines() if line.startswith("head epoch")]
              for out in outputs]  # without the seconds
    assert epochs[0] == epochs[1] and len(epochs[0]) == 2, outputs
    assert f"trained {tmp_path / 'two'}: 12 training / 4 validation images, 4 classes" in outputs[0]
    assert f"trained {tmp_path / 'two'}:" not in outputs[1]  # process 1 wrote to a temporary folder
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert len(one) == len(two)
    diff = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(one, two))
    assert diff < 1e-5, diff


CLI = "import sys\nfrom devise_cli.cli import main\nsys.exit(main())\n"

# process 1 of the interrupted run: SIGKILLs itself before batch 1 of head epoch 2 (after process 0 saved epoch 1)
KILLED_IN_HEAD_EPOCH_2 = '''
import os, signal, sys
import keras
import models.training.phases as phases


class KillMyself(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == (1, 1):
            os.kill(os.getpid(), signal.SIGKILL)


callbacks = phases._callbacks
phases._callbacks = lambda ctx, phase, *a, **k: callbacks(ctx, phase, *a, **k) + [KillMyself()] * (phase == "head")
from devise_cli.cli import main
sys.exit(main())
'''


def two_processes(tmp_path, args: list, extra: tuple = ((), ()), codes: tuple = (CLI, CLI)):
    """Run ``devise ARGS`` as 2 JAX processes on localhost (TensorFlow hidden), as docs/training.md shows:
    (exit codes, outputs)."""
    hidden = tmp_path / "no-tensorflow"
    if not hidden.is_dir():
        hide_tensorflow(hidden)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(hidden), str(ROOT)]),
           "JAX_PLATFORMS": "cpu", "DEVISE_COORDINATOR": f"127.0.0.1:{free_port()}", "DEVISE_NUM_PROCESSES": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", codes[i], *map(str, args), *map(str, extra[i])],
                              env={**env, "DEVISE_PROCESS_ID": str(i)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=tmp_path) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    return [p.returncode for p in procs], outputs


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


@pytest.mark.slow
def test_two_processes_resume_where_process_0_stopped(tmp_path, tiny_kv_file):
    """Process 1 SIGKILLed in head epoch 2; a resume where process 1 lacks --resume fails on both with one Error
    line and leaves the checkpoint as it was; both resumed continue at head epoch 2 from process 0's checkpoint
    and finish with the losses and weights of an uninterrupted run: one process, which 2 processes match to float
    rounding (above: below 1e-5; the global batch's reductions are split otherwise); the resume itself restores
    float32 weights and optimizer state exactly. ~4 min."""
    pytest.importorskip("jax")
    from models.training.resume_point import checkpoint_digest

    data = make_data(tmp_path / "d")
    args = ["train", data, "--vectors", tiny_kv_file, *TINY_TRAIN_ARGS, "--val-split", "0", "-b", "4",
            "--bn-images", "50", "--head-epochs", "3", "--finetune-epochs", "0", "--dropout", "0",
            "--decode-workers", "1", "--seed", "1"]  # no validation: the bundle holds the last epoch's weights
    code, output = devise_jax(*args, "-o", tmp_path / "one", tmp_path=tmp_path)
    assert code == 0, output
    uninterrupted = [line.rsplit("  (", 1)[0] for line in output.splitlines() if line.startswith("head epoch")]
    two = tmp_path / "two"
    codes, outputs = two_processes(tmp_path, [*args, "-o", two], codes=(CLI, KILLED_IN_HEAD_EPOCH_2))
    assert codes == [1, -9], outputs
    assert len(errors(outputs[0])) == 1 and errors(outputs[0])[0].startswith("Error: process 0 of 2 stopped: ")
    meta = json.loads((two / "checkpoints" / "backup-head" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1, meta
    before = checkpoint_digest(two)

    codes, outputs = two_processes(tmp_path, [*args, "-o", two], extra=(["--resume"], []))
    expected = ("Error: the training processes disagree with process 0 (process 1: --resume); start every process "
                "with the same command (--resume needs --output on a filesystem every host sees)")
    assert codes == [1, 1], outputs
    assert [errors(out) for out in outputs] == [[expected], [expected]], outputs
    assert "Traceback" not in outputs[0] + outputs[1]
    assert checkpoint_digest(two) == before  # nothing was written

    codes, outputs = two_processes(tmp_path, [*args, "-o", two, "--resume"])
    assert codes == [0, 0], outputs
    resumed = [[line for line in out.splitlines() if line.startswith("every process resumes at")] for out in outputs]
    assert resumed[0] == resumed[1] == [f"every process resumes at head epoch 2 (process 0's checkpoint "
                                        f"{before[:12]})"], outputs
    epochs = [[line.rsplit("  (", 1)[0] for line in out.splitlines() if line.startswith("head epoch")]
              for out in outputs]
    assert epochs[0] == epochs[1] == uninterrupted[1:], (outputs, uninterrupted)  # the same losses, 4 digits
    assert [e.split("  ")[0] for e in epochs[0]] == ["head epoch 2/3", "head epoch 3/3"]
    assert f"trained {two}: 16 training / 0 validation images, 4 classes" in outputs[0]
    one, resumed_two = final_weights(tmp_path / "one"), final_weights(two)
    diff = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(one, resumed_two))
    print(f"process 0, resumed:\n{outputs[0]}\nmax |one process - resumed 2 processes| = {diff:.3g}")  # pytest -s
    assert len(one) == len(resumed_two) and diff < 1e-5, diff
