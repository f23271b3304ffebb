"""Fine-tuning step speed of the DeViSE model vs a plain ``model.fit``, on any Keras backend.

Why: ``devise train``'s phase 2 trains the whole network with the hinge rank loss. This
script measures what our model code (DeviseModel, HingeRankLoss, HitAtK) costs against
the cheapest stock equivalent: the same ``keras.applications`` backbone and head layers
trained with Keras's own cosine-similarity loss. Both read the same in-memory batches,
so input decoding is out of the picture (``predict_throughput.py`` covers decoding).

It needs no TensorFlow: with ``KERAS_BACKEND=jax`` (or ``torch``) it runs where only
that framework is installed, e.g. a GPU machine, and it checks that a DeviseModel
saved there reloads with identical outputs. Figures: benchmarks/README.md.

    KERAS_BACKEND=jax python benchmarks/backend_fit.py --backbone resnet50 --image-size 224 --batch 128
    python benchmarks/backend_fit.py --backbone mobilenet_v2 --alpha 0.5 --image-size 64 --steps 10
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class StepTimer:
    """Keras callback: wall time of every epoch after the first (the first one compiles)."""

    def __init__(self):
        import keras

        class _CB(keras.callbacks.Callback):
            def __init__(cb):
                super().__init__()
                cb.times = []

            def on_epoch_begin(cb, epoch, logs=None):
                cb.t0 = time.perf_counter()

            def on_epoch_end(cb, epoch, logs=None):
                cb.times.append(time.perf_counter() - cb.t0)

        self.callback = _CB()


def plain_model(args, dim: int):
    """keras.applications backbone + the same head layers, nothing of ours."""
    import keras

    from models.net.backbones import build_backbone

    options = {"alpha": args.alpha} if args.alpha else {}
    net = build_backbone(args.backbone, args.image_size, weights=None, options=options)
    inputs = keras.Input((args.image_size, args.image_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Dropout(0.3)(net(x)))
    x = keras.layers.BatchNormalization()(keras.layers.Dense(1024, activation="relu")(x))
    out = keras.layers.UnitNormalization(dtype="float32")(keras.layers.Dense(dim, dtype="float32")(x))
    return keras.Model(inputs, out)


def fit_rate(model, x, y, args) -> float:
    timer = StepTimer()
    model.fit(x, y, batch_size=args.batch, epochs=1 + args.epochs, verbose=0, callbacks=[timer.callback])
    return len(x) * args.epochs / sum(timer.callback.times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="steps per timed epoch")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--dim", type=int, default=300)
    p.add_argument("--mixed-precision", action="store_true")
    args = p.parse_args()

    import keras

    from models.net.devise_model import DeviseModel
    from models.net.losses import HingeRankLoss, HitAtK

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    x = rng.integers(0, 256, (n, args.image_size, args.image_size, 3)).astype("float32")
    labels = rng.integers(0, args.classes, n).astype("int32")
    vectors = rng.normal(size=(args.classes, args.dim)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    keras.utils.set_random_seed(0)
    options = {"alpha": args.alpha} if args.alpha else {}
    devise = DeviseModel(backbone=args.backbone, embedding_dim=args.dim, num_classes=args.classes, weights=None,
                         image_size=args.image_size, backbone_options=options)
    ours = devise.embedder
    ours.compile(optimizer=keras.optimizers.Adagrad(1e-3), loss=HingeRankLoss(vectors),
                 metrics=[HitAtK(vectors, 1), HitAtK(vectors, 5)])
    stock = plain_model(args, args.dim)
    stock.compile(optimizer=keras.optimizers.Adagrad(1e-3), loss=keras.losses.CosineSimilarity())

    rate_stock = fit_rate(stock, x, vectors[labels], args)
    rate_ours = fit_rate(ours, x, labels, args)

    # the model we trained must survive a save/load on this backend
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        devise.save(path)
        again = keras.models.load_model(path)
        probe = x[: min(8, n)]
        a = np.asarray(devise.predict(probe, verbose=0)["embedding"])
        b = np.asarray(again.predict(probe, verbose=0)["embedding"])
        roundtrip = float(np.abs(a - b).max())

    print(f"backend {keras.backend.backend()}  devices {device_names()}")
    print(f"{args.backbone} {args.image_size}px batch {args.batch}, {args.classes} labels x {args.dim} d, "
          f"{n} images/epoch, {args.epochs} timed epochs, mixed precision {args.mixed_precision}")
    print(f"{'model':<40}{'images/s':>12}")
    print(f"{'plain model.fit (cosine loss)':<40}{rate_stock:>12.1f}")
    print(f"{'DeviseModel + HingeRankLoss + HitAtK':<40}{rate_ours:>12.1f}")
    print(f"save/load round trip max |diff| {roundtrip:.2e}")
    print(f"ratio devise/plain = {rate_ours / rate_stock:.3f} (goal >= 0.9)")


def device_names() -> str:
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return ", ".join(str(d) for d in jax.devices())
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        import tensorflow as tf

        return ", ".join(d.name for d in tf.config.list_logical_devices()) or "cpu"
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"unknown ({exc.__class__.__name__})"


if __name__ == "__main__":
    main()
