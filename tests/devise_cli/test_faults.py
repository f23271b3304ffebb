"""Faults a real machine has: a full disk, unreadable files, a umask, run through the real commands.

The full disk is a 4 MiB tmpfs filled to its last few KiB when this process may mount one
(root on Linux); elsewhere a patch makes every write under the folder fail with ENOSPC
(``open``, ``os.open`` and ``shutil.disk_usage``, which is where devise's writers meet the
disk). Either way each command must end with one ``Error:`` line naming what it was
writing, exit code 1, leave no temporary file, and keep the previous file as it was.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from tests.tiny import TINY_TRAIN_ARGS, bundles_loaded_once, png, save_bundle, tiny_model
from wordnet.base.files import is_stale_temp

CLASSES = ("dog", "cat", "car")


def _mount_tmpfs(folder: Path, size: str = "4m") -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class FullDisk:
    """A folder whose filesystem is (made) full by :meth:`fill`; files written before stay."""

    def __init__(self, folder: Path, monkeypatch, tmpfs: bool):
        self.folder, self.mp, self.tmpfs = folder, monkeypatch, tmpfs

    def fill(self, leave: int = 0) -> None:
        if self.tmpfs:  # write until the disk refuses, then give back ``leave`` bytes
            with open(self.folder / "padding", "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * (64 << 10))
                        fh.flush()
                except OSError:
                    pass
            size = (self.folder / "padding").stat().st_size
            os.truncate(self.folder / "padding", max(0, size - leave))
            return
        inside = lambda p: Path(os.path.abspath(os.fsdecode(p))).is_relative_to(self.folder)  # noqa: E731
        full = lambda p: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fsdecode(p))  # noqa: E731
        real_open, real_os_open, real_usage = builtins.open, os.open, shutil.disk_usage

        def fake_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") and inside(file):
                raise full(file)
            return real_open(file, mode, *args, **kwargs)

        def fake_os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
                raise full(path)
            return real_os_open(path, flags, *args, **kwargs)

        def fake_usage(path):
            usage = real_usage(path)
            return usage._replace(free=0) if inside(path) else usage

        for module, name, fake in ((builtins, "open", fake_open), (io, "open", fake_open), (os, "open", fake_os_open),
                                   (shutil, "disk_usage", fake_usage)):
            self.mp.setattr(module, name, fake)

    def temps(self) -> list[Path]:
        """Temporary files and staging folders left anywhere under the folder."""
        return [p for p in self.folder.rglob(".*") if is_stale_temp(p) or p.name.endswith(".tmp")]


@pytest.fixture()
def full_disk(tmp_path, monkeypatch):
    folder = tmp_path / "full"
    folder.mkdir()
    tmpfs = _mount_tmpfs(folder)
    try:
        yield FullDisk(folder.resolve(), monkeypatch, tmpfs)
    finally:
        monkeypatch.undo()
        if tmpfs:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture(scope="module")
def env(tiny_kv_file, tmp_path_factory):
    """A tiny bundle whose vocabulary records the tiny vectors (so --labels works), and images."""
    from wordnet import vocab_build
    from wordnet.reader import load_wordnet
    from wordnet.vectors.loading import load_vectors

    root = tmp_path_factory.mktemp("faults")
    wn = load_wordnet()
    vocab, _ = vocab_build.build_vocabulary([wn.synset(f"{c}.n.01") for c in CLASSES], load_vectors(tiny_kv_file),
                                            vector_source=tiny_kv_file)
    model = tiny_model(vocab.dim, len(CLASSES))
    bundle = save_bundle(model, vocab, root / "bundle")
    data = root / "data"
    for cls in CLASSES:
        for i, colour in enumerate(("red", "blue")):
            png(data / cls / f"{i}.png", colour)
    with bundles_loaded_once():
        yield {"root": root, "bundle": bundle, "data": data, "vectors": tiny_kv_file}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_full_disk_error(res, target: Path, disk: FullDisk):
    assert res.exit_code == 1, res.output
    last = res.stderr.strip().splitlines()[-1]  # train prints its progress first
    assert res.stderr.count("Error:") == 1 and last.startswith("Error: "), res.stderr
    assert "No space left on device" in last and str(target) in last, res.stderr
    assert "Traceback" not in res.output
    assert not disk.temps(), disk.temps()


def test_vocab_build_on_a_full_disk_keeps_the_previous_file(full_disk, env):
    target = full_disk.folder / "nouns.h5"
    res = invoke("vocab", "build", target, "--synsets", _synsets(env["root"]), "--vectors", env["vectors"])
    assert res.exit_code == 0, res.output
    before = target.read_bytes()
    full_disk.fill()
    res = invoke("vocab", "build", target, "--subtree", "animal.n.01", "--skip-missing", "--vectors", env["vectors"])
    assert_full_disk_error(res, target, full_disk)
    assert target.read_bytes() == before


def _synsets(root: Path) -> Path:
    path = root / "three.txt"
    path.write_text("dog.n.01\ncat.n.01\ncar.n.01\n")
    return path


def test_index_and_eval_on_a_full_disk(full_disk, env):
    full_disk.fill()
    target = full_disk.folder / "pics.h5"
    assert_full_disk_error(invoke("index", env["data"], "--model", env["bundle"], "--output", target), target,
                           full_disk)
    for option, name in (("--json", "r.json"), ("--plot", "p.png"), ("--result", "res.json")):
        target = full_disk.folder / name
        res = invoke("eval", env["data"], "--model", env["bundle"], option, target, "--bootstrap", 0)
        assert_full_disk_error(res, target, full_disk)


@pytest.mark.slow
def test_export_on_a_full_disk(full_disk, env):
    full_disk.fill()
    target = full_disk.folder / "export"
    res = invoke("export", env["bundle"], "--format", "savedmodel", "-o", target)
    assert_full_disk_error(res, target, full_disk)
    assert not target.exists()


def test_a_full_data_home_is_named(full_disk, env, monkeypatch):
    """Label vectors and WordNet are cached in the data home: a full one is named, not the WordNet
    file being copied from /usr/share/wordnet or the cache's temporary file."""
    home = full_disk.folder / "home"
    monkeypatch.setenv("DEVISE_HOME", str(home))
    full_disk.fill()
    res = invoke("predict", env["data"], "--model", env["bundle"], "--labels", "cat, dog")
    assert res.exit_code == 1, res.output
    assert res.stderr.startswith(f"Error: {home}") and "No space left on device" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and not full_disk.temps()


def test_train_on_a_full_disk(full_disk, env):
    full_disk.fill(leave=64 << 10)  # room for the vocabulary and config, not for the weights
    out = full_disk.folder / "run"
    res = invoke("train", env["data"], "--output", out, "--vectors", env["vectors"], *TINY_TRAIN_ARGS,
                 "--head-epochs", 1, "--finetune-epochs", 0, "--pretrain-epochs", 0, "--batch-size", 4,
                 "--val-split", 0.5, "--bn-images", 4, "--run-eagerly")
    assert_full_disk_error(res, out, full_disk)


# -- permissions --------------------------------------------------------------------
def test_staging_folders_follow_the_umask(tmp_path):
    """Bundles (train) and exports are built in a staging folder renamed into place: its mode is theirs."""
    from wordnet.base.files import staging_folder

    old = os.umask(0o027)
    try:
        assert staging_folder(tmp_path / "bundle").stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(old)


@pytest.mark.slow
def test_bundle_and_export_folders_follow_the_umask(env, tmp_path):
    """mkdtemp's private drwx------ must not become a shared model's mode."""
    old = os.umask(0o022)
    try:
        res = invoke("export", env["bundle"], "--format", "savedmodel", "-o", tmp_path / "exp")
        assert res.exit_code == 0, res.output
        assert (tmp_path / "exp").stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(old)


def unreadable(monkeypatch, path: Path) -> None:
    """Make ``path`` unreadable: chmod 0, and (root reads anything) opening it raises EACCES."""
    path.chmod(0)
    real = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


@pytest.mark.parametrize("name", ["model.keras", "vocab.h5", "config.json"])
def test_an_unreadable_bundle_file_is_not_called_corrupt(env, tmp_path, monkeypatch, name):
    bundle = tmp_path / "bundle"
    shutil.copytree(env["bundle"], bundle)
    unreadable(monkeypatch, (bundle / name).resolve())
    res = invoke("predict", env["data"], "--model", bundle)
    assert res.exit_code == 1
    assert res.stderr == (f"Error: {(bundle / name).resolve()}: Permission denied; check its permissions "
                          f"(or use another location)\n")


def test_a_damaged_bundle_vocabulary_says_retrain(env, tmp_path):
    """`devise vocab build` is the fix for a vocabulary file, not for a bundle's own labels."""
    bundle = tmp_path / "bundle"
    shutil.copytree(env["bundle"], bundle)
    (bundle / "vocab.h5").write_bytes(b"not hdf5")
    res = invoke("predict", env["data"], "--model", bundle)
    assert res.exit_code == 1
    assert res.stderr == (f"Error: {bundle / 'vocab.h5'} is corrupt or truncated (OSError); "
                          f"the bundle is damaged, retrain it\n")
