#!/usr/bin/env bash
# The offline demo behind `make quickstart`: word vectors -> emoji dataset (+ clip art) -> vocabularies
# -> the default model -> train (EfficientNet-Lite0 with its ImageNet weights, a DeViSE head on cached
# features) -> evaluate (seen concepts in a held-out style and as clip art; unseen concepts zero-shot,
# all of them and the strict view without ImageNet-1K relatives) -> predict.
# Everything it writes goes under $OUT (default runs/quickstart, the model in runs/quickstart/model)
# and the data home ($DEVISE_HOME). Results and timings: docs/results.md.
set -euo pipefail
OUT="${DEVISE_QUICKSTART_DIR:-runs/quickstart}"
MODEL="${DEVISE_QUICKSTART_MODEL:-$OUT/model}"
# the paper's step 1 is a given pre-trained visual model: EfficientNet-Lite0's ImageNet weights ship
# with devise (docs/backbones.md). The icon-pool backbone instead: DEVISE_QUICKSTART_BACKBONE=mobilenet_v2
# DEVISE_QUICKSTART_WEIGHTS=devise-pool-64 DEVISE_QUICKSTART_SIZE=64 DEVISE_QUICKSTART_BN_IMAGES=1000
# DEVISE_QUICKSTART_FINETUNE_EPOCHS=2 (add --alpha 0.5 via DEVISE_QUICKSTART_TRAIN_ARGS="--alpha 0.5")
BACKBONE="${DEVISE_QUICKSTART_BACKBONE:-efficientnet_lite0}"
WEIGHTS="${DEVISE_QUICKSTART_WEIGHTS:-imagenet}"
# image side: the emoji are rendered at it and the network runs at it. Lite0's native side is 224, but
# the network costs about (224/128)^2 = 3x as much there and rendering the emoji far longer, which the
# quickstart's 10-minute budget does not allow (docs/results.md)
SIZE="${DEVISE_QUICKSTART_SIZE:-128}"
EPOCHS0="${DEVISE_QUICKSTART_PRETRAIN_EPOCHS:-0}"
HEAD="${DEVISE_QUICKSTART_HEAD_EPOCHS:-20}"
FINETUNE="${DEVISE_QUICKSTART_FINETUNE_EPOCHS:-0}"
# 0: keep ImageNet's BatchNorm statistics rather than re-estimating them on drawings (measured much
# better on the emoji: docs/results.md, "From the ImageNet backbone")
BN_IMAGES="${DEVISE_QUICKSTART_BN_IMAGES:-0}"
EXTRA=(${DEVISE_QUICKSTART_TRAIN_ARGS:-})
# label vectors from names + WordNet definition (the default model's label text) and the paper's
# sampled hinge loss (docs/results.md)
TEXT="${DEVISE_LABEL_TEXT:-lemmas+gloss}"
mkdir -p "$OUT"
# each step's header says the seconds since the start, so the step times can be read off the output
log() { printf '\n\033[1m==> %s\033[0m (%d s)\n' "$*" "$(( $(date +%s) - start ))"; }
start=$(date +%s)

log "1/9 skip-gram word vectors (offline: WordNet glosses + GCIDE; kept in the data home)"
devise vectors train

log "2/9 emoji dataset: the same concepts drawn by up to nine emoji projects"
devise data emoji "$OUT/emoji" --size "$SIZE" --split-seed 0

log "3/9 clip art: the same concepts drawn by Open Clip Art artists (a style family never trained on)"
if [ -d "${DEVISE_CLIPART_DIR:-/usr/share/openclipart/png}" ]; then
  devise data clipart "$OUT/clipart" --emoji "$OUT/emoji"
else
  echo "skipped: apt-get install openclipart-png"
fi

log "4/9 vocabularies: the unseen concepts, and every WordNet noun"
devise vocab build "$OUT/unseen.h5" --synsets "$OUT/emoji/splits/unseen.txt" --label-text "$TEXT"
devise vocab build "$OUT/nouns.h5" --all-nouns --label-text "$TEXT"

log "5/9 the default model (EfficientNet-Lite0's ImageNet classifier + a DeViSE head; kept in the data home)"
devise model build

log "6/9 train on the seen concepts from the ImageNet backbone (phase 1: head on cached features)"
devise train "$OUT/emoji/train.csv" --output "$MODEL" --overwrite \
  --backbone "$BACKBONE" --weights "$WEIGHTS" --image-size "$SIZE" --bn-images "$BN_IMAGES" \
  --pretrain-epochs "$EPOCHS0" --head-epochs "$HEAD" --finetune-epochs "$FINETUNE" --seed 0 \
  --label-text "$TEXT" --loss sampled ${EXTRA[@]+"${EXTRA[@]}"}

log "7/9 seen concepts in a drawing style never trained on ($(cat "$OUT/emoji/splits/heldout_style.txt")), and as clip art"
devise eval "$OUT/emoji/test_seen_style.csv" --model "$MODEL" --k 1,2,5 --hierarchical \
  --baseline softmax --json "$OUT/eval_seen_style.json"
if [ -f "$OUT/clipart/test_seen.csv" ]; then
  devise eval "$OUT/clipart/test_seen.csv" --model "$MODEL" --k 1,5 --hierarchical \
    --baseline softmax --json "$OUT/eval_clipart.json"
fi

log "8/9 unseen concepts, zero-shot (unseen candidates) and generalised (seen + unseen, calibrated);
    then the strict view: unseen concepts that are not ImageNet-1K classes nor above or below one"
devise eval "$OUT/emoji/test_unseen.csv" --model "$MODEL" --vocab "$OUT/unseen.h5" \
  --k 1,2,5,10 --hierarchical --baseline conse,combined --calibration-data "$OUT/emoji/test_seen_style.csv" \
  --json "$OUT/eval_unseen.json"
devise eval "$OUT/emoji/test_unseen_strict.csv" --model "$MODEL" --vocab "$OUT/unseen.h5" \
  --k 1,2,5,10 --baseline conse,combined --calibration none --json "$OUT/eval_unseen_strict.json"

log "9/9 predict: an unseen concept's image and a real photo, against all WordNet nouns; the photo with the default model"
unseen_image=$(python - "$OUT/emoji" <<'PY'
import csv, sys, pathlib
root = pathlib.Path(sys.argv[1])
rows = list(csv.DictReader(open(root / "test_unseen_strict.csv")))
print(root / rows[0]["img_name"])
PY
)
python -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.chelsea()).save('$OUT/chelsea.png')"
devise predict "$unseen_image" "$OUT/chelsea.png" --model "$MODEL" --vocab "$OUT/nouns.h5" --top 5
devise predict "$OUT/chelsea.png" --top 5

log "done in $(( $(date +%s) - start )) s; results in $OUT, model in $MODEL"
