"""The phase-1 feature cache: float16 rows, resumable after a kill, streamed back in blocks (tf.data)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from models.data import feature_file as FF
from models.data import tfdata
from models.data.failures import FailureLog
from models.data.inputs import RunSettings
from models.data.tfdata import decode_images
from models.training import feature_cache as F
from tests.tiny import tiny_model

ROOT = Path(__file__).resolve().parents[2]
INPUT = tfdata.Input(RunSettings())


def make_images(folder: Path, n: int, bad: int | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        if i == bad:
            path.write_bytes(b"broken")
        else:
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    return tiny_model()


def compute(model, paths, cache_dir, **kw):
    log = kw.pop("log", None) or FailureLog()
    cache = F.cached_features(model.feature_extractor, paths, inputs=INPUT, image_size=32, batch_size=4,
                              cache_dir=cache_dir, name="train", key="k" * 64, log=log, **kw)
    return cache, log


def test_cache_is_float16_in_a_seeded_order_and_matches_the_model(model, tmp_path):
    paths = make_images(tmp_path / "img", 11, bad=4)
    cache, log = compute(model, paths, tmp_path / "c", shuffle_seed=3)
    assert cache.rows == 10 and cache.dim == model.feature_dim
    assert log.items() == [(str(paths[4]), "not an image PIL can read")]
    index = cache.index()
    assert sorted(index.tolist()) == [i for i in range(11) if i != 4] and index.tolist() != sorted(index.tolist())
    import h5py

    with h5py.File(cache.path, "r") as f:
        assert f["features"].dtype == np.float16
    images, kept = decode_images(paths, 32)
    want = np.asarray(model.feature_extractor(images.astype(np.float32), training=False))
    got = cache.read()
    want = want[np.searchsorted(kept, index)]
    assert np.abs(want).max() < 1e-8  # an untrained backbone: far below float16's smallest normal number
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 * np.abs(want).max())
    again, log2 = compute(model, paths, tmp_path / "c", shuffle_seed=3)  # a hit: failures replayed
    assert again.path == cache.path and log2.items() == log.items()


def test_streamed_epochs_visit_every_row_once_and_validation_pads(model, tmp_path, monkeypatch):
    monkeypatch.setattr(FF, "BLOCK_ROWS", 3)
    monkeypatch.setattr(FF, "GROUP_BLOCKS", 2)
    paths = make_images(tmp_path / "img", 13)
    cache, _ = compute(model, paths, tmp_path / "c", shuffle_seed=0)
    labels = np.arange(13) * 10
    ds = INPUT.feature_stream(cache, labels, 4, shuffle=True, seed=1, drop_remainder=True)
    epochs = []
    for _ in range(2):
        batches = list(ds)
        assert [len(y["embedding"]) for _, y in batches] == [4, 4, 4]
        seen = np.concatenate([y["probs"].numpy() for _, y in batches])
        assert len(set(seen.tolist())) == 12 and set(seen.tolist()) <= set(labels.tolist())
        epochs.append(seen.tolist())
    assert epochs[0] != epochs[1]  # reshuffled
    x, _ = batches[0]
    assert x.dtype.name == "float32" and x.shape == (4, cache.dim)
    val = list(tfdata.Input(RunSettings(replicas=2)).feature_stream(cache, labels, 6, shuffle=False, weights=True))
    assert [w.numpy().tolist() for _, _, w in val][-1] == [1.0, 0.0]  # 13 = 6 + 6 + 1, padded to 2
    rows = np.concatenate([x.numpy() for x, _, w in val])[:13]
    np.testing.assert_array_equal(rows, cache.read())


KILLED = textwrap.dedent('''
    import os, signal, sys
    import keras
    from models.data.failures import FailureLog
    from models.data.inputs import input_for
    from models.training import feature_cache as F
    from tests.tiny import tiny_model
    keras.utils.set_random_seed(0)
    model = tiny_model()
    paths = sys.argv[2:]

    def kill(done, total):
        if done >= 9:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-pass, without any cleanup

    F.cached_features(model.feature_extractor, paths, inputs=input_for(), image_size=32, batch_size=3,
                      cache_dir=sys.argv[1], name="train", key="k" * 64, log=FailureLog(), shuffle_seed=5,
                      chunk_rows=3, progress=kill)
''')


def test_a_killed_pass_resumes_from_its_last_chunk(model, tmp_path):
    """SIGKILL in the middle of a pass: the partial file still opens and the pass continues from it."""
    paths = [str(p) for p in make_images(tmp_path / "img", 15, bad=1)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path / "c")] + paths, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == -9, res.stderr[-2000:]
    progress = json.loads(next((tmp_path / "c").glob("*.progress.json")).read_text())
    assert 3 <= progress["done"] < 15
    resumed, log = [], FailureLog()
    # the child's model had the same seed and recipe, hence the same weights and features
    cache = F.cached_features(model.feature_extractor, paths, inputs=INPUT, image_size=32, batch_size=3,
                              cache_dir=tmp_path / "c", name="train", key="k" * 64, log=log, shuffle_seed=5,
                              chunk_rows=3, progress=lambda d, t: resumed.append(d))
    assert resumed[0] == progress["done"]  # started where the committed chunks ended, not at 0
    assert log.items() == [(paths[1], "not an image PIL can read")]  # found before the kill, or after it
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [cache.path.name]  # partial and progress gone
    full, _ = compute(model, paths, tmp_path / "full", shuffle_seed=5)
    assert cache.rows == full.rows == 14 and (cache.index() == full.index()).all()
    np.testing.assert_allclose(cache.read(), full.read(), rtol=0, atol=1e-3 * np.abs(full.read()).max())


def test_cache_key_follows_the_manifest_not_file_stats(tmp_path):
    from models.data.headers import manifest_digest

    paths = [str(tmp_path / f"{i}.png") for i in range(3)]  # need not exist: no stat
    key = F.cache_key({"a": 1}, "w", manifest_digest(paths), 32, "square")
    assert key == F.cache_key({"a": 1}, "w", manifest_digest(list(paths)), 32, "square")
    assert key != F.cache_key({"a": 1}, "w", manifest_digest(paths[:2]), 32, "square")
    assert key != F.cache_key({"a": 1}, "w", manifest_digest(paths), 32, "inception")
    assert key != F.cache_key({"a": 1}, "w2", manifest_digest(paths), 32, "square")
