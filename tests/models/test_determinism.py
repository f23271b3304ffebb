"""A seeded CPU run repeats exactly (op determinism on: `--deterministic auto` without a GPU, or `on`)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from models.training.train import train_devise
from tests.models.test_training import make_dataset, make_vocab, tiny_config


def weights_and_losses(root, name):
    items = make_dataset(root / name / "data", per_class=6, bad=False)  # the same pixels every time
    result = train_devise(items, make_vocab(), root / name / "bundle",
                          tiny_config(pretrain_epochs=1, head_epochs=1, style="crop,recolour"))
    losses = [line.split(",")[2] for line in (root / name / "bundle" / "history.csv").read_text().splitlines()[1:]]
    return result.model.get_weights(), losses


def test_same_seed_same_model(tmp_path):
    from tensorflow.python.framework.config import is_op_determinism_enabled

    first, losses = weights_and_losses(tmp_path, "a")
    assert not is_op_determinism_enabled()  # switched on for the run only
    second, again = weights_and_losses(tmp_path, "b")
    assert losses == again  # phase 0 (augmented) and head: the same loss every epoch
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
