"""Files devise writes and reads back: atomic writes, the output-folder lock, corrupt files -> one line.

Covers wordnet.base.files (atomic_path, remove_stale_temps, exclusive_lock), the SIGKILL-safe
epoch backup of models.training.callbacks, and the one-line errors of load_bundle,
Vocabulary.load and load_vectors for truncated or damaged files (library and CLI).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from wordnet.base.errors import BundleError, DeviseError, VectorsError, VocabularyError
from wordnet.base.files import (
    LockedError,
    atomic_path,
    atomic_write,
    ensure_unlocked,
    exclusive_lock,
    is_stale_temp,
    lock_holder,
    lock_path_for,
    remove_stale_temps,
    sha256_file,
)
from wordnet.vocab import Vocabulary

REPO = Path(__file__).resolve().parents[2]


def cli(*args):
    from devise_cli.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def small_vocab(n=5, dim=8):
    rng = np.random.default_rng(0)
    return Vocabulary(wnids=[f"n{i:08d}" for i in range(n)], synsets=[f"s{i}.n.01" for i in range(n)],
                      labels=[f"l{i}" for i in range(n)], definitions=["d"] * n, vectors=rng.normal(size=(n, dim)))


# -- atomic writes ---------------------------------------------------------------------
def test_atomic_path_keeps_every_suffix_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "after-head.weights.h5"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".after-head.weights.h5.")
        assert tmp.name.endswith(".tmp.weights.h5") and is_stale_temp(tmp)  # Keras checks ".weights.h5"
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "wb") as fh:
            fh.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_writer_killed_mid_write_leaves_the_old_file_and_a_removable_temp(tmp_path):
    target = tmp_path / "config.json"
    target.write_text('{"old": true}')
    code = ("import sys, time\nfrom wordnet.base.files import atomic_write\n"
            "with atomic_write(sys.argv[1]) as fh:\n    fh.write('{\"new\": ')\n    fh.flush()\n"
            "    print('writing', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(target.read_text()) == {"old": True}  # never half-written under its final name
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and is_stale_temp(leftovers[0])
    (tmp_path / ".keep-me").write_text("a user's dotfile")
    assert remove_stale_temps(tmp_path) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep-me", "config.json"]


def test_epoch_backup_is_consistent_and_ignores_a_damaged_keras_backup(tmp_path):
    keras = pytest.importorskip("keras")
    from models.training.callbacks import AtomicBackupAndRestore

    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        return m

    x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
    folder = tmp_path / "backup-head"
    m = model()
    m.fit(x, y, epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(folder)])
    assert json.loads((folder / "training_metadata.json").read_text()) == {
        "epoch": 2, "batch": 0, "weights": "epoch-2.weights.h5", "seeds": []}  # no dropout: no seed state
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-2.weights.h5", "training_metadata.json"]
    resumed = model()
    history = resumed.fit(x, y, epochs=3, verbose=0, callbacks=[AtomicBackupAndRestore(folder)])
    assert len(history.history["loss"]) == 1  # epochs 1-2 restored, only epoch 3 trained
    # what Keras's own BackupAndRestore leaves when killed inside its JSON write: an empty file
    (folder / "training_metadata.json").write_text("")
    fresh = model()
    history = fresh.fit(x, y, epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(folder)])
    assert len(history.history["loss"]) == 2  # no crash: nothing committed, so start the phase again


# -- the output-folder lock -------------------------------------------------------------
def test_exclusive_lock_refuses_a_second_holder_and_cleans_up(tmp_path):
    lock = lock_path_for(tmp_path / "bundle")
    assert lock == tmp_path / ".bundle.lock"
    with exclusive_lock(lock, "output folder b") as held:
        assert held.read_text() == f"{os.getpid()}\n" and lock_holder(lock) == os.getpid()
        with pytest.raises(LockedError) as err:
            with exclusive_lock(lock, "output folder b"):
                pass
        assert str(err.value) == (f"output folder b is in use by another devise process (pid {os.getpid()}); "
                                  f"wait for it to finish, or stop it and try again")
        assert err.value.pid == os.getpid()
    assert not lock.exists() and lock_holder(lock) is None


HOLD = ("import sys, time\nfrom wordnet.base.files import exclusive_lock\n"
        "with exclusive_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n")


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path):
    lock = tmp_path / ".bundle.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline() == "held\n"
        assert lock_holder(lock) == proc.pid
        with pytest.raises(LockedError, match=f"pid {proc.pid}"):
            ensure_unlocked(lock)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock.read_text() == f"{proc.pid}\n"  # SIGKILL left the file, naming a dead process
    assert lock_holder(lock) is None
    with exclusive_lock(lock):
        assert lock.read_text() == f"{os.getpid()}\n"


def test_two_trainings_into_one_folder_second_is_refused(tmp_path, tiny_kv_file):
    """While one run holds the folder, `devise train` into it refuses with one line, and changes nothing."""
    from PIL import Image

    data = tmp_path / "data"
    for name, colour in (("dog", "red"), ("cat", "blue")):
        (data / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), colour).save(data / name / "0.png")
    out = tmp_path / "models" / "run"
    out.mkdir(parents=True)
    (out / "config.json").write_text('{"format": "devise-bundle", "complete": false}')
    before = sorted(p.name for p in out.iterdir())
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path_for(out))], stdout=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        assert proc.stdout.readline() == "held\n"
        for extra in ((), ("--resume",), ("--overwrite",)):
            res = cli("train", data, "--vectors", tiny_kv_file, "-o", out, *extra)
            assert (res.exit_code, res.output) == (1, (
                f"Error: output folder {out} is in use by another devise process (pid {proc.pid}); "
                f"wait for it to finish, or stop it and try again\n")), extra
        # the library refuses too, before touching the folder (the CLI check is only an early answer)
        from models.training.train import train_devise

        with pytest.raises(LockedError, match=f"pid {proc.pid}"):
            train_devise([(data / "dog" / "0.png", 0), (data / "cat" / "0.png", 1)], small_vocab(2), out,
                         overwrite=True)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sorted(p.name for p in out.iterdir()) == before


# -- corrupt files -> one line naming them ------------------------------------------------
def _damaged_copies(good: bytes, n_truncations=6, n_overwrites=6, seed=0):
    rng = random.Random(seed)
    cuts = [0, 1, 8] + sorted(rng.randrange(9, len(good)) for _ in range(n_truncations))
    cases = [good[:c] for c in cuts]
    for _ in range(n_overwrites):
        b = bytearray(good)
        i = rng.randrange(len(b))
        b[i:i + 64] = bytes(rng.randrange(256) for _ in range(64))
        cases.append(bytes(b))
    return cases


def test_damaged_vocabularies_give_one_line_naming_the_file(tmp_path):
    good_path = small_vocab().save(tmp_path / "good.h5")
    for i, data in enumerate(_damaged_copies(good_path.read_bytes(), 12, 40)):
        path = tmp_path / f"v{i}.h5"
        path.write_bytes(data)
        try:
            Vocabulary.load(path)
        except VocabularyError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
    path = tmp_path / "cut.h5"
    path.write_bytes(good_path.read_bytes()[:1000])
    with pytest.raises(VocabularyError) as err:
        Vocabulary.load(path)
    assert str(err.value) == f"{path} is corrupt or truncated (OSError); rebuild it with `devise vocab build`"


def test_vocabulary_with_inconsistent_columns_names_the_file(tmp_path):
    import h5py

    path = small_vocab().save(tmp_path / "v.h5")
    with h5py.File(path, "a") as f:
        del f["labels"]
        f.create_dataset("labels", data=["only one"], dtype=h5py.string_dtype("utf-8"))
    with pytest.raises(VocabularyError) as err:
        Vocabulary.load(path)
    assert str(err.value) == (f"{path} is corrupt (vocabulary columns have different lengths); "
                              f"rebuild it with `devise vocab build`")


@pytest.mark.parametrize("fmt", ["kv", "word2vec-text", "word2vec-binary", "glove-text"])
def test_damaged_vectors_give_one_line_naming_the_file(tmp_path, tiny_kv, fmt):
    from wordnet.vectors.loading import load_vectors

    good = tmp_path / f"good.{fmt}"
    if fmt == "kv":
        tiny_kv.save(str(good))
    else:
        tiny_kv.save_word2vec_format(str(good), binary=fmt == "word2vec-binary")
        if fmt == "glove-text":
            good.write_text("".join(good.read_text().splitlines(keepends=True)[1:]))
    for i, data in enumerate(_damaged_copies(good.read_bytes(), 15, 40, seed=1)):
        path = tmp_path / f"c{i}.{fmt}"
        path.write_bytes(data)
        try:
            load_vectors(path)
        except VectorsError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)


def test_vectors_info_on_a_truncated_file_is_one_error_line(tmp_path, tiny_kv):
    good = tmp_path / "v.kv"
    tiny_kv.save(str(good))
    cut = tmp_path / "cut.kv"
    cut.write_bytes(good.read_bytes()[:300])
    res = cli("vectors", "info", cut)
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: {cut} looks like kv vectors but could not be read (")
    assert res.output.endswith("the file is damaged or truncated (tried gensim .kv, fastText .bin, word2vec binary, "
                               "word2vec/GloVe text)\n") and res.output.count("\n") == 1


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    pytest.importorskip("keras")
    from tests.tiny import save_bundle, tiny_model

    root = tmp_path_factory.mktemp("bundle")
    out = save_bundle(tiny_model(8, 5), small_vocab(), root / "good")
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(root / "x.png")
    return out


def _copy(bundle, tmp_path, name, data):
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / name).write_bytes(data)
    return copy


@pytest.mark.parametrize("name,cut,message", [
    ("model.keras", 0.5, "{p} is corrupt or not a devise model (truncated, or not a .keras zip file); "
                         "the bundle is damaged, retrain it"),
    ("model.keras", 0.0, "{p} is corrupt or not a devise model (truncated, or not a .keras zip file); "
                         "the bundle is damaged, retrain it"),
    ("vocab.h5", 0.5, "{p} is corrupt or truncated (OSError); the bundle is damaged, retrain it"),
    ("config.json", 0.5, "{p} is corrupt (JSONDecodeError); retrain the bundle"),
])
def test_predict_with_a_truncated_bundle_file_is_one_error_line(bundle, tmp_path, name, cut, message):
    good = (bundle / name).read_bytes()
    copy = _copy(bundle, tmp_path, name, good[:int(len(good) * cut)])
    res = cli("predict", bundle.parent / "x.png", "--model", copy)
    assert (res.exit_code, res.output) == (1, "Error: " + message.format(p=copy / name) + "\n")


def test_damaged_model_files_never_escape_as_other_errors(bundle, tmp_path):
    from models.bundle import load_bundle

    good = (bundle / "model.keras").read_bytes()
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    t0 = time.perf_counter()
    for data in _damaged_copies(good, 3, 3, seed=2):
        (copy / "model.keras").write_bytes(data)
        try:
            load_bundle(copy)
        except BundleError as exc:
            assert "\n" not in str(exc) and str(copy / "model.keras") in str(exc)
    assert time.perf_counter() - t0 < 120


def test_zero_shot_vocab_file_that_is_damaged_is_one_error_line(bundle, tmp_path):
    bad = tmp_path / "nouns.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    res = cli("predict", bundle.parent / "x.png", "--model", bundle, "--vocab", bad)
    assert (res.exit_code, res.output) == (
        1, f"Error: {bad} is corrupt or truncated (OSError); rebuild it with `devise vocab build`\n")
    assert issubclass(VocabularyError, DeviseError)


def test_dataset_build_into_a_folder_in_use_is_refused(tmp_path):
    from wordnet.datasets.emoji import build_emoji_dataset

    out = tmp_path / "emoji"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path_for(out))], stdout=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        assert proc.stdout.readline() == "held\n"
        with pytest.raises(LockedError) as err:
            build_emoji_dataset(out, [], [])
        assert str(err.value) == (f"dataset folder {out} is in use by another devise process (pid {proc.pid}); "
                                  f"wait for it to finish, or stop it and try again")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    from wordnet.base.errors import DatasetError

    with pytest.raises(DatasetError, match="no emoji source is installed"):  # free again: the real checks run
        build_emoji_dataset(out, [], [])


def test_sha256_file_streams_one_file_or_several_into_one_digest(tmp_path):
    import hashlib

    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * (3 << 20))  # more than one 1 MiB block
    b.write_bytes(b"tail")
    assert sha256_file(a).hexdigest() == hashlib.sha256(a.read_bytes()).hexdigest()
    both = sha256_file(b, sha256_file(a))
    assert both.hexdigest() == hashlib.sha256(a.read_bytes() + b"tail").hexdigest()
