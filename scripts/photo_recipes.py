"""Which recipe makes the best DeViSE model for photographs: the measurements behind the default model.

Every recipe reads the same EfficientNet-Lite0 ImageNet backbone (frozen) and is scored on
labelled photographs (``devise data photos``) by hit@k among the photos' own synsets, as
``devise predict PHOTOS --labels-file WNIDS --top 5`` would rank them:

- ConSE over the 1K softmax (top T classes), for each ``--label-text``;
- a linear DeViSE head (hinge rank loss, margin 0.1) fitted on the 1K classifier's weight rows
  (the default model's head), over several seeds, alone and combined with ConSE;
- the same with drawings (``devise data emoji`` / ``clipart``) as extra head training images,
  zero-shot for the head (drawings of the photos' synsets left out) and not;
- a ridge regression from the rows to the label vectors (a closed-form head), for comparison.

    python scripts/photo_recipes.py data/photos --drawings runs/emoji runs/clipart --seeds 4

Features are cached beside the data (``.photo_recipes-*.npz``). Prints one line per recipe:
``all`` = every photo among all the photos' synsets, ``out`` = photos whose synset is not an
ImageNet-1K class among those synsets, ``strict`` = ``not_in1k_strict.csv`` among its synsets.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BACKBONE = "efficientnet_lite0"


def read_items(csv_path: Path) -> list[tuple[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as fh:
        return [(str(csv_path.parent / r["img_name"]), r["class"]) for r in csv.DictReader(fh)]


def features(items, cache: Path):
    """Pooled Lite0 features and 1K probabilities of the items (their centre 87.5 %, 224 px), cached."""
    if cache.is_file():
        z = np.load(cache)
        if list(z["paths"]) == [p for p, _ in items]:
            return z["feats"], z["probs"]
    import keras

    from models.data.failures import FailureLog
    from models.data.tfdata import inference_dataset
    from models.imagenet_bundle import IMAGENET_RECIPE
    from models.net.backbones import Preprocess, build_backbone, imagenet_classifier, native_image_size

    size = native_image_size(BACKBONE)
    net = build_backbone(BACKBONE, size, weights="imagenet")
    inp = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(net(Preprocess("tf")(inp)))
    extractor = keras.Model(inp, pooled)
    kernel, bias, _ = imagenet_classifier(BACKBONE)
    log = FailureLog()
    feats = np.zeros((len(items), kernel.shape[0]), np.float32)
    for images, idx in inference_dataset([p for p, _ in items], size, 32, log=log, recipe=IMAGENET_RECIPE):
        feats[idx.numpy()] = extractor.predict_on_batch(images)
    if len(log):
        raise SystemExit(f"{len(log)} images could not be read: {list(log.items())[:3]}")
    logits = feats @ kernel + bias
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.savez(cache, feats=feats, probs=probs, paths=np.array([p for p, _ in items]))
    return feats, probs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", type=Path, help="a `devise data photos` folder")
    ap.add_argument("--drawings", type=Path, nargs="*", default=[], help="`devise data emoji`/`clipart` folders")
    ap.add_argument("--label-texts", default="lemmas,lemmas+gloss,lemmas+hypernyms,lemmas+gloss+hypernyms")
    ap.add_argument("--head-text", default="lemmas+gloss", help="label text of the head recipes")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()

    import keras

    from devise.default_model import ROW_SCALE
    from models.net.backbones import imagenet_classifier
    from models.net.devise_model import L2Normalize
    from models.net.losses import HingeRankLoss
    from wordnet.reader import load_wordnet
    from wordnet.scoring.metrics import combined_embeddings, conse_embeddings
    from wordnet.vectors.label_text import synset_vector
    from wordnet.vectors.loading import default_vectors_path, load_vectors

    items = read_items(args.photos / "test.csv")
    truth = [w for _, w in items]
    strict = {p for p, _ in read_items(args.photos / "not_in1k_strict.csv")}
    feats, probs = features(items, args.photos / ".photo_recipes-photos.npz")
    kernel, _, classes = imagenet_classifier(BACKBONE)
    in1k = set(classes)
    wn, kv = load_wordnet(), load_vectors(default_vectors_path())

    def vectors(wnids, text):
        rows = [synset_vector(kv, wn.synset_from_pos_and_offset("n", int(w[1:])), text) for w in wnids]
        return np.asarray([r if r is not None else np.zeros(kv.vector_size) for r in rows], np.float32)

    masks = {"all": np.ones(len(items), bool), "out": np.array([w not in in1k for w in truth]),
             "strict": np.array([p in strict for p, _ in items])}

    def scores(emb, text):
        out = {}
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        for name, mask in masks.items():
            cands = sorted({w for w, m in zip(truth, mask) if m})
            c = vectors(cands, text)
            c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
            top = np.argsort(-(unit[mask] @ c.T), axis=1)[:, :5]
            true = [cands.index(w) for w, m in zip(truth, mask) if m]
            out[name] = (100 * np.mean(top[:, 0] == true), 100 * np.mean([t in r for t, r in zip(true, top)]))
        return out

    def line(name, s):
        cells = "  ".join(f"{k} hit@1 {v[0]:5.1f} hit@5 {v[1]:5.1f}" for k, v in s.items())
        print(f"{name:58s} {cells}", flush=True)

    print(f"{len(items)} photos ({masks['out'].sum()} not ImageNet-1K, {masks['strict'].sum()} strict) "
          f"of {len(set(truth))} synsets")
    for text in args.label_texts.split(","):
        v1k = vectors(classes, text)
        ok = np.linalg.norm(v1k, axis=1) > 0
        for T in (1, 5, 10, 20):
            line(f"ConSE T={T}, {text}", scores(conse_embeddings(probs[:, ok], v1k[ok], T), text))

    text = args.head_text
    v1k = vectors(classes, text)
    ok = np.linalg.norm(v1k, axis=1) > 0
    conse = conse_embeddings(probs[:, ok], v1k[ok], 10)
    rows = kernel[:, ok].T / np.linalg.norm(kernel[:, ok].T, axis=1, keepdims=True) * ROW_SCALE
    row_labels = [c for c, o in zip(classes, ok) if o]

    def head(x, labels, seed):
        names = sorted(set(labels))
        index = {w: i for i, w in enumerate(names)}
        lv = vectors(names, text)
        keep = np.array([np.linalg.norm(lv[index[w]]) > 0 for w in labels])
        keras.utils.set_random_seed(seed)
        inp = keras.Input((x.shape[1],))
        model = keras.Model(inp, L2Normalize()(keras.layers.Dense(kv.vector_size)(inp)))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=HingeRankLoss(lv, margin=0.1))
        model.fit(x[keep], np.array([index[w] for w in labels])[keep], epochs=args.epochs, batch_size=64, verbose=0)
        return model.predict(feats, verbose=0)

    def mean_over_seeds(name, x, labels, seeds):
        runs = [head(x, labels, s) for s in range(seeds)]
        for what, embs in (("head", runs), ("combined", [combined_embeddings(e, conse) for e in runs])):
            s = [scores(e, text) for e in embs]
            line(f"{name}: {what} ({seeds} seeds)",
                 {k: tuple(np.mean([r[k][j] for r in s]) for j in (0, 1)) for k in masks})

    line(f"ConSE T=10, {text}", scores(conse, text))
    mean_over_seeds("rows head", rows, row_labels, args.seeds)
    ones = np.ones((len(rows), 1), np.float32)
    for lam in (10.0, 100.0, 1000.0):
        xc = np.concatenate([rows, ones], 1)
        a = np.linalg.solve(xc.T @ xc + lam * np.eye(xc.shape[1]), xc.T @ (v1k[ok] / np.linalg.norm(v1k[ok], axis=1,
                                                                                               keepdims=True)))
        emb = np.concatenate([feats, np.ones((len(feats), 1), np.float32)], 1) @ a
        line(f"ridge head lambda={lam:g}", scores(emb, text))
        line(f"ridge head lambda={lam:g}: combined", scores(combined_embeddings(emb, conse), text))
    if args.drawings:
        drawn = [it for folder in args.drawings for it in
                 ((str(folder / r["path"]), r["wnid"]) for r in csv.DictReader(open(folder / "manifest.csv")))]
        dfeats, _ = features(drawn, args.drawings[0] / ".photo_recipes-drawings.npz")
        tested = set(truth)
        zs = [i for i, (_, w) in enumerate(drawn) if w not in tested]
        dl = [w for _, w in drawn]
        mean_over_seeds("drawings (zero-shot) + rows head", np.concatenate([dfeats[zs], rows]),
                        [dl[i] for i in zs] + row_labels, args.seeds)
        mean_over_seeds("drawings (incl. the photos' synsets) + rows head", np.concatenate([dfeats, rows]),
                        dl + row_labels, args.seeds)


if __name__ == "__main__":
    main()
