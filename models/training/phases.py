"""The training phases themselves; :mod:`models.training.train` sequences and records them.

Every phase compiles a view of the one :class:`~models.net.devise_model.DeviseModel` (views share
its layers, so weights flow from phase to phase) and calls ``fit`` with the same set
of callbacks: history rows, best weights by validation hit@1, a SIGKILL-safe ``BackupAndRestore``,
``TerminateOnNaN``, optional TensorBoard, the reporter's progress, extra callbacks.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from models import bundle as B
from models.data.pipeline import decode_all, image_dataset
from models.net.losses import HingeRankLoss, HitAtK
from models.training.batchnorm import batchnorm_layers, recompute_batchnorm_statistics
from models.training.callbacks import AtomicBackupAndRestore, BestWeights, HistoryRows, ReporterCallback, load_state
from models.training.features import cache_key, cached_features, inference_function, weights_digest
from wordnet.base.errors import DeviseError
from wordnet.base.files import atomic_path

PRETRAIN_BN_MOMENTUM = 0.99

BEST_WEIGHTS = "best.weights.h5"


def _split(items):
    return [p for p, _ in items], np.asarray([int(lbl) for _, lbl in items], dtype=np.int32)


def _callbacks(ctx, phase: str, epochs: int, steps: int, monitor: str | None):
    import keras

    cbs = [HistoryRows(ctx.out / B.HISTORY_FILE, phase)]
    if monitor and ctx.val:
        cbs.append(BestWeights(ctx.model, ctx.ckpt / BEST_WEIGHTS, ctx.state_path, phase, monitor))
    cbs.append(AtomicBackupAndRestore(ctx.ckpt / f"backup-{phase}"))
    cbs.append(keras.callbacks.TerminateOnNaN())
    if ctx.cfg.tensorboard:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(Path(ctx.cfg.tensorboard) / phase)))
    cbs.append(ReporterCallback(ctx.reporter, phase, epochs, steps))
    return cbs + list(ctx.extra_callbacks)


def _fit(ctx, model, phase: str, x, *, epochs: int, steps: int, monitor: str | None = None, **kwargs):
    history = model.fit(x, epochs=epochs, callbacks=_callbacks(ctx, phase, epochs, steps, monitor), verbose=0, **kwargs)
    losses = history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        shutil.rmtree(ctx.ckpt / f"backup-{phase}", ignore_errors=True)  # never resume from NaN weights
        lr_flag = {"pretrain": "--pretrain-lr", "head": "--head-lr", "finetune": "--finetune-lr"}[phase]
        raise DeviseError(f"the loss became NaN in the {phase} phase; lower {lr_flag} and rerun with --resume")
    return history


def _hinge(ctx):
    return HingeRankLoss(ctx.vocab.vectors, margin=ctx.cfg.margin, variant=ctx.cfg.loss, seed=ctx.cfg.seed)


def _hits(ctx):
    return [HitAtK(ctx.vocab.vectors, k) for k in ctx.cfg.top_k]


def _images(ctx, items, *, train: bool):
    paths, labels = _split(items)
    augment = train and ctx.cfg.augment
    return image_dataset(paths, labels, ctx.cfg.image_size, ctx.cfg.batch_size, log=ctx.log,
                         shuffle=train, augment=augment, seed=ctx.cfg.seed, style=ctx.cfg.style if augment else None)


def pretrain(ctx) -> None:
    """Phase 0: softmax classification over the training classes, whole network."""
    import keras

    cfg = ctx.cfg
    ctx.reporter.message(f"phase 0: softmax pre-training, {cfg.pretrain_epochs} epoch(s)")
    model = ctx.model.classifier
    lr = cfg.pretrain_lr
    if cfg.pretrain_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(cfg.pretrain_lr, cfg.pretrain_epochs * ctx.steps(len(ctx.train)))
    with ctx.strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"],
                      run_eagerly=cfg.run_eagerly)
    val = _images(ctx, ctx.val, train=False) if ctx.val else None
    # keras.applications BatchNorm momentum is 0.999: after a short phase 0 the moving
    # statistics are still mostly their initial values, so validation (inference mode)
    # sits at chance while training accuracy climbs. 0.99 forgets the start in a few
    # hundred steps; the original momentum is restored for later phases and the bundle.
    momenta = [(layer, layer.momentum) for layer in batchnorm_layers(ctx.model.backbone)]
    for layer, momentum in momenta:
        layer.momentum = min(momentum, PRETRAIN_BN_MOMENTUM)
    try:
        _fit(ctx, model, "pretrain", _images(ctx, ctx.train, train=True), validation_data=val,
             epochs=cfg.pretrain_epochs, steps=ctx.steps(len(ctx.train)))
    finally:
        for layer, momentum in momenta:
            layer.momentum = momentum


def batchnorm(ctx) -> None:
    """Recompute the backbone's BatchNorm statistics on clean training images."""
    cfg = ctx.cfg
    paths, _ = _split(ctx.train)
    images = decode_all(paths, cfg.image_size, ctx.log, limit=cfg.bn_images, seed=cfg.seed)
    batches = recompute_batchnorm_statistics(ctx.model.feature_extractor, images,
                                             batch_size=max(16, min(cfg.batch_size, 128)))
    ctx.reporter.message(f"BatchNorm statistics recomputed on {len(images)} training images ({batches} batches)")


def _features(ctx, items, name: str, infer, digest: str):
    cfg, model = ctx.cfg, ctx.model
    paths, labels = _split(items)
    key = cache_key(model.get_config(), digest, [str(p) for p in paths], cfg.image_size)
    update = ctx.reporter.task(f"features ({name})", len(paths))
    feats, idx = cached_features(model.feature_extractor, paths, image_size=cfg.image_size,
                                 batch_size=cfg.batch_size, cache_dir=ctx.ckpt / "features", name=name,
                                 key=key, log=ctx.log, progress=update, infer=infer)
    return feats, labels[idx]


def head(ctx) -> None:
    """Phase 1: frozen backbone, cached pooled features, DeViSE + softmax heads with SGD."""
    import keras

    cfg = ctx.cfg
    ctx.model.backbone.trainable = False
    ctx.reporter.message(f"phase 1: head on cached features, {cfg.head_epochs} epoch(s)")
    infer = inference_function(ctx.model.feature_extractor)
    digest = weights_digest(ctx.model.backbone)  # once: hashing every backbone weight is not free
    x, y = _features(ctx, ctx.train, "train", infer, digest)
    if len(x) == 0:
        raise DeviseError("no training image could be decoded")
    val = None
    if ctx.val:
        vx, vy = _features(ctx, ctx.val, "val", infer, digest)
        val = (vx, {"embedding": vy, "probs": vy}) if len(vx) else None
    model = ctx.model.head_on_features()
    with ctx.strategy.scope():
        model.compile(optimizer=keras.optimizers.SGD(cfg.head_lr, momentum=cfg.momentum),
                      loss={"embedding": _hinge(ctx), "probs": keras.losses.SparseCategoricalCrossentropy()},
                      metrics={"embedding": _hits(ctx)}, run_eagerly=cfg.run_eagerly)
    _fit(ctx, model, "head", x, y={"embedding": y, "probs": y}, validation_data=val, batch_size=cfg.batch_size,
         shuffle=True, epochs=cfg.head_epochs, steps=ctx.steps(len(x)), monitor="val_hit_at_1")


def finetune(ctx) -> None:
    """Phase 2: everything trainable (BatchNorm frozen unless train_batchnorm), Adagrad."""
    import keras

    cfg = ctx.cfg
    ctx.model.backbone.trainable = True
    if not cfg.train_batchnorm:
        for layer in batchnorm_layers(ctx.model.backbone):
            layer.trainable = False
    ctx.reporter.message(f"phase 2: fine-tuning the whole network, {cfg.finetune_epochs} epoch(s)")
    model = ctx.model.embedder
    with ctx.strategy.scope():
        model.compile(optimizer=keras.optimizers.Adagrad(cfg.finetune_lr), loss=_hinge(ctx), metrics=_hits(ctx),
                      run_eagerly=cfg.run_eagerly)
    val = _images(ctx, ctx.val, train=False) if ctx.val else None
    _fit(ctx, model, "finetune", _images(ctx, ctx.train, train=True), validation_data=val,
         epochs=cfg.finetune_epochs, steps=ctx.steps(len(ctx.train)), monitor="val_hit_at_1")


def refit_softmax(ctx) -> None:
    """Refit the softmax head on the fine-tuned backbone's features (phase 2 trains only the DeViSE head).

    Without this the softmax and ConSE baselines would score features the softmax
    layer was never trained on. Costs one feature pass plus ``head_epochs`` cheap epochs.
    """
    import keras

    cfg, model = ctx.cfg, ctx.model
    ctx.reporter.message("refitting the softmax head on the fine-tuned backbone's features")
    model.backbone.trainable = False
    x, y = _features(ctx, ctx.train, "train-final", inference_function(model.feature_extractor),
                     weights_digest(model.backbone))
    feats = keras.Input((model.feature_dim,), name="features")
    dropped = keras.layers.Dropout(cfg.dropout)(feats)
    softmax = keras.Model(feats, model.get_layer("probs")(dropped), name="softmax_head")
    softmax.compile(optimizer=keras.optimizers.SGD(cfg.head_lr, momentum=cfg.momentum),
                    loss=keras.losses.SparseCategoricalCrossentropy(), run_eagerly=cfg.run_eagerly)
    softmax.fit(x, y, batch_size=cfg.batch_size, epochs=max(1, cfg.head_epochs), shuffle=True, verbose=0)


def finish(ctx) -> dict | None:
    """Restore the best weights, fix BatchNorm statistics if they were trained, refit the softmax
    head if the backbone was fine-tuned, write model.keras."""
    state = load_state(ctx.state_path)
    best = state.get("best")
    best_path = ctx.ckpt / BEST_WEIGHTS
    if best and best_path.is_file():
        ctx.model.load_weights(best_path)
        ctx.reporter.message(
            f"best weights: {best['phase']} epoch {best['epoch']} (val hit@1 {best['value'] * 100:.1f}%)")
    if ctx.cfg.finetune_epochs and ctx.cfg.train_batchnorm and ctx.cfg.bn_images:
        batchnorm(ctx)
    softmax_trained = ctx.cfg.pretrain_epochs or ctx.cfg.head_epochs
    if ctx.cfg.finetune_epochs and softmax_trained and (best is None or best["phase"] == "finetune"):
        refit_softmax(ctx)
    ctx.model.trainable = True
    with atomic_path(ctx.out / B.MODEL_FILE) as tmp:
        ctx.model.save(tmp)
    return best


PHASES = {"pretrain": pretrain, "batchnorm": batchnorm, "head": head, "finetune": finetune}
