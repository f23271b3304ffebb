#!/usr/bin/env bash
# Style and domain transfer of the five-split models that scripts/emoji_splits.sh trained: per split,
# its seen concepts drawn as clip art (Open Clip Art, a style family never trained on) and real photos
# (Fashion-MNIST products, scikit-image's photos), seen concepts among the split's trained labels and
# unseen ones zero-shot among its unseen labels. Needs openclipart-png and dataset-fashion-mnist.
#
#   scripts/transfer_checks.sh runs/emoji-splits/devise-pool-64_lemmas-gloss-hypernyms_sampled
set -euo pipefail
VARIANT="$1"
OUT="${DEVISE_SPLITS_DIR:-runs/emoji-splits}"
N="${DEVISE_SPLITS:-5}"
TEXT="${DEVISE_LABEL_TEXT:-lemmas+gloss+hypernyms}"
[ -f "$OUT/clipart/splits/split-$((N - 1))/test_seen.csv" ] || devise data clipart "$OUT/clipart" --emoji "$OUT/emoji"
[ -f "$OUT/photos/splits/split-$((N - 1))/fashion_seen.csv" ] || \
  python "$(dirname "$0")/photo_checks.py" "$OUT/photos" --emoji "$OUT/emoji"
for k in ${DEVISE_ONLY_SPLITS:-$(seq 0 $((N - 1)))}; do
  model="$VARIANT/models/split-$k"
  [ -f "$VARIANT/unseen-$k.h5" ] || devise vocab build "$VARIANT/unseen-$k.h5" \
    --synsets "$OUT/emoji/splits/split-$k/unseen.txt" --label-text "$TEXT"
  devise eval "$OUT/clipart/splits/split-$k/test_seen.csv" --model "$model" --k 1,5 --hierarchical \
    --baseline softmax --json "$VARIANT/clipart-seen-$k.json" > /dev/null
  devise eval "$OUT/clipart/splits/split-$k/test_unseen.csv" --model "$model" --vocab "$VARIANT/unseen-$k.h5" \
    --k 1,5 --baseline conse --calibration none --json "$VARIANT/clipart-unseen-$k.json" > /dev/null
  for kind in fashion skimage; do
    devise eval "$OUT/photos/splits/split-$k/${kind}_seen.csv" --model "$model" --k 1,5 --baseline softmax \
      --json "$VARIANT/$kind-seen-$k.json" > /dev/null
    if [ "$(wc -l < "$OUT/photos/splits/split-$k/${kind}_unseen.csv")" -gt 1 ]; then
      devise eval "$OUT/photos/splits/split-$k/${kind}_unseen.csv" --model "$model" --vocab "$VARIANT/unseen-$k.h5" \
        --k 1,5 --baseline conse --calibration none --json "$VARIANT/$kind-unseen-$k.json" > /dev/null
    fi
  done
done
python - "$VARIANT" "$N" <<'PY'
import json, sys
from pathlib import Path
folder, n = Path(sys.argv[1]), int(sys.argv[2])
print(f"transfer checks over {n} splits: hit@5 in %, mean [min-max]; images / concepts per split (mean)")
for name in ("clipart-seen", "clipart-unseen", "fashion-seen", "fashion-unseen", "skimage-seen", "skimage-unseen"):
    reports = [json.loads(p.read_text()) for k in range(n) if (p := folder / f"{name}-{k}.json").is_file()]
    if not reports:
        continue
    cells = []
    for method in ("devise", "softmax", "conse", "chance"):
        values = [100 * r["methods"][method]["hit@5"] for r in reports if method in r["methods"]]
        if values:
            cells.append(f"{method} {sum(values) / len(values):5.1f} [{min(values):.1f}-{max(values):.1f}]")
    images = sum(r["n_images"] for r in reports) / len(reports)
    classes = sum(r["n_classes"] for r in reports) / len(reports)
    print(f"{name:<15} ({len(reports)} splits, {images:.0f} images, {classes:.0f} concepts): " + "; ".join(cells))
PY
