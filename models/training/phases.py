"""The training phases themselves; :mod:`models.training.train` sequences and records them.

Every phase compiles a view of the one :class:`~models.net.devise_model.DeviseModel` (views share
its layers, so weights flow from phase to phase) and calls ``fit`` with the same set
of callbacks: a finite-weights check (first, so a NaN epoch is never saved), history rows,
best weights by validation hit@1, a SIGKILL-safe ``BackupAndRestore``, ``TerminateOnNaN``,
optional TensorBoard, the reporter's progress, extra callbacks.

No replica of a distribution strategy ever gets an empty batch (Keras layers fail on
one, and a trainable BatchNorm turns the weights NaN): training batches are full
(``drop_remainder``), validation batches are padded with weight-0 copies.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from models import bundle as B
from models.net.losses import HingeRankLoss, HitAtK
from models.training.batchnorm import batchnorm_layers, recompute_batchnorm_statistics
from models.training.callbacks import (
    AtomicBackupAndRestore,
    BestWeights,
    FiniteWeights,
    HistoryRows,
    ReporterCallback,
    load_state,
    nonfinite_weights,
)
from models.training.feature_cache import cache_key, cached_features, weights_digest
from wordnet.base.errors import DeviseError
from wordnet.base.files import atomic_path

PRETRAIN_BN_MOMENTUM = 0.99

BEST_WEIGHTS = "best.weights.h5"
LR_FLAGS = {"pretrain": "--pretrain-lr", "head": "--head-lr", "finetune": "--finetune-lr"}


def _split(items):
    return [str(p) for p, _ in items], np.asarray([int(lbl) for _, lbl in items], dtype=np.int32)


def replicas(ctx) -> int:
    return int(getattr(ctx.strategy, "num_replicas_in_sync", 1))


def not_finite(phase: str, epoch: int | None, names: list[str]):
    """Raise the one-line error for weights that became NaN/infinite (nothing of that epoch was saved)."""
    where = f"the {phase} phase" + (f" (epoch {epoch})" if epoch else "")
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    advice = (f"--resume retries from the last good checkpoint with the stored settings, or start again with a "
              f"lower {LR_FLAGS[phase]} (--overwrite)") if phase in LR_FLAGS else "retrain with --overwrite"
    raise DeviseError(f"training produced non-finite weights in {where}: {shown}; nothing after the last good "
                      f"checkpoint was kept; {advice}")


def _callbacks(ctx, phase: str, epochs: int, steps: int, monitor: str | None, data=None):
    import keras

    cbs = [FiniteWeights(ctx.model, phase, not_finite), HistoryRows(ctx.out / B.HISTORY_FILE, phase)]
    if monitor and ctx.val:
        cbs.append(BestWeights(ctx.model, ctx.ckpt / BEST_WEIGHTS, ctx.state_path, phase, monitor))
    cbs.append(AtomicBackupAndRestore(ctx.ckpt / f"backup-{phase}", data))  # data: its random draws, resumed
    cbs.append(keras.callbacks.TerminateOnNaN())
    if ctx.cfg.tensorboard:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(Path(ctx.cfg.tensorboard) / phase)))
    cbs.append(ReporterCallback(ctx.reporter, phase, epochs, steps))
    return cbs + list(ctx.extra_callbacks)


def _compile(ctx, model, **kwargs) -> None:
    cfg = ctx.cfg
    with ctx.strategy.scope():
        model.compile(run_eagerly=cfg.run_eagerly, steps_per_execution=cfg.steps_per_call(), jit_compile=cfg.jit(),
                      **kwargs)


def _fit(ctx, model, phase: str, x, *, epochs: int, steps: int, monitor: str | None = None, **kwargs):
    import warnings

    callbacks = _callbacks(ctx, phase, epochs, steps, monitor, data=x)
    with ctx.inputs.fitting(model, x, kwargs.get("validation_data")) as first, warnings.catch_warnings():
        # our datasets end each epoch by design (their length is not known ahead)
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(x, epochs=epochs, callbacks=first + callbacks, verbose=0, shuffle=False, **kwargs)
    losses = history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        shutil.rmtree(ctx.ckpt / f"backup-{phase}", ignore_errors=True)  # never resume from NaN weights
        raise DeviseError(f"the loss became NaN in the {phase} phase; start again with a lower {LR_FLAGS[phase]} "
                          f"(--overwrite)")
    return history


def _hinge(ctx):
    return HingeRankLoss(ctx.vocab.vectors, margin=ctx.cfg.margin, variant=ctx.cfg.loss, seed=ctx.cfg.seed)


def _hits(ctx):
    return [HitAtK(ctx.vocab.vectors, k) for k in ctx.cfg.top_k]


def batch_for(ctx, n: int, what: str = "training") -> int:
    """The global batch for ``n`` usable images: ``--batch-size``, or fewer when there are not that many.

    Training batches are full batches only, so a set smaller than the batch would train
    on nothing: the batch shrinks to the largest multiple of the replica count that fits
    (said once). A set smaller than the number of replicas is an error.
    """
    batch, r = ctx.cfg.batch_size, replicas(ctx)
    if n >= batch:
        return batch
    if n < r:
        raise DeviseError(f"the {what} set has {n} usable image(s), fewer than the {r} devices of the "
                          f"distribution strategy; add images or use --strategy one")
    smaller = n // r * r
    ctx.reporter.message(f"{n} {what} images: batch size {smaller} instead of {batch}")
    return smaller


def _usable(ctx, items) -> int:
    return sum(1 for p, _ in items if str(p) not in ctx.log)


def _train_images(ctx):
    paths, labels = _split(ctx.train)
    cfg = ctx.cfg
    return ctx.inputs.training(paths, labels, size=cfg.image_size, batch_size=batch_for(ctx, _usable(ctx, ctx.train)),
                               log=ctx.log, recipe=ctx.recipe, augment=cfg.augment, seed=cfg.seed, style=cfg.style,
                               headers=ctx.headers["train"])


def _val_images(ctx):
    if not ctx.val:
        return None
    paths, labels = _split(ctx.val)
    return ctx.inputs.evaluation(paths, labels, size=ctx.cfg.image_size, batch_size=ctx.cfg.batch_size, log=ctx.log,
                                 recipe=ctx.recipe, headers=ctx.headers["val"])


def pretrain(ctx) -> None:
    """Phase 0: softmax classification over the training classes, whole network."""
    import keras

    cfg = ctx.cfg
    ctx.reporter.message(f"phase 0: softmax pre-training, {cfg.pretrain_epochs} epoch(s)")
    model = ctx.model.classifier
    lr = cfg.pretrain_lr
    if cfg.pretrain_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(cfg.pretrain_lr, cfg.pretrain_epochs * ctx.steps(len(ctx.train)))
    _compile(ctx, model, optimizer=keras.optimizers.Adam(lr),
             loss=keras.losses.SparseCategoricalCrossentropy(), weighted_metrics=["accuracy"])
    # keras.applications BatchNorm momentum is 0.999: after a short phase 0 the moving
    # statistics are still mostly their initial values, so validation (inference mode)
    # sits at chance while training accuracy climbs. 0.99 forgets the start in a few
    # hundred steps; the original momentum is restored for later phases and the bundle.
    momenta = [(layer, layer.momentum) for layer in batchnorm_layers(ctx.model.backbone)]
    for layer, momentum in momenta:
        layer.momentum = min(momentum, PRETRAIN_BN_MOMENTUM)
    try:
        _fit(ctx, model, "pretrain", _train_images(ctx), validation_data=_val_images(ctx),
             epochs=cfg.pretrain_epochs, steps=ctx.steps(len(ctx.train)))
    finally:
        for layer, momentum in momenta:
            layer.momentum = momentum


def batchnorm(ctx) -> None:
    """Recompute the backbone's BatchNorm statistics on clean training images (evaluation view)."""
    cfg = ctx.cfg
    bad = nonfinite_weights(ctx.model)
    if bad:
        not_finite(ctx.last_phase or "BatchNorm recomputation", None, bad)
    paths, _ = _split(ctx.train)
    chosen = np.arange(len(paths))
    if cfg.bn_images < len(paths):
        chosen = np.sort(np.random.default_rng(cfg.seed).choice(len(paths), size=cfg.bn_images, replace=False))
    headers = ctx.headers["train"]
    sample = headers.subset(chosen)
    chosen_paths = [paths[i] for i in chosen]
    images = [x for x, _ in ctx.inputs.inference(chosen_paths, cfg.image_size, 64, log=ctx.log, recipe=ctx.recipe,
                                                 headers=sample)]
    images = np.concatenate(images) if images else np.zeros((0, cfg.image_size, cfg.image_size, 3), np.uint8)
    headers.kinds[chosen] = sample.kinds  # files found to need PIL stay marked
    batches = recompute_batchnorm_statistics(ctx.model.feature_extractor, images,
                                             batch_size=max(16, min(cfg.batch_size, 128)))
    ctx.reporter.message(f"BatchNorm statistics recomputed on {len(images)} training images ({batches} batches)")
    bad = nonfinite_weights(ctx.model)
    if bad:
        not_finite("BatchNorm recomputation", None, bad)


def _features(ctx, items, name: str, digest: str, *, shuffle: bool, extractor=None):
    cfg, model = ctx.cfg, ctx.model
    paths, labels = _split(items)
    which = "val" if name == "val" else "train"
    key = cache_key(model.get_config(), digest, ctx.manifests[which], cfg.image_size, ctx.recipe)
    update = ctx.reporter.task(f"features ({name})", len(paths))
    cache = cached_features(extractor or model.feature_extractor, paths, inputs=ctx.inputs, image_size=cfg.image_size,
                            batch_size=cfg.batch_size, cache_dir=ctx.ckpt / "features", name=name, key=key,
                            log=ctx.log, recipe=ctx.recipe, headers=ctx.headers[which], strategy=ctx.strategy,
                            shuffle_seed=cfg.seed if shuffle else None, progress=update)
    return cache, labels


def head(ctx) -> None:
    """Phase 1: frozen backbone, cached pooled features, DeViSE + softmax heads with SGD."""
    import keras

    cfg = ctx.cfg
    ctx.model.backbone.trainable = False
    ctx.reporter.message(f"phase 1: head on cached features, {cfg.head_epochs} epoch(s)")
    digest = weights_digest(ctx.model.backbone)  # once: hashing every backbone weight is not free
    extractor = ctx.model.feature_extractor  # one view for both passes: its traced step is reused
    cache, labels = _features(ctx, ctx.train, "train", digest, shuffle=True, extractor=extractor)
    if cache.rows == 0:
        raise DeviseError("no training image could be decoded")
    batch = batch_for(ctx, cache.rows)
    train = ctx.inputs.feature_stream(cache, labels, batch, shuffle=True, seed=cfg.seed, drop_remainder=True)
    val = None
    if ctx.val:
        vcache, vlabels = _features(ctx, ctx.val, "val", digest, shuffle=False, extractor=extractor)
        if vcache.rows:
            val = ctx.inputs.feature_stream(vcache, vlabels, cfg.batch_size, shuffle=False, weights=True)
    model = ctx.model.head_on_features()
    _compile(ctx, model, optimizer=keras.optimizers.SGD(cfg.head_lr, momentum=cfg.momentum),
             loss={"embedding": _hinge(ctx), "probs": keras.losses.SparseCategoricalCrossentropy()},
             weighted_metrics={"embedding": _hits(ctx)})
    _fit(ctx, model, "head", train, validation_data=val, epochs=cfg.head_epochs, steps=cache.rows // batch,
         monitor="val_hit_at_1")


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
    _compile(ctx, model, optimizer=keras.optimizers.Adagrad(cfg.finetune_lr), loss=_hinge(ctx),
             weighted_metrics=_hits(ctx))
    _fit(ctx, model, "finetune", _train_images(ctx), validation_data=_val_images(ctx),
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
    cache, labels = _features(ctx, ctx.train, "train-final", weights_digest(model.backbone), shuffle=True)
    if cache.rows == 0:
        return
    batch = batch_for(ctx, cache.rows)
    feats = keras.Input((model.feature_dim,), name="features")
    dropped = keras.layers.Dropout(cfg.dropout)(feats)
    softmax = keras.Model(feats, {"probs": model.get_layer("probs")(dropped)}, name="softmax_head")
    _compile(ctx, softmax, optimizer=keras.optimizers.SGD(cfg.head_lr, momentum=cfg.momentum),
             loss={"probs": keras.losses.SparseCategoricalCrossentropy()})
    import warnings

    data = ctx.inputs.feature_stream(cache, labels, batch, shuffle=True, seed=cfg.seed, drop_remainder=True,
                                     outputs=("probs",))
    with ctx.inputs.fitting(softmax, data, None) as first, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        softmax.fit(data, epochs=max(1, cfg.head_epochs), verbose=0, shuffle=False, callbacks=first)
    bad = nonfinite_weights(ctx.model)
    if bad:
        not_finite("head", None, bad)


def finish(ctx) -> dict | None:
    """Restore the best weights, fix BatchNorm statistics if they were trained, refit the softmax
    head if the backbone was fine-tuned, check every weight is finite, write model.keras."""
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
    bad = nonfinite_weights(ctx.model)
    if bad:
        not_finite(ctx.last_phase or "head", None, bad)
    ctx.model.trainable = True
    with atomic_path(ctx.out / B.MODEL_FILE) as tmp:
        ctx.model.save(tmp)
    return best


PHASES = {"pretrain": pretrain, "batchnorm": batchnorm, "head": head, "finetune": finetune}
