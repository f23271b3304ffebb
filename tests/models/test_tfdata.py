"""models.data.headers (which decoder), models.data.augment (recipes) and models.data.tfdata (tf.data).

The native path (TensorFlow's decoders in the graph) and the PIL path must give the same
pixels wherever a file allows both; every file the header scan doubts goes to PIL, so
bad files keep PIL's one-line reasons; a file TensorFlow refuses after all falls back to
PIL; training batches are full and uint8.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.data import augment as A
from models.data import headers as H
from models.data.images import load_image
from tests.models.test_bad_images import make_catalogue, quadrants

tf = pytest.importorskip("tensorflow")

from models.data.failures import FailureLog  # noqa: E402
from models.data.tfdata import decode_images, evaluation_dataset, inference_dataset, training_dataset  # noqa: E402


def photo(w=301, h=217):
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()).resize((w, h))


def noise(w, h, seed=0, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """Files both decoders read: {name: path}."""
    root = tmp_path_factory.mktemp("plain")
    pic = photo()
    out = {}

    def save(name, img, **kw):
        out[name] = root / name
        img.save(out[name], **kw)

    save("420.jpg", pic, quality=90)
    save("444.jpg", pic, quality=95, subsampling=0)
    save("grey.jpg", pic.convert("L"))
    save("progressive.jpg", pic, progressive=True)
    save("rgb.png", Image.fromarray(noise(37, 23)))
    save("rgba.png", Image.fromarray(noise(37, 23, 2, 4), "RGBA"))
    save("la.png", Image.fromarray(noise(37, 23, 3, 2), "LA"))
    save("palette.png", pic.convert("P", palette=Image.Palette.ADAPTIVE))
    save("grey.png", pic.convert("L"))
    save("one.gif", pic.convert("P", palette=Image.Palette.ADAPTIVE))
    save("odd.bmp", Image.fromarray(noise(37, 23, 4)))
    for o in range(2, 9):  # EXIF orientations: stored turned, displayed upright
        exif = Image.Exif()
        exif[0x0112] = o
        turned = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                  4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
                  7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[o]
        save(f"exif{o}.jpg", quadrants(48).resize((48, 32)).transpose(turned), exif=exif, quality=95)
    return out


def test_header_scan_sends_plain_files_to_tensorflow(plain):
    kinds = dict(zip(plain, H.scan_headers(list(plain.values())).kinds))
    want = {"420.jpg": H.JPEG, "rgb.png": H.PNG, "rgba.png": H.PNG_ALPHA, "la.png": H.PNG_ALPHA,
            "palette.png": H.PNG, "one.gif": H.GIF, "odd.bmp": H.BMP, "exif6.jpg": H.JPEG}
    assert {k: kinds[k] for k in want} == want
    assert all(kinds[k] == H.JPEG for k in plain if k.endswith(".jpg"))
    scan = H.scan_headers([plain["exif6.jpg"], plain["420.jpg"]])
    assert list(scan.orientations) == [6, 1]
    assert (list(scan.widths), list(scan.heights)) == ([48, 301], [32, 217])  # displayed, not stored (32 x 48)


def test_header_scan_sends_everything_doubtful_to_pil(tmp_path):
    cat = make_catalogue(tmp_path / "cat")
    scan = dict(zip(cat, H.scan_headers([p for p, _ in cat.values()]).kinds))
    native = {k for k, kind in scan.items() if kind != H.PIL}
    # what TensorFlow may read: plain PNGs (grey, palette, RGBA; the IDAT checksum is not part of the header)
    assert native <= {"PNG with wrong pixel-data CRC", "grayscale PNG", "palette PNG", "RGBA PNG", "no read permission",
                      "EXIF-rotated JPEG"}
    for kind in ("CMYK JPEG", "16-bit PNG", "animated GIF", "WebP", "decompression bomb", "truncated JPEG",
                 "truncated PNG", "PNG with wrong header CRC", "zero-byte", "FIFO named like an image",
                 "directory named like an image"):
        assert scan[kind] == H.PIL, kind
    trns = tmp_path / "trns.png"
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 255, 0] * 256)
    pal.save(trns, transparency=0)
    gif = io.BytesIO()
    quadrants(8).save(gif, format="GIF", transparency=0)
    (tmp_path / "t.gif").write_bytes(gif.getvalue())
    trailing = tmp_path / "trailing.jpg"
    trailing.write_bytes(_jpeg_bytes() + b"junk")  # data after the end marker: PIL decides
    assert list(H.scan_headers([trns, tmp_path / "t.gif", trailing]).kinds) == [H.PIL] * 3


def _jpeg_bytes():
    buf = io.BytesIO()
    photo(40, 30).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("recipe", ["square", "inception"])
def test_native_and_pil_paths_give_identical_pixels(plain, recipe):
    paths = list(plain.values())
    scan = H.scan_headers(paths)
    assert (scan.kinds != H.PIL).all()
    forced = copy.deepcopy(scan)
    forced.kinds[:] = H.PIL
    for size in (24, 160):  # below PIL's JPEG draft threshold (half the image side) and above it
        small = [i for i, p in enumerate(paths) if size * 2 > min(Image.open(p).size)]
        native = np.concatenate([x.numpy() for x, _ in inference_dataset(
            paths, size, 5, log=FailureLog(), recipe=recipe, headers=scan)])
        pil = np.concatenate([x.numpy() for x, _ in inference_dataset(
            paths, size, 5, log=FailureLog(), recipe=recipe, headers=forced)])
        assert native.shape == (len(paths), size, size, 3) and native.dtype == np.uint8
        np.testing.assert_array_equal(native[small], pil[small])


def test_exif_orientations_are_applied_natively(plain):
    paths = [plain[f"exif{o}.jpg"] for o in range(2, 9)]
    images, _ = decode_images(paths, 16)
    for arr in images:  # upright: red top-left, green top-right, blue bottom-left, white bottom-right
        for (y, x), colour in (((4, 4), (230, 20, 20)), ((4, 12), (20, 210, 30)), ((12, 4), (25, 30, 220)),
                               ((12, 12), (255, 255, 255))):
            assert np.abs(arr[y, x].astype(int) - colour).max() < 40


def test_inference_pixels_stay_within_rounding_of_load_image(plain):
    """Enlarging, PIL's bilinear resize (load_image) and TensorFlow's differ by rounding only.

    (Shrinking they part: TensorFlow's plain bilinear down to half size, antialiased below,
    load_image antialiased always, with DCT scaling of big JPEGs and box reduction first.)"""
    paths = [plain[k] for k in ("rgb.png", "rgba.png", "la.png", "odd.bmp")]  # 37 x 23: a 23-pixel square
    images, _ = decode_images(paths, 40)
    for p, arr in zip(paths, images):
        assert np.abs(arr.astype(int) - load_image(p, 40)).max() <= 1


def test_training_batches_are_full_uint8_and_bad_files_reported_once(tmp_path):
    good = [tmp_path / f"{i}.png" for i in range(7)]
    for i, p in enumerate(good):
        Image.new("RGB", (20, 20), (i * 30, 0, 0)).save(p)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    paths = good[:3] + [bad] + good[3:]
    seen = []
    log = FailureLog(on_new=lambda p, r: seen.append((p, r)))
    ds = training_dataset(paths, list(range(8)), size=8, batch_size=3, log=log, seed=1)
    for _ in range(2):  # two epochs: the failure is reported once
        batches = list(ds)
        assert [tuple(x.shape) for x, _ in batches] == [(3, 8, 8, 3)] * 2  # 7 images: two full batches
        assert all(x.dtype == tf.uint8 and y.dtype == tf.int32 for x, y in batches)
        for x, y in batches:  # every label is its image's (the red level says which file it is)
            assert all(abs(int(img[4, 4, 0]) - paths_level(int(lbl))) <= 1 for img, lbl in zip(x.numpy(), y.numpy()))
    assert seen == [(str(bad), "not an image PIL can read")]
    whole = list(training_dataset(paths, list(range(8)), size=8, batch_size=3, log=log, drop_remainder=False,
                                  augment=False, shuffle=False))
    assert sorted(np.concatenate([y.numpy() for _, y in whole]).tolist()) == [0, 1, 2, 4, 5, 6, 7]


def paths_level(label: int) -> int:
    """The red level of test_training_batches' image with this label (label 3 is the bad file)."""
    return (label if label < 3 else label - 1) * 30


def test_files_tensorflow_refuses_fall_back_to_pil(tmp_path):
    """A scan cannot see damage after the header: TensorFlow's error sends the file to PIL, in order."""
    png = tmp_path / "really-a.bmp"  # TensorFlow's JPEG decoder also reads PNG and GIF, not BMP
    Image.fromarray(noise(20, 20)).save(png)
    text = tmp_path / "text.jpg"
    text.write_bytes(b"not really a JPEG")
    other = tmp_path / "other.bmp"
    Image.fromarray(noise(20, 20, 5)).save(other)
    paths = [png, text, other]
    want = decode_images([png, other], 16)[0]
    lying = H.scan_headers(paths)
    lying.kinds[:] = H.JPEG  # what a stale scan (files replaced after it) would say
    log = FailureLog()
    batches = list(inference_dataset(paths, 16, 2, log=log, headers=lying))
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in batches]), want)
    assert np.concatenate([p.numpy() for _, p in batches]).tolist() == [0, 2]
    assert log.items() == [(str(text), "not an image PIL can read")]
    assert list(lying.kinds) == [H.PIL, H.JPEG, H.PIL]  # later pipelines ask PIL directly
    # training notices at the end of the epoch, and trains on the file from the next pipeline on
    lying.kinds[:] = H.JPEG
    log = FailureLog()
    first = list(training_dataset(paths, [0, 1, 2], size=16, batch_size=1, log=log, headers=lying))
    assert len(first) == 0 and log.items() == [(str(text), "not an image PIL can read")]
    assert list(lying.kinds) == [H.PIL, H.JPEG, H.PIL]
    again = list(training_dataset(paths, [0, 1, 2], size=16, batch_size=1, log=log, headers=lying))
    assert sorted(int(y[0]) for _, y in again) == [0, 2]


def test_evaluation_batches_pad_for_every_replica(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(5)]
    for p in paths:
        Image.fromarray(noise(12, 12)).save(p)
    batches = list(evaluation_dataset(paths, [0, 1, 2, 3, 4], size=8, batch_size=4, log=FailureLog(), replicas=2))
    assert [(len(y), w.numpy().tolist()) for _, y, w in batches] == [(4, [1, 1, 1, 1]), (2, [1, 0])]
    assert batches[1][1].numpy().tolist() == [4, 4]


def test_recipes_registry_and_auto_choice(tmp_path):
    assert {"inception", "square"} <= set(A.RECIPES) and A.recipe_names()[0] == "auto"
    photos = ([500, 640, 375], [375, 480, 500])  # widths, heights: two of three non-square and big
    assert A.resolve_recipe("auto", *photos, image_size=224) == "inception"
    assert A.resolve_recipe("auto", [96, 96, 300], [96, 96, 200], image_size=64) == "square"  # emoji
    assert A.resolve_recipe("auto", [0], [0], image_size=64) == "square"  # nothing known
    assert A.resolve_recipe("square", *photos, image_size=224) == "square"
    with pytest.raises(ValueError, match="unknown augmentation recipe 'nope'"):
        A.resolve_recipe("nope", *photos, image_size=224)
    with pytest.raises(ValueError, match="unknown op"):
        A.register_recipe(A.Recipe("bad", "", ops=("missing",)))


def test_a_registered_recipe_drives_the_pipeline(tmp_path):
    """How issue-15-style recipes plug in: an op and a recipe registered by name."""
    @A.register_op("invert_for_test")
    def invert(image, seed, size):
        return 255.0 - image

    A.register_recipe(A.Recipe("invert-test", "test only", ops=("invert_for_test",)))
    try:
        path = tmp_path / "red.png"
        Image.new("RGB", (10, 10), (200, 10, 10)).save(path)
        x, _ = next(iter(training_dataset([path], [0], size=8, batch_size=1, log=FailureLog(),
                                          recipe="invert-test")))
        assert tuple(x.numpy()[0, 4, 4]) == (55, 245, 245)
        evaluated, _ = decode_images([path], 8, recipe="invert-test")  # ops are for training only
        assert tuple(evaluated[0, 4, 4]) == (200, 10, 10)
    finally:
        A.RECIPES.pop("invert-test")
        A.OPS.pop("invert_for_test")


def test_random_resized_crop_stays_in_its_ranges():
    window = A.WINDOWS["random_resized"]
    shape = tf.constant([375, 500])
    areas, aspects = [], []
    for i in range(200):
        _, _, h, w = window(shape, tf.constant([7, i]))
        areas.append(int(h) * int(w) / (375 * 500))
        aspects.append(int(w) / int(h))
    assert 0.07 <= min(areas) and max(areas) <= 1.0 and max(areas) - min(areas) > 0.5
    assert 3 / 4 * 0.95 <= min(aspects) and max(aspects) <= 4 / 3 * 1.05


def test_centre_crop_matches_between_pil_and_tensorflow():
    from models.data.images import centre_box

    for w, h in ((500, 375), (37, 23), (7, 7), (1, 300)):
        for crop in (1.0, 0.875, 0.5):
            top, left, side, _ = (int(v) for v in A.centre_window(tf.constant([h, w]), crop))
            assert centre_box(w, h, crop) == (left, top, left + side, top + side)


def test_cached_scan_reuses_its_file_for_the_same_manifest(tmp_path, plain):
    paths = list(plain.values())[:3]
    cache = tmp_path / "scan.npz"
    first = H.cached_scan(paths, cache)
    assert cache.is_file()
    cache_mtime = cache.stat().st_mtime_ns
    again = H.cached_scan(paths, cache)
    assert cache.stat().st_mtime_ns == cache_mtime and (again.kinds == first.kinds).all()
    other = H.cached_scan(paths[:2], cache)  # another path list: scanned again, file replaced
    assert len(other) == 2 and cache.stat().st_mtime_ns != cache_mtime
    assert H.manifest_digest(paths) != H.manifest_digest(paths, [0, 1, 2])


def test_a_seeded_run_s_pipelines_log_nothing(tmp_path):
    """With op determinism on (every seeded run), TensorFlow rewrites a parallel decoding map into a
    sequential one and logs an E0000 "use_unbounded_threadpool" line for each, three per `train`,
    through its progress bar: the pipelines ask for the sequential map themselves."""
    import os
    import subprocess
    import sys

    for i, colour in enumerate(("red", "blue", "green")):
        Image.new("RGB", (40, 30), colour).save(tmp_path / f"{i}.png")
    code = (
        "import sys, tensorflow as tf\n"
        "tf.config.experimental.enable_op_determinism()\n"
        "from pathlib import Path\n"
        "from models.data.failures import FailureLog\nfrom models.data.tfdata import inference_dataset\n"
        "paths = sorted(Path(sys.argv[1]).glob('*.png'))\n"
        "print(sum(len(x) for x, _ in inference_dataset(paths, 16, 2, log=FailureLog())))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
    assert "use_unbounded_threadpool" not in out.stderr
