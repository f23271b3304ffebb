"""``devise pretrain``'s engine: phase 0 (softmax over a pool's classes) alone, written as a backbone.

The paper's step 1 is a visual model pre-trained on many classes disjoint from the zero-shot
ones. This runs :mod:`models.training.train`'s own phase-0 and BatchNorm steps (same
callbacks: history rows, SIGKILL-safe backups, the output lock, ``--resume``) on a pool whose
classes are plain names, not WordNet nouns, then writes the backbone alone::

    backbone.weights.h5   the keras.applications backbone's weights (no top): --weights FOLDER loads it
    backbone.json         provenance: backbone, options, image size, pool, classes, epochs, sha256
    config.json           settings and classes (``complete`` once backbone.json is written)
    history.csv           one row per epoch (loss, accuracy, val accuracy, seconds)
    checkpoints/          per-epoch backups and step weights while it runs

The classifier used for training is a :class:`~models.net.devise_model.DeviseModel` with a
vestigial DeViSE head (1 unit): its softmax view is phase 0's model, so nothing about
training is re-implemented here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from models import bundle as B
from models.net.catalog import BACKBONE_FILE, BACKBONE_FORMAT, BACKBONE_INFO
from models.training.callbacks import read_history, save_weights_atomic
from models.training.config import TrainConfig
from models.training.reporter import Reporter
from wordnet.base.errors import DatasetError, DeviseError
from wordnet.base.files import atomic_write, exclusive_lock, lock_path_for, sha256_file

STEPS = ("pretrain", "batchnorm")
_VESTIGIAL = 1  # units of the unused DeViSE head (embedding and hidden layer)


@dataclass
class PretrainResult:
    path: Path
    train_images: int
    val_images: int
    classes: int
    info: dict = field(default_factory=dict)  # backbone.json
    failures: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of the weights file (``backbone.json`` records it)."""
    return sha256_file(path).hexdigest()


def pretrain_backbone(items: Sequence[tuple[Path, int]], classes: Sequence[str], output: str | Path,
                      cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                      provenance: dict | None = None, reporter: Reporter | None = None,
                      callbacks: list | None = None) -> PretrainResult:
    """Train ``cfg.pretrain_epochs`` of softmax over ``classes`` on ``items`` ((path, class index)) and write
    the backbone folder ``output``. With ``resume`` the stored settings and classes are used."""
    reporter = reporter or Reporter()
    out = Path(output).expanduser()
    cfg = cfg.validate()
    if cfg.pretrain_epochs < 1:
        raise DeviseError("pre-training needs --epochs of at least 1")
    with exclusive_lock(lock_path_for(out), f"output folder {out}"):
        return _pretrain_locked(list(items), list(classes), out, cfg, resume=resume, overwrite=overwrite,
                                provenance=provenance or {}, reporter=reporter, callbacks=callbacks)


def _pretrain_locked(items, classes, out: Path, cfg: TrainConfig, *, resume, overwrite, provenance, reporter,
                     callbacks) -> PretrainResult:
    from models.data.datasets import stratified_split
    from models.data.failures import FailureLog
    from models.training.train import (
        RunContext,
        build_or_restore,
        check_items,
        check_style_supported,
        count_failed,
        open_output,
        run_scope,
        run_steps,
        scan_inputs,
    )

    out, stored = open_output(out, resume=resume, overwrite=overwrite, kind="backbone")
    if resume:
        cfg = TrainConfig.from_dict(stored["hyperparameters"]).with_runtime_of(cfg).validate()
        if list(stored["classes"]) != list(classes):
            raise DatasetError(f"{out}: the pool's classes differ from the run's ({len(classes)} vs "
                               f"{len(stored['classes'])}); resume with the same pool")
        provenance = stored.get("provenance", provenance)
        reporter.message(f"resuming {out} with its stored settings")
    check_items(items, len(classes), what="pool")
    train, val = stratified_split(items, cfg.val_split, cfg.seed)
    if not resume:
        check_style_supported(cfg)
        _write_config(out, cfg, classes, provenance, complete=False)
    log = FailureLog(on_new=reporter.failure)
    seconds: dict[str, float] = {}
    headers, manifests, recipe = scan_inputs(out, cfg, train, val, reporter)
    with run_scope(cfg) as strategy:
        model = build_or_restore(cfg, out, embedding_dim=_VESTIGIAL, num_classes=len(classes),
                                 hidden_units=_VESTIGIAL)
        ctx = RunContext(cfg, out, model, train, val, log, reporter, list(callbacks or []), strategy,
                         recipe=recipe, headers=headers, manifests=manifests)
        run_steps(ctx, STEPS, seconds)
    info = _write_backbone(out, model, cfg, classes, provenance, train, val, log, recipe)
    _write_config(out, cfg, classes, provenance, complete=True)
    return PretrainResult(out, len(train) - count_failed(train, log), len(val) - count_failed(val, log),
                          len(classes), info, log.items(), seconds)


def _write_config(out: Path, cfg: TrainConfig, classes, provenance, *, complete: bool) -> None:
    B.write_config(out, {"kind": "backbone", "complete": complete, "backbone": cfg.backbone,
                         "image_size": cfg.image_size, "hyperparameters": cfg.to_dict(),
                         "classes": list(classes), "provenance": provenance})


def _write_backbone(out: Path, model, cfg: TrainConfig, classes, provenance, train, val, log, recipe: str) -> dict:
    import keras

    from models.training.train import engine_versions
    from wordnet.base.version import __version__

    save_weights_atomic(model.backbone, out / BACKBONE_FILE)
    history = [r for r in read_history(out / B.HISTORY_FILE) if r["phase"] == "pretrain"]
    last = history[-1] if history else {}

    def number(key):
        try:
            return round(float(last[key]), 4)
        except (KeyError, ValueError):
            return None

    info = {
        "format": BACKBONE_FORMAT, "format_version": 1,
        "backbone": cfg.backbone, "options": cfg.backbone_options(), "image_size": cfg.image_size,
        "weights_file": BACKBONE_FILE, "sha256": sha256_of(out / BACKBONE_FILE),
        "bytes": (out / BACKBONE_FILE).stat().st_size,
        "classes": len(classes), "class_names": list(classes),
        "pool": provenance,
        "training": {
            "epochs": cfg.pretrain_epochs, "epochs_done": len(history), "lr": cfg.pretrain_lr,
            "schedule": cfg.pretrain_schedule, "batch_size": cfg.batch_size, "augment": cfg.augment,
            "augmentation": recipe, "style": cfg.style, "seed": cfg.seed, "initial_weights": cfg.weights,
            "dropout": cfg.dropout,
            "bn_images": cfg.bn_images, "train_images": len(train), "val_images": len(val),
            "failed_images": len(log), "accuracy": number("accuracy"), "val_accuracy": number("val_accuracy"),
            "seconds": round(sum(float(r.get("seconds") or 0) for r in history), 1),
        },
        "versions": {"devise": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
                     **engine_versions()},
    }
    with atomic_write(out / BACKBONE_INFO, encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
        fh.write("\n")
    return info
