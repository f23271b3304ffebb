"""models.data.images (PIL decoding) and models.data.datasets (finding files, datasets, splits); the tf.data
pipelines are tested in test_pipeline.py."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.data.datasets import expand_image_paths, scan_dataset, stratified_split
from models.data.images import load_image
from wordnet.base.errors import DatasetError, ImageError


def _png(path, colour=(200, 10, 10), size=(20, 20), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def test_load_image_rgb_resized(tmp_path):
    arr = load_image(_png(tmp_path / "a.png", size=(40, 20)), 16)
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    assert tuple(arr[8, 8]) == (200, 10, 10)


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 5, 10))
    img.save(tmp_path / "t.png")
    arr = load_image(tmp_path / "t.png", 10)
    assert tuple(arr[5, 1]) == (0, 0, 255)
    assert tuple(arr[5, 8]) == (255, 255, 255)


def test_palette_with_transparency_and_cmyk_and_grey(tmp_path):
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert tuple(load_image(tmp_path / "p.png", 8)[0, 0]) == (255, 255, 255)
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    r, g, b = load_image(tmp_path / "c.jpg", 8)[4, 4]
    assert r > 200 and g < 60 and b < 60
    Image.new("L", (8, 8), 77).save(tmp_path / "g.png")
    assert tuple(load_image(tmp_path / "g.png", 8)[0, 0]) == (77, 77, 77)


def test_16_bit_image_is_scaled_to_8_bit(tmp_path):
    data = np.full((8, 8), 65535, np.uint16)
    data[:, :4] = 0
    Image.fromarray(data).save(tmp_path / "deep.png")
    arr = load_image(tmp_path / "deep.png", 8)
    assert tuple(arr[0, 0]) == (0, 0, 0) and tuple(arr[0, 7]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 10))  # left half blue, right half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    arr = load_image(tmp_path / "rot.jpg", 10)
    # displayed upright the image is 10 wide x 20 high: blue on top, red below (centre crop keeps middle);
    # without the EXIF rotation blue would be on the left and red on the right instead
    assert arr[1, 5, 2] > 150 and arr[1, 5, 0] < 100
    assert arr[8, 5, 0] > 150 and arr[8, 5, 2] < 100


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    r, g, _ = load_image(tmp_path / "anim.gif", 8)[3, 3]
    assert r > 200 and g < 50


def test_bad_files_raise_image_error_naming_them(tmp_path, monkeypatch):
    (tmp_path / "junk.png").write_bytes(b"definitely not an image")
    with pytest.raises(ImageError, match=r"junk\.png: not an image PIL can read"):
        load_image(tmp_path / "junk.png", 8)
    with pytest.raises(ImageError, match=r"nope\.png: no such file"):
        load_image(tmp_path / "nope.png", 8)
    good = _png(tmp_path / "big.png", size=(64, 64))
    truncated = tmp_path / "trunc.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageError, match="trunc.png"):
        load_image(truncated, 8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"big\.png: refused, image too large"):
        load_image(good, 8)


def test_expand_image_paths(tmp_path):
    a = _png(tmp_path / "x" / "a.png")
    b = _png(tmp_path / "x" / "sub" / "b.jpg")
    (tmp_path / "x" / "notes.txt").write_text("hi")
    assert expand_image_paths([tmp_path / "x"]) == [a, b]
    assert expand_image_paths([str(tmp_path / "x" / "*.png"), a]) == [a]
    with pytest.raises(DatasetError, match="missing.png: no such file or folder"):
        expand_image_paths([tmp_path / "missing.png"])
    with pytest.raises(DatasetError, match="matches no image files"):
        expand_image_paths([str(tmp_path / "*.gif")])


def test_scan_folder_and_csv(tmp_path):
    _png(tmp_path / "d" / "dog" / "1.png")
    _png(tmp_path / "d" / "dog" / "2.png")
    _png(tmp_path / "d" / "cat" / "1.png")
    items = scan_dataset(tmp_path / "d")
    assert [(p.name, c) for p, c in items] == [("1.png", "cat"), ("1.png", "dog"), ("2.png", "dog")]
    csv_path = tmp_path / "d" / "data.csv"
    csv_path.write_text("img_name,class,text\ndog/1.png,dog,a dog\ncat/1.png,tiger,\n")
    items = scan_dataset(csv_path)
    assert items == [(tmp_path / "d" / "dog" / "1.png", "dog"), (tmp_path / "d" / "cat" / "1.png", "tiger")]


def test_scan_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset folder or CSV file"):
        scan_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        scan_dataset(tmp_path / "empty")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.png,dog\n")
    with pytest.raises(DatasetError,
                       match=r"bad\.csv: a dataset CSV needs the columns img_name,class \(found: file, label\)"):
        scan_dataset(bad)


def test_stratified_split_is_seeded_and_keeps_every_class():
    items = [(f"c{c}/{i}.png", c) for c in range(3) for i in range(c * 4 + 1)]  # 1, 5, 9 images
    train, val = stratified_split(items, 0.25, seed=7)
    assert stratified_split(items, 0.25, seed=7) == (train, val)
    assert len(train) + len(val) == len(items) and not set(train) & set(val)
    assert {c for _, c in train} == {0, 1, 2}
    assert [c for _, c in val].count(0) == 0  # a one-image class stays in training
    assert [c for _, c in val].count(2) == 2  # round(9 * 0.25)
    assert stratified_split(items, 0.25, seed=8) != (train, val)
    with pytest.raises(DatasetError, match=r"--val-split must be in \[0, 1\)"):
        stratified_split(items, 1.0)
