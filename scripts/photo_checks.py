"""Real-photo checks for the emoji benchmark: Fashion-MNIST product photos and scikit-image's photos.

The emoji benchmark is drawings only; these are the real photographs of benchmark concepts that are
installed offline, written in the layout of `devise data clipart` so each split's seen and unseen
concepts are scored like the clip art (`scripts/emoji_splits.sh` evaluates them):

* Fashion-MNIST (Debian `dataset-fashion-mnist`, MIT): 28x28 grey product photos; its test set's
  T-shirt, dress, coat, sandal, sneaker, bag and ankle-boot classes are benchmark concepts
  (sneaker counts as shoe, its WordNet ancestor). The black page is made white (pixels darker than
  8/255), as the drawings are on white; the product keeps its grey levels. `--per-class` images each.
* scikit-image's bundled photos (BSD / public domain): chelsea (cat), coffee, rocket, motorcycle
  (the two views of stereo_motorcycle), horse (a silhouette) and clock. A smoke test, not a dataset.

    python scripts/photo_checks.py runs/photos --emoji runs/emoji-splits/emoji
"""
from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION = {0: "jersey.n.03", 3: "dress.n.01", 4: "coat.n.01", 5: "sandal.n.01", 7: "shoe.n.01",
           8: "bag.n.04", 9: "boot.n.01"}  # Fashion-MNIST label -> benchmark synset (7 = sneaker, a shoe)
SKIMAGE = {"chelsea": "cat.n.01", "coffee": "coffee.n.01", "rocket": "rocket.n.01",
           "stereo_motorcycle": "motorcycle.n.01", "horse": "horse.n.01", "clock": "clock.n.01"}


def fashion_images(per_class: int):
    """``(name, synset, RGB array)`` for the first ``per_class`` test images of each mapped class."""
    if not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"Error: {FASHION_DIR} not found; apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION_DIR / "t10k-images-idx3-ubyte.gz") as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)
    for label, synset in FASHION.items():
        for i in np.flatnonzero(labels == label)[:per_class]:
            grey = images[i].astype(np.int16)
            page = np.where(grey < 8, 255, 255 - grey).astype(np.uint8)  # white page, dark product
            yield f"fashion-{label}-{i}", synset, np.repeat(page[..., None], 3, axis=2)


def skimage_images():
    import skimage.data

    for name, synset in SKIMAGE.items():
        image = getattr(skimage.data, name)()
        if name == "stereo_motorcycle":  # (left view, right view, disparity): both views
            for side, view in (("left", image[0]), ("right", image[1])):
                yield f"skimage-motorcycle_{side}", synset, np.asarray(view)[..., :3].astype(np.uint8)
            continue
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.dtype == bool:
            image = np.where(image, 255, 0).astype(np.uint8)  # the horse is a mask (True: background): dark on white
        yield f"skimage-{name}", synset, image[..., :3].astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--emoji", type=Path, required=True, help="the emoji dataset whose splits to use")
    p.add_argument("--per-class", type=int, default=200)
    args = p.parse_args()
    from wordnet.datasets.emoji import read_emoji_splits
    from wordnet.labels import wnid_of
    from wordnet.reader import load_wordnet

    wn = load_wordnet()
    _wnids, splits = read_emoji_splits(args.emoji)
    rows = {"fashion": [], "skimage": []}
    for kind, images in (("fashion", fashion_images(args.per_class)), ("skimage", skimage_images())):
        for name, synset, array in images:
            wnid = wnid_of(wn.synset(synset))
            rel = f"images/{wnid}/{name}.png"
            (args.out / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(args.out / rel)
            rows[kind].append((rel, wnid))
    for k, (_seed, seen, unseen) in enumerate(splits):
        folder = args.out / "splits" / f"split-{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for kind, kind_rows in rows.items():
            for part, ids in (("seen", set(seen)), ("unseen", set(unseen))):
                with open(folder / f"{kind}_{part}.csv", "w", newline="", encoding="utf-8") as fh:
                    writer = csv.writer(fh, lineterminator="\n")
                    writer.writerow(["img_name", "class"])
                    writer.writerows([("../../" + rel, wnid) for rel, wnid in kind_rows if wnid in ids])
    print(f"wrote {len(rows['fashion'])} Fashion-MNIST and {len(rows['skimage'])} scikit-image photos to {args.out}")


if __name__ == "__main__":
    main()
