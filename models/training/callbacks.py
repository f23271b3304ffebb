"""Keras callbacks for long runs: history rows, best-by-val-hit@1 weights, SIGKILL-safe backups, progress events.

``history.csv`` gets one row per completed epoch, keyed by (phase, epoch): a resumed
run that repeats an epoch replaces its row, so each epoch appears exactly once.
:class:`BestWeights` keeps the full model's weights with the best validation hit@1
across phases (the value survives ``--resume`` through the run state file).
:class:`AtomicBackupAndRestore` is Keras's ``BackupAndRestore`` made safe against
SIGKILL at any instant: every file is written through :func:`wordnet.base.files.atomic_path`.
"""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from wordnet.base.files import atomic_path, atomic_write, ensure_space

HISTORY_COLUMNS = [
    "phase", "epoch", "loss", "val_loss", "accuracy", "val_accuracy",
    "hit_at_1", "hit_at_5", "val_hit_at_1", "val_hit_at_5", "softmax_loss", "val_softmax_loss", "seconds",
]
_RENAMES = {"embedding_loss": "loss", "probs_loss": "softmax_loss", "embedding_hit_at_1": "hit_at_1",
            "embedding_hit_at_5": "hit_at_5"}


def normalise_logs(logs: dict) -> dict:
    """Keras log keys of the two-output head model -> the single-output names."""
    out = {}
    for key, value in (logs or {}).items():
        prefix = "val_" if key.startswith("val_") else ""
        base = key[len(prefix):]
        if base == "loss" and any(k.endswith("embedding_loss") for k in logs):
            continue  # total loss of the two-output model; keep the DeViSE part
        out[prefix + _RENAMES.get(base, base)] = float(value)
    return out


def read_history(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k, "")) for k in HISTORY_COLUMNS})
    with atomic_write(path, encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class HistoryRows(keras.callbacks.Callback):
    """Append (or replace) this phase's epoch rows in ``history.csv`` after every epoch."""

    def __init__(self, path: Path, phase: str):
        super().__init__()
        self.path = Path(path)
        self.phase = phase
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"phase": self.phase, "epoch": epoch + 1, **normalise_logs(logs),
               "seconds": round(time.perf_counter() - self._start, 3)}
        rows = [r for r in read_history(self.path)
                if not (r["phase"] == self.phase and int(r["epoch"]) == epoch + 1)]
        rows.append(row)
        order = {"pretrain": 0, "head": 1, "finetune": 2}
        rows.sort(key=lambda r: (order.get(r["phase"], 9), int(r["epoch"])))
        write_history(self.path, rows)


class BestWeights(keras.callbacks.Callback):
    """Save ``full_model``'s weights whenever ``monitor`` beats the best so far (state in JSON)."""

    def __init__(self, full_model, weights_path: Path, state_path: Path, phase: str, monitor: str):
        super().__init__()
        self.full_model = full_model
        self.weights_path = Path(weights_path)
        self.state_path = Path(state_path)
        self.phase = phase
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        value = normalise_logs(logs).get(self.monitor)
        if value is None or not math.isfinite(value) or nonfinite_weights(self.full_model):
            return  # a NaN score or NaN weights are never "the best"
        state = load_state(self.state_path)
        best = state.get("best")
        if best is not None and value <= best["value"]:
            return
        save_weights_atomic(self.full_model, self.weights_path)
        state["best"] = {"value": value, "metric": self.monitor, "phase": self.phase, "epoch": epoch + 1}
        save_state(self.state_path, state)


def nonfinite_weights(model) -> list[str]:
    """Paths of ``model``'s weights holding a NaN or an infinity (checked on the device, one bool each)."""
    from keras import ops

    bad = []
    for w in model.weights:
        if "float" in str(w.dtype) and not bool(ops.all(ops.isfinite(w.value))):
            bad.append(getattr(w, "path", w.name))
    return bad


class FiniteWeights(keras.callbacks.Callback):
    """Stop at the end of the first epoch that leaves a non-finite weight, before anything saves it.

    Must come first among the callbacks: the backup, best-weights and history callbacks
    of that epoch then never run, so the last good checkpoint is kept. ``on_bad(phase,
    epoch, names)`` raises the user-facing error.
    """

    def __init__(self, full_model, phase: str, on_bad):
        super().__init__()
        self.full_model, self.phase, self.on_bad = full_model, phase, on_bad

    def on_epoch_end(self, epoch, logs=None):
        bad = nonfinite_weights(self.full_model)
        if bad:
            self.on_bad(self.phase, epoch + 1, bad)


class InterruptAfter(keras.callbacks.Callback):
    """Raise ``KeyboardInterrupt`` after epoch ``epoch`` (1-based) of ``phase`` (for resume tests/demos)."""

    def __init__(self, phase: str, epoch: int):
        super().__init__()
        self.phase, self.epoch = phase, epoch
        self.current_phase = None

    def on_epoch_end(self, epoch, logs=None):
        if self.current_phase == self.phase and epoch + 1 == self.epoch:
            raise KeyboardInterrupt(f"interrupted after {self.phase} epoch {self.epoch}")


def save_weights_atomic(model, path: Path) -> None:
    """``model.save_weights`` through :func:`atomic_path` (its temporary name keeps ``.weights.h5``),
    after checking the disk has room for it (:func:`~wordnet.base.files.ensure_space`)."""
    ensure_space(path, weights_file_bytes(model))
    with atomic_path(path) as tmp:
        model.save_weights(tmp)


def weights_file_bytes(model) -> int:
    """A generous size of ``model``'s ``.weights.h5``: every variable's bytes (the optimizer's too),
    plus 10 % and 1 MiB of HDF5 structure."""
    variables = list(model.variables)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    raw = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    return int(raw * 1.1) + (1 << 20)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose backup is consistent whenever the process dies, and whose resumed
    epochs repeat an uninterrupted run's exactly.

    Keras rewrites ``latest.weights.h5`` and then ``training_metadata.json`` in place:
    a SIGKILL during the JSON write leaves an empty file that makes the resumed ``fit``
    crash, and one between the two writes pairs epoch N's weights with epoch N-1's
    number, so epoch N is trained twice. Here each epoch's weights go to their own file
    (``epoch-<n>.weights.h5``, atomic), then the metadata naming that file is replaced
    atomically: that rename is the commit point, and the previous epoch's file is
    removed only after it. The folder is kept after ``fit`` (``delete_checkpoint`` is
    off); :func:`models.training.train` removes it once the phase is recorded as done.

    Weights and optimizer slots are not all of a run's state: the random streams that
    move on every epoch are too. Keras saves neither the ``SeedGenerator`` states (dropout
    masks, the sampled hinge loss's order) nor tf.data's shuffle and ``Dataset.random``
    iteration counts (a fresh dataset starts at its first epoch's order and augmentation).
    Without them a resumed epoch N drew epoch 1's randomness and its losses differed from
    an uninterrupted run's (issue 23). So the metadata also holds the seed states, restored
    with the weights, and the number of iterators ``fit`` had opened on ``data`` (the training
    input's ``iterators_opened``: :func:`models.data.tfdata.counting_iterators`); a resumed ``fit``
    opens and drops as many first, which moves the dataset's random streams to where the uninterrupted run's were
    (no element is read). PyDatasets need neither: their epoch comes from ``fit``.
    """

    def __init__(self, backup_dir: str, data=None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.folder = Path(backup_dir)
        self.metadata_path = self.folder / "training_metadata.json"
        self.data = data

    def read_metadata(self) -> dict:
        try:
            meta = json.loads(self.metadata_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) and isinstance(meta.get("epoch"), int) else {}

    def on_train_begin(self, logs=None):
        meta = self.read_metadata()
        weights = self.folder / meta.get("weights", "latest.weights.h5")  # Keras's own name: older runs
        if not meta or not weights.is_file():
            return
        if not self.model.built:  # pragma: no cover - phases build their views before fit
            raise ValueError("BackupAndRestore needs a built model")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        set_seed_states(self.model, meta.get("seeds"))
        opened = getattr(self.data, "iterators_opened", None)  # tf.data inputs count them
        if opened is not None and isinstance(meta.get("iterators"), int):
            for _ in range(meta["iterators"] - opened):
                iter(self.data)
        self.model._initial_epoch = meta["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        name = f"epoch-{epoch + 1}.weights.h5"
        save_weights_atomic(self.model, self.folder / name)
        with atomic_write(self.metadata_path, encoding="utf-8") as fh:
            meta = {"epoch": epoch + 1, "batch": 0, "weights": name, "seeds": seed_states(self.model)}
            if getattr(self.data, "iterators_opened", None) is not None:
                meta["iterators"] = self.data.iterators_opened
            json.dump(meta, fh)
        for stale in self.folder.glob("*.weights.h5*"):  # earlier epochs, Keras's latest/.bkp files
            if stale.name != name:
                stale.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        pass


def _seed_variables(model) -> list:
    """The state variables of every ``SeedGenerator`` a ``fit`` of ``model`` draws from, in a fixed order:
    its layers' (``model.variables`` holds them, ``model.weights`` does not), then its compiled losses'."""
    weights = {id(w) for w in model.weights}
    found = [v for v in model.variables if id(v) not in weights]
    for loss in keras.tree.flatten(getattr(model, "loss", None) or []):
        found += [g.state for g in getattr(loss, "__dict__", {}).values()  # a loss given by name has none
                  if isinstance(g, keras.random.SeedGenerator)]
    return found


def seed_states(model) -> list[list[int]]:
    """``model``'s seed generator states (see :func:`_seed_variables`), as JSON-ready integers."""
    return [np.asarray(keras.ops.convert_to_numpy(v.value)).astype(np.int64).tolist() for v in _seed_variables(model)]


def set_seed_states(model, states) -> None:
    """Restore :func:`seed_states`; a list that does not fit this model (a backup written before the seeds
    were kept, or by another model) is ignored, as Keras itself would."""
    variables = _seed_variables(model)
    if not isinstance(states, list) or len(states) != len(variables):
        return
    for v, state in zip(variables, states):
        if list(v.shape) == [len(state)]:
            v.assign(np.asarray(state).astype(v.dtype))


def seed_step(model, seed: int, step: str) -> None:
    """Start ``step`` (a training step, or ``finish``) from randomness that depends on (``seed``, ``step``) only.

    Steps leave random state behind that no checkpoint holds: a model's dropout ``SeedGenerator``
    moves on in the BatchNorm recomputation and in every phase, and a layer built with no seed takes
    Python's next random number. A run resumed after step S (its model rebuilt, earlier steps skipped)
    would otherwise start S+1 from other states than an uninterrupted run does. So every step first
    reseeds Python, NumPy, the backend and Keras's global generator, and restarts ``model``'s seed
    generators, from (``seed``, ``step``); within a step, :class:`AtomicBackupAndRestore` carries the
    state from epoch to epoch.
    """
    import zlib

    states = np.random.SeedSequence([int(seed), zlib.crc32(step.encode())]).generate_state(1 + len(
        _seed_variables(model)))
    keras.utils.set_random_seed(int(states[0] >> 1))  # < 2**31: every framework takes it
    for v, first in zip(_seed_variables(model), states[1:]):
        v.assign(np.asarray([first >> 1, 0]).astype(v.dtype))


def remove_backup(folder: Path) -> None:
    """Remove a finished phase's backup folder (call only after the phase is recorded as done)."""
    shutil.rmtree(folder, ignore_errors=True)


def load_state(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"done": []}


def save_state(path: Path, state: dict) -> None:
    with atomic_write(path, encoding="utf-8") as fh:
        json.dump(state, fh, indent=2)


class ReporterCallback(keras.callbacks.Callback):
    """Forwards one phase's ``fit`` events to a :class:`~models.training.reporter.Reporter`."""

    def __init__(self, reporter, phase: str, epochs: int, steps: int | None):
        super().__init__()
        self.reporter, self.phase, self.epochs, self.steps = reporter, phase, epochs, steps
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self.reporter.epoch_begin(self.phase, epoch + 1, self.epochs, self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.reporter.batch_end(batch + 1, normalise_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.reporter.epoch_end(self.phase, epoch + 1, self.epochs, normalise_logs(logs),
                                time.perf_counter() - self._start)
