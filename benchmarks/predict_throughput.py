"""Predict throughput (images/s) beside a bare Keras forward pass, same backbone, size and batch.

What ``devise predict`` does per image — decode the file with PIL inside tf.data,
run the bundle's DeViSE model, score a vocabulary (one matrix product + top-k) — is
timed against the bare ``keras.applications`` backbone (and the full DeViSE model)
called with ``predict_on_batch`` on already-decoded uint8 tensors. The ratio tells
how much of the backbone's speed the pipeline keeps. Random weights (weights=None):
speed does not depend on them, and nothing is downloaded.

    python benchmarks/predict_throughput.py                       # mobilenet_v2 + resnet50, 64 px
    python benchmarks/predict_throughput.py --backbones resnet50 --size 224 --images 512
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"img{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def make_bundle(folder: Path, backbone: str, size: int, dim: int, n_labels: int):
    from models.bundle import MODEL_FILE, load_bundle, write_config
    from models.head import build_devise
    from wordnet.vocab import Vocabulary

    rng = np.random.default_rng(1)
    vocab = Vocabulary(wnids=[f"n{i:08d}" for i in range(n_labels)], synsets=[f"l{i}.n.01" for i in range(n_labels)],
                       labels=[f"l{i}" for i in range(n_labels)], definitions=[""] * n_labels,
                       vectors=rng.normal(size=(n_labels, dim)))
    model = build_devise(backbone, embedding_dim=dim, num_classes=n_labels, weights=None, image_size=size)
    folder.mkdir(parents=True)
    model.save(folder / MODEL_FILE)
    vocab.save(folder / "vocab.h5")
    write_config(folder, {"complete": True, "softmax_trained": False})
    return load_bundle(folder)


def timed(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each function, after one warm-up call each.

    The functions are timed round-robin (one call of each per round), so a machine
    whose load changes during the run slows all of them alike and the ratios hold.
    """
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench(backbone: str, args, tmp: Path) -> dict:
    import keras

    from models.backbones import build_backbone
    from models.data import load_image

    paths = sorted((tmp / "images").glob("*.png"))
    bundle = make_bundle(tmp / f"bundle_{backbone}", backbone, args.size, args.dim, args.labels)
    decoded = np.stack([load_image(p, args.size) for p in paths])
    batches = [decoded[i:i + args.batch] for i in range(0, len(decoded), args.batch)]

    def predict():
        out = bundle.run(paths, batch_size=args.batch)
        bundle.vocab.top_k(out.embeddings, 5)

    def devise_forward():
        for b in batches:
            bundle.full.predict_on_batch(b)

    bare = build_backbone(backbone, args.size, weights=None)
    bare_in = keras.Input((args.size, args.size, 3))
    bare_model = keras.Model(bare_in, keras.layers.GlobalAveragePooling2D()(bare(bare_in)))

    def bare_forward():
        for b in batches:
            bare_model.predict_on_batch(b.astype(np.float32))

    n = len(paths)
    secs = timed({"predict": predict, "devise_forward": devise_forward, "bare_forward": bare_forward}, args.repeats)
    return {"backbone": backbone, **{name: n / t for name, t in secs.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="mobilenet_v2,resnet50")
    ap.add_argument("--size", type=int, default=64, help="model input side (px); the PNGs have this size too")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dim", type=int, default=300, help="embedding dimension")
    ap.add_argument("--labels", type=int, default=1000, help="vocabulary size scored by predict")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import os

    import tensorflow as tf

    print(f"devices: {[d.device_type for d in tf.config.list_physical_devices()]}, cpus: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}; {args.images} images of {args.size}px, batch {args.batch}, "
          f"median of {args.repeats} interleaved rounds after a warm-up")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "images").mkdir()
        make_images(tmp / "images", args.images, args.size)
        print(f"{'backbone':<14}{'predict img/s':>15}{'devise fwd img/s':>18}{'bare fwd img/s':>16}{'predict/bare':>14}")
        for name in args.backbones.split(","):
            r = bench(name.strip(), args, tmp)
            print(f"{r['backbone']:<14}{r['predict']:>15.1f}{r['devise_forward']:>18.1f}{r['bare_forward']:>16.1f}"
                  f"{r['predict'] / r['bare_forward']:>14.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
