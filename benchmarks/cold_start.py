"""Benchmark 2: cold start of ``devise predict one.jpg`` beside import-TF + load + one forward pass.

Each run is a fresh process (what a user waits for): ``devise predict one.jpg --model B
--json`` against a minimal script that imports TensorFlow and Keras, loads the same
``model.keras`` and runs one forward pass on one image (the limit: a CLI cannot start
faster than its model). Also times ``devise --help`` and checks it imports no
TensorFlow, Keras, gensim or NLTK. ResNet50 at 224 px with random weights by default.
Goals: predict / script <= 1.2; ``devise --help`` <= 0.5 s.

    python benchmarks/cold_start.py
    python benchmarks/cold_start.py --backbone mobilenet_v2 --size 64 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, make_bundle, make_images

LIMIT_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
import keras
import models.net.devise_model, models.net.backbones  # registers the saved model's classes (the script needs them too)
from PIL import Image
m = keras.saving.load_model(sys.argv[1], compile=False)
x = np.asarray(Image.open(sys.argv[2]).convert("RGB").resize((int(sys.argv[3]),) * 2), np.float32)[None]
print(m(x, training=False)["embedding"].shape)
"""

HELP_CHECK = """
import sys
from devise_cli.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print("HEAVY", sorted(m for m in ("tensorflow", "keras", "gensim", "nltk", "h5py") if m in sys.modules),
      file=sys.stderr)
"""


def devise_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("devise")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "devise_cli.cli"]


def wall(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    elapsed = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return elapsed, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", type=Path, default=Path("/tmp/devise_bench"))
    args = ap.parse_args(argv)

    bundle = make_bundle(args.root / f"bundle_{args.backbone}_{args.size}", args.backbone, args.size, 300, args.labels)
    image = make_images(args.root / "one", 1, max(args.size, 320), fmt="jpg")[0]
    predict = devise_cmd() + ["predict", str(image), "--model", str(bundle), "--json"]
    limit = [sys.executable, "-c", LIMIT_SCRIPT, str(bundle / "model.keras"), str(image), str(args.size)]
    helps = devise_cmd() + ["--help"]
    times = {"predict": [], "script": [], "help": []}
    wall(predict)  # warm the page cache for both (same files, same libraries)
    for _ in range(args.repeats):
        for name, cmd in (("predict", predict), ("script", limit), ("help", helps)):
            times[name].append(wall(cmd)[0])
    _, res = wall([sys.executable, "-c", HELP_CHECK])
    heavy = json.loads(res.stderr.split("HEAVY", 1)[1].strip().replace("'", '"'))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"machine: {machine_line()}")
    print(f"{args.backbone} at {args.size}px, {args.labels} labels; "
          f"median of {args.repeats} interleaved fresh processes")
    print(f"{'command':<52}{'wall s':>8}")
    print(f"{'devise predict one.jpg --json':<52}{med['predict']:>8.2f}")
    print(f"{'python: import TF + load model.keras + 1 forward':<52}{med['script']:>8.2f}")
    print(f"{'devise --help':<52}{med['help']:>8.2f}")
    print(f"devise --help imports: {', '.join(heavy) if heavy else 'none of tensorflow/keras/gensim/nltk/h5py'}")
    ratio = med["predict"] / med["script"]
    print(f"machine after: {machine_line()}")
    print(f"ratio predict/script: {ratio:.2f} (goal <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'}); "
          f"--help {med['help']:.2f} s (goal <= 0.5 s: {'met' if med['help'] <= 0.5 and not heavy else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
