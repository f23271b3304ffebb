"""The TF-free input path: NumPy recipe ops, PyDataset training/evaluation batches, sharding, bad files, features."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.data import augment as A
from models.data.failures import FailureLog
from models.data.images import load_image
from models.data.pydataset import EvaluationImages, TrainingImages, inference_batches, view


def photo(path, seed, size=(48, 40)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def files(tmp_path):
    return [photo(tmp_path / f"{i}.png", i) for i in range(12)]


def test_every_recipe_has_numpy_ops_and_windows():
    for name, recipe in A.RECIPES.items():
        window, ops = A.numpy_recipe(recipe)
        assert len(ops) == len(recipe.ops), name
    assert set(A.NUMPY_OPS) <= set(A.OPS) and set(A.NUMPY_WINDOWS) <= set(A.WINDOWS)
    with pytest.raises(ValueError, match="register the op 'nope'"):
        A.register_numpy_op("nope")(lambda image, rng, size: image)
    A.register_op("test-only-op")(lambda image, seed, size: image)
    try:
        broken = A.Recipe("test-only", "no NumPy twin", ops=("test-only-op",))
        with pytest.raises(ValueError, match="test-only has no NumPy implementation of test-only-op"):
            A.numpy_recipe(broken)
    finally:
        del A.OPS["test-only-op"]


def test_numpy_windows_and_ops():
    rng = np.random.default_rng(0)
    area = []
    for _ in range(300):
        top, left, h, w = A.NUMPY_WINDOWS["random_resized"]((300, 400), rng)
        assert 0 <= top and top + h <= 300 and 0 <= left and left + w <= 400
        assert 3 / 4 - 0.02 <= w / h <= 4 / 3 + 0.02
        area.append(h * w / (300 * 400))
    assert min(area) >= 0.08 and max(area) <= 1 and np.std(area) > 0.1  # a spread of crops, not one
    # a 1-pixel-high strip fits no window of the aspect range: the centre 87.5 % (as the TF window falls back)
    assert A.NUMPY_WINDOWS["random_resized"]((1, 400), rng) == (0, 199, 1, 1)
    assert A.NUMPY_WINDOWS["centre_square"]((30, 40), None) == (0, 5, 30, 30)
    image = np.arange(8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    flips = {A.NUMPY_OPS["flip"](image, np.random.default_rng(s), 8)[0, 0, 0] for s in range(20)}
    assert flips == {image[0, 0, 0], image[0, -1, 0]}
    for s in range(10):
        out = A.NUMPY_OPS["pad_crop"](image, np.random.default_rng(s), 8)
        assert out.shape == (8, 8, 3)


def test_views_the_evaluation_view_is_load_images(files):
    square = A.get_recipe("square")
    assert np.array_equal(view(files[0], 32, square, None), load_image(files[0], 32))
    a = view(files[0], 32, square, np.random.default_rng([1, 0, 0]))
    b = view(files[0], 32, square, np.random.default_rng([1, 0, 0]))
    assert a.dtype == np.uint8 and a.shape == (32, 32, 3) and np.array_equal(a, b)


def test_training_batches_full_shuffled_per_epoch_and_deterministic(files):
    labels = np.arange(12) % 3
    ds = TrainingImages(files, labels, size=32, batch_size=5, log=FailureLog(), seed=4)
    assert len(ds) == 2  # 12 // 5: full batches only
    x, y = ds[0]
    assert x.shape == (5, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    epoch0 = ds.order().copy()
    again = TrainingImages(files, labels, size=32, batch_size=5, log=FailureLog(), seed=4)
    assert np.array_equal(again[1][0], ds[1][0])
    ds.set_epoch(1)
    assert sorted(ds.order()) == list(range(12)) and not np.array_equal(ds.order(), epoch0)
    assert np.array_equal(ds[0][1], labels[ds.order()[:5]])
    assert np.array_equal(ds[1][1], labels[ds.order()[5:10]])
    ds.close()


def test_two_processes_batches_make_the_one_process_batch(files):
    labels = np.arange(12)
    one = TrainingImages(files, labels, size=32, batch_size=4, log=FailureLog(), seed=2)
    shards = [TrainingImages(files, labels, size=32, batch_size=4, log=FailureLog(), seed=2, process=p,
                             processes=2) for p in range(2)]
    for epoch in (0, 1):
        for d in [one, *shards]:
            d.set_epoch(epoch)
        assert len(one) == len(shards[0]) == len(shards[1]) == 3
        for i in range(3):
            x1, y1 = one[i]
            parts = [s[i] for s in shards]
            assert all(len(p[1]) == 2 for p in parts)
            # global batch i, row for row, with the same pixels (augmentation keyed by seed, epoch and image)
            assert np.array_equal(np.concatenate([p[1] for p in parts]), y1)
            assert np.array_equal(np.concatenate([p[0] for p in parts]), x1)
    with pytest.raises(ValueError, match="batch size 5 is not a multiple of the 2 processes"):
        TrainingImages(files, labels, size=32, batch_size=5, log=FailureLog(), process=0, processes=2)


def test_a_bad_training_file_is_replaced_reported_once_and_left_out_next_epoch(files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths = files[:7] + [str(bad)]
    seen = []
    log = FailureLog(on_new=lambda p, r: seen.append((p, r)))
    ds = TrainingImages(paths, np.arange(8), size=32, batch_size=4, log=log, seed=0, shuffle=False)
    x, y = ds[1]  # positions 4..7: the bad file (7) gets the next image of the order (0) in its place
    assert list(y) == [4, 5, 6, 0]
    assert seen == []  # written by the (worker) process, collected at the epoch boundary
    ds.set_epoch(1)
    assert seen == [(str(bad), "damaged PNG file (broken PNG file (chunk b' rea'))")]
    assert list(ds[1][1]) == [4, 5, 6, 0]  # known bad now: not even opened
    ds.close()
    assert len(seen) == 1 and str(bad) in log
    again = TrainingImages(paths, np.arange(8), size=32, batch_size=4, log=log, seed=0, shuffle=False)
    assert len(again.keep) == 7 and len(again) == 1


def test_evaluation_batches_weight_0_for_a_bad_file(files, tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    paths = files[:3] + [str(bad)] + files[3:5]
    log = FailureLog()
    ds = EvaluationImages(paths, np.arange(6), size=32, batch_size=4, log=log)
    assert len(ds) == 2
    x, y, w = ds[0]
    assert list(y) == [0, 1, 2, 3] and list(w) == [1, 1, 1, 0]
    assert np.array_equal(x[3], x[0]) and np.array_equal(x[1], load_image(files[1], 32))
    x, y, w = ds[1]
    assert list(y) == [4, 5] and list(w) == [1, 1]
    ds.close()
    assert log.items() == [(str(bad), "empty file (0 bytes)")]


def test_inference_batches_in_order_failures_left_out(files, tmp_path):
    bad = tmp_path / "dir.png"
    bad.mkdir()
    paths = files[:3] + [str(bad)] + files[3:6]
    log = FailureLog()
    got = list(inference_batches(paths, 32, 3, log=log))
    assert [list(p) for _, p in got] == [[0, 1, 2], [4, 5], [6]]
    assert np.array_equal(got[1][0][0], load_image(files[3], 32))
    assert log.items() == [(str(bad), "is a folder, not an image file")]
    assert [list(p) for _, p in inference_batches(paths, 32, 3, log=log)] == [[0, 1, 2], [4, 5, 6]]


def test_feature_batches_stream_every_row_once_per_epoch(tmp_path):
    from models.data.feature_file import BLOCK_ROWS, write_cache

    n, dim = 2 * BLOCK_ROWS + 50, 3
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    x[:, 0] = np.arange(n)  # row id in column 0
    positions = np.random.default_rng(1).permutation(n)  # rows stored in a shuffled order, as training caches are
    cache = write_cache(tmp_path / "f.h5", "k", [(x, positions)], n, dim)
    labels = np.arange(n) % 7
    from models.data.pydataset import FeatureBatches

    ds = FeatureBatches(cache, labels, 100, shuffle=True, seed=3, drop_remainder=True)
    assert len(ds) == n // 100
    orders = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        ids, ok = [], True
        for i in range(len(ds)):
            xb, yb = ds[i]
            assert xb.shape == (100, dim) and set(yb) == {"embedding", "probs"}
            rid = np.rint(xb[:, 0]).astype(int)  # (float16 on disk: ids survive the rounding)
            ok &= np.array_equal(yb["embedding"], labels[positions[rid]])
            ids.extend(rid)
        assert ok and len(set(ids)) == len(ids) == len(ds) * 100
        orders.append(ids)
    assert orders[0] != orders[1]
    plain = FeatureBatches(cache, labels, 1000, shuffle=False, weights=True)
    xb, yb, wb = plain[len(plain) - 1]
    assert len(wb) == n - 2 * 1000 and wb.all()
