"""``devise train``'s engine: the DeViSE training phases, resumable, writing a bundle.

Order of work (each step recorded in ``checkpoints/state.json`` when done, followed by
the full model's weights in ``checkpoints/after-<step>.weights.h5``):

1. ``pretrain`` (``pretrain_epochs`` > 0): softmax over the training classes, whole
   network, augmented images, Adam — the paper's step 1 when no pretrained weights exist.
2. ``batchnorm``: recompute the backbone's BatchNorm moving statistics on clean
   training images (see :mod:`models.training.batchnorm`; the issue-5 trap).
3. ``head``: backbone frozen; pooled features cached in HDF5; DeViSE head (hinge rank
   loss) and softmax head trained on them with SGD + momentum.
4. ``finetune``: everything trainable (BatchNorm in inference mode unless
   ``train_batchnorm``), hinge rank loss, augmented images, Adagrad, lower rate.
5. finish: restore the best weights by validation hit@1, recompute BatchNorm
   statistics if fine-tuned, write ``model.keras`` atomically, mark config complete.

Each Keras ``fit`` gets a SIGKILL-safe ``BackupAndRestore`` (its own folder per phase,
removed only once the step is recorded), so ``resume=True`` continues inside the
interrupted phase at the next epoch, wherever the process died. The output folder is
locked for the whole run (:func:`wordnet.base.files.exclusive_lock`, a ``.<name>.lock`` file
beside it): a second run into the same folder is refused, not interleaved.

Several processes (JAX, ``--num-processes``; :func:`models.training.distribute.join_cluster`):
every process runs all of the above on its share of each batch; process 0 writes into the
output folder, the others into a temporary folder of their own (on JAX, Keras's saving is a
collective: every process must call it), so no file or lock is shared between them. Before
any of them trains, :func:`models.training.resume_point.share_resume_point` checks that all
were started alike and, on ``resume``, gives the others a read-only copy of process 0's
checkpoint, so every process continues at process 0's step and epoch.
"""
from __future__ import annotations

import contextlib
import functools
import glob
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from models import bundle as B
from models.data.augment import get_recipe, resolve_recipe
from models.data.failures import FailureLog
from models.data.headers import cached_scan, manifest_digest
from models.net.catalog import BACKBONE_INFO
from models.training.callbacks import load_state, remove_backup, save_state, save_weights_atomic, seed_step
from models.training.config import TrainConfig
from models.training.distribute import (
    Cluster,
    abandon_cluster,
    determinism,
    distribution_strategy,
    join_cluster,
    precision,
)
from models.training.reporter import Reporter
from models.training.resume_point import STEPS, share_resume_point
from models.training.resume_point import wanted as _wanted
from wordnet.base.errors import DatasetError, DeviseError
from wordnet.base.files import exclusive_lock, lock_path_for, remove_stale_temps, staging_folder
from wordnet.vocab import Vocabulary


@dataclass
class TrainResult:
    path: Path
    train_images: int
    val_images: int
    classes: int
    failures: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    best: dict | None = None
    model: object = None  # the trained DeviseModel, as saved in model.keras


@dataclass
class RunContext:
    """What every phase needs: model, data, folders, reporter; the DeViSE phases also the vocabulary."""

    cfg: TrainConfig
    out: Path
    model: object
    train: list
    val: list
    log: FailureLog
    reporter: Reporter
    extra_callbacks: list
    strategy: object
    vocab: Vocabulary | None = None  # label vectors of the hinge loss and hit@k; None when pretraining (softmax only)
    recipe: str = "square"                        # the resolved augmentation recipe
    headers: dict = field(default_factory=dict)   # "train"/"val" -> ImageHeaders (which decoder reads each file)
    manifests: dict = field(default_factory=dict)  # "train"/"val" -> manifest digest (cache keys)
    cluster: Cluster = field(default_factory=Cluster)  # this process among several (JAX, several hosts)
    last_phase: str | None = None

    @property
    def ckpt(self) -> Path:
        return self.out / B.CHECKPOINT_DIR

    @property
    def state_path(self) -> Path:
        return self.ckpt / "state.json"

    @functools.cached_property
    def inputs(self):
        """The run's one input implementation (:func:`models.data.inputs.input_for`), chosen once: every phase
        reads its images through it."""
        from models.data.inputs import RunSettings, input_for
        from models.training.phases import replicas

        return input_for(settings=RunSettings(workers=self.cfg.decode_workers, process=self.cluster.process_id,
                                              processes=self.cluster.num_processes, replicas=replicas(self)))

    def steps(self, n: int) -> int:
        """Training steps per epoch for ``n`` images (full batches only)."""
        return max(1, n // self.cfg.batch_size)


def train_devise(
    items: Sequence[tuple[Path, int]],
    vocab: Vocabulary,
    output: str | Path,
    cfg: TrainConfig | None = None,
    *,
    val_items: Sequence[tuple[Path, int]] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    provenance: dict | None = None,
    reporter: Reporter | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Train a DeViSE model on ``items`` ((path, label row in ``vocab``)) and write a bundle at ``output``.

    With ``resume``, the hyperparameters and vocabulary stored in the bundle are used
    and finished steps are skipped. ``callbacks`` are extra Keras callbacks added to
    every ``fit`` (their ``current_phase`` attribute, if any, is set to the phase name).
    The output folder is locked while training: another run into it raises
    :class:`~wordnet.base.files.LockedError` naming the holder's pid.
    """
    reporter = reporter or Reporter()
    out = Path(output).expanduser()
    cfg = (cfg or TrainConfig()).validate()
    if not resume:
        check_items(items, len(vocab))  # before the output folder is touched
    cluster = join_cluster(cfg)
    try:
        if cluster.num_processes > 1:  # process 0 decides where every process starts; the others copy its state
            out = share_resume_point(cluster, out, resume, items, val_items, reporter)
            if not cluster.chief:  # the same work as process 0 (its collectives need us), written where nobody reads
                overwrite = False
        with exclusive_lock(lock_path_for(out), f"output folder {out}"):
            return _train_locked(items, vocab, out, cfg, val_items=val_items, resume=resume, overwrite=overwrite,
                                 provenance=provenance, reporter=reporter, callbacks=callbacks, cluster=cluster)
    except Exception as exc:
        if cluster.num_processes == 1:
            raise
        abandon_cluster()  # the run is lost for every process: exit without waiting for the others
        if isinstance(exc, DeviseError):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise DeviseError(f"process {cluster.process_id} of {cluster.num_processes} stopped: {first} (another "
                          f"training process failed or is unreachable?); start every process again with "
                          f"--resume (or --overwrite)") from None


def _train_locked(items, vocab, out: Path, cfg: TrainConfig, *, val_items, resume, overwrite, provenance,
                  reporter, callbacks, cluster: Cluster = Cluster()) -> TrainResult:
    """:func:`train_devise` while holding the output folder's lock."""
    from models.training.phases import finish

    out, stored = open_output(out, resume=resume, overwrite=overwrite)
    if resume:
        cfg = TrainConfig.from_dict(stored["hyperparameters"]).with_runtime_of(cfg).validate()
        vocab = Vocabulary.load(out / B.VOCAB_FILE)
        provenance = stored.get("provenance", provenance)
        reporter.message(f"resuming {out} with its stored settings")
    check_items(items, len(vocab))
    if val_items is None:
        from models.data.datasets import stratified_split

        train, val = stratified_split(list(items), cfg.val_split, cfg.seed)
    else:
        train, val = list(items), list(val_items)
        check_items(val, len(vocab), what="validation")
    if not resume:
        from models.net.backbones import resolve_weights

        resolve_weights(cfg.weights, cfg.backbone, cfg.backbone_options())  # a mismatch is refused before any work
        check_style_supported(cfg)
        _start_bundle(out, cfg, vocab, provenance, train, val)

    log = FailureLog(on_new=reporter.failure)
    seconds: dict[str, float] = {}
    headers, manifests, recipe = scan_inputs(out, cfg, train, val, reporter)
    with run_scope(cfg) as strategy:
        model = build_or_restore(cfg, out, embedding_dim=vocab.dim, num_classes=len(vocab),
                                 hidden_units=cfg.hidden_units)
        ctx = RunContext(cfg, out, model, train, val, log, reporter, list(callbacks or []), strategy, vocab=vocab,
                         recipe=recipe, headers=headers, manifests=manifests, cluster=cluster)
        run_steps(ctx, STEPS, seconds)
        seed_step(ctx.model, ctx.cfg.seed, "finish")
        t0 = time.perf_counter()
        best = finish(ctx)
        seconds["finish"] = time.perf_counter() - t0
    _write_config(out, cfg, vocab, provenance, train, val, complete=True, log=log, best=best, seconds=seconds,
                  softmax_trained=bool(cfg.pretrain_epochs or cfg.head_epochs), recipe=recipe)
    return TrainResult(out, len(train) - count_failed(train, log), len(val) - count_failed(val, log),
                       len(vocab), log.items(), seconds, best, model)


def run_steps(ctx: RunContext, steps: Sequence[str], seconds: dict) -> None:
    """Run those of ``steps`` (``train``: all, ``pretrain``: phase 0 and BatchNorm) that ``ctx.cfg`` asks for
    and the state file does not record as done, in order."""
    from models.training.phases import PHASES

    done = load_state(ctx.state_path).get("done", [])
    for step in steps:
        if step not in done and _wanted(ctx.cfg, step):
            _run_step(ctx, step, PHASES[step], seconds)


def _run_step(ctx: RunContext, step: str, phase, seconds: dict) -> None:
    """Run one step (telling extra callbacks which; its randomness seeded from (seed, step): see
    :func:`~models.training.callbacks.seed_step`), time it, then save and record it as done."""
    seed_step(ctx.model, ctx.cfg.seed, step)
    t0 = time.perf_counter()
    for cb in ctx.extra_callbacks:
        if hasattr(cb, "current_phase"):
            cb.current_phase = step
    phase(ctx)
    seconds[step] = time.perf_counter() - t0
    _mark_done(ctx, step)
    ctx.last_phase = step


# what each kind of run writes into its output folder, and the command that resumes it
RUN_KINDS = {"bundle": ("a DeViSE bundle", "devise train"), "backbone": ("a pre-training run", "devise pretrain")}


def open_output(out: Path, *, resume: bool, overwrite: bool, kind: str = "bundle") -> tuple[Path, dict | None]:
    """The output folder made ready for a ``kind`` run (``train``: ``bundle``, ``pretrain``: ``backbone``; the
    caller holds its lock): created (emptied with ``overwrite``), the temporary files a killed run left removed
    (no live writer can exist while we hold the lock), and with ``resume`` its stored config.json (else None),
    refused when another kind of run wrote it (one line naming the command that resumes it)."""
    out = B.prepare_output(out, resume=resume, overwrite=overwrite)
    for folder in (out, out / B.CHECKPOINT_DIR, out / B.CHECKPOINT_DIR / "features"):
        remove_stale_temps(folder)
    if not resume:
        return out, None
    stored = B.read_config(out)
    found = stored.get("kind", "bundle")
    if found != kind and found in RUN_KINDS:
        what, command = RUN_KINDS[found]
        raise DeviseError(f"{out} is {what}, not {RUN_KINDS[kind][0]}; resume it with {command}")
    return out, stored


def check_items(items, n_classes: int, what: str = "training") -> None:
    """Refuse a set no phase can train on, before any work: no images, a label outside the ``n_classes``
    classes, fewer than 2 classes (DeViSE's training set: labels in use; the pool: its class names). ``what``
    is ``training``, ``validation`` or ``pool`` (pre-training's classes are a pool's names, not a vocabulary)."""
    pool = what == "pool"
    if pool and n_classes < 2:
        raise DatasetError(f"the pool has {n_classes} class; pre-training needs at least 2")
    if not items:
        raise DatasetError("the pool has no images" if pool else f"the {what} set has no images")
    labels = {int(lbl) for _, lbl in items}
    if what == "training" and len(labels) < 2:
        raise DatasetError(f"the {what} set has {len(labels)} class; DeViSE needs at least 2 classes")
    bad = sorted(lbl for lbl in labels if not 0 <= lbl < n_classes)
    if bad:
        raise DatasetError(f"labels {bad[:5]} are outside the {n_classes} classes" if pool else
                           f"{what} labels {bad[:5]} are outside the vocabulary of {n_classes} labels")


@contextlib.contextmanager
def run_scope(cfg: TrainConfig):
    """A run's numeric set-up, shared by ``train`` and ``pretrain``: the seed, the precision policy and op
    determinism, then the distribution strategy's scope (models, optimizers, built lazily in ``fit``, and
    metrics all live in it). Yields the strategy."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    with precision(cfg.mixed_precision), determinism(cfg.determinism()):
        strategy = distribution_strategy(cfg.strategy)
        with strategy.scope():
            yield strategy


def check_style_supported(cfg: TrainConfig) -> None:
    """Refuse ``--style`` before any work where this backend's input cannot run its ops."""
    from models.data.inputs import check_style, input_for

    if cfg.augment:
        check_style(input_for(), cfg.style)


def scan_inputs(out: Path, cfg: TrainConfig, train, val, reporter: Reporter) -> tuple[dict, dict, str]:
    """Header scans and manifest digests of the training and validation sets (:func:`_scan`), and the
    augmentation recipe they call for (``--augmentation auto`` resolved from the training images, said once)."""
    headers, manifests = _scan(out, {"train": train, "val": val})
    recipe = resolve_recipe(cfg.augmentation, headers["train"].widths, headers["train"].heights, cfg.image_size)
    if cfg.augmentation == "auto":
        reporter.message(f"augmentation: {recipe} ({get_recipe(recipe).description})")
    return headers, manifests, recipe


def _scan(out: Path, sets: dict) -> tuple[dict, dict]:
    """Header scans (which decoder reads each file) and manifest digests of the training and validation sets.

    Each scan is cached in ``checkpoints/`` under its manifest digest, so a resumed run
    (or a later phase) reads no header twice.
    """
    headers, manifests = {}, {}
    for name, items in sets.items():
        paths = [str(p) for p, _ in items]
        manifests[name] = manifest_digest(paths, [int(lbl) for _, lbl in items])
        headers[name] = cached_scan(paths, out / B.CHECKPOINT_DIR / f"headers-{name}.npz", manifests[name])
    return headers, manifests


def count_failed(items, log: FailureLog) -> int:
    """How many of ``items`` could not be read (the rest are the images a run trained on)."""
    return sum(1 for p, _ in items if str(p) in log)


def build_or_restore(cfg: TrainConfig, out: Path, *, embedding_dim: int, num_classes: int, hidden_units: int):
    """The run's DeviseModel: from the last recorded step's weights in ``out`` when there are some, else from
    ``cfg.weights`` (a file, a named set, or another bundle's backbone). Pre-training passes a vestigial head."""
    from models.net.devise_model import DeviseModel

    weights_file = load_state(out / B.CHECKPOINT_DIR / "state.json").get("weights")
    common = dict(backbone=cfg.backbone, embedding_dim=embedding_dim, num_classes=num_classes,
                  image_size=cfg.image_size, hidden_units=hidden_units, dropout=cfg.dropout,
                  backbone_options=cfg.backbone_options())
    if weights_file and (out / B.CHECKPOINT_DIR / weights_file).is_file():
        model = DeviseModel(weights=None, **common)
        model.load_weights(out / B.CHECKPOINT_DIR / weights_file)
        return model
    weights = Path(cfg.weights).expanduser() if cfg.weights else None
    if weights and weights.is_dir() and not (weights / BACKBONE_INFO).is_file():  # another bundle's backbone
        return B.copy_backbone(DeviseModel(weights=None, **common), cfg.weights)
    return DeviseModel(weights=cfg.weights, **common)


def _start_bundle(out: Path, cfg, vocab, provenance, train, val) -> None:
    """Give the (empty) output folder its vocab.h5 and config.json in one rename.

    Written one after the other in place, a kill between the two would leave a folder
    that neither ``--resume`` (no config.json) nor a fresh start (not empty) accepts.
    Both files are written into a hidden staging folder beside ``out`` instead, which
    then replaces the empty ``out``; stagings left by a killed run are removed first.
    """
    import os
    import shutil

    for stale in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    stage = staging_folder(out)
    try:
        vocab.save(stage / B.VOCAB_FILE)
        _write_config(stage, cfg, vocab, provenance, train, val, complete=False)
        if out.is_dir():
            out.rmdir()  # prepare_output left it empty; a kill right here leaves no folder: a fresh start works
        os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _mark_done(ctx: RunContext, step: str) -> None:
    """Save the full model after ``step``, then record it (older step weights are removed).

    A step that left a non-finite weight is not recorded: the error names it, and the
    previous step's checkpoint stays the one ``--resume`` starts from.
    """
    from models.training.callbacks import nonfinite_weights
    from models.training.phases import not_finite

    bad = nonfinite_weights(ctx.model)
    if bad:
        not_finite(step, None, bad)
    name = f"after-{step}.weights.h5"
    save_weights_atomic(ctx.model, ctx.ckpt / name)
    state = load_state(ctx.state_path)
    old = state.get("weights")
    state["done"] = sorted(set(state.get("done", [])) | {step}, key=STEPS.index)
    state["weights"] = name
    save_state(ctx.state_path, state)
    if old and old != name:
        (ctx.ckpt / old).unlink(missing_ok=True)
    remove_backup(ctx.ckpt / f"backup-{step}")


def _write_config(out, cfg, vocab, provenance, train, val, *, complete, log=None, best=None, seconds=None,
                  softmax_trained=False, recipe=None) -> None:
    import keras

    from wordnet.base.version import __version__

    config = {
        "complete": complete,
        "softmax_trained": softmax_trained,
        "backbone": cfg.backbone,
        "image_size": cfg.image_size,
        "preprocessing": B.preprocessing_entry(recipe) if recipe else None,
        "embedding_dim": vocab.dim,
        "classes": len(vocab),
        "hyperparameters": cfg.to_dict(),
        "provenance": provenance or {},
        "vocabulary": {k: v for k, v in vocab.attrs.items() if isinstance(v, (str, int, float, bool))},
        "data": {"train_images": len(train), "val_images": len(val),
                 "failed_images": len(log) if log is not None else 0,
                 "failures": [{"path": p, "reason": r} for p, r in (log.items() if log else [])][:1000]},
        "best": best,
        "seconds": {k: round(v, 2) for k, v in (seconds or {}).items()},
        "versions": {"devise": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
                     **engine_versions(), "numpy": np.__version__},
    }
    B.write_config(out, config)


def engine_versions() -> dict:
    """``{engine: version}`` of the Keras backend that trained (tensorflow, jax or torch)."""
    import importlib

    import keras

    name = keras.backend.backend()
    try:
        return {name: importlib.import_module(name).__version__}
    except (ImportError, AttributeError):  # pragma: no cover - numpy/openvino backends
        return {}
