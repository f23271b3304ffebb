#!/usr/bin/env bash
# The emoji benchmark averaged over several seen/unseen concept splits (issue 5's aim: zero-shot
# hit@5 >= 5x chance over >= 5 splits). One split is a coin flip (+-5 points at hit@5), so each
# split trains its own model: the unseen concepts of a split are never seen in its training.
#
# Per split K, two stages (each skipped when its bundle is already complete, so a stopped run
# continues where it was):
#   1. softmax pre-training (phase 0) of the backbone on the seen concepts  -> $OUT/models/split-K-pre
#      (from random weights; with DEVISE_WEIGHTS=devise-pool-64 the shipped backbone pre-trained on the
#      icon pool is used instead and this stage is skipped unless DEVISE_PRETRAIN_EPOCHS > 0)
#   2. head + fine-tune from that backbone with the variant's label text and loss
#                                                                -> $OUT/<variant>/models/split-K
# then eval on the seen concepts in the held-out style and on the unseen concepts (zero-shot and
# generalised, calibrated on held-out-style seen images); `devise results --mean` prints the tables.
# Stage 1 does not depend on the variant, so variants share it.
#
#   scripts/emoji_splits.sh                   # 5 splits, defaults below (about 12 min a split on 2 cores)
#   DEVISE_LABEL_TEXT=lemmas DEVISE_LOSS=sum scripts/emoji_splits.sh   # the paper's label vectors, summed hinge
#   DEVISE_ONLY_SPLITS="3 4" scripts/emoji_splits.sh    # some splits only (e.g. on another machine)
#   DEVISE_WEIGHTS=devise-pool-64 scripts/emoji_splits.sh  # from the shipped pre-trained backbone
#   DEVISE_BACKBONE=efficientnet_lite0 DEVISE_WEIGHTS=imagenet DEVISE_IMAGE_SIZE=128 DEVISE_BN_IMAGES=0 \
#     DEVISE_FINETUNE_EPOCHS=0 DEVISE_LABEL_TEXT=lemmas+gloss scripts/emoji_splits.sh  # the quickstart's settings
# Unseen concepts are also scored on the strict view (test_unseen_strict.csv: no ImageNet-1K class nor
# any concept above or below one), the figure to quote for an ImageNet-trained backbone.
set -euo pipefail
OUT="${DEVISE_SPLITS_DIR:-runs/emoji-splits}"
N="${DEVISE_SPLITS:-5}"
TEXT="${DEVISE_LABEL_TEXT:-lemmas+gloss+hypernyms}"
BACKBONE="${DEVISE_BACKBONE:-mobilenet_v2}"
SIZE="${DEVISE_IMAGE_SIZE:-64}"
BN_IMAGES="${DEVISE_BN_IMAGES:-1000}"
LOSS="${DEVISE_LOSS:-sampled}"
WEIGHTS="${DEVISE_WEIGHTS:-none}"
if [ "$WEIGHTS" = none ]; then
  TAG=""; MODELS="$OUT/models"; EPOCHS0="${DEVISE_PRETRAIN_EPOCHS:-25}"
else  # a pre-trained backbone: its own folders, no phase 0 on the emoji unless asked
  TAG="$(basename "$WEIGHTS")_"; EPOCHS0="${DEVISE_PRETRAIN_EPOCHS:-0}"
  [ "$BACKBONE" = mobilenet_v2 ] || TAG="${BACKBONE}-${SIZE}_$TAG"
  MODELS="$OUT/models-${TAG%_}"
fi
# the images are rendered at the network's side; the 64 px set keeps its old folder
if [ "$SIZE" = 64 ]; then EMOJI="$OUT/emoji"; else EMOJI="$OUT/emoji-$SIZE"; fi
FINETUNE="${DEVISE_FINETUNE_EPOCHS:-2}"
STYLE="${DEVISE_STYLE:-}"
VARIANT="$OUT/$TAG${TEXT//+/-}_$LOSS${STYLE:+_style-${STYLE//,/-}}"
COMMON=(--backbone "$BACKBONE" --image-size "$SIZE" --bn-images "$BN_IMAGES" --seed 0)
[ "$BACKBONE" = mobilenet_v2 ] && COMMON+=(--alpha 0.5)
complete() { python -c "import json,sys; sys.exit(0 if json.load(open('$1/config.json')).get('complete') else 1)" 2>/dev/null; }
mkdir -p "$OUT" "$MODELS" "$VARIANT/models"

devise vectors train
[ -f "$EMOJI/splits/split-$((N - 1))/test_unseen_strict.csv" ] || \
  devise data emoji "$EMOJI" --size "$SIZE" --split-seed 0 --splits "$N"

for k in ${DEVISE_ONLY_SPLITS:-$(seq 0 $((N - 1)))}; do
  split="$EMOJI/splits/split-$k"
  echo "==> split $k ($(wc -l < "$split/unseen.txt") unseen concepts)"
  start="$WEIGHTS"
  if [ "$EPOCHS0" -gt 0 ]; then
    complete "$MODELS/split-$k-pre" || devise train "$split/train.csv" --output "$MODELS/split-$k-pre" --overwrite \
      "${COMMON[@]}" --weights "$WEIGHTS" --pretrain-epochs "$EPOCHS0" --head-epochs 1 --finetune-epochs 0
    start="$MODELS/split-$k-pre"
  fi
  model="$VARIANT/models/split-$k"
  complete "$model" || devise train "$split/train.csv" --output "$model" --overwrite \
    "${COMMON[@]}" --weights "$start" --label-text "$TEXT" --loss "$LOSS" \
    --pretrain-epochs 0 --head-epochs 20 --finetune-epochs "$FINETUNE" ${STYLE:+--style "$STYLE"}
  devise vocab build "$VARIANT/unseen-$k.h5" --synsets "$split/unseen.txt" --label-text "$TEXT"
  devise eval "$split/test_seen_style.csv" --model "$model" --k 1,2,5 --hierarchical \
    --baseline softmax --json "$VARIANT/seen-$k.json" > /dev/null
  devise eval "$split/test_unseen.csv" --model "$model" --vocab "$VARIANT/unseen-$k.h5" --k 1,2,5,10 \
    --hierarchical --baseline conse,combined --calibration-data "$split/test_seen_style.csv" \
    --json "$VARIANT/unseen-$k.json" > /dev/null
  devise eval "$split/test_unseen_strict.csv" --model "$model" --vocab "$VARIANT/unseen-$k.h5" --k 1,2,5,10 \
    --baseline conse,combined --calibration none --json "$VARIANT/strict-$k.json" > /dev/null
done
if [ -z "${DEVISE_ONLY_SPLITS:-}" ]; then
  seen=(); unseen=(); strict=()
  for k in $(seq 0 $((N - 1))); do
    seen+=("$VARIANT/seen-$k.json"); unseen+=("$VARIANT/unseen-$k.json"); strict+=("$VARIANT/strict-$k.json")
  done
  echo "==> seen concepts in the held-out style, mean [min-max] over $N splits"
  devise results "${seen[@]}" --mean --metrics hit@1,hit@5,mean_per_class_hit@1,hp@2,hp@5
  echo "==> unseen concepts: given = zero-shot (unseen candidates), gzsl = + the training labels"
  devise results "${unseen[@]}" --mean --metrics hit@1,hit@2,hit@5,hit@10,mean_per_class_hit@1,hp@2,hp@5,hp@10,U
  echo "==> unseen concepts, strict view (no ImageNet-1K class nor a concept above or below one), zero-shot"
  devise results "${strict[@]}" --mean --metrics hit@1,hit@5,hit@10
fi
