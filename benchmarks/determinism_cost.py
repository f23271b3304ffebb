"""What op determinism (`devise train --deterministic`, on by default without a GPU) costs a phase-0 epoch.

Workload: the generated emoji-sized images of ``train_epoch_times.py`` (CLASSES x PER_CLASS PNGs at
64 px), MobileNetV2 (alpha 0.5) softmax over the classes, batch 32, the training pipeline with
augmentation and the style ops. Blocks of STEPS steps are timed alternately with determinism on and
off (a fresh dataset each block, one compiled model), so load changes hit both alike; prints the
images/s of each and their ratio.

    python benchmarks/determinism_cost.py --blocks 4 --steps 20
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line
from train_epoch_times import make_workload


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--per-class", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--style", default="crop,recolour,grey,blur,outline")
    args = p.parse_args()
    import keras

    from models.data.failures import FailureLog
    from models.data.tfdata import training_dataset
    from models.net.devise_model import DeviseModel
    from models.training.distribute import determinism

    root = Path(tempfile.mkdtemp(prefix="determinism-"))
    items = make_workload(root, args.classes, args.per_class)
    paths, labels = [p for p, _ in items], [c for _, c in items]
    model = DeviseModel(backbone="mobilenet_v2", embedding_dim=1, num_classes=args.classes, image_size=64,
                        hidden_units=1, backbone_options={"alpha": 0.5}).classifier
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    batch = 32
    rates = {True: [], False: []}
    for block in range(2 * args.blocks + 1):
        on = block % 2 == 1
        with determinism(on):
            ds = training_dataset(paths, labels, size=64, batch_size=batch, log=FailureLog(), seed=block,
                                  style=args.style).repeat().take(args.steps)
            t0 = time.perf_counter()
            model.fit(ds, epochs=1, verbose=0)
            seconds = time.perf_counter() - t0
        if block:  # block 0 traces the step
            rates[on].append(args.steps * batch / seconds)
    print(machine_line())
    mean = {k: sum(v) / len(v) for k, v in rates.items()}
    print(f"phase-0 images/s, {args.blocks} alternating blocks of {args.steps} steps: deterministic "
          f"{mean[True]:.1f}, nondeterministic {mean[False]:.1f}; ratio {mean[True] / mean[False]:.2f}")


if __name__ == "__main__":
    main()
