#!/usr/bin/env bash
# The offline demo behind `make quickstart`: word vectors -> emoji dataset -> vocabularies
# -> train (MobileNetV2 a=0.5, 64 px, from scratch) -> evaluate (seen concepts in a held-out
# style; unseen concepts zero-shot) -> predict. Everything it writes goes under $OUT
# (default runs/quickstart, the model in runs/quickstart/model) and the data home ($DEVISE_HOME).
set -euo pipefail
OUT="${DEVISE_QUICKSTART_DIR:-runs/quickstart}"
MODEL="${DEVISE_QUICKSTART_MODEL:-$OUT/model}"
EPOCHS0="${DEVISE_QUICKSTART_PRETRAIN_EPOCHS:-25}"
# label vectors from names + WordNet definition + hypernyms, and the paper's sampled hinge loss:
# together they raised zero-shot hit@5 over the paper's names-only vectors and the summed hinge
# (README, "The emoji benchmark over five splits")
TEXT="${DEVISE_LABEL_TEXT:-lemmas+gloss+hypernyms}"
mkdir -p "$OUT"
log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
start=$(date +%s)

log "1/7 skip-gram word vectors (offline: WordNet glosses + GCIDE; kept in the data home)"
devise vectors train

log "2/7 emoji dataset: the same concepts drawn by up to nine emoji projects"
devise data emoji "$OUT/emoji" --size 64 --split-seed 0

log "3/7 vocabularies: the unseen concepts, and every WordNet noun"
devise vocab build "$OUT/unseen.h5" --synsets "$OUT/emoji/splits/unseen.txt" --label-text "$TEXT"
devise vocab build "$OUT/nouns.h5" --all-nouns --label-text "$TEXT"

log "4/7 train on the seen concepts (phase 0 softmax, phase 1 head, phase 2 fine-tune)"
devise train "$OUT/emoji/train.csv" --output "$MODEL" --overwrite \
  --backbone mobilenet_v2 --alpha 0.5 --weights none --image-size 64 \
  --pretrain-epochs "$EPOCHS0" --head-epochs 20 --finetune-epochs 2 --seed 0 \
  --label-text "$TEXT" --loss sampled

log "5/7 seen concepts in a drawing style never trained on ($(cat "$OUT/emoji/splits/heldout_style.txt"))"
devise eval "$OUT/emoji/test_seen_style.csv" --model "$MODEL" --k 1,2,5 --hierarchical \
  --baseline softmax --json "$OUT/eval_seen_style.json"

log "6/7 unseen concepts, zero-shot (unseen candidates) and generalised (seen + unseen, calibrated)"
devise eval "$OUT/emoji/test_unseen.csv" --model "$MODEL" --vocab "$OUT/unseen.h5" \
  --k 1,2,5,10 --hierarchical --baseline conse --calibration-data "$OUT/emoji/test_seen_style.csv" \
  --json "$OUT/eval_unseen.json"

log "7/7 predict: an unseen concept's image and a real photo, against all WordNet nouns"
unseen_image=$(python - "$OUT/emoji" <<'PY'
import csv, sys, pathlib
root = pathlib.Path(sys.argv[1])
rows = list(csv.DictReader(open(root / "test_unseen.csv")))
print(root / rows[0]["img_name"])
PY
)
python -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.chelsea()).save('$OUT/chelsea.png')"
devise predict "$unseen_image" "$OUT/chelsea.png" --model "$MODEL" --vocab "$OUT/nouns.h5" --top 5

log "done in $(( $(date +%s) - start )) s; results in $OUT, model in $MODEL"
