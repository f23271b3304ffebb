"""Image backbones by name (``keras.applications`` and devise's EfficientNet-Lite), their preprocessing a layer.

Each backbone expects its own input scaling (ResNet50: Caffe-style BGR mean
subtraction; MobileNetV2: [-1, 1]; DenseNet: Torch-style mean/std; EfficientNet and
ConvNeXt scale internally). :class:`Preprocess` re-implements ``preprocess_input``'s
modes with ``keras.ops`` as a registered, serialisable layer, so a saved bundle takes
raw RGB in [0, 255] and no caller has to know which backbone is inside.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import keras
from keras import ops

from models.net.catalog import (
    BACKBONE_FILE,
    BACKBONE_FORMAT,
    BACKBONE_INFO,
    BACKBONES,
    WEIGHTS_DIR,
    BackboneSpec,
    backbone_names,
    shipped_weights,
)
from models.net.torch_legacy import WeightsError
from wordnet.base.errors import BundleError

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="devise")
class Preprocess(keras.layers.Layer):
    """RGB in [0, 255] -> the scaling a backbone was trained with (``preprocess_input`` modes)."""

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "torch", "none"):
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=self.compute_dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "caffe":
            bgr = ops.flip(x, axis=-1)
            return bgr - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def spec_of(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BundleError(
            f"unknown backbone {name!r}; choose one of: {', '.join(backbone_names())}"
        ) from None


def _resolve(path: str):
    """A catalog entry's ``"module:function"`` (or bare ``keras.applications`` attribute) -> the object."""
    module, _, attr = path.rpartition(":")
    return getattr(importlib.import_module(module or "keras.applications"), attr)


def native_image_size(name: str) -> int:
    """The input side a backbone's ImageNet weights were trained at (224 unless the catalog says otherwise)."""
    return spec_of(name).image_size or 224


def imagenet_classifier(name: str):
    """The backbone's own ImageNet-1K classifier on its pooled features, or ``None`` when devise has none.

    Returns ``(kernel (features, 1000), bias (1000,), wnids)``: ``softmax(pooled @ kernel + bias)``
    are the probabilities of the classes ``wnids`` (ILSVRC-2012 wnids, in the classifier's
    order). Raises :class:`WeightsError` when the package holding them is not installed.
    """
    spec = spec_of(name)
    return _resolve(spec.classifier)(name) if spec.classifier else None


def check_backbone_options(name: str, options: dict | None) -> dict:
    """Keep only options the backbone takes; an option it does not take is an error."""
    spec = spec_of(name)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    bad = sorted(set(options) - set(spec.options))
    if bad:
        allowed = ", ".join(spec.options) or "none"
        raise BundleError(f"backbone {name} takes no option {', '.join(bad)} (its options: {allowed})")
    return options


def read_backbone_info(path: str | Path) -> dict:
    """The ``backbone.json`` of a pre-trained backbone (a ``devise pretrain`` folder or a shipped name's file)."""
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot read the backbone description ({exc.__class__.__name__})") from None
    if not isinstance(info, dict) or info.get("format") != BACKBONE_FORMAT:
        raise WeightsError(f"{path}: not a devise backbone description")
    return info


def resolve_weights(weights: str | None, name: str, options: dict) -> str | None:
    """A shipped backbone's name (``devise-pool-64``) or a ``devise pretrain`` folder -> its weights file.

    Their ``backbone.json`` says which backbone and options the weights are for; another
    ``--backbone`` or ``--alpha`` is a :class:`WeightsError` saying which to use. Anything
    else (``imagenet``, ``none``, a file, a bundle folder) is returned unchanged.
    """
    if weights in (None, "none", "None", "", "imagenet"):
        return weights
    if weights in shipped_weights():
        info_path, file = WEIGHTS_DIR / f"{weights}.json", WEIGHTS_DIR / f"{weights}.weights.h5"
    else:
        folder = Path(weights).expanduser()
        if not (folder.is_dir() and (folder / BACKBONE_INFO).is_file()):
            if not folder.exists() and not any(c in str(weights) for c in "/.\\"):
                names = ", ".join(shipped_weights()) or "none installed"
                raise WeightsError(f"no backbone weights named {weights!r} (shipped: {names}); "
                                   "pass --weights imagenet|none|NAME|PATH")
            return weights
        info_path, file = folder / BACKBONE_INFO, folder / BACKBONE_FILE
    info = read_backbone_info(info_path)
    theirs = (info.get("backbone"), dict(info.get("options") or {}))
    if theirs != (name, dict(options)):
        alpha = f" --alpha {theirs[1]['alpha']}" if "alpha" in theirs[1] else ""
        raise WeightsError(f"{weights}: these are weights for {theirs[0]} {theirs[1] or ''}, not {name} "
                           f"{options or ''}; use --backbone {theirs[0]}{alpha}")
    if not file.is_file():
        raise WeightsError(f"{weights}: its weights file {file} is missing")
    return str(file)


def build_backbone(name: str, image_size: int, weights: str | None = None, options: dict | None = None):
    """``include_top=False`` backbone (no pooling) for ``(image_size, image_size, 3)`` input.

    ``weights``: ``"imagenet"`` (Keras downloads and caches it; offline this raises
    :class:`WeightsError` saying to pass a local file or ``none``; EfficientNet-Lite reads
    it from an installed package, or says which to install), a path to a weights
    file, or ``None``/``"none"`` for random initialisation. Another bundle's trained
    backbone is copied into a built model by :func:`models.bundle.copy_backbone`.
    """
    spec = spec_of(name)
    options = check_backbone_options(name, options)
    weights = resolve_weights(weights, name, options)
    ctor = _resolve(spec.constructor)
    kwargs = dict(include_top=False, input_shape=(image_size, image_size, 3), pooling=None, **options)
    if weights in (None, "none", "None", ""):
        return ctor(weights=None, **kwargs)
    if weights == "imagenet":
        try:
            return ctor(weights="imagenet", **kwargs)
        except WeightsError:
            raise
        except ValueError as exc:
            raise WeightsError(f"backbone {name}: no ImageNet weights for this configuration ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - URLError, HTTPError, socket errors, "Exception: URL fetch failure"
            raise WeightsError(
                f"could not download ImageNet weights for {name} ({exc.__class__.__name__}); "
                f"pass --weights PATH to a local weights file, or --weights none to start from scratch"
            ) from None
    path = Path(weights).expanduser()
    if path.is_dir():  # a bundle's backbone is copied in after the model is built: models.bundle.copy_backbone
        raise WeightsError(f"{path} is a folder, not a weights file; a bundle's backbone is copied with "
                           f"models.bundle.copy_backbone (`devise train --weights BUNDLE` does this)")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; pass --weights imagenet|none|PATH")
    model = ctor(weights=None, **kwargs)
    try:
        model.load_weights(str(path), skip_mismatch=False)
    except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many types for a wrong file: one line naming it
        raise WeightsError(
            f"{path}: cannot load these weights into {name} without its top ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0][:200]})"
        ) from None
    return model
