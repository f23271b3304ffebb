#!/usr/bin/env bash
# Reproduce the backbone shipped as `--weights devise-pool-64` (models/net/weights/): MobileNetV2
# (alpha 0.5) at 64 px, pre-trained from random weights on the icon pool of @iconify/json, whose
# classes are disjoint from every emoji-benchmark concept (`devise data pool`, docs/datasets.md "The
# pre-training pool"). A few CPU-hours on 2 cores; resumable: run it again after a stop.
#
#   scripts/pretrain_pool.sh                    # pool + pre-training under runs/pool
#   DEVISE_PRETRAIN_EPOCHS=5 scripts/pretrain_pool.sh   # a shorter run
#   DEVISE_SHIP=1 scripts/pretrain_pool.sh      # then copy it into models/net/weights/ as devise-pool-64
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${DEVISE_POOL_DIR:-runs/pool}"
ICONIFY_VERSION="${DEVISE_ICONIFY_VERSION:-2.2.535}"  # the version the shipped backbone was trained on
EPOCHS="${DEVISE_PRETRAIN_EPOCHS:-20}"
STYLE="${DEVISE_PRETRAIN_STYLE:-crop,recolour,grey,blur,outline}"  # the shipped backbone's
NAME=devise-pool-64
mkdir -p "$OUT"
complete() { python -c "import json,sys; sys.exit(0 if json.load(open('$1/config.json')).get('complete') else 1)" 2>/dev/null; }

if [ ! -f "$OUT/npm/node_modules/@iconify/json/collections.json" ]; then
  echo "==> npm install @iconify/json@$ICONIFY_VERSION (465 MB) into $OUT/npm"
  npm install --prefix "$OUT/npm" --no-audit --no-fund --no-save --loglevel=error "@iconify/json@$ICONIFY_VERSION"
fi
[ -f "$OUT/pool/pool.json" ] || devise data pool "$OUT/pool" --size 64 --min-sets 8 --max-per-class 40 \
  --node-modules "$OUT/npm/node_modules"
if complete "$OUT/backbone"; then
  echo "==> $OUT/backbone is complete"
elif [ -f "$OUT/backbone/config.json" ]; then
  devise pretrain "$OUT/pool" -o "$OUT/backbone" --resume
else
  devise pretrain "$OUT/pool" -o "$OUT/backbone" --epochs "$EPOCHS" --style "$STYLE"
fi
if [ -n "${DEVISE_SHIP:-}" ]; then
  cp "$OUT/backbone/backbone.weights.h5" "models/net/weights/$NAME.weights.h5"
  python - "$OUT/backbone/backbone.json" "models/net/weights/$NAME.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
info["pool"].pop("path", None)  # a path on the machine that trained it
json.dump(info, open(sys.argv[2], "w"), indent=1)
open(sys.argv[2], "a").write("\n")
PY
  echo "==> shipped as --weights $NAME (models/net/weights/)"
fi
