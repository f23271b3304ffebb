"""Style augmentations: pure functions of (images, seed), each doing what it says; the pipeline applies them."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from models.data.failures import FailureLog  # noqa: E402
from models.data.style import OPS, STYLE_OPS, parse_recipe, style_augmenter  # noqa: E402
from models.data.tfdata import training_dataset  # noqa: E402
from models.training.distribute import determinism  # noqa: E402


def batch(n=6, size=16):
    """Black glyphs (a bar) on white, and colourful noise images."""
    rng = np.random.default_rng(0)
    x = np.full((n, size, size, 3), 255.0, np.float32)
    x[: n // 2, 4:12, 6:10] = 0.0
    x[n // 2:] = rng.uniform(0, 255, size=(n - n // 2, size, size, 3))
    return tf.constant(x)


SEED = tf.constant([1, 2], tf.int64)


def test_every_op_is_a_pure_function_of_images_and_seed():
    assert tuple(OPS) == STYLE_OPS
    x = batch()
    for name, op in OPS.items():
        a, b = op(x, SEED, p=1.0).numpy(), op(x, SEED, p=1.0).numpy()
        assert a.shape == x.shape and a.dtype == np.float32, name
        assert np.array_equal(a, b), name
        assert a.min() >= -1e-3 and a.max() <= 255.0 + 1e-3, name
        assert not np.allclose(a, x.numpy()), name
        assert np.array_equal(op(x, SEED, p=0.0).numpy(), x.numpy()), name  # p=0: untouched
        if name not in ("grey", "outline"):  # no random part but the choice of images
            assert not np.allclose(op(x, tf.constant([5, 9], tf.int64), p=1.0).numpy(), a), name


def test_ops_change_style_not_content():
    x = batch()
    grey = OPS["grey"](x, SEED, p=1.0).numpy()
    assert np.allclose(grey[..., 0], grey[..., 1]) and np.allclose(grey[..., 1], grey[..., 2])
    recoloured = OPS["recolour"](x, SEED, p=1.0).numpy()[0]
    ink, paper = recoloured[8, 8], recoloured[0, 0]  # the bar, the page: two colours, bar darker
    assert ink.sum() < paper.sum() and len({tuple(recoloured[8, 7]), tuple(ink)}) == 1
    lines = OPS["outline"](x, SEED, p=1.0).numpy()[0]
    assert (lines[0, 0] > 254).all() and (lines[8, 8] > 250).all()  # flat page and flat ink: white
    assert lines[8, 5:7].min() < 128  # the bar's edge is drawn
    blurred = OPS["blur"](x, SEED, p=1.0).numpy()[0]
    assert 0 < blurred[8, 5].mean() < 255  # the edge is softened


def test_recipes():
    assert parse_recipe("") == parse_recipe("none") == parse_recipe(None) == ()
    assert parse_recipe("all") == STYLE_OPS
    assert parse_recipe(" grey, crop,grey ") == ("grey", "crop")
    with pytest.raises(ValueError, match="unknown style op\\(s\\) sepia; choose from crop, colour"):
        parse_recipe("grey,sepia")
    assert style_augmenter("none") is None
    out = style_augmenter("all")(batch(), SEED).numpy()
    assert out.shape == (6, 16, 16, 3) and 0 <= out.min() and out.max() <= 255


def test_pipeline_styles_each_batch_and_epoch_repeatably(tmp_path):
    from PIL import Image

    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (20, 20), (40 * i, 200 - 30 * i, 90)).save(path)
        paths.append(path)

    def epochs(seed, style="colour,grey"):  # op determinism on, as in `devise train` by default
        ds = training_dataset(paths, list(range(6)), size=16, batch_size=3, log=FailureLog(), seed=seed,
                              shuffle=False, style=style)
        with determinism(True):
            return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(2)]

    first, second = epochs(7)
    again = epochs(7)
    assert np.array_equal(first, again[0]) and np.array_equal(second, again[1])  # same seed, same pixels
    assert not np.array_equal(first, second)  # a fresh draw each epoch
    assert first.dtype == np.uint8  # batches stay uint8 until the model
    plain = epochs(7, style=None)[0]
    assert not np.allclose(first, plain)
