"""Per-epoch times of each `devise train` phase on an emoji-sized generated workload.

Workload: CLASSES classes x PER_CLASS generated PNGs (default 500 x 7 = 3,500) at 64 px,
random 300-d unit label vectors, batch 32, weights none. For each backbone it times
(tracing excluded by a warm-up step; each phase's first-call tracing reported apart):

- BatchNorm recomputation on 1,000 images;
- the phase-1 feature pass (what the cache computes once);
- a phase-1 head epoch on cached features;
- a phase-1 epoch *without* the cache: frozen backbone + head over the images;
- phase-0 and phase-2 epochs, timed over STEPS steps and extrapolated to a full epoch.

    python benchmarks/train_epoch_times.py --backbone mobilenet_v2 --alpha 0.5
    python benchmarks/train_epoch_times.py --backbone resnet50 --steps 10
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np


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
    args = ap.parse_args()

    import keras

    from models.batchnorm import recompute_batchnorm_statistics
    from models.features import cached_features
    from models.head import DeviseModel
    from models.losses import HingeRankLoss
    from models.pipeline import FailureLog, decode_all, image_dataset

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

    imgs = decode_all(paths, args.size, log, limit=1000)
    t = time.perf_counter()
    recompute_batchnorm_statistics(m.feature_extractor, imgs, batch_size=bs)
    out["bn_recompute_1000_s"] = time.perf_counter() - t

    fe = m.feature_extractor
    t = time.perf_counter()
    fe.predict_on_batch(np.zeros((bs, args.size, args.size, 3), np.float32))
    out["feature_trace_s"] = time.perf_counter() - t
    cache = Path(args.root) / f"cache-{args.backbone}"
    t = time.perf_counter()
    feats, idx = cached_features(fe, paths, image_size=args.size, batch_size=bs, cache_dir=cache, name="bench",
                                 key=f"{time.time()}", log=log)
    out["feature_pass_s"] = time.perf_counter() - t

    m.backbone.trainable = False
    head = m.head_on_features()
    head.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                 loss={"embedding": HingeRankLoss(vectors), "probs": "sparse_categorical_crossentropy"})
    y = {"embedding": labels[idx], "probs": labels[idx]}
    t = time.perf_counter()
    head.fit(feats, y, batch_size=bs, epochs=1, verbose=0)
    out["head_epoch1_incl_trace_s"] = time.perf_counter() - t
    t = time.perf_counter()
    head.fit(feats, y, batch_size=bs, epochs=1, verbose=0)
    out["head_epoch_cached_s"] = time.perf_counter() - t

    # phase 1 without the cache: frozen backbone + head over the decoded images, one epoch
    emb = m.embedder
    emb.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=HingeRankLoss(vectors))
    ds = image_dataset(paths, labels, args.size, bs, log=log, shuffle=True)
    t = time.perf_counter()
    emb.fit(ds.take(1), epochs=1, verbose=0)
    out["head_nocache_trace_s"] = time.perf_counter() - t
    t = time.perf_counter()
    emb.fit(ds, epochs=1, verbose=0)
    out["head_epoch_nocache_s"] = time.perf_counter() - t

    def timed_fraction(model, compile_kwargs, name):
        model.compile(**compile_kwargs)
        dsr = image_dataset(paths, labels, args.size, bs, log=log, shuffle=True, augment=True).repeat()
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
    from models.batchnorm import batchnorm_layers

    for layer in batchnorm_layers(m.backbone):
        layer.trainable = False
    timed_fraction(m.embedder, dict(optimizer=keras.optimizers.Adagrad(1e-3), loss=HingeRankLoss(vectors)),
                   "finetune")
    out["steps_per_epoch"] = steps_epoch
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
