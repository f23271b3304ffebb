"""What process 0 reads of a run to resume, and the point it tells the other processes (no JAX needed)."""
from __future__ import annotations

import json
from pathlib import Path

from models.training.config import TrainConfig
from models.training.resume_point import checkpoint_digest, describe, resume_files, resume_point


def fake_run(out: Path, *, done: list[str], backup: tuple[str, int] | None, **settings) -> Path:
    ckpt = out / "checkpoints"
    (ckpt / "features").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"hyperparameters": TrainConfig(**settings).to_dict()}))
    (out / "vocab.h5").write_bytes(b"vocab")
    (ckpt / "state.json").write_text(json.dumps({"done": done, "weights": "after-batchnorm.weights.h5"}))
    (ckpt / "after-batchnorm.weights.h5").write_bytes(b"w" * 10)
    (ckpt / ".after-head.weights.h5.abc.tmp.weights.h5").write_bytes(b"half")  # a killed write: not read
    (ckpt / "features" / "train-0123.h5").write_bytes(b"f")  # each process computes its own
    (ckpt / "headers-train.npz").write_bytes(b"h")
    if backup:
        folder = ckpt / f"backup-{backup[0]}"
        folder.mkdir()
        (folder / "training_metadata.json").write_text(
            json.dumps({"epoch": backup[1], "weights": "epoch-1.weights.h5"}))
        (folder / "epoch-1.weights.h5").write_bytes(b"e")
    return out


def test_resume_files_are_the_checkpoint_without_caches_or_temporaries(tmp_path):
    out = fake_run(tmp_path / "run", done=["batchnorm"], backup=("head", 1), head_epochs=3, finetune_epochs=0)
    assert [str(p) for p in resume_files(out)] == [
        "checkpoints/after-batchnorm.weights.h5", "checkpoints/backup-head/epoch-1.weights.h5",
        "checkpoints/backup-head/training_metadata.json", "checkpoints/state.json", "config.json", "vocab.h5"]


def test_the_point_is_the_first_step_not_done_and_its_backed_up_epochs(tmp_path):
    out = fake_run(tmp_path / "a", done=["batchnorm"], backup=("head", 1), head_epochs=3, finetune_epochs=2)
    assert (resume_point(out), describe(resume_point(out))) == ((2, 1), "head epoch 2")
    out = fake_run(tmp_path / "b", done=["batchnorm", "head"], backup=None, head_epochs=3, finetune_epochs=2)
    assert (resume_point(out), describe(resume_point(out))) == ((3, 0), "finetune epoch 1")
    out = fake_run(tmp_path / "c", done=["batchnorm", "head"], backup=None, head_epochs=3, finetune_epochs=0)
    assert describe(resume_point(out)) == "the finish (every step done)"


def test_the_digest_changes_with_any_checkpoint_byte_and_not_with_caches(tmp_path):
    out = fake_run(tmp_path / "run", done=["batchnorm"], backup=("head", 1))
    before = checkpoint_digest(out)
    (out / "checkpoints" / "features" / "train-0123.h5").write_bytes(b"other")
    assert checkpoint_digest(out) == before
    (out / "checkpoints" / "backup-head" / "epoch-1.weights.h5").write_bytes(b"E")
    assert checkpoint_digest(out) != before
