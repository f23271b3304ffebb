#!/usr/bin/env bash
# The offline demo behind `make quickstart`: word vectors -> emoji dataset (+ clip art) -> vocabularies
# -> train (MobileNetV2 a=0.5, 64 px, from the backbone shipped pre-trained on the icon pool) ->
# evaluate (seen concepts in a held-out style and as clip art; unseen concepts zero-shot) -> predict.
# Everything it writes goes under $OUT (default runs/quickstart, the model in runs/quickstart/model)
# and the data home ($DEVISE_HOME).
set -euo pipefail
OUT="${DEVISE_QUICKSTART_DIR:-runs/quickstart}"
MODEL="${DEVISE_QUICKSTART_MODEL:-$OUT/model}"
# the paper's step 1 is a given pre-trained visual model: devise ships one (docs/datasets.md, "The
# pre-training pool"); DEVISE_QUICKSTART_WEIGHTS=none DEVISE_QUICKSTART_PRETRAIN_EPOCHS=25 trains from scratch instead
WEIGHTS="${DEVISE_QUICKSTART_WEIGHTS:-devise-pool-64}"
EPOCHS0="${DEVISE_QUICKSTART_PRETRAIN_EPOCHS:-0}"
FINETUNE="${DEVISE_QUICKSTART_FINETUNE_EPOCHS:-2}"
# label vectors from names + WordNet definition + hypernyms, and the paper's sampled hinge loss:
# together they raised zero-shot hit@5 over the paper's names-only vectors and the summed hinge
# (docs/results.md, "The emoji benchmark over five splits")
TEXT="${DEVISE_LABEL_TEXT:-lemmas+gloss+hypernyms}"
mkdir -p "$OUT"
log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
start=$(date +%s)

log "1/8 skip-gram word vectors (offline: WordNet glosses + GCIDE; kept in the data home)"
devise vectors train

log "2/8 emoji dataset: the same concepts drawn by up to nine emoji projects"
devise data emoji "$OUT/emoji" --size 64 --split-seed 0

log "3/8 clip art: the same concepts drawn by Open Clip Art artists (a style family never trained on)"
if [ -d "${DEVISE_CLIPART_DIR:-/usr/share/openclipart/png}" ]; then
  devise data clipart "$OUT/clipart" --emoji "$OUT/emoji"
else
  echo "skipped: apt-get install openclipart-png"
fi

log "4/8 vocabularies: the unseen concepts, and every WordNet noun"
devise vocab build "$OUT/unseen.h5" --synsets "$OUT/emoji/splits/unseen.txt" --label-text "$TEXT"
devise vocab build "$OUT/nouns.h5" --all-nouns --label-text "$TEXT"

log "5/8 train on the seen concepts from the pre-trained backbone (phase 1 head, phase 2 fine-tune)"
devise train "$OUT/emoji/train.csv" --output "$MODEL" --overwrite \
  --backbone mobilenet_v2 --alpha 0.5 --weights "$WEIGHTS" --image-size 64 \
  --pretrain-epochs "$EPOCHS0" --head-epochs 20 --finetune-epochs "$FINETUNE" --seed 0 \
  --label-text "$TEXT" --loss sampled

log "6/8 seen concepts in a drawing style never trained on ($(cat "$OUT/emoji/splits/heldout_style.txt")), and as clip art"
devise eval "$OUT/emoji/test_seen_style.csv" --model "$MODEL" --k 1,2,5 --hierarchical \
  --baseline softmax --json "$OUT/eval_seen_style.json"
if [ -f "$OUT/clipart/test_seen.csv" ]; then
  devise eval "$OUT/clipart/test_seen.csv" --model "$MODEL" --k 1,5 --hierarchical \
    --baseline softmax --json "$OUT/eval_clipart.json"
fi

log "7/8 unseen concepts, zero-shot (unseen candidates) and generalised (seen + unseen, calibrated)"
devise eval "$OUT/emoji/test_unseen.csv" --model "$MODEL" --vocab "$OUT/unseen.h5" \
  --k 1,2,5,10 --hierarchical --baseline conse --calibration-data "$OUT/emoji/test_seen_style.csv" \
  --json "$OUT/eval_unseen.json"

log "8/8 predict: an unseen concept's image and a real photo, against all WordNet nouns"
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
