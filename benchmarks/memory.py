"""Benchmark 5: peak resident memory of ``devise predict`` with a ResNet50 bundle and the 82K vocabulary.

Runs ``devise predict`` in a fresh process on IMAGES generated JPEGs with
``--vocab`` the all-nouns vocabulary (82,115 labels x 300 d; built with ``devise vocab
build --all-nouns`` when missing) and reads the child's peak RSS from ``wait4``.
For scale it also measures the same command with the bundle's own 1K labels and the
minimal "import TF + load model + one forward" script. ResNet50, 224 px, random
weights. Goal: <= 2 GB (2,048 MiB).

    python benchmarks/memory.py --nouns /tmp/devise_bench/nouns.h5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, make_bundle, make_images, peak_rss_mib
from cold_start import LIMIT_SCRIPT, devise_cmd
from label_search import DEFAULT_NOUNS, nouns_vocab

GOAL_MIB = 2048


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nouns", type=Path, default=DEFAULT_NOUNS)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--root", type=Path, default=Path("/tmp/devise_bench"))
    args = ap.parse_args(argv)

    nouns = nouns_vocab(args.nouns)
    n_nouns = len(nouns)
    del nouns
    bundle = make_bundle(args.root / f"bundle_{args.backbone}_{args.size}", args.backbone, args.size, 300, 1000)
    folder = args.root / f"mem_images_{args.images}"
    make_images(folder, args.images, 320, fmt="jpg")
    base = devise_cmd() + ["predict", str(folder), "--model", str(bundle), "--json", "--batch-size", str(args.batch)]
    rows = [
        (f"devise predict, {n_nouns:,}-label vocabulary", peak_rss_mib(base + ["--vocab", str(args.nouns)])),
        ("devise predict, bundle's 1,000 labels", peak_rss_mib(base)),
        ("python: import TF + load model.keras + 1 forward",
         peak_rss_mib([sys.executable, "-c", LIMIT_SCRIPT, str(bundle / "model.keras"),
                       str(sorted(folder.iterdir())[0]), str(args.size)])),
    ]
    print(f"machine: {machine_line()}")
    print(f"{args.backbone} at {args.size}px, {args.images} JPEGs, batch {args.batch}; peak RSS of a fresh process")
    print(f"{'command':<52}{'peak RSS MiB':>14}")
    for name, mib in rows:
        print(f"{name:<52}{mib:>14.0f}")
    peak = rows[0][1]
    print(f"ratio peak/goal: {peak / GOAL_MIB:.2f} ({peak:.0f} MiB of {GOAL_MIB} MiB; "
          f"goal <= 2 GB: {'met' if peak <= GOAL_MIB else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
