"""Benchmark 7: `devise index` throughput (images/s) in one process beside a bare Keras forward pass.

"index" is what the command does after loading the model: list and stat the files, plan
the update against the index, stream every file through one tf.data pipeline (PIL decode
in parallel threads) into the bundle's compiled DeViSE model, commit a chunk every
``--commit-every`` images, then fold the chunks into the index file
(:func:`models.index.update.update_index` with ``rebuild``, into a fresh file each round).
"bare" is the same ``keras.applications`` backbone (+ global pooling) called with
``predict_on_batch`` on already-decoded uint8 batches: the limit. "devise fwd" is the
whole DeViSE model on decoded batches. Random weights; nothing is downloaded.
Goal: index / bare >= 0.9.

    python benchmarks/index_throughput.py                      # ResNet50, 224 px, 128 JPEGs
    python benchmarks/index_throughput.py --backbone mobilenet_v2 --size 64 --format png --images 512
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bare_forward, machine_line, make_bundle, make_images, timed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--size", type=int, default=224, help="model input side (px)")
    ap.add_argument("--source-size", type=int, default=0, help="side of the generated images [default: --size]")
    ap.add_argument("--format", default="jpg", choices=["jpg", "png"])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--commit-every", type=int, default=64, help="images per committed chunk (default: 2 a round)")
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from models.bundle import load_bundle
    from models.data.datasets import expand_image_paths
    from models.data.images import load_image
    from models.index.store import ImageIndex
    from models.index.update import update_index

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        paths = make_images(tmp / "images", args.images, args.source_size or args.size, fmt=args.format)
        bundle = load_bundle(make_bundle(tmp / "bundle", args.backbone, args.size, args.dim, 1000))
        decoded = np.stack([load_image(p, args.size) for p in paths])
        batches = [decoded[i:i + args.batch] for i in range(0, len(decoded), args.batch)]
        out = tmp / "index.h5"

        def index():
            stats = update_index(bundle, expand_image_paths([tmp / "images"]), out, rebuild=True,
                                 batch_size=args.batch, commit_every=args.commit_every)
            assert stats.embedded == len(paths) and len(ImageIndex.load(out)) == len(paths)

        def devise_forward():
            for b in batches:
                bundle.full.predict_on_batch(b)

        fns = {"index": index, "devise_forward": devise_forward,
               "bare_forward": bare_forward(args.backbone, args.size, batches)}
        print(f"machine: {machine_line()}")
        wall, cpu = timed(fns, args.repeats, cpu=True)
        print(f"CPU only (no GPU here). {args.backbone} at {args.size}px, {args.images} {args.format.upper()} images "
              f"of {args.source_size or args.size}px, batch {args.batch}, a chunk committed every "
              f"{args.commit_every} images, median of {args.repeats} interleaved rounds")
        print(f"{'clock':<7}{'index img/s':>13}{'devise fwd':>12}{'bare fwd':>10}{'index/bare':>12}")
        ratios = {}
        for clock, t in (("wall", wall), ("cpu", cpu)):
            rate = {k: len(paths) / v for k, v in t.items()}
            ratios[clock] = rate["index"] / rate["bare_forward"]
            print(f"{clock:<7}{rate['index']:>13.1f}{rate['devise_forward']:>12.1f}{rate['bare_forward']:>10.1f}"
                  f"{ratios[clock]:>12.2f}")
        print(f"machine after: {machine_line()}")
        for clock, r in ratios.items():
            print(f"ratio index/bare ({clock}): {r:.3f} (goal >= 0.9: {'met' if r >= 0.9 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
