"""Helpers shared by the benchmark scripts: interleaved timing, synthetic bundles and images, headers.

Nothing here downloads: models use random weights (speed does not depend on them),
images are generated PNGs/JPEGs, vocabularies are random unit vectors unless a real
one is given.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def machine_line() -> str:
    """CPU model, core count, memory and the current load average, for the table header."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    return f"{cpu}, {os.cpu_count()} cpus{mem}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def timed(fns: dict, repeats: int, warmup: bool = True, cpu: bool = False):
    """Median seconds per call of each function, timed round-robin after one warm-up call each.

    Round-robin (one call of each per round) makes a machine whose load changes during
    the run slow all of them alike, so the ratios hold. With ``cpu=True`` returns
    ``(wall, cpu)``: the second dict holds the median CPU seconds the whole process
    (all threads) used per call, which other jobs on a shared machine barely change.
    """
    if warmup:
        for fn in fns.values():
            fn()
    walls = {name: [] for name in fns}
    cpus = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            walls[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
    wall = {name: statistics.median(ts) for name, ts in walls.items()}
    if cpu:
        return wall, {name: statistics.median(ts) for name, ts in cpus.items()}
    return wall


def make_images(folder: Path, n: int, size: int, seed: int = 0, fmt: str = "png") -> list[Path]:
    """``n`` random-noise images of ``size`` px (PNG or JPEG), sorted paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"img{i:04d}.{fmt}"
        if not p.exists():
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def random_vocab(n_labels: int, dim: int, seed: int = 1):
    from wordnet.vocab import Vocabulary

    rng = np.random.default_rng(seed)
    return Vocabulary(wnids=[f"n{i:08d}" for i in range(n_labels)], synsets=[f"l{i}.n.01" for i in range(n_labels)],
                      labels=[f"l{i}" for i in range(n_labels)], definitions=[""] * n_labels,
                      vectors=rng.normal(size=(n_labels, dim)).astype(np.float32))


def bare_forward(backbone: str, size: int, batches: list):
    """The limit of any inference loop: the bare ``keras.applications`` backbone + global pooling,
    ``predict_on_batch`` over already-decoded batches. Returns the function that runs it once."""
    import keras

    from models.net.backbones import build_backbone

    bare = build_backbone(backbone, size, weights=None)
    bare_in = keras.Input((size, size, 3))
    model = keras.Model(bare_in, keras.layers.GlobalAveragePooling2D()(bare(bare_in)))

    def run():
        for b in batches:
            model.predict_on_batch(b)

    return run


def make_bundle(folder: Path, backbone: str, size: int, dim: int, n_labels: int, options: dict | None = None) -> Path:
    """Write a complete bundle (random weights) and return its folder (reused if present)."""
    from models.bundle import MODEL_FILE, write_config
    from models.net.devise_model import build_devise

    if (folder / MODEL_FILE).is_file():
        return folder
    model = build_devise(backbone, embedding_dim=dim, num_classes=n_labels, weights=None, image_size=size,
                         backbone_options=options)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    random_vocab(n_labels, dim).save(folder / "vocab.h5")
    write_config(folder, {"complete": True, "softmax_trained": False})
    return folder


# Started from a minimal launcher: Linux carries the RSS of the process that forks a child into the
# child's ru_maxrss (the exec'd image inherits the old mm's high-water mark), so a benchmark that
# holds a big index itself would inflate every figure it measured directly.
_LAUNCHER = ("import os, subprocess, sys\n"
             "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
             "_, status, usage = os.wait4(p.pid, 0)\n"
             "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)")


def peak_rss_mib(cmd: list[str]) -> float:
    """Run ``cmd`` in a fresh process; its peak resident set size in MiB (Linux ``ru_maxrss`` is in KiB)."""
    res = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    code, kib = (res.stdout.split() + ["1", "0"])[:2] if res.returncode == 0 else ("1", "0")
    if int(code) not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{res.stderr[-2000:]}")
    return int(kib) / 1024
