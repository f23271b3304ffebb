"""Phase-1 peak memory: the head trained on a 150K x 2,048 feature cache, streamed vs loaded whole.

Builds a synthetic cache in devise's format (``models.data.feature_file.write_cache``:
float16 rows scaled per row) of ROWS x 2,048 features (ResNet50's pooled width), then in
fresh processes, side by side:

- **streamed** (what ``devise train`` does): a ResNet50 DeviseModel (1,000 classes,
  300-d embedding) is built, its head compiled and its training step traced on one dummy
  batch (the *model baseline* RSS), then one
  phase-1 epoch runs on ``FeatureCache.dataset`` (blocks read from the file, shuffled in
  groups, rebatched);
- **in RAM** (what devise did before issue 13): the same, on the whole matrix read into a
  float32 array and ``fit(x, y)``.

Each process resets its peak (``/proc/self/clear_refs``) after the baseline and reports
peak RSS minus baseline; the table divides it by the cache's float32 size (the feature
matrix, the unit of issue 13's "3.3x cache") and by the float16 file. Goal: streamed <=
0.3x the cache.

    python benchmarks/feature_cache_memory.py                 # 150,000 rows, ~10 minutes on 2 busy cores
    python benchmarks/feature_cache_memory.py --rows 20000    # quick look
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import machine_line  # noqa: E402

DIM = 2048
CLASSES = 1000

CHILD = r'''
import json, sys, time
import numpy as np

def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

mode, path, rows, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import keras
from models.net.devise_model import DeviseModel
from models.net.losses import HingeRankLoss, HitAtK
from models.data.feature_file import FeatureCache
from models.data.inputs import input_for

model = DeviseModel(backbone="resnet50", embedding_dim=300, num_classes=%(classes)d, image_size=32)
vectors = np.random.default_rng(0).normal(size=(%(classes)d, 300)).astype(np.float32)
head = model.head_on_features()
head.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
             loss={"embedding": HingeRankLoss(vectors), "probs": keras.losses.SparseCategoricalCrossentropy()},
             weighted_metrics={"embedding": [HitAtK(vectors, 1)]})
cache = FeatureCache(path, rows, %(dim)d)
labels = np.arange(rows) %% %(classes)d
warm = np.zeros((batch, %(dim)d), np.float32), np.zeros(batch, np.int64)
head.fit(warm[0], {"embedding": warm[1], "probs": warm[1]}, batch_size=batch, epochs=1, verbose=0)  # trace the step
baseline = rss_kb("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # peak := current
t = time.perf_counter()
if mode == "streamed":
    history = head.fit(input_for().feature_stream(cache, labels, batch, shuffle=True, drop_remainder=True), epochs=1,
                       verbose=0)
else:
    x = cache.read()
    y = labels[cache.index()]
    history = head.fit(x, {"embedding": y, "probs": y}, batch_size=batch, epochs=1, verbose=0, shuffle=True)
seconds = time.perf_counter() - t
print("RESULT " + json.dumps({"baseline_kb": baseline, "peak_kb": rss_kb("VmHWM"), "seconds": seconds,
                              "loss": float(history.history["loss"][-1])}))
''' % {"classes": CLASSES, "dim": DIM}


def build_cache(path: Path, rows: int):
    from models.data.feature_file import FeatureCache, write_cache

    if path.is_file():
        return FeatureCache(path, rows, DIM)
    rng = np.random.default_rng(0)

    def chunks(step=8192):
        for start in range(0, rows, step):
            n = min(step, rows - start)
            x = np.maximum(rng.normal(0.5, 1.0, size=(n, DIM)), 0).astype(np.float32)  # ReLU-like features
            yield x, np.arange(start, start + n)

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_cache(path, "bench", chunks(), rows, DIM)


def run(mode: str, path: Path, rows: int, batch: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(rows), str(batch)], env=env,
                         capture_output=True, text=True)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{mode} run failed:\n{res.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=150_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--root", default="/tmp/devise_bench")
    args = ap.parse_args()
    print(f"machine: {machine_line()}", flush=True)
    path = Path(args.root) / f"features-{args.rows}x{DIM}.h5"
    build_cache(path, args.rows)
    f32_mb = args.rows * DIM * 4 / 2**20
    file_mb = path.stat().st_size / 2**20
    results = {mode: run(mode, path, args.rows, args.batch) for mode in ("streamed", "in RAM")}
    print(f"machine after: {machine_line()}")
    print(f"{args.rows} x {DIM} features: float32 matrix {f32_mb:.0f} MiB, cache file (float16) {file_mb:.0f} MiB; "
          f"ResNet50 DeviseModel, {CLASSES} classes, batch {args.batch}, one phase-1 epoch")
    print(f"{'phase 1':<12}{'baseline MiB':>14}{'peak MiB':>10}{'over MiB':>10}{'x matrix':>10}{'x file':>8}"
          f"{'epoch s':>9}")
    for mode, r in results.items():
        over = (r["peak_kb"] - r["baseline_kb"]) / 1024
        print(f"{mode:<12}{r['baseline_kb'] / 1024:>14.0f}{r['peak_kb'] / 1024:>10.0f}{over:>10.0f}"
              f"{over / f32_mb:>10.2f}{over / file_mb:>8.2f}{r['seconds']:>9.1f}")
    over = (results["streamed"]["peak_kb"] - results["streamed"]["baseline_kb"]) / 1024
    ratio = over / f32_mb
    print(f"ratio streamed phase-1 peak over baseline / cache (float32 matrix): {ratio:.2f} "
          f"(goal <= 0.3: {'met' if ratio <= 0.3 else 'MISSED'}); / float16 file: {over / file_mb:.2f}")


if __name__ == "__main__":
    main()
