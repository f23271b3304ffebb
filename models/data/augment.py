"""Augmentation recipes: how a source image becomes a training (or evaluation) view, by name.

A :class:`Recipe` says three things, each by name so that a bundle can record it in
``config.json`` and ``predict``/``eval``/``index`` preprocess exactly as training did:

- ``window``: how the training crop window is sampled from the *source* image, before
  it is resized to the model's input (a :data:`WINDOWS` entry). For JPEG files the
  window is chosen from the header alone and only that window is decoded
  (``tf.image.decode_and_crop_jpeg``), as tensorflow/models' official ImageNet input does.
- ``eval_crop``: evaluation and inference take the centred square whose side is this
  fraction of the image's short side (1.0: the whole centre square; 0.875 = 224/256,
  the usual ImageNet centre crop).
- ``ops``: pixel operations applied, in order, to each resized training image,
  ``(size, size, 3)`` float32 in [0, 255] (:data:`OPS` entries: flips, crops, colour ...).
  (Per image, inside the decoding map: vectorised over whole batches instead, a cheap op
  such as a flip costs more at 224 px, where it rewrites every batch several times.)

Built in:

``inception``
    photos (ImageNet and the like): random resized crop (area 8-100 % of the image,
    aspect ratio 3/4-4/3, falling back to the centre crop after 10 failed samples) and a
    horizontal flip; evaluation on the centre 87.5 %.
``square``
    small, pre-cropped pictures (emoji, icons, CIFAR-like): the centre square, a
    horizontal flip and a random crop of the square padded by 1/8 (devise's original
    recipe); evaluation on the whole centre square.

``auto`` (:func:`resolve_recipe`) picks ``inception`` when most training images are
photos (larger than the model's input and not square) and ``square`` otherwise.

Adding one (issue 15's style-invariance recipes, for instance)::

    from models.data.augment import Recipe, register_op, register_recipe

    @register_op("greyscale")
    def greyscale(image, seed, size):  # turned grey with probability 0.2
        grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
        return tf.cond(tf.random.stateless_uniform((), seed) < 0.2, lambda: grey, lambda: image)

    register_recipe(Recipe("inception-grey", "inception + greyscale", window="random_resized",
                           eval_crop=0.875, ops=("flip", "greyscale")))

An op is ``fn(image, seed, size) -> image``: ``image`` a float32 ``(size, size, 3)``
tensor in [0, 255] (the result is clipped and rounded back to uint8 afterwards, so an op
may overshoot), ``seed`` a shape-(2,) int32 tensor for ``tf.random.stateless_*``/
``tf.image.stateless_*`` ops (each op gets its own, derived from ``--seed`` and the
image's place in the stream), ``size`` the Python int side. Ops run inside tf.data's
graph for every training image: tf or ``keras.ops`` calls only, no Python-side state,
and few of them (on small images, per-image op count is what a pipeline costs). The TF-free
input path (other Keras backends: :mod:`models.data.pydataset`) runs each op's NumPy twin,
``fn(image float32 ndarray, rng numpy Generator, size)``, registered under the same name with
:func:`register_numpy_op` (windows: :func:`register_numpy_window`). Register new ops and recipes
at the end of this module (or in a module imported from here), so that every command and
``devise train --augmentation`` see them. Nothing here imports TensorFlow at import time,
so ``devise --help`` can list the choices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

AUTO = "auto"

OPS: dict[str, Callable] = {}      # name -> fn(image float32 (size, size, 3), seed (2,) int32, size) -> image
WINDOWS: dict[str, Callable] = {}  # name -> fn(shape (2,) int32 [h, w], seed, **options) -> (top, left, h, w)
RECIPES: dict[str, "Recipe"] = {}
# the same ops and windows in NumPy, for the TF-free input path (models.data.pydataset, other Keras backends):
# name (an OPS/WINDOWS key) -> fn(image float32 ndarray, rng numpy Generator, size) / fn((h, w), rng, **options)
NUMPY_OPS: dict[str, Callable] = {}
NUMPY_WINDOWS: dict[str, Callable] = {}


@dataclass(frozen=True)
class Recipe:
    """A named augmentation recipe (see the module docstring)."""

    name: str
    description: str
    window: str = "centre_square"
    eval_crop: float = 1.0
    ops: tuple[str, ...] = ()
    window_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0 < self.eval_crop <= 1:
            raise ValueError(f"recipe {self.name}: eval_crop must be in (0, 1], got {self.eval_crop}")


def register_op(name: str):
    """Decorator: make ``fn(image, seed, size)`` available to recipes as ``name``."""

    def add(fn):
        OPS[name] = fn
        return fn

    return add


def register_window(name: str):
    """Decorator: make ``fn(shape, seed, **options) -> (top, left, height, width)`` a training window."""

    def add(fn):
        WINDOWS[name] = fn
        return fn

    return add


def register_numpy_op(name: str):
    """Decorator: the NumPy implementation ``fn(image, rng, size)`` of the registered op ``name``.

    The TF-free input path (:mod:`models.data.pydataset`) runs it in its decoding
    worker processes; ``rng`` is a ``numpy.random.Generator`` keyed by (seed, epoch,
    image), so the result does not depend on the worker count. Same meaning and
    parameters as the TensorFlow op (the random draws differ).
    """

    def add(fn):
        if name not in OPS:
            raise ValueError(f"register the op {name!r} (register_op) before its NumPy implementation")
        NUMPY_OPS[name] = fn
        return fn

    return add


def register_numpy_window(name: str):
    """Decorator: the NumPy implementation ``fn((h, w), rng, **options) -> (top, left, h, w)`` of window ``name``."""

    def add(fn):
        if name not in WINDOWS:
            raise ValueError(f"register the window {name!r} (register_window) before its NumPy implementation")
        NUMPY_WINDOWS[name] = fn
        return fn

    return add


def numpy_recipe(recipe: Recipe) -> tuple[Callable, list[Callable]]:
    """``(window, ops)`` of ``recipe`` in NumPy, or a ValueError naming what has no NumPy implementation."""
    missing = [op for op in recipe.ops if op not in NUMPY_OPS]
    missing += [recipe.window] if recipe.window not in NUMPY_WINDOWS else []
    if missing:
        raise ValueError(f"augmentation recipe {recipe.name} has no NumPy implementation of {', '.join(missing)}, "
                         f"which the TF-free input path needs (register_numpy_op / register_numpy_window)")
    return NUMPY_WINDOWS[recipe.window], [NUMPY_OPS[op] for op in recipe.ops]


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to :data:`RECIPES` (its window and ops must be registered names)."""
    unknown = [op for op in recipe.ops if op not in OPS] + ([recipe.window] if recipe.window not in WINDOWS else [])
    if unknown:
        raise ValueError(f"recipe {recipe.name}: unknown op(s) or window {', '.join(unknown)}")
    RECIPES[recipe.name] = recipe
    return recipe


def recipe_names() -> tuple[str, ...]:
    """Every ``--augmentation`` choice: ``auto`` and the registered recipes."""
    return (AUTO,) + tuple(RECIPES)


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown augmentation recipe {name!r}; choose one of {', '.join(RECIPES)}") from None


def resolve_recipe(name: str, widths, heights, image_size: int) -> str:
    """``auto`` -> a concrete recipe name from the training images' header sizes (0 = unknown); others unchanged.

    Photos are what the inception recipe is for: ``inception`` when most images whose size
    the header scan knows are larger than the model input (short side >= ``image_size``)
    and not square (aspect ratio off by more than 5 %); ``square`` otherwise (emoji,
    icons and thumbnails are small and square, their subject fills the frame, and an
    8 %-area crop would often lose it).
    """
    if name != AUTO:
        get_recipe(name)
        return name
    sizes = [(int(w), int(h)) for w, h in zip(widths, heights) if w > 0 and h > 0]
    if not sizes:
        return "square"
    photos = sum(1 for w, h in sizes if min(w, h) >= image_size and max(w, h) > 1.05 * min(w, h))
    return "inception" if photos * 2 > len(sizes) else "square"


# -- the built-in windows and ops (TensorFlow imported when they run, inside tf.data's graph) ------------
def centre_window(shape, fraction: float):
    """``(top, left, side, side)``: the centred square of side ``round(fraction * short side)`` (at least 1).

    The same arithmetic as :func:`models.data.images.centre_box` (double precision,
    round half to even), so the PIL and TensorFlow paths crop the same pixels.
    """
    import tensorflow as tf

    h, w = shape[0], shape[1]
    short = tf.minimum(h, w)
    side = tf.cast(tf.round(tf.cast(short, tf.float64) * fraction), tf.int32) if fraction != 1 else short
    side = tf.clip_by_value(side, 1, tf.maximum(short, 1))
    return (h - side) // 2, (w - side) // 2, side, side


@register_window("centre_square")
def _centre_square(shape, seed, fraction: float = 1.0):
    return centre_window(shape, fraction)


@register_window("random_resized")
def _random_resized(shape, seed, area=(0.08, 1.0), aspect=(3 / 4, 4 / 3), attempts: int = 10,
                    fallback_crop: float = 0.875):
    """Inception-style crop: ``stateless_sample_distorted_bounding_box`` over the whole image.

    When no window satisfying the ranges was found in ``attempts`` tries, TensorFlow
    returns the whole image; like the reference pipeline we then take the evaluation
    centre crop instead (a full non-square image would be squashed by the resize).
    """
    import tensorflow as tf

    whole = tf.constant([0.0, 0.0, 1.0, 1.0], dtype=tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.stack([shape[0], shape[1], 3]), bounding_boxes=whole, seed=seed, min_object_covered=0.1,
        aspect_ratio_range=aspect, area_range=area, max_attempts=attempts, use_image_if_no_bounding_boxes=True)
    top, left, h, w = begin[0], begin[1], size[0], size[1]
    failed = tf.logical_and(tf.equal(h, shape[0]), tf.equal(w, shape[1]))
    c_top, c_left, c_h, c_w = centre_window(shape, fallback_crop)
    return (tf.where(failed, c_top, top), tf.where(failed, c_left, left), tf.where(failed, c_h, h),
            tf.where(failed, c_w, w))


@register_op("flip")
def _flip(image, seed, size):
    """Mirrored left-right with probability 1/2."""
    import tensorflow as tf

    return tf.image.stateless_random_flip_left_right(image, seed)


@register_op("pad_crop")
def _pad_crop(image, seed, size):
    """Zero-pad by 1/8 of the side (half on each edge), then a random ``size`` crop (CIFAR-style)."""
    import tensorflow as tf

    pad = max(1, size // 8)
    before = pad // 2
    padded = tf.pad(image, [[before, pad - before], [before, pad - before], [0, 0]])
    offset = tf.random.stateless_uniform((2,), seed, 0, pad + 1, dtype=tf.int32)
    return tf.slice(padded, tf.concat([offset, [0]], 0), (size, size, 3))


# -- their NumPy twins (the TF-free input path: PIL decoding in PyDataset worker processes) ----------------
@register_numpy_window("centre_square")
def _centre_square_np(shape, rng, fraction: float = 1.0):
    from models.data.images import centre_box

    h, w = int(shape[0]), int(shape[1])
    left, top, right, bottom = centre_box(w, h, fraction)
    return top, left, bottom - top, right - left


@register_numpy_window("random_resized")
def _random_resized_np(shape, rng, area=(0.08, 1.0), aspect=(3 / 4, 4 / 3), attempts: int = 10,
                       fallback_crop: float = 0.875):
    """The inception crop as ``sample_distorted_bounding_box`` draws it: a uniform area fraction and aspect
    ratio, up to ``attempts`` tries for a window that fits (and covers >= 10 % of the image, the TF op's
    ``min_object_covered``), else the evaluation centre crop."""
    import math

    h, w = int(shape[0]), int(shape[1])
    for _ in range(attempts):
        target = rng.uniform(area[0], area[1]) * h * w
        ratio = rng.uniform(aspect[0], aspect[1])
        ch = int(round(math.sqrt(target / ratio)))
        cw = int(round(ch * ratio))
        if 0 < ch <= h and 0 < cw <= w and ch * cw >= 0.1 * h * w and (ch, cw) != (h, w):
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    return _centre_square_np(shape, rng, fallback_crop)


@register_numpy_op("flip")
def _flip_np(image, rng, size):
    return image[:, ::-1] if rng.random() < 0.5 else image


@register_numpy_op("pad_crop")
def _pad_crop_np(image, rng, size):
    import numpy as np

    pad = max(1, size // 8)
    before = pad // 2
    padded = np.pad(image, ((before, pad - before), (before, pad - before), (0, 0)))
    top, left = rng.integers(0, pad + 1, size=2)
    return padded[top:top + size, left:left + size]


register_recipe(Recipe("inception", "photos: random resized crop (area 8-100 %, aspect 3/4-4/3), flip; "
                                    "evaluation on the centre 87.5 %", window="random_resized", eval_crop=0.875,
                       ops=("flip",)))
register_recipe(Recipe("square", "small pre-cropped images (emoji, icons): centre square, flip, random crop of "
                                 "the square padded by 1/8; evaluation on the whole centre square",
                       window="centre_square", eval_crop=1.0, ops=("flip", "pad_crop")))
