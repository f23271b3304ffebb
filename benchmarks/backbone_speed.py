"""Benchmark 12: forward speed of the backbones devise offers for photos, side by side.

Each backbone (``include_top=False``) + global pooling runs ``predict_on_batch`` on the same
decoded uint8 batches (random pixels, random weights: speed does not depend on them), timed
in interleaved rounds (median). Printed: images/s by wall clock and per CPU-second of the
process, and each one's ratio to the first backbone (MobileNetV2 α 1.0 by default). Why:
EfficientNet-Lite0 should cost about what MobileNetV2 does while being far more accurate,
and ResNet50 is the paper-style reference.

    python benchmarks/backbone_speed.py                       # 224 px, batch 32, 2 batches a round
    python benchmarks/backbone_speed.py --native              # each Lite at its own size (240, 260)
    python benchmarks/backbone_speed.py --backbones mobilenet_v2,efficientnet_lite0 --repeats 10
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bare_forward, machine_line, timed

DEFAULT = "mobilenet_v2,efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,resnet50"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default=DEFAULT, help="comma-separated; the first is the reference")
    ap.add_argument("--size", type=int, default=224, help="input side (px)")
    ap.add_argument("--native", action="store_true", help="each backbone at its native size (catalog)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=2, help="batches per timed call")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    from models.net.backbones import native_image_size

    names = [n.strip() for n in args.backbones.split(",") if n.strip()]
    rng = np.random.default_rng(0)
    sizes = {n: native_image_size(n) if args.native else args.size for n in names}
    fns = {}
    for name in names:
        size = sizes[name]
        batches = [rng.integers(0, 256, (args.batch, size, size, 3), dtype=np.uint8)
                   for _ in range(args.batches)]
        fns[name] = bare_forward(name, size, batches)
    print(f"machine: {machine_line()}")
    print(f"batch {args.batch}, {args.batches} batches a call, median of {args.repeats} interleaved rounds")
    wall, cpu = timed(fns, args.repeats, cpu=True)
    n = args.batch * args.batches
    ref = names[0]
    print(f"{'backbone':<20}{'px':>5}{'img/s':>9}{'img/CPU-s':>11}{'ratio wall':>12}{'ratio cpu':>11}")
    for name in names:
        print(f"{name:<20}{sizes[name]:>5}{n / wall[name]:>9.1f}{n / cpu[name]:>11.1f}"
              f"{wall[ref] / wall[name]:>12.2f}{cpu[ref] / cpu[name]:>11.2f}")
    print(f"machine after: {machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
