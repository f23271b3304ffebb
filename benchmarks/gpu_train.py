"""``devise train``'s phase 2 on the JAX backend, synthetic JPEGs, vs a plain ``model.fit`` on in-memory batches.

Why: the GPU machines this project can borrow have JAX and PyTorch but no TensorFlow, so
``devise train`` reads its images through the TF-free input path there (PIL in PyDataset
worker processes, :mod:`models.data.pydataset`). This measures what that costs: phase-2
images/s of the real engine (:func:`models.training.train.train_devise`: decoding,
augmentation, the DeViSE model, hinge rank loss, callbacks, backups) against the same
compiled model fitted on uint8 batches already in memory, for ``--steps-per-execution``
1 and 32 and several decoding process counts. Ratios are printed side by side; no
figure is claimed until this has run on a GPU. Needs numpy, pillow, h5py, keras, jax,
rich (no TensorFlow, no NLTK or gensim: the vocabulary is synthetic).

    KERAS_BACKEND=jax python benchmarks/gpu_train.py --images 4096 --batch 128          # a GPU machine
    KERAS_BACKEND=jax python benchmarks/gpu_train.py --backbone mobilenet_v2 --alpha 0.35 --image-size 32 \\
        --images 64 --batch 16 --workers 1 --spe 1 --epochs 2                                # a CPU smoke run
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_jpegs(folder: Path, n: int, classes: int, size: tuple[int, int], seed: int = 0) -> list[tuple[Path, int]]:
    """``n`` JPEGs of ``size`` (w, h): smooth random colour fields, a class-dependent tint."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    items = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        label = i % classes
        low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        low[..., label % 3] = 40 + (200 * label) // max(1, classes - 1)
        path = folder / f"{i:06d}.jpg"
        if not path.exists():
            Image.fromarray(low).resize(size, Image.Resampling.BILINEAR).save(path, quality=90)
        items.append((path, label))
    return items


def synthetic_vocab(classes: int, dim: int, seed: int = 0):
    from wordnet.vocab import Vocabulary

    rng = np.random.default_rng(seed)
    ids = [f"n{90000000 + i}" for i in range(classes)]
    return Vocabulary(ids, [f"class{i}.n.01" for i in range(classes)], [f"class {i}" for i in range(classes)],
                      [""] * classes, rng.normal(size=(classes, dim)).astype(np.float32))


def devise_rate(items, vocab, args, workers: int, spe: int, out: Path) -> float:
    """Phase-2 images/s of train_devise: the mean over epochs after the first (which compiles)."""
    from models.training.config import TrainConfig
    from models.training.train import train_devise

    cfg = TrainConfig(backbone=args.backbone, alpha=args.alpha, weights="none", image_size=args.image_size,
                      batch_size=args.batch, val_split=0.0, pretrain_epochs=0, bn_images=0, head_epochs=0,
                      finetune_epochs=args.epochs, augmentation="inception", decode_workers=workers,
                      steps_per_execution=spe, mixed_precision=args.mixed_precision, seed=1)
    train_devise(items, vocab, out, cfg, overwrite=True)
    with open(out / "history.csv", newline="") as fh:
        seconds = [float(r["seconds"]) for r in csv.DictReader(fh)][1:]
    return (len(items) // args.batch * args.batch) / (sum(seconds) / len(seconds))


def plain_rate(vocab, args, spe: int) -> float:
    """The same DeviseModel embedder, loss and optimizer, ``fit`` on in-memory uint8 batches."""
    import keras

    from models.net.devise_model import DeviseModel
    from models.net.losses import HingeRankLoss

    steps = args.images // args.batch
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.batch * min(steps, 8), args.image_size, args.image_size, 3), dtype=np.uint8)
    x = np.concatenate([x] * -(-steps // 8))[:steps * args.batch]
    y = (np.arange(len(x)) % len(vocab)).astype(np.int32)
    options = {"alpha": args.alpha} if args.alpha else {}
    model = DeviseModel(backbone=args.backbone, weights=None, embedding_dim=vocab.dim, num_classes=len(vocab),
                        image_size=args.image_size, backbone_options=options).embedder
    model.compile(optimizer=keras.optimizers.Adagrad(1e-3), loss=HingeRankLoss(vocab.vectors),
                  steps_per_execution=spe)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=0, shuffle=False, callbacks=[Timer()])
    return len(x) / (sum(times[1:]) / len(times[1:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--source-size", default="320x256", help="synthetic JPEG size WxH")
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--epochs", type=int, default=3, help="phase-2 epochs per run (the first compiles, not timed)")
    p.add_argument("--spe", default="1,32", help="--steps-per-execution values")
    p.add_argument("--workers", default="15,8,4,1", help="decoding process counts (with the largest --spe)")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--data", type=Path, default=None, help="keep the synthetic JPEGs here (default: a temp dir)")
    args = p.parse_args()

    import keras

    print(f"keras {keras.__version__}, backend {keras.backend.backend()}", flush=True)
    if keras.backend.backend() == "jax":
        import jax

        print(f"jax {jax.__version__}, devices {jax.devices()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="devise-gpu-check-"))
    w, h = (int(v) for v in args.source_size.split("x"))
    t0 = time.perf_counter()
    items = make_jpegs(args.data or tmp / "images", args.images, args.classes, (w, h))
    print(f"{len(items)} synthetic {w}x{h} JPEGs in {time.perf_counter() - t0:.0f} s", flush=True)
    vocab = synthetic_vocab(args.classes, 300)
    spes = [int(s) for s in args.spe.split(",")]
    workers = [int(s) for s in args.workers.split(",")]
    rows = []
    for spe in spes:
        plain = plain_rate(vocab, args, spe)
        print(f"plain fit, in-memory uint8, spe {spe}: {plain:.0f} img/s", flush=True)
        for n in (workers if spe == max(spes) else workers[:1]):
            rate = devise_rate(items, vocab, args, n, spe, tmp / f"run-{spe}-{n}")
            rows.append((spe, n, rate, plain))
            print(f"devise train phase 2, spe {spe}, {n} decoding processes: {rate:.0f} img/s "
                  f"({rate / plain:.2f}x plain)", flush=True)
    print("\nsteps/exec  decoders  devise img/s  plain img/s  ratio")
    for spe, n, rate, plain in rows:
        print(f"{spe:>10}  {n:>8}  {rate:>12.0f}  {plain:>11.0f}  {rate / plain:>5.2f}")
    print(f"(backbone {args.backbone}, {args.image_size} px, batch {args.batch}, {args.images} images/epoch, "
          f"cpu cores {os.cpu_count()})")


if __name__ == "__main__":  # decoding worker processes (forkserver) import this file as __mp_main__
    main()
