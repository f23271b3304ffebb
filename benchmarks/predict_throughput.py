"""Benchmark 1: ``devise predict`` throughput (images/s) beside a bare Keras forward pass.

"predict" is what the command does after loading: expand the image arguments, decode
each file (PIL in parallel tf.data threads), run the bundle's compiled DeViSE model,
score a vocabulary (matmul + top-k), map rows to WordNet ids/labels and render one JSON
line per image (to a null stream) — ``devise.prediction.predictions``. "bare" is
the same ``keras.applications`` backbone (+ global pooling) called with
``predict_on_batch`` on already-decoded uint8 batches of the same size: the limit.
"devise fwd" is the whole DeViSE model on decoded batches (the head's own cost).
Random weights; nothing is downloaded. Goal: predict / bare >= 0.95.

    python benchmarks/predict_throughput.py                                  # resnet50 at 224 px
    python benchmarks/predict_throughput.py --backbones mobilenet_v2,resnet50 --size 64
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bare_forward, machine_line, make_bundle, make_images, timed


def bench(backbone: str, args, tmp: Path, paths: list[Path]) -> dict:
    from devise.prediction import predictions
    from models.bundle import load_bundle
    from models.data.datasets import expand_image_paths
    from models.data.images import load_image

    bundle = load_bundle(make_bundle(tmp / f"bundle_{backbone}", backbone, args.size, args.dim, args.labels))
    vocab = bundle.vocab
    decoded = np.stack([load_image(p, args.size) for p in paths])
    batches = [decoded[i:i + args.batch] for i in range(0, len(decoded), args.batch)]

    def predict():
        sink = io.StringIO()
        for rec in predictions(bundle, vocab, expand_image_paths([tmp / "images"]), 5, args.batch):
            sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
        assert sink.getvalue().count("\n") == len(paths)

    def devise_forward():
        for b in batches:
            bundle.full.predict_on_batch(b)

    fns = {"predict": predict, "devise_forward": devise_forward,
           "bare_forward": bare_forward(backbone, args.size, batches)}
    wall, cpu = timed(fns, args.repeats, cpu=True)
    return {"backbone": backbone, **{name: len(paths) / t for name, t in wall.items()},
            **{f"{name}_cpu": len(paths) / t for name, t in cpu.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="resnet50")
    ap.add_argument("--size", type=int, default=224, help="model input side (px)")
    ap.add_argument("--source-size", type=int, default=0, help="side of the generated images [default: --size]")
    ap.add_argument("--format", default="jpg", choices=["jpg", "png"], help="generated image format")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dim", type=int, default=300, help="embedding dimension")
    ap.add_argument("--labels", type=int, default=1000, help="vocabulary size scored by predict")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        paths = make_images(tmp / "images", args.images, args.source_size or args.size, fmt=args.format)
        print(f"machine: {machine_line()}")
        print(f"{args.images} {args.format.upper()} images of {args.source_size or args.size}px -> {args.size}px, "
              f"batch {args.batch}, {args.labels} labels x {args.dim} d, median of {args.repeats} interleaved rounds")
        print("img/s by wall clock, and per CPU-second of the process (robust to other jobs on the machine)")
        print(f"{'backbone':<14}{'clock':<7}{'predict':>10}{'devise fwd':>12}{'bare fwd':>10}{'predict/bare':>14}")
        ratios = []
        for name in args.backbones.split(","):
            r = bench(name.strip(), args, tmp, paths)
            for clock, sfx in (("wall", ""), ("cpu", "_cpu")):
                ratio = r["predict" + sfx] / r["bare_forward" + sfx]
                ratios.append((clock, ratio))
                print(f"{r['backbone']:<14}{clock:<7}{r['predict' + sfx]:>10.1f}{r['devise_forward' + sfx]:>12.1f}"
                      f"{r['bare_forward' + sfx]:>10.1f}{ratio:>14.2f}", flush=True)
        print(f"machine after: {machine_line()}")
        for clock in ("wall", "cpu"):
            worst = min(r for c, r in ratios if c == clock)
            print(f"ratio predict/bare ({clock}): {worst:.3f} (goal >= 0.95: {'met' if worst >= 0.95 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
