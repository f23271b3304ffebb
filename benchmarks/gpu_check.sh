#!/usr/bin/env bash
# GPU check of `devise train` on the JAX backend (issue 14), for a machine with JAX (CUDA) and no
# TensorFlow and no internet. Under 8 minutes: synthetic JPEGs, phase-2 images/s of the real engine
# vs a plain model.fit on in-memory uint8 batches, --steps-per-execution 1 and 32, decoding processes
# 15/8/4/1. Prints a table; nothing is claimed until it has run there.
#
#   bash benchmarks/gpu_check.sh                 # from the repository root (no install needed)
#   BACKBONE=mobilenet_v2 SIZE=32 IMAGES=64 BATCH=16 WORKERS=1 SPE=1 bash benchmarks/gpu_check.sh   # CPU smoke run
#
# Python packages needed besides JAX: keras (>= 3.15), numpy, pillow, h5py, rich. Bring their wheels
# (pip download keras h5py pillow rich -d wheels/ on a machine with internet; then
# pip install --no-index --find-links wheels/ keras h5py pillow rich). Check first that the machine's
# JAX version is one the Keras version supports.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export KERAS_BACKEND=jax PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/devise-jax-cache}"  # recompiles hit it

echo "==> versions and devices"
"$PY" - <<'EOF' || { echo "missing packages: see the header of benchmarks/gpu_check.sh"; exit 2; }
import importlib
for name in ("jax", "keras", "numpy", "PIL", "h5py", "rich"):
    m = importlib.import_module(name)
    print(f"{name} {getattr(m, '__version__', '?')}")
import jax
print("devices:", jax.devices())
try:
    import tensorflow  # noqa: F401
    print("note: TensorFlow is installed; KERAS_BACKEND=jax is used anyway")
except ImportError:
    print("TensorFlow: absent (as expected)")
EOF

echo "==> devise train phase 2 vs plain fit (limit 450 s)"
timeout 450 "$PY" benchmarks/gpu_train.py --backbone "${BACKBONE:-resnet50}" --image-size "${SIZE:-224}" \
    --images "${IMAGES:-4096}" --batch "${BATCH:-128}" --epochs "${EPOCHS:-3}" --spe "${SPE:-1,32}" \
    --workers "${WORKERS:-15,8,4,1}" ${EXTRA:-}
rc=$?
[ $rc -eq 124 ] && echo "stopped at the 450 s limit: rerun with fewer WORKERS values or IMAGES"
exit $rc
