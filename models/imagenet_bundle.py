"""A bundle made from an ImageNet classifier backbone without training its backbone: the default model's body.

The paper's step 1 is a visual model pre-trained as an ImageNet softmax classifier; with
an EfficientNet-Lite backbone that step comes installed (its 1K classifier included), so
phase 0 is done. This module assembles a complete bundle from it:

- the backbone with its ImageNet weights, at its native resolution, preprocessing inside;
- the bundle's softmax head *is* the backbone's 1K classifier (the rows of the classes
  that have a label vector, in vocabulary order), so the softmax and ConSE read it as trained;
- a DeViSE head fitted on feature vectors held in memory (:func:`models.training.head_fit.fit_head`);
- ``vocab.h5`` = those 1K classes, ``config.json`` complete, with whatever the caller records.

The bundle is written into a temporary folder beside ``out`` and renamed into place, so a
killed build never leaves a folder that loads as a model.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from models import bundle as B
from wordnet.base.files import atomic_path, staging_folder
from wordnet.vocab import Vocabulary

IMAGENET_RECIPE = "inception"  # ImageNet models are evaluated on the central 87.5 % of the image


def classifier_model(backbone: str, vocab: Vocabulary, *, hidden_units: int = 0, dropout: float = 0.0,
                     image_size: int | None = None):
    """A :class:`~models.net.devise_model.DeviseModel` on ``backbone``'s ImageNet weights whose softmax head is the
    backbone's own 1K classifier, restricted to ``vocab``'s classes (its wnids, all ImageNet-1K classes)."""
    from models.net.backbones import WeightsError, imagenet_classifier, native_image_size
    from models.net.devise_model import build_devise

    found = imagenet_classifier(backbone)
    if found is None:
        raise WeightsError(f"backbone {backbone} has no ImageNet-1K classifier in devise; use efficientnet_lite0, "
                           f"efficientnet_lite1 or efficientnet_lite2")
    kernel, bias, wnids = found
    row = {w: i for i, w in enumerate(wnids)}
    missing = [w for w in vocab.wnids if w not in row]
    if missing:
        raise ValueError(f"{len(missing)} vocabulary labels are not classes of {backbone}'s classifier: "
                         f"{', '.join(missing[:5])}")
    rows = np.asarray([row[w] for w in vocab.wnids])
    model = build_devise(backbone, embedding_dim=vocab.dim, num_classes=len(vocab), weights="imagenet",
                         image_size=image_size or native_image_size(backbone), hidden_units=hidden_units,
                         dropout=dropout)
    model.get_layer("probs").set_weights([kernel[:, rows], bias[rows]])
    return model


def write_bundle(out: str | os.PathLike, model, vocab: Vocabulary, config: dict,
                 extra_files: dict[str, Callable[[Path], None]] | None = None) -> Path:
    """Write a complete bundle of ``model`` (a built DeviseModel) and its training ``vocab`` to ``out``.

    ``config`` is recorded in ``config.json`` beside the fields every bundle has;
    ``extra_files`` maps a file name to a writer ``fn(path)`` (e.g. the default labels).
    All of it lands in a temporary sibling folder first, then is renamed to ``out``
    (an existing ``out`` is replaced only once the new one is whole).
    """
    import keras

    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = staging_folder(out)  # its mode follows the umask: a model others can read, like any folder
    try:
        vocab.save(stage / B.VOCAB_FILE)
        for name, writer in (extra_files or {}).items():
            writer(stage / name)
        with atomic_path(stage / B.MODEL_FILE) as tmp:
            model.save(tmp)
        B.write_config(stage, {
            "complete": True,
            "softmax_trained": True,
            "backbone": model.backbone_name,
            "image_size": int(model.image_size),
            "preprocessing": B.preprocessing_entry(IMAGENET_RECIPE),
            "embedding_dim": vocab.dim,
            "classes": len(vocab),
            "vocabulary": {k: v for k, v in vocab.attrs.items() if isinstance(v, (str, int, float, bool))},
            **config,
            "versions": {"keras": keras.__version__, "backend": keras.backend.backend(), "numpy": np.__version__,
                         **config.get("versions", {})},
        })
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
        os.rename(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out
