"""Every Keras class devise registers round-trips through its config (the keras-hub check).

For each class registered under the ``devise`` package, an instance built from sample
constructor kwargs must give the same config after ``from_config(get_config())`` and
after Keras's own serialize/deserialize. A newly registered class without a sample here
fails the first test, so none escapes the check.
"""
from __future__ import annotations

import importlib
import pkgutil

import keras
import numpy as np
import pytest

import models
from tests.tiny import TINY_MODEL


def _registered() -> dict[str, type]:
    for info in pkgutil.walk_packages(models.__path__, "models."):
        importlib.import_module(info.name)  # registration happens at import
    return {name.split(">", 1)[1]: cls for name, cls in keras.saving.get_custom_objects().items()
            if name.startswith("devise>")}


_LABELS = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
SAMPLES = {
    "Preprocess": lambda cls: cls(mode="caffe"),
    "L2Normalize": lambda cls: cls(axis=-1, epsilon=1e-6),
    "DeviseModel": lambda cls: cls(embedding_dim=4, num_classes=3, **{**TINY_MODEL, "hidden_units": 6}),
    "HingeRankLoss": lambda cls: cls(_LABELS, margin=0.2, variant="sampled", seed=4),
    "HitAtK": lambda cls: cls(_LABELS, k=2),
    "LabelTopK": lambda cls: cls(_LABELS, k=2),
}


def test_every_registered_class_has_a_sample():
    assert sorted(_registered()) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_config_round_trips(name):
    cls = _registered()[name]
    obj = SAMPLES[name](cls)
    config = obj.get_config()
    again = cls.from_config(config)
    assert type(again) is cls and again.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(revived) is cls and revived.get_config() == config
