"""Where a run on several processes (JAX, ``--num-processes``) starts: decided once, by process 0.

Before any process trains or writes, every process sends one row to all the others
(``multihost_utils.process_allgather``): digests of its ``--resume`` flag, its data lists,
its ``--output`` path and, with ``--resume``, of the checkpoint it resumes from, plus the
resume point (phase, epoch) that process 0 read from its ``checkpoints/state.json`` and
the phase's backup. Every process compares every row with process 0's, so a mismatch
(one host started without ``--resume``, another data list, another run) is the same
one-line error on every process instead of collectives that disagree or hang. The
gather is also the barrier after which process 0 may write into its folder again.

The other processes continue from process 0's checkpoint by **reading its output folder,
read-only**: they copy its resume files (config, vocabulary, state, the step weights, the
best weights, the phase backup; not the feature cache, which each process computes for
itself as in a fresh run) into their own temporary folder before the gather, and their
digest is of that copy, so a copy that differs from process 0's files (a host that does
not see the same folder) is refused. Why a shared folder and not a broadcast of process
0's state: every process already reads the run's stored vocabulary from ``--output``
(:func:`devise.training.train` labels the data with it before training starts), a
several-host run needs its data list on every host anyway, and the copy leaves the whole
resume logic of one process (state, ``BackupAndRestore``, best weights) unchanged, run
on identical files; a broadcast would have to carry the vocabulary and every checkpoint
file through device memory and rebuild them. Nothing is ever written into process 0's
folder by another process, and no lock or HDF5 file is opened by two processes for writing.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from models import bundle as B
from models.data.headers import manifest_digest
from models.training.callbacks import load_state
from wordnet.base.errors import DeviseError
from wordnet.base.files import sha256_file

FIELDS = ("--resume", "the data list", "the --output path", "the checkpoint")
STEPS = ("pretrain", "batchnorm", "head", "finetune")  # the order of work (models.training.train)


def wanted(cfg, step: str) -> bool:
    """Whether ``cfg`` runs ``step`` at all."""
    return {"pretrain": cfg.pretrain_epochs > 0, "batchnorm": cfg.bn_images > 0,
            "head": cfg.head_epochs > 0, "finetune": cfg.finetune_epochs > 0}[step]


def resume_files(out: Path) -> list[Path]:
    """What a resumed run reads of ``out`` (relative paths, sorted): not the feature or header caches."""
    ckpt = out / B.CHECKPOINT_DIR
    found = [out / B.CONFIG_FILE, out / B.VOCAB_FILE, ckpt / "state.json", *ckpt.glob("*.weights.h5"),
             *ckpt.glob("backup-*/training_metadata.json"), *ckpt.glob("backup-*/*.weights.h5")]
    return sorted(p.relative_to(out) for p in found if p.is_file() and not p.name.startswith("."))


def checkpoint_digest(out: Path) -> str:
    """SHA-256 over the names and bytes of :func:`resume_files`."""
    h = hashlib.sha256()
    for rel in resume_files(out):
        h.update(str(rel).encode() + b"\0")
        sha256_file(out / rel, h)
    return h.hexdigest()


def resume_point(out: Path) -> tuple[int, int]:
    """(index in STEPS of the step the resumed run continues, epochs of it already done); (len(STEPS), 0): finish."""
    from models.training.config import TrainConfig

    state = load_state(out / B.CHECKPOINT_DIR / "state.json")
    cfg = TrainConfig.from_dict(B.read_config(out)["hyperparameters"])
    for i, step in enumerate(STEPS):
        if step in state.get("done", []) or not wanted(cfg, step):
            continue
        try:
            meta = json.loads((out / B.CHECKPOINT_DIR / f"backup-{step}" / "training_metadata.json").read_text())
        except (OSError, ValueError):
            meta = {}
        epoch = meta.get("epoch") if isinstance(meta, dict) else None
        return i, epoch if isinstance(epoch, int) else 0
    return len(STEPS), 0


def describe(point: tuple[int, int]) -> str:
    step, epoch = point
    return "the finish (every step done)" if step >= len(STEPS) else f"{STEPS[step]} epoch {epoch + 1}"


def _sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def share_resume_point(cluster, out: Path, resume: bool, items, val_items, reporter) -> Path:
    """Agree with the other processes on where this run starts; return the folder this process trains into.

    Process 0 trains into ``out``; every other process into a temporary folder of its own,
    holding (with ``resume``) a copy of process 0's resume files. Raises the same
    :class:`DeviseError` on every process when any process disagrees with process 0.
    """
    from jax.experimental import multihost_utils

    own = out
    if not cluster.chief:
        own = Path(tempfile.mkdtemp(prefix=f"devise-process{cluster.process_id}-")) / out.name
    problem = ""
    point, digest = (0, 0), ""
    if resume:
        try:
            if not cluster.chief:
                own.mkdir()
                for rel in resume_files(out):  # read-only: process 0's folder is never written by us
                    (own / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(out / rel, own / rel)
            point, digest = resume_point(own), checkpoint_digest(own)
        except (OSError, ValueError, KeyError, DeviseError) as exc:
            problem = f"{type(exc).__name__}: {exc}"[:200]
            digest = "unreadable: " + problem
    data = manifest_digest([str(p) for p, _ in items], [int(lbl) for _, lbl in items])
    if val_items is not None:
        data += manifest_digest([str(p) for p, _ in val_items], [int(lbl) for _, lbl in val_items])
    row = np.frombuffer(b"".join([_sha(str(bool(resume))), _sha(data), _sha(str(out)), _sha(digest)])
                        + np.asarray(point, np.int64).tobytes(), np.uint8)
    rows = np.asarray(multihost_utils.process_allgather(row))  # every process's row; also the barrier
    bad = {}
    for pid in range(1, len(rows)):
        fields = [FIELDS[f] for f in range(len(FIELDS)) if not np.array_equal(rows[pid, 32 * f:32 * f + 32],
                                                                              rows[0, 32 * f:32 * f + 32])]
        if fields:
            bad[pid] = fields if "--resume" not in fields else ["--resume"]  # then the checkpoints differ too
    if bad:
        which = "; ".join(f"process {pid}: {', '.join(f)}" for pid, f in sorted(bad.items()))
        mine = f" (process {cluster.process_id} could not read it: {problem})" if problem else ""
        raise DeviseError(f"the training processes disagree with process 0 ({which}){mine}; start every process "
                          f"with the same command (--resume needs --output on a filesystem every host sees)")
    if resume and problem:
        raise DeviseError(f"process {cluster.process_id} could not read the run to resume in {out}: {problem}")
    if resume:
        chief_point = tuple(int(v) for v in np.frombuffer(rows[0, 32 * len(FIELDS):].tobytes(), np.int64))
        reporter.message(f"every process resumes at {describe(chief_point)} (process 0's checkpoint "
                         f"{digest[:12]})")
    return own
