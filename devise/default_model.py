"""The default model: what ``devise predict photo.jpg`` uses when no ``--model`` is given.

A new user has no bundle of their own, and training one on ImageNet is not a first step.
The paper's step 1 is a pre-trained ImageNet softmax classifier, and devise installs one
offline (EfficientNet-Lite0, :mod:`models.net.efficientnet_lite`). The default model is
that classifier with a DeViSE head, assembled in the data home on first use from what the
machine holds, never downloaded:

1. the default skip-gram vectors (``devise vectors train``; trained once, kept);
2. the label vectors of the classifier's ImageNet-1K classes (:data:`LABEL_TEXT`);
3. a linear DeViSE head fitted on the classifier's own knowledge: each class's weight row
   (a direction in feature space) labelled with that class's label vector;
4. the default labels: the ImageNet-21K synsets (pictured nouns, with names and definitions).

It predicts with ``combined`` (:data:`METHOD`): the DeViSE embedding and ConSE over the 1K
softmax, averaged (docs/photos.md has the measurements behind each choice). ``--method``
picks any other; ``--model``/``DEVISE_MODEL`` replace the model.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

BACKBONE = "efficientnet_lite0"
LABEL_TEXT = "lemmas+gloss"  # ConSE on photos: 69.1 vs 67.0 (+hypernyms), 64.4 (lemmas) hit@5 (docs/photos.md)
METHOD = "combined"
DEFAULT_LABELS = "imagenet21k"
LABELS_FILE = "labels.h5"        # the default labels, inside the bundle
RECIPE = "classifier-rows-v1"    # bump when the recipe changes: the folder name changes, so it is rebuilt
HEAD_EPOCHS = 40
HEAD_LR = 1e-3
SEED = 0


def default_model_path() -> Path:
    """Where the default model lives: ``<data home>/models/default-<backbone>-<recipe>``."""
    from wordnet.base.home import data_home

    return data_home() / "models" / f"default-{BACKBONE}-{RECIPE}"


def _complete(path: Path) -> bool:
    from models.bundle import read_config
    from wordnet.base.errors import DeviseError

    try:
        return (path / "config.json").is_file() and bool(read_config(path).get("complete"))
    except DeviseError:
        return False


def ensure_default_model(on_step: Callable[[str], None] | None = None) -> Path:
    """The default model's folder, built first (a few minutes, once) when it is not there yet."""
    path = default_model_path()
    if not _complete(path):
        build_default_model(path, on_step=on_step)
    return path


def build_default_model(out: str | Path | None = None, *, overwrite: bool = False, vectors: str | Path | None = None,
                        on_step: Callable[[str], None] | None = None) -> dict:
    """Build the default model into ``out`` (default :func:`default_model_path`); offline, a few minutes.

    Returns ``{"path", "built", "seconds": {step: s}}`` (``built`` is False when a complete
    model was already there and ``overwrite`` is off). ``on_step(text)`` hears each step.
    Two processes building at once wait on one lock; the second finds the model built.
    """
    from wordnet.base.files import exclusive_lock, lock_path_for

    out = Path(out).expanduser() if out is not None else default_model_path()
    say = on_step or (lambda text: None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock_path_for(out), f"the model being built in {out}"):
        if _complete(out) and not overwrite:
            return {"path": str(out), "built": False, "seconds": {}}
        return _build(out, vectors, say)


def _build(out: Path, vectors, say) -> dict:
    import numpy as np

    from devise.vocabularies import build_vocabulary, train_vectors
    from models.imagenet_bundle import classifier_model, write_bundle
    from models.net.backbones import imagenet_classifier
    from models.training.head_fit import fit_head
    from wordnet.vectors.loading import default_vectors_path

    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def timed(name):
        seconds[name] = round(time.perf_counter() - start - sum(seconds.values()), 1)

    say(f"building the default model in {out} (once; offline) ...")
    if vectors is None and not default_vectors_path().is_file():
        say("  1/4 word vectors: skip-gram on WordNet glosses and GNU GCIDE (about 5 minutes on 2 cores) ...")
        train_vectors()
    timed("vectors")
    say(f"  2/4 label vectors of the ImageNet-1K classes ({LABEL_TEXT}) ...")
    classes, missing, _, vectors_path = build_vocabulary(synsets="imagenet1k", vectors=vectors, skip_missing=True,
                                                         label_text=LABEL_TEXT)
    timed("classes")
    say(f"  3/4 {BACKBONE} (ImageNet weights) and a DeViSE head fitted on its 1K classifier ...")
    import keras

    keras.utils.set_random_seed(SEED)  # the head's initial weights too: the same model on every machine
    model = classifier_model(BACKBONE, classes, hidden_units=0)
    kernel, _, wnids = imagenet_classifier(BACKBONE)
    row = {w: i for i, w in enumerate(wnids)}
    features, labels = classifier_row_features(kernel, [row[w] for w in classes.wnids])
    losses = fit_head(model, features, labels, classes.vectors, epochs=HEAD_EPOCHS, learning_rate=HEAD_LR, seed=SEED)
    timed("head")
    say(f"  4/4 default labels: the {DEFAULT_LABELS} synsets with a word vector ...")
    labels_vocab, labels_missing, _, _ = build_vocabulary(synsets=DEFAULT_LABELS, vectors=vectors_path,
                                                          skip_missing=True, label_text=LABEL_TEXT)
    timed("labels")
    write_bundle(out, model, classes, {
        "default_method": METHOD,
        "default_vocab": LABELS_FILE,
        "hyperparameters": {"backbone": BACKBONE, "weights": "imagenet", "label_text": LABEL_TEXT,
                            "hidden_units": 0, "head_epochs": HEAD_EPOCHS, "head_lr": HEAD_LR, "seed": SEED},
        "provenance": {"recipe": RECIPE, "head_data": "the 1K classifier's weight rows (no images)",
                       "classes_without_vector": [m.name() for m in missing], "default_labels": DEFAULT_LABELS,
                       "default_labels_without_vector": len(labels_missing),
                       "head_final_loss": round(float(losses[-1]), 6)},
    }, extra_files={LABELS_FILE: labels_vocab.save})
    timed("write")
    total = round(sum(seconds.values()), 1)
    say(f"default model built in {total:.0f} s: {len(classes)} ImageNet classes, {len(labels_vocab):,} default labels")
    return {"path": str(out), "built": True, "seconds": {**seconds, "total": total},
            "classes": len(classes), "labels": len(labels_vocab), "head_loss": float(np.round(losses[-1], 6))}


def classifier_row_features(kernel, rows):
    """The classifier's weight rows as feature vectors for the head: ``(features (n, d), labels (n,))``.

    A class's row is the direction in feature space that raises its logit; scaled to the
    norm of a typical pooled feature vector it is a stand-in image of that class, which the
    head learns to map onto the class's label vector.
    """
    import numpy as np

    w = np.asarray(kernel, np.float32)[:, rows].T
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12) * ROW_SCALE
    return w, np.arange(len(rows), dtype=np.int32)


ROW_SCALE = 15.0  # ~ the L2 norm of EfficientNet-Lite0's pooled features on photographs
