"""Style augmentations: change how an image is drawn, keep what it shows.

A zero-shot model trained on one family of drawings must recognise another (black icon
glyphs -> colour emoji -> clip art -> photos), so pre-training should make colour, stroke,
sharpness and framing uninformative. Each op is a pure function ``op(images, seed) -> images``
of a float32 batch ``(n, h, w, 3)`` in [0, 255] and a stateless seed (a shape-[2] int tensor):
the same batch and seed give the same pixels, and each image of a batch draws its own random
numbers. Ops apply to a random share of the images (``p``), so clean images stay in the mix.

* ``crop``     -- random resized crop (scale 0.5-1, aspect 3/4-4/3), a zoom-and-frame change;
* ``colour``   -- colour jitter: brightness, contrast, saturation, hue;
* ``recolour`` -- redraw with two random colours: ink and paper from the image's lightness
  (a black glyph becomes a red one on pale blue; a colour emoji becomes a duotone);
* ``grey``     -- greyscale (3 equal channels);
* ``blur``     -- Gaussian blur of random strength;
* ``outline``  -- outline-only rendering: dark edges (Sobel magnitude) on white.

:data:`STYLE_OPS` lists the names (no TensorFlow import here, so the training settings can
check a recipe without loading it); :func:`style_augmenter` turns a comma list such as
``"crop,recolour,grey,blur,outline"`` into one function of ``(images, seed)``.
"""
from __future__ import annotations

STYLE_OPS = ("crop", "colour", "recolour", "grey", "blur", "outline")
DEFAULT_PROBABILITY = {"crop": 0.6, "colour": 0.8, "recolour": 0.4, "grey": 0.2, "blur": 0.3, "outline": 0.15}


def parse_recipe(recipe: str | None) -> tuple[str, ...]:
    """``"crop, grey"`` -> ``("crop", "grey")``; ``""``/``"none"`` -> ``()``; ``"all"`` -> every op.

    Raises ``ValueError`` naming an unknown op (the caller turns it into its own error).
    """
    text = (recipe or "").strip().lower()
    if text in ("", "none"):
        return ()
    if text == "all":
        return STYLE_OPS
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in STYLE_OPS]
    if unknown:
        raise ValueError(f"unknown style op(s) {', '.join(unknown)}; choose from {', '.join(STYLE_OPS)}, "
                         "all or none")
    return names


def _uniform(shape, seed, low=0.0, high=1.0):
    import tensorflow as tf

    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def _chosen(n, seed, p):
    """(n, 1, 1, 1) float mask: 1 for the images an op applies to."""
    import tensorflow as tf

    return tf.reshape(tf.cast(_uniform([n], seed) < p, tf.float32), (-1, 1, 1, 1))


def _mix(images, changed, seed, p):
    mask = _chosen(_batch(images), seed, p)
    return images + mask * (changed - images)


def _batch(images):
    import tensorflow as tf

    return tf.shape(images)[0]


def _seeds(seed, k):
    """``k`` independent stateless seeds derived from ``seed``."""
    import tensorflow as tf

    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=k))


def _lightness(images):
    import tensorflow as tf

    return tf.reduce_sum(images * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)


def random_resized_crop(images, seed, p: float = DEFAULT_PROBABILITY["crop"], scale=(0.5, 1.0),
                        ratio=(3 / 4, 4 / 3)):
    """Crop a random box of ``scale`` of the area and ``ratio`` aspect, resize back (bilinear)."""
    import tensorflow as tf

    n = _batch(images)
    size = tf.shape(images)[1:3]
    s_area, s_ratio, s_y, s_x, s_p = _seeds(seed, 5)
    area = _uniform([n], s_area, *scale)
    log_ratio = _uniform([n], s_ratio, tf.math.log(ratio[0]), tf.math.log(ratio[1]))
    aspect = tf.exp(log_ratio)
    h = tf.minimum(tf.sqrt(area / aspect), 1.0)
    w = tf.minimum(tf.sqrt(area * aspect), 1.0)
    y0 = _uniform([n], s_y) * (1.0 - h)
    x0 = _uniform([n], s_x) * (1.0 - w)
    keep = tf.reshape(_chosen(n, s_p, p), (-1, 1))
    full = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    boxes = keep * tf.stack([y0, x0, y0 + h, x0 + w], axis=1) + (1.0 - keep) * full
    return tf.image.crop_and_resize(images, boxes, tf.range(n), size)


def colour_jitter(images, seed, p: float = DEFAULT_PROBABILITY["colour"], brightness=0.3, contrast=0.4,
                  saturation=0.5, hue=0.1):
    """Random brightness, contrast, saturation and hue per image."""
    import tensorflow as tf

    n = _batch(images)
    s_b, s_c, s_s, s_h, s_p = _seeds(seed, 5)
    x = images / 255.0
    x = x + tf.reshape(_uniform([n], s_b, -brightness, brightness), (-1, 1, 1, 1))
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = mean + (x - mean) * tf.reshape(_uniform([n], s_c, 1 - contrast, 1 + contrast), (-1, 1, 1, 1))
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(x, 0.0, 1.0))
    hue_shift = tf.reshape(_uniform([n], s_h, -hue, hue), (-1, 1, 1))
    sat_scale = tf.reshape(_uniform([n], s_s, 1 - saturation, 1 + saturation), (-1, 1, 1))
    hsv = tf.stack([tf.math.floormod(hsv[..., 0] + hue_shift, 1.0),
                    tf.clip_by_value(hsv[..., 1] * sat_scale, 0.0, 1.0), hsv[..., 2]], axis=-1)
    changed = tf.image.hsv_to_rgb(hsv) * 255.0
    return _mix(images, changed, s_p, p)


def recolour(images, seed, p: float = DEFAULT_PROBABILITY["recolour"]):
    """Redraw each chosen image in two random colours: dark pixels become ink, light ones paper."""
    import tensorflow as tf

    n = _batch(images)
    s_ink, s_paper, s_p = _seeds(seed, 3)
    ink = tf.reshape(_uniform([n, 3], s_ink, 0.0, 200.0), (-1, 1, 1, 3))
    paper = tf.reshape(_uniform([n, 3], s_paper, 150.0, 255.0), (-1, 1, 1, 3))
    t = _lightness(images) / 255.0
    changed = ink + (paper - ink) * t
    return _mix(images, changed, s_p, p)


def greyscale(images, seed, p: float = DEFAULT_PROBABILITY["grey"]):
    """Greyscale (the same lightness in all three channels)."""
    import tensorflow as tf

    changed = tf.repeat(_lightness(images), 3, axis=-1)
    return _mix(images, changed, seed, p)


def _gaussian_kernel(sigma: float, radius: int = 3):
    import tensorflow as tf

    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-(x ** 2) / (2.0 * sigma ** 2))
    k = k / tf.reduce_sum(k)
    k2 = tf.tensordot(k, k, axes=0)
    return tf.tile(tf.reshape(k2, (2 * radius + 1, 2 * radius + 1, 1, 1)), (1, 1, 3, 1))


def blur(images, seed, p: float = DEFAULT_PROBABILITY["blur"], sigma: float = 1.5):
    """Gaussian blur (sigma ``sigma``), blended with the sharp image by a random strength per image."""
    import tensorflow as tf

    s_strength, s_p = _seeds(seed, 2)
    padded = tf.pad(images, [[0, 0], [3, 3], [3, 3], [0, 0]], mode="SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, _gaussian_kernel(sigma), [1, 1, 1, 1], "VALID")
    strength = tf.reshape(_uniform([_batch(images)], s_strength, 0.3, 1.0), (-1, 1, 1, 1))
    return _mix(images, images + strength * (blurred - images), s_p, p)


def outline(images, seed, p: float = DEFAULT_PROBABILITY["outline"], gain: float = 4.0):
    """Outline-only rendering: edges of the lightness (Sobel magnitude), dark on white."""
    import tensorflow as tf

    edges = tf.image.sobel_edges(_lightness(images))  # (n, h, w, 1, 2)
    magnitude = tf.sqrt(tf.reduce_sum(edges ** 2, axis=-1) + 1e-6) / 4.0
    lines = tf.clip_by_value(255.0 - gain * magnitude, 0.0, 255.0)
    return _mix(images, tf.repeat(lines, 3, axis=-1), seed, p)


OPS = {"crop": random_resized_crop, "colour": colour_jitter, "recolour": recolour, "grey": greyscale,
       "blur": blur, "outline": outline}


def style_augmenter(recipe: str | None):
    """The ops of ``recipe`` (:func:`parse_recipe`) in :data:`STYLE_OPS` order, as one ``f(images, seed)``;
    ``None`` for an empty recipe."""
    import tensorflow as tf

    names = [n for n in STYLE_OPS if n in parse_recipe(recipe)]
    if not names:
        return None

    def apply(images, seed):
        seeds = _seeds(seed, len(names))
        x = tf.cast(images, tf.float32)
        for name, s in zip(names, seeds):
            x = OPS[name](x, s)
        return tf.clip_by_value(x, 0.0, 255.0)

    return apply
