"""The input seam: one implementation per backend, the same contract, the same images and failures."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.data import pydataset
from models.data.failures import FailureLog
from models.data.inputs import IMPLEMENTATIONS, RunSettings, check_style, input_for
from wordnet.base.errors import DeviseError

CONTRACT = ("training", "evaluation", "inference", "feature_pass", "feature_stream", "fitting")


def images(folder, n=7, bad=(2,)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        if i in bad:
            path.write_bytes(b"not a png")
        else:
            y, x = np.mgrid[0:30 + 4 * i, 0:40]  # smooth pictures: resampling filters differ only at edges
            Image.fromarray(np.stack([x * 6, y * 4, (x + y) * 2], -1).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_each_backend_gets_its_implementation_with_the_whole_contract():
    tf_input = input_for("tensorflow", RunSettings(replicas=2))
    jax_input, torch_input = input_for("jax"), input_for("torch", RunSettings(workers=3, process=1, processes=2))
    assert type(tf_input).__module__ == IMPLEMENTATIONS["tensorflow"] and tf_input.settings.replicas == 2
    assert type(jax_input) is type(torch_input) is pydataset.Input
    assert (torch_input.workers, torch_input.shard) == (3, {"process": 1, "processes": 2})
    for inp in (tf_input, jax_input):
        assert all(callable(getattr(inp, name)) for name in CONTRACT) and inp.name in ("TensorFlow", "Pillow")


def test_style_is_something_an_input_supports_or_refuses():
    check_style(input_for("tensorflow"), "grey")  # TensorFlow ops: supported
    check_style(input_for("jax"), None)  # no style: nothing to refuse
    with pytest.raises(DeviseError) as err:
        check_style(input_for("jax"), "grey")
    assert str(err.value) == ("--style grey needs the TensorFlow input pipeline (its ops are TensorFlow ops) and this "
                              "run uses the Pillow one; drop --style or train with KERAS_BACKEND=tensorflow")


def test_both_inputs_give_the_same_inference_pixels_positions_and_failures(tmp_path):
    pytest.importorskip("tensorflow")
    paths = images(tmp_path / "img")
    out = {}
    for backend in ("tensorflow", "jax"):
        log = FailureLog()
        batches = list(input_for(backend).inference(paths, 24, 3, log=log, recipe="square", headers=None))
        assert all(isinstance(x, np.ndarray) and x.dtype == np.uint8 for x, _ in batches)
        out[backend] = (np.concatenate([x for x, _ in batches]), np.concatenate([p for _, p in batches]), log.items())
    (tf_x, tf_pos, tf_log), (py_x, py_pos, py_log) = out["tensorflow"], out["jax"]
    assert tf_pos.tolist() == py_pos.tolist() == [0, 1, 3, 4, 5, 6]
    assert tf_log == py_log == [(paths[2], "not an image PIL can read")]
    diff = np.abs(tf_x.astype(int) - py_x.astype(int))
    assert diff.mean() < 1 and diff.max() <= 8  # the same view, whichever input decodes it
