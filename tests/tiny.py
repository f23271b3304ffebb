"""The one recipe for tiny models and bundles in tests: MobileNetV2 (alpha 0.35) at 32 px, random weights.

Small enough to build in a second on 2 CPU cores, real enough to exercise every code
path (the real keras.applications backbone, the real head, a real saved bundle).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

# DeviseModel kwargs (build_devise / DeviseModel) of the tiny test network
TINY_MODEL = dict(backbone="mobilenet_v2", weights=None, image_size=32, hidden_units=8,
                  backbone_options={"alpha": 0.35})
# TrainConfig fields of a tiny training run (head phase only; callers override what they test)
TINY_TRAIN = dict(backbone="mobilenet_v2", alpha=0.35, weights="none", image_size=32, hidden_units=16,
                  batch_size=8, val_split=0.25, pretrain_epochs=0, head_epochs=1, finetune_epochs=0,
                  bn_images=100, run_eagerly=True, seed=3)
# the same network as `devise train` options
TINY_TRAIN_ARGS = ("--backbone", "mobilenet_v2", "--alpha", "0.35", "--weights", "none", "--image-size", "32",
                   "--hidden-units", "8")


def tiny_model(embedding_dim: int = 8, num_classes: int = 3, **overrides):
    """A fresh tiny :class:`models.net.devise_model.DeviseModel` (random weights)."""
    from models.net.devise_model import build_devise

    return build_devise(embedding_dim=embedding_dim, num_classes=num_classes, **{**TINY_MODEL, **overrides})


def save_bundle(model, vocab, folder: Path, **config) -> Path:
    """Write ``model`` and ``vocab`` as a complete bundle in ``folder`` (created); ``config`` adds
    config.json fields (``softmax_trained`` is False unless given)."""
    from models.bundle import MODEL_FILE, VOCAB_FILE, write_config

    folder = Path(folder)
    folder.mkdir(parents=True)
    model.save(folder / MODEL_FILE)
    vocab.save(folder / VOCAB_FILE)
    write_config(folder, {"complete": True, "softmax_trained": False, **config})
    return folder


def png(path: Path, colour="red", size=(40, 30)) -> Path:
    """A plain-colour PNG at ``path`` (folders created)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@contextmanager
def bundles_loaded_once():
    """Patch ``models.bundle.load_bundle`` so each bundle folder is read once: a module's commands then
    share one loaded bundle instead of paying a Keras model load each."""
    import pytest

    import models.bundle

    real, loaded = models.bundle.load_bundle, {}

    def memoised(path):
        if str(path) not in loaded:
            loaded[str(path)] = real(path)
        return loaded[str(path)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(models.bundle, "load_bundle", memoised)
        yield
