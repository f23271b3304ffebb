"""Training input pipeline: devise's ``training_dataset`` vs an official-style tf.data ImageNet input.

Two measures, each timed side by side in interleaved rounds (medians), so load hits both alike:

(a) **CPU-ms per image at 224 px** on N ImageNet-like 500x375 JPEGs (random crops of
    scikit-image's bundled photos, quality 90): devise's ``training_dataset`` with the
    ``inception`` recipe (header-scanned files, ``decode_and_crop_jpeg`` of the sampled
    window, antialiased resize, flip, uint8 batches) vs the reference recipe of
    tensorflow/models' ImageNet preprocessing written out in plain tf.data
    (``extract_jpeg_shape`` + ``sample_distorted_bounding_box`` + ``decode_and_crop_jpeg``,
    bilinear resize, flip, mean/std normalisation to float32, as the official input does).
    CPU time is the whole process's (all threads): on a shared machine it is far steadier
    than wall time. Goal: ours / reference <= 1.1.
(b) **pipeline ceiling**: images/s with decoding made nearly free (16 px JPEGs), tf.data
    limited to ``--threads`` threads (default 2), devise's ``training_dataset`` (``square``
    recipe: centre square, flip, padded random crop) vs two native tf.data maps: the same
    work written as one plain map (so the ratio is devise's plumbing: header routing,
    per-file failure handling, seeds, label lookup), and a bare read + ``decode_jpeg`` +
    resize + flip (so the ratio includes the augmentation). Goal: ours / native >= 0.8.

    python benchmarks/input_pipeline.py                   # (a) 400 JPEGs and (b), ~3 minutes idle
    python benchmarks/input_pipeline.py --images 200 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import machine_line, timed

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "colorwheel", "cat")
MEAN_RGB, STDDEV_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)


def imagenet_like(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` 500x375 JPEGs: random crops (30-100 % of the side), flips and colour scalings of the bundled photos."""
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [np.asarray(getattr(skimage.data, name)())[..., :3] for name in PHOTOS]
    paths = []
    for i in range(n):
        p = folder / f"img{i:04d}.jpg"
        if not p.exists():
            src = sources[i % len(sources)]
            h, w = src.shape[:2]
            side = rng.uniform(0.3, 1.0)
            ch, cw = max(16, int(h * side)), max(16, int(w * side))
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = src[top:top + ch, left:left + cw]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            crop = np.clip(crop * rng.uniform(0.7, 1.2, size=3), 0, 255).astype(np.uint8)
            Image.fromarray(crop).resize((500, 375), Image.Resampling.BILINEAR).save(p, quality=90)
        paths.append(p)
    return paths


def tiny_jpegs(folder: Path, n: int, side: int = 16) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        p = folder / f"t{i:05d}.jpg"
        if not p.exists():
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(p, quality=90)
        paths.append(p)
    return paths


def reference_dataset(paths, size: int, batch: int, seed: int = 0):
    """The official ImageNet training input, written out: crop window from the header, decode only it."""
    import tensorflow as tf

    def centre(data):
        shape = tf.io.extract_jpeg_shape(data)
        h, w = shape[0], shape[1]
        side = tf.cast(size / (size + 32) * tf.cast(tf.minimum(h, w), tf.float32), tf.int32)
        window = tf.stack([(h - side + 1) // 2, (w - side + 1) // 2, side, side])
        return tf.image.resize(tf.io.decode_and_crop_jpeg(data, window, channels=3), (size, size))

    def random_crop(data):
        shape = tf.io.extract_jpeg_shape(data)
        box = tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4])
        begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=box, min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
        top, left, _ = tf.unstack(begin)
        h, w, _ = tf.unstack(crop_size)
        window = tf.stack([top, left, h, w])
        bad = tf.reduce_all(tf.equal(shape[:2], tf.stack([h, w])))
        return tf.cond(bad, lambda: centre(data), lambda: tf.image.resize(
            tf.io.decode_and_crop_jpeg(data, window, channels=3), (size, size)))

    def parse(path):
        image = tf.image.random_flip_left_right(random_crop(tf.io.read_file(path)))
        return (image - MEAN_RGB) / STDDEV_RGB

    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in paths]).shuffle(len(paths), seed=seed)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def native_dataset(paths, size: int, batch: int):
    """Bare tf.data: read, decode, resize, flip, batch (the ceiling of any per-element JPEG pipeline)."""
    import tensorflow as tf

    def parse(path):
        image = tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(path), channels=3), (size, size))
        return tf.cast(tf.image.random_flip_left_right(image), tf.uint8)

    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in paths]).shuffle(len(paths))
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def native_same_work(paths, size: int, batch: int):
    """The square recipe's work in one plain map: decode, centre square, resize, flip, pad + random crop, uint8."""
    import tensorflow as tf

    pad = max(1, size // 8)

    def parse(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(h, w)
        image = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        image = tf.image.random_flip_left_right(tf.image.resize(image, (size, size)))
        image = tf.pad(image, [[pad // 2, pad - pad // 2], [pad // 2, pad - pad // 2], [0, 0]])
        image = tf.image.random_crop(image, (size, size, 3))
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in paths]).shuffle(len(paths))
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def devise_dataset(paths, size: int, batch: int, recipe: str, headers):
    from models.data.failures import FailureLog
    from models.data.tfdata import training_dataset

    labels = np.arange(len(paths)) % 1000
    return training_dataset(paths, labels, size=size, batch_size=batch, log=FailureLog(), recipe=recipe,
                            headers=headers)


def with_threads(ds, threads: int | None):
    import tensorflow as tf

    if not threads:
        return ds
    opts = tf.data.Options()
    opts.threading.private_threadpool_size = threads
    opts.threading.max_intra_op_parallelism = 1
    return ds.with_options(opts)


def epoch_runner(ds):
    """A function that iterates one epoch of ``ds`` and returns the number of images it delivered."""
    def run():
        n = 0
        for element in ds:
            x = element[0] if isinstance(element, tuple) else element
            n += int(x.shape[0])
        return n

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tiny-images", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--root", default="/tmp/devise_bench")
    args = ap.parse_args()
    import tensorflow as tf

    from models.data.headers import scan_headers

    print(f"machine: {machine_line()}", flush=True)
    root = Path(args.root)
    photos = imagenet_like(root / "jpeg500x375", args.images)
    t0 = time.perf_counter()
    headers = scan_headers(photos)
    scan_ms = (time.perf_counter() - t0) * 1000 / len(photos)
    n_batches = len(photos) // args.batch
    runs = {"devise": epoch_runner(devise_dataset(photos, args.size, args.batch, "inception", headers)),
            "reference": epoch_runner(reference_dataset(photos, args.size, args.batch))}
    counts = {name: fn() for name, fn in runs.items()}  # warm-up epoch, and the image counts
    assert all(c == n_batches * args.batch for c in counts.values()), counts
    wall, cpu = timed(runs, args.rounds, warmup=False, cpu=True)
    per = {name: cpu[name] * 1000 / counts[name] for name in runs}
    ratio_a = per["devise"] / per["reference"]

    tiny = tiny_jpegs(root / "jpeg16", args.tiny_images)
    tiny_headers = scan_headers(tiny)
    runs_b = {"devise": epoch_runner(with_threads(devise_dataset(tiny, 16, 256, "square", tiny_headers),
                                                  args.threads)),
              "native, same work": epoch_runner(with_threads(native_same_work(tiny, 16, 256), args.threads)),
              "native, bare": epoch_runner(with_threads(native_dataset(tiny, 16, 256), args.threads))}
    counts_b = {name: fn() for name, fn in runs_b.items()}
    wall_b, cpu_b = timed(runs_b, args.rounds, warmup=False, cpu=True)
    rate = {name: counts_b[name] / wall_b[name] for name in runs_b}
    ratio_b = rate["devise"] / rate["native, same work"]
    ratio_bare = rate["devise"] / rate["native, bare"]

    print(f"machine after: {machine_line()}")
    print(f"TensorFlow {tf.__version__}; {len(photos)} JPEGs 500x375 -> {args.size} px, batch {args.batch}, "
          f"{args.rounds} interleaved rounds (medians); header scan {scan_ms:.3f} ms/image (once per dataset, cached)")
    print(f"{'(a) pipeline':<34}{'CPU-ms/img':>12}{'wall img/s':>12}")
    for name in runs:
        print(f"{name:<34}{per[name]:>12.2f}{counts[name] / wall[name]:>12.0f}")
    print(f"{'(b) 16 px JPEGs, ' + str(args.threads) + ' threads':<34}{'img/s':>12}{'CPU-ms/img':>12}")
    for name in runs_b:
        print(f"{name:<34}{rate[name]:>12.0f}{cpu_b[name] * 1000 / counts_b[name]:>12.3f}")
    print(f"ratio (a) devise/reference CPU per image: {ratio_a:.2f} (goal <= 1.1: "
          f"{'met' if ratio_a <= 1.1 else 'MISSED'})")
    print(f"ratio (b) devise/native same work images/s: {ratio_b:.2f} (goal >= 0.8: "
          f"{'met' if ratio_b >= 0.8 else 'MISSED'})")
    print(f"ratio (b') devise/native bare decode+resize+flip images/s: {ratio_bare:.2f} (goal >= 0.8: "
          f"{'met' if ratio_bare >= 0.8 else 'MISSED'})")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
