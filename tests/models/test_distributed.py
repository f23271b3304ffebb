"""Two replicas (logical CPU devices, MirroredStrategy) and batches that do not divide evenly: no NaN model.

A global batch smaller than the replica count hands some replica nothing: Keras layers
then fail on the empty batch, or a trainable BatchNorm turns the weights NaN while the
loss stays finite, and a NaN validation loss averages in. Here ``devise train --strategy
mirrored`` runs phase 0, the BatchNorm recomputation and phase 1 (phase 2 feeds ``fit``
the same way as phase 0) on 17 training images at batch 16 (a last batch of 1 < 2 replicas,
in training and in the feature pass) and 1 validation image (one replica's share would be
empty): issue 13's point 7. The bundle must be finite and predict. Logical devices must be configured before
TensorFlow starts, hence the fresh process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from click.testing import CliRunner
    from gensim.models import KeyedVectors
    from PIL import Image

    from devise_cli.cli import main
    from models.bundle import load_bundle
    from models.training.callbacks import nonfinite_weights
    from tests.tiny import TINY_TRAIN_ARGS

    root = Path(sys.argv[1])
    rng = np.random.default_rng(0)

    def images(folder, n):
        for i in range(n):
            cls = ("dog", "car")[i % 2]
            path = folder / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            base = np.array([(220, 30, 30), (30, 30, 220)][i % 2])
            Image.fromarray(np.clip(base + rng.normal(0, 25, (36, 36, 3)), 0, 255).astype(np.uint8)).save(path)

    images(root / "train", 17)
    images(root / "val", 1)
    kv = KeyedVectors(16)
    kv.add_vectors(["dog", "car", "cat", "bus"], rng.normal(size=(4, 16)).astype(np.float32))
    kv.save(str(root / "v.kv"))
    out = root / "bundle"
    res = CliRunner().invoke(main, ["train", str(root / "train"), "--val", str(root / "val"), "--vectors",
                                    str(root / "v.kv"), "-o", str(out), *TINY_TRAIN_ARGS, "-b", "16",
                                    "--pretrain-epochs", "1", "--head-epochs", "1", "--finetune-epochs", "0",
                                    "--bn-images", "17", "--strategy", "mirrored", "--run-eagerly"])
    report = {"replicas": len(tf.config.list_logical_devices("CPU")), "exit": res.exit_code, "output": res.output,
              "exception": repr(res.exception) if res.exception and not isinstance(res.exception, SystemExit) else None}
    if res.exit_code == 0:
        bundle = load_bundle(out)
        report["nonfinite"] = nonfinite_weights(bundle.full)
        run = bundle.run(sorted((root / "train").rglob("*.png")))
        report["embeddings_finite"] = bool(np.isfinite(run.embeddings).all()) and len(run.embeddings) == 17
        report["history"] = (out / "history.csv").read_text()
    print("REPORT " + json.dumps(report))
''')


def test_mirrored_training_with_uneven_batches_gives_a_finite_bundle(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the session's data home (WordNet is built there once)
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=900)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("REPORT ")), None)
    assert line is not None, res.stderr[-3000:]
    report = json.loads(line[len("REPORT "):])
    assert report["replicas"] == 2
    assert report["exit"] == 0, report["output"] + str(report["exception"])
    assert "Traceback" not in report["output"] and "nan" not in report["output"].lower()
    assert report["nonfinite"] == [] and report["embeddings_finite"]
    rows = [ln.split(",") for ln in report["history"].strip().splitlines()]
    header, rows = rows[0], rows[1:]
    assert [r[0] for r in rows] == ["pretrain", "head"]
    val_loss = header.index("val_loss")
    assert all(float(r[val_loss]) == float(r[val_loss]) and r[val_loss] != "" for r in rows)  # finite, present
