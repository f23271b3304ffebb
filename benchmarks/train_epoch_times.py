"""Per-epoch times of each `devise train` phase on an emoji-sized generated workload.

Workload: CLASSES classes x PER_CLASS generated PNGs (default 500 x 7 = 3,500) at 64 px,
random 300-d unit label vectors, batch 32, weights none. For each backbone it times
(tracing excluded by a warm-up step; each phase's first-call tracing reported apart):

- BatchNorm recomputation on 1,000 images;
- the phase-1 feature pass (what the cache computes once);
- a phase-1 head epoch on cached features;
- a phase-1 epoch *without* the cache: frozen backbone + head over the images;
- phase-0 and phase-2 epochs, timed over STEPS steps and extrapolated to a full epoch;
- benchmark 4's two ratios: the phase-1 head epoch on cached features vs recomputing the
  frozen backbone (goal >= 50x), and phase-2 images/s (PIL decode in tf.data +
  augmentation, as ``devise train`` does) vs a plain ``model.fit`` of the same model on
  already-decoded in-memory arrays (goal >= 0.9), the two timed in alternating blocks
  of STEPS steps so load changes hit both alike.

Prints the measurements as JSON, then a short table and the ratio lines.

    python benchmarks/train_epoch_times.py --backbone mobilenet_v2 --alpha 0.5
    python benchmarks/train_epoch_times.py --backbone resnet50 --steps 10
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line


def make_workload(root: Path, classes: int, per_class: int, size: int = 64):
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    items = []
    for c in range(classes):
        d = root / f"c{c:04d}"
        d.mkdir(parents=True, exist_ok=True)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        for i in range(per_class):
            p = d / f"{i}.png"
            if not p.exists():
                img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
                draw = ImageDraw.Draw(img)
                x0, y0 = rng.integers(0, size // 2, 2)
                draw.ellipse([int(x0), int(y0), int(x0) + size // 2, int(y0) + size // 2], fill=colour + (255,))
                img.save(p)
            items.append((p, c))
    return items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--classes", type=int, default=500)
    ap.add_argument("--per-class", type=int, default=7)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20, help="steps timed for phase 0 / phase 2 epochs")
    ap.add_argument("--root", default="/tmp/devise_bench")
    ap.add_argument("--rounds", type=int, default=3, help="alternating phase-2 / plain-fit blocks")
    args = ap.parse_args()

    import keras

    from models.data.failures import FailureLog
    from models.data.inputs import input_for
    from models.data.tfdata import decode_images, training_dataset
    from models.net.devise_model import DeviseModel
    from models.net.losses import HingeRankLoss
    from models.training.batchnorm import recompute_batchnorm_statistics
    from models.training.feature_cache import cached_features

    print(f"machine: {machine_line()}", flush=True)
    items = make_workload(Path(args.root) / "data", args.classes, args.per_class, args.size)
    paths = [p for p, _ in items]
    labels = np.array([c for _, c in items], np.int32)
    n, bs = len(items), args.batch
    steps_epoch = math.ceil(n / bs)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(args.classes, 300)).astype(np.float32)
    opts = {"alpha": args.alpha} if args.alpha else {}
    out = {"backbone": args.backbone, "alpha": args.alpha, "images": n, "classes": args.classes,
           "size": args.size, "batch": bs, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    t = time.perf_counter()
    m = DeviseModel(backbone=args.backbone, embedding_dim=300, num_classes=args.classes, image_size=args.size,
                    backbone_options=opts)
    out["build_s"] = time.perf_counter() - t
    log = FailureLog()

    imgs = decode_images(paths[:1000], args.size, log=log)[0]
    t = time.perf_counter()
    recompute_batchnorm_statistics(m.feature_extractor, imgs, batch_size=bs)
    out["bn_recompute_1000_s"] = time.perf_counter() - t

    fe = m.feature_extractor
    t = time.perf_counter()
    fe.predict_on_batch(np.zeros((bs, args.size, args.size, 3), np.float32))
    out["feature_trace_s"] = time.perf_counter() - t
    cache = Path(args.root) / f"cache-{args.backbone}"
    t = time.perf_counter()
    features = cached_features(fe, paths, inputs=input_for(), image_size=args.size, batch_size=bs, cache_dir=cache,
                               name="bench", key=f"{time.time()}", log=log, shuffle_seed=0)
    out["feature_pass_s"] = time.perf_counter() - t

    m.backbone.trainable = False
    head = m.head_on_features()
    head.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                 loss={"embedding": HingeRankLoss(vectors), "probs": "sparse_categorical_crossentropy"})
    # as phase 1 reads the cache
    streamed = input_for().feature_stream(features, labels, bs, shuffle=True, drop_remainder=True)
    t = time.perf_counter()
    head.fit(streamed, epochs=1, verbose=0)
    out["head_epoch1_incl_trace_s"] = time.perf_counter() - t
    t = time.perf_counter()
    head.fit(streamed, epochs=1, verbose=0)
    out["head_epoch_cached_s"] = time.perf_counter() - t

    # phase 1 without the cache: frozen backbone + head over the decoded images, one epoch
    emb = m.embedder
    emb.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=HingeRankLoss(vectors))
    ds = training_dataset(paths, labels, size=args.size, batch_size=bs, log=log, augment=False)
    t = time.perf_counter()
    emb.fit(ds.take(1), epochs=1, verbose=0)
    out["head_nocache_trace_s"] = time.perf_counter() - t
    t = time.perf_counter()
    emb.fit(ds, epochs=1, verbose=0)
    out["head_epoch_nocache_s"] = time.perf_counter() - t

    def timed_fraction(model, compile_kwargs, name):
        model.compile(**compile_kwargs)
        dsr = training_dataset(paths, labels, size=args.size, batch_size=bs, log=log).repeat()
        t0 = time.perf_counter()
        model.fit(dsr, steps_per_epoch=1, epochs=1, verbose=0)
        out[f"{name}_trace_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.fit(dsr, steps_per_epoch=args.steps, epochs=1, verbose=0)
        per_step = (time.perf_counter() - t0) / args.steps
        out[f"{name}_step_s"] = per_step
        out[f"{name}_epoch_extrapolated_s"] = per_step * steps_epoch

    m.backbone.trainable = True
    timed_fraction(m.classifier, dict(optimizer=keras.optimizers.Adam(1e-3),
                                      loss="sparse_categorical_crossentropy"), "pretrain")
    from models.training.batchnorm import batchnorm_layers

    for layer in batchnorm_layers(m.backbone):
        layer.trainable = False
    timed_fraction(m.embedder, dict(optimizer=keras.optimizers.Adagrad(1e-3), loss=HingeRankLoss(vectors)),
                   "finetune")

    # phase 2 as devise trains it vs a plain model.fit on decoded arrays, alternating blocks
    model = m.embedder
    model.compile(optimizer=keras.optimizers.Adagrad(1e-3), loss=HingeRankLoss(vectors))
    dsr = training_dataset(paths, labels, size=args.size, batch_size=bs, log=log).repeat()
    n_plain = min(n, bs * args.steps)
    x_plain = decode_images(paths[:n_plain], args.size, log=log)[0].astype(np.float32)
    y_plain = labels[:len(x_plain)]
    devise_s, plain_s = [], []
    model.fit(dsr, steps_per_epoch=1, epochs=1, verbose=0)
    model.fit(x_plain[:bs], y_plain[:bs], batch_size=bs, epochs=1, verbose=0)
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        model.fit(dsr, steps_per_epoch=args.steps, epochs=1, verbose=0)
        devise_s.append((time.perf_counter() - t0) / args.steps)
        t0 = time.perf_counter()
        model.fit(x_plain, y_plain, batch_size=bs, epochs=1, verbose=0, shuffle=True)
        plain_s.append((time.perf_counter() - t0) / math.ceil(len(x_plain) / bs))
    out["finetune_devise_img_s"] = bs / float(np.median(devise_s))
    out["finetune_plain_fit_img_s"] = bs / float(np.median(plain_s))
    out["steps_per_epoch"] = steps_epoch
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    cache_ratio = out["head_epoch_nocache_s"] / out["head_epoch_cached_s"]
    fit_ratio = out["finetune_devise_img_s"] / out["finetune_plain_fit_img_s"]
    print(f"\nmachine after: {machine_line()}")
    print(f"{args.backbone}, {n} images of {args.size}px, batch {bs}")
    print(f"{'measure':<48}{'ours':>10}{'limit':>10}")
    print(f"{'phase-1 epoch s: cached features | recompute':<48}{out['head_epoch_cached_s']:>10.2f}"
          f"{out['head_epoch_nocache_s']:>10.2f}")
    print(f"{'phase-2 img/s: devise pipeline | plain fit':<48}{out['finetune_devise_img_s']:>10.1f}"
          f"{out['finetune_plain_fit_img_s']:>10.1f}")
    print(f"ratio phase-1 recompute/cached: {cache_ratio:.1f}x "
          f"(goal >= 50x: {'met' if cache_ratio >= 50 else 'MISSED'})")
    print(f"ratio phase-2 devise/plain fit: {fit_ratio:.2f} (goal >= 0.9: {'met' if fit_ratio >= 0.9 else 'MISSED'})")


if __name__ == "__main__":
    main()
