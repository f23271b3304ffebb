"""Benchmark 14: ``devise predict`` with the default model, whole process, beside a bare Keras script.

Both sides are fresh processes on the same N JPEG photos (scikit-image's photographs, cut
and resized to 512x384, written once): ``devise predict PHOTOS --top 5`` with no --model
(the default model: EfficientNet-Lite0 + DeViSE head, the 21,841 default labels, method
``combined``), against the least any program can do for the same answer: import Keras,
load the bundle's ``model.keras``, decode the same files with PIL into the same 224 px
centre-crop view, ``model.predict``, the same combined embedding (ConSE over the top 10
classes averaged with the DeViSE embedding) and one top-5 matrix product against the
label matrix. Wall and CPU seconds (the child's user + system time, all threads) are
medians of interleaved runs. Also times the default model's first-use build
(``devise model build --overwrite --output TMP``, word vectors present; when they are
absent, training them adds about 270 s on 2 idle cores). Goal: bare / devise >= 0.9.

    python benchmarks/predict_default.py
    python benchmarks/predict_default.py --images 64 --repeats 3 --no-build
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line

BARE_SCRIPT = r"""
import sys
import h5py
import keras
import numpy as np
import models.net.devise_model, models.net.efficientnet_lite  # registers the saved model's classes
from PIL import Image

bundle, crop, size, paths = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
model = keras.saving.load_model(f"{bundle}/model.keras", compile=False)
with h5py.File(f"{bundle}/labels.h5") as f:
    M, names = f["vectors"][()], f["labels"][()]
with h5py.File(f"{bundle}/vocab.h5") as f:
    C = f["vectors"][()]
M /= np.linalg.norm(M, axis=1, keepdims=True)
C /= np.linalg.norm(C, axis=1, keepdims=True)

def view(p):
    img = Image.open(p).convert("RGB")
    w, h = img.size
    s = round(crop * min(w, h))
    l, t = (w - s) // 2, (h - s) // 2
    return np.asarray(img.crop((l, t, l + s, t + s)).resize((size, size), Image.BILINEAR))

x = np.stack([view(p) for p in paths])
out = model.predict(x, batch_size=32, verbose=0)
unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
top = np.argsort(-out["probs"], axis=1)[:, :10]
p = np.take_along_axis(out["probs"], top, 1)
conse = np.einsum("nt,ntd->nd", p / p.sum(1, keepdims=True), C[top])
q = unit(0.5 * unit(out["embedding"]) + 0.5 * unit(conse))
s = q @ M.T
best = np.argpartition(-s, 5, axis=1)[:, :5]
for path, row, score in zip(paths, best, s):
    print(path, [names[i].decode() for i in row[np.argsort(-score[row])]])
"""


def devise_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("devise")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "devise_cli.cli"]


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    """Wall seconds and stdout of one fresh process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    out, err = p.communicate()
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({p.returncode}):\n{err[-3000:]}")
    return wall, out


def timed_run(cmd, env) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system of the child and all its threads) and stdout of one fresh process;
    the child is reaped inside, so the children's times grow by exactly it."""
    before = os.times()
    wall, out = run(cmd, env)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, out


def make_photos(folder: Path, n: int) -> list[Path]:
    """``n`` JPEG photographs (512x384) cut from scikit-image's photos: shifted crops, some mirrored."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    sources = [getattr(data, name)() for name in ("chelsea", "coffee", "astronaut", "rocket", "cat")]  # colour photos
    paths = []
    for i in range(n):
        p = folder / f"photo{i:03d}.jpg"
        if not p.exists():
            img = Image.fromarray(sources[i % len(sources)][..., :3])
            w, h = img.size
            k = i // len(sources)
            dx, dy = (k * 7) % max(1, w // 8), (k * 5) % max(1, h // 8)
            img = img.crop((dx, dy, w - (w // 8 - dx), h - (h // 8 - dy))).resize((512, 384), Image.BILINEAR)
            if k % 2:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            img.save(p, quality=90)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", type=Path, default=Path("/tmp/devise_bench"))
    ap.add_argument("--no-build", action="store_true", help="Skip timing the default model's build.")
    args = ap.parse_args(argv)

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("DEVISE_MODEL", None)
    from devise.default_model import default_model_path, ensure_default_model
    from models.bundle import read_config

    print(f"machine: {machine_line()}")
    build_s = None
    if not args.no_build:
        out = Path(tempfile.mkdtemp(prefix="devise_default_")) / "model"
        t = time.perf_counter()
        res = subprocess.run(devise_cmd() + ["model", "build", "--overwrite", "--output", str(out)], env=env,
                             capture_output=True, text=True)
        build_s = time.perf_counter() - t
        shutil.rmtree(out.parent, ignore_errors=True)
        if res.returncode != 0:
            raise SystemExit(f"devise model build failed:\n{res.stderr[-3000:]}")
    bundle = ensure_default_model(on_step=print)
    if default_model_path() != bundle:  # pragma: no cover
        raise SystemExit(f"unexpected default model at {bundle}")
    config = read_config(bundle)
    crop = config.get("preprocessing", {}).get("eval_crop", 1.0)
    photos = [str(p) for p in make_photos(args.root / f"photos_{args.images}", args.images)]
    predict = devise_cmd() + ["predict", *photos, "--top", "5"]
    bare = [sys.executable, "-c", BARE_SCRIPT, str(bundle), str(crop), str(config["image_size"]), *photos]
    run(predict, env)  # warm the page cache for both (same files, same libraries)
    walls = {"devise": [], "bare": []}
    cpus = {"devise": [], "bare": []}
    for _ in range(args.repeats):
        for name, cmd in (("devise", predict), ("bare", bare)):
            w, c, _ = timed_run(cmd, env)
            walls[name].append(w)
            cpus[name].append(c)
    wall = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    print(f"default model {bundle.name} ({config['backbone']} {config['image_size']} px, "
          f"method {config.get('default_method')}, labels {config.get('default_vocab')}); {len(photos)} JPEGs 512x384; "
          f"median of {args.repeats} interleaved fresh processes")
    print(f"{'process':<58}{'wall s':>8}{'CPU s':>8}")
    print(f"{'devise predict PHOTOS --top 5 (default model)':<58}{wall['devise']:>8.2f}{cpu['devise']:>8.2f}")
    print(f"{'bare: keras load_model + PIL + model.predict + top-5':<58}{wall['bare']:>8.2f}{cpu['bare']:>8.2f}")
    if build_s is not None:
        print(f"first-use build of the default model (word vectors present): {build_s:.1f} s wall "
              f"(without the vectors, training them adds about 270 s on 2 idle cores)")
    print(f"machine after: {machine_line()}")
    r_wall, r_cpu = wall["bare"] / wall["devise"], cpu["bare"] / cpu["devise"]
    print(f"ratio bare/devise: wall {r_wall:.2f}, CPU {r_cpu:.2f} (goal >= 0.9: "
          f"{'met' if min(r_wall, r_cpu) >= 0.9 else 'met by CPU only' if r_cpu >= 0.9 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
