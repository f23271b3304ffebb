"""A catalogue of real bad (and merely unusual) image files, through load_image and `devise train/predict/eval`.

Every file is generated here. Unusual but valid files (CMYK, 16-bit, palette, RGBA,
EXIF-rotated, animated, WebP) must decode to the right pixels; broken ones must give
one reason, naming the file, and never stop the others. The CLI tests train one tiny
bundle on a CSV dataset listing the whole catalogue, then predict and evaluate with it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from models.data.datasets import expand_image_paths
from models.data.images import load_image
from wordnet.base.errors import ImageError

RED, GREEN, BLUE, WHITE = (230, 20, 20), (20, 210, 30), (25, 30, 220), (255, 255, 255)
BOMB = "refused, image too large (900000000 pixels, more than the 89478485 allowed: a possible decompression bomb)"


def _noise(size=(64, 48), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def bomb_png(width=30000, height=30000) -> bytes:
    """A 900-megapixel greyscale PNG header with a little pixel data: decoding it would need ~900 MB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 8)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def quadrants(side=32) -> Image.Image:
    """Upright reference: red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = Image.new("RGB", (side, side))
    h = side // 2
    for box, colour in (((0, 0, h, h), RED), ((h, 0, side, h), GREEN), ((0, h, h, side), BLUE),
                        ((h, h, side, side), WHITE)):
        img.paste(colour, box)
    return img


# EXIF orientation -> how the camera stored the upright picture (PIL rotate() turns counter-clockwise)
STORED = {2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 3: lambda im: im.rotate(180),
          6: lambda im: im.rotate(90, expand=True), 8: lambda im: im.rotate(270, expand=True)}


def exif_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _bytes(STORED[orientation](quadrants()), "JPEG", exif=exif, quality=95)


def pil_error(data: bytes) -> str:
    """PIL's own complaint about ``data`` (the reference for what load_image must pass on)."""
    try:
        Image.open(io.BytesIO(data)).load()
    except OSError as exc:
        return str(exc)
    raise AssertionError("PIL decoded it")


def make_catalogue(folder: Path) -> dict[str, tuple[Path, str | None]]:
    """``{kind: (path, reason or None)}``; None = must decode. Paths are regular files unless noted."""
    folder.mkdir(parents=True, exist_ok=True)
    noise_jpg = _bytes(_noise(), "JPEG", quality=90)
    noise_png = _bytes(_noise(), "PNG")
    bad_crc = bytearray(noise_png)
    bad_crc[29] ^= 0xFF  # IHDR's CRC (8 signature + 4 length + 4 type + 13 body)
    idat = noise_png.index(b"IDAT")
    idat_crc = bytearray(noise_png)
    idat_crc[idat + 4 + struct.unpack(">I", noise_png[idat - 4:idat])[0]] ^= 0xFF
    deep = np.zeros((8, 8), np.uint16)
    deep[:, 4:] = 65535
    deep[4:, :4] = 32896  # 32896 / 257 = 128
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette(list(GREEN) + list(BLUE) + [0, 0, 0] * 254)
    palette.paste(0, (0, 0, 4, 8))
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.paste(BLUE + (255,), (0, 0, 4, 8))
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, GREEN, BLUE)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    files: dict[str, tuple[bytes | None, str, str | None]] = {
        "zero-byte": (b"", "empty.jpg", "empty file (0 bytes)"),
        "truncated JPEG": (noise_jpg[:len(noise_jpg) // 2], "truncated.jpg",
                           f"cannot decode ({pil_error(noise_jpg[:len(noise_jpg) // 2])})"),
        "truncated PNG": (noise_png[:len(noise_png) // 2], "truncated.png", "cannot decode (image file is truncated)"),
        "text named .jpg": (b"Dear user, this is a note, not a photo.\n", "note.jpg", "not an image PIL can read"),
        "PNG with wrong header CRC": (bytes(bad_crc), "bad-crc.png",
                                      "damaged PNG file (broken PNG file (bad header checksum in b'IHDR'))"),
        # PIL does not check IDAT CRCs; zlib's own checksum still guards the pixels, which decode intact
        "PNG with wrong pixel-data CRC": (bytes(idat_crc), "bad-idat-crc.png", None),
        "CMYK JPEG": (_bytes(Image.new("RGB", (16, 16), RED).convert("CMYK"), "JPEG", quality=95), "cmyk.jpg", None),
        "16-bit PNG": (_bytes(Image.fromarray(deep), "PNG"), "deep.png", None),
        "grayscale PNG": (_bytes(Image.new("L", (8, 8), 77), "PNG"), "grey.png", None),
        "palette PNG": (_bytes(palette, "PNG"), "palette.png", None),
        "RGBA PNG": (_bytes(rgba, "PNG"), "rgba.png", None),
        "EXIF-rotated JPEG": (exif_jpeg(6), "rotated.jpg", None),
        "animated GIF": (gif.getvalue(), "animated.gif", None),
        "decompression bomb": (bomb_png(), "bomb.png", BOMB),
        "WebP": (_bytes(Image.new("RGB", (16, 16), GREEN), "WEBP", lossless=True), "green.webp", None),
        "directory named like an image": (None, "folder.jpg", "is a folder, not an image file"),
        "EPS named .jpg (never handed to Ghostscript)": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n",
                                                         "vector.jpg", "not an image PIL can read"),
        "no read permission": (_bytes(Image.new("RGB", (8, 8), BLUE), "PNG"), "locked.png", "permission"),
        "FIFO named like an image": (None, "pipe.png", "is not a regular file"),
    }
    out = {}
    for kind, (data, name, reason) in files.items():
        path = folder / name
        if data is None and name == "pipe.png":
            os.mkfifo(path)
        elif data is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(data)
        out[kind] = (path, reason)
    locked = out["no read permission"][0]
    locked.chmod(0)
    # root reads any file whatever its mode: then the honest expectation is that it decodes
    readable = os.access(locked, os.R_OK)
    out["no read permission"] = (locked, None if readable else
                                 "permission denied (the file is not readable by this user)")
    return out


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    cat = make_catalogue(root / "images")
    yield cat
    cat["no read permission"][0].chmod(0o644)


BAD_KINDS = ["zero-byte", "truncated JPEG", "truncated PNG", "text named .jpg", "PNG with wrong header CRC",
             "decompression bomb", "directory named like an image", "EPS named .jpg (never handed to Ghostscript)",
             "FIFO named like an image"]


def test_catalogue_covers_the_issue(catalogue):
    assert len(catalogue) == 19
    assert {k for k, (_, reason) in catalogue.items() if reason is not None} >= set(BAD_KINDS)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_files_give_one_reason_naming_them(catalogue, kind):
    path, reason = catalogue[kind]
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as err:
        load_image(path, 32)
    assert str(err.value) == f"{path}: {reason}"
    assert time.perf_counter() - t0 < 5  # the bomb is refused from its header, never decoded


def test_decompression_bomb_is_refused_without_allocating(catalogue):
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ImageError, match="a possible decompression bomb"):
        load_image(catalogue["decompression bomb"][0], 224)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20  # decoding it would take 900 MB


def _centre(arr, y, x):
    return tuple(int(v) for v in arr[y, x])


def _close(got, want, tol=40):
    return all(abs(g - w) <= tol for g, w in zip(got, want))


def test_unusual_but_valid_files_decode_to_the_right_pixels(catalogue):
    arr = {k: load_image(p, 8) for k, (p, reason) in catalogue.items() if reason is None}
    assert all(a.shape == (8, 8, 3) and a.dtype == np.uint8 for a in arr.values())
    assert _close(_centre(arr["CMYK JPEG"], 4, 4), RED)
    deep = arr["16-bit PNG"]
    assert _centre(deep, 1, 1) == (0, 0, 0) and _centre(deep, 6, 1) == (128, 128, 128)
    assert _centre(deep, 1, 6) == (255, 255, 255)
    assert _centre(arr["grayscale PNG"], 3, 3) == (77, 77, 77)
    assert _centre(arr["palette PNG"], 4, 1) == GREEN and _centre(arr["palette PNG"], 4, 6) == BLUE
    assert _centre(arr["RGBA PNG"], 4, 1) == BLUE and _centre(arr["RGBA PNG"], 4, 6) == WHITE  # alpha -> white page
    assert _close(_centre(arr["animated GIF"], 4, 4), RED, tol=8)  # the first frame
    assert _centre(arr["WebP"], 4, 4) == GREEN
    want = np.asarray(_noise().crop((8, 0, 56, 48)).resize((8, 8), Image.Resampling.BILINEAR, reducing_gap=3.0))
    np.testing.assert_array_equal(arr["PNG with wrong pixel-data CRC"], want)


@pytest.mark.parametrize("orientation", [2, 3, 6, 8])
def test_exif_orientation_gives_the_upright_layout(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(exif_jpeg(orientation))
    stored = Image.open(path)
    assert stored.getexif()[0x0112] == orientation
    arr = load_image(path, 16)
    for (y, x), colour in (((4, 4), RED), ((4, 12), GREEN), ((12, 4), BLUE), ((12, 12), WHITE)):
        assert _close(_centre(arr, y, x), colour), (orientation, (y, x), _centre(arr, y, x))


def test_fifo_named_like_an_image_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as err:
        load_image(fifo, 8)  # opening a FIFO for reading would wait for a writer forever
    assert str(err.value) == f"{fifo}: is not a regular file"
    assert time.perf_counter() - t0 < 2
    assert expand_image_paths([fifo]) == [fifo]  # named explicitly: kept, so the user is told why it failed
    assert expand_image_paths([tmp_path]) == []  # folders contribute regular image files only
    with pytest.raises(ImageError, match=r"missing\.png: no such file$"):
        load_image(tmp_path / "missing.png", 8)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to switch to another user")
def test_unreadable_file_as_an_unprivileged_user():
    """As root, chmod 000 does not stop reading: become 'nobody' for the call to see the real refusal.

    (A subprocess cannot do it here: the interpreter lives under /root, which 'nobody' cannot enter.)
    """
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="devise-perm-"))
    locked = folder / "locked.png"
    try:
        folder.chmod(0o755)
        Image.new("RGB", (8, 8), BLUE).save(locked)
        locked.chmod(0)
        os.seteuid(65534)
        try:
            with pytest.raises(ImageError) as err:
                load_image(locked, 8)
        finally:
            os.seteuid(0)
        assert str(err.value) == f"{locked}: permission denied (the file is not readable by this user)"
        assert load_image(locked, 8).shape == (8, 8, 3)  # and root can read it
    finally:
        locked.unlink(missing_ok=True)
        folder.rmdir()


# -- the commands ------------------------------------------------------------------------
def run(*args):
    return CliRunner().invoke(main_cli(), [str(a) for a in args])


def main_cli():
    from devise_cli.cli import main

    return main


def expected_failures(catalogue, *, regular_only=False):
    """{path: reason} of the catalogue files the commands must report."""
    return {str(p): r for p, r in catalogue.values() if r is not None and (p.is_file() or not regular_only)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_kv_file):
    """`devise train` on a CSV listing good images of two classes and the whole catalogue."""
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("bad_train")
    catalogue = make_catalogue(root / "images")
    rows = []
    for i, colour in enumerate((RED, BLUE)):
        for j in range(3):
            path = root / "good" / f"{i}-{j}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = np.clip(np.array(colour) + np.random.default_rng(10 * i + j).normal(0, 20, (36, 36, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(path)
            rows.append((os.path.relpath(path, root), ("dog", "car")[i]))
    for n, (path, _) in enumerate(catalogue.values()):
        rows.append((os.path.relpath(path, root), ("dog", "car")[n % 2]))
    data = root / "data.csv"
    with open(data, "w", newline="") as fh:
        csv.writer(fh).writerows([("img_name", "class")] + rows)
    out = root / "bundle"
    res = CliRunner().invoke(main_cli(), [str(a) for a in (
        "train", data, "--vectors", tiny_kv_file, "-o", out, "--backbone", "mobilenet_v2", "--alpha", 0.35,
        "--weights", "none", "--image-size", 32, "--hidden-units", 8, "-b", 8, "--head-epochs", 1,
        "--finetune-epochs", 0, "--bn-images", 50, "--val-split", 0, "--run-eagerly")])
    yield res, out, root, data, len(rows), catalogue
    catalogue["no read permission"][0].chmod(0o644)


def test_train_reports_each_bad_file_once_and_trains_on_the_rest(trained):
    res, out, _, _, n_rows, catalogue = trained
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    bad = expected_failures(catalogue)
    skipped = sorted(line for line in res.stderr.splitlines() if line.startswith("skipped "))
    assert skipped == sorted(f"skipped {p}: {r}" for p, r in bad.items())
    assert res.stdout.splitlines()[0] == (f"trained {out}: {n_rows - len(bad)} training / 0 validation images, "
                                          f"2 classes, {len(bad)} unreadable image(s) skipped")
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["failed_images"] == len(bad)
    assert {f["path"]: f["reason"] for f in config["data"]["failures"]} == bad


def test_predict_reports_each_bad_file_and_labels_the_rest(trained):
    res, out, _, _, _, catalogue = trained
    assert res.exit_code == 0, res.output
    folder = next(iter(catalogue.values()))[0].parent
    res = run("predict", folder, "--model", out, "--json", "--top", 2)
    # the folder contributes its regular image files; the directory named like an image is a folder
    paths = [str(p) for p in sorted(folder.iterdir()) if p.is_file()]
    bad = expected_failures(catalogue, regular_only=True)
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["path"] for d in lines] == paths
    assert {d["path"]: d["error"] for d in lines if "error" in d} == bad
    assert all(len(d["predictions"]) == 2 for d in lines if "error" not in d)
    assert res.stderr == f"{len(bad)} of {len(paths)} images could not be read\n"
    assert res.exit_code == 3
    # without --json: one line per bad file on stderr (never wrapped), tables on stdout
    res = run("predict", *paths, "--model", out, "--top", 1)
    assert res.exit_code == 3
    assert res.stderr.splitlines() == [f"failed {p}: {bad[p]}" for p in paths if p in bad] + [
        f"{len(bad)} of {len(paths)} images could not be read"]
    assert "Traceback" not in res.output


def test_predict_on_only_a_folder_named_like_an_image(trained):
    _, out, _, _, _, catalogue = trained
    folder = catalogue["directory named like an image"][0]
    res = run("predict", folder, "--model", out)
    assert (res.exit_code, res.stderr) == (1, f"Error: no image files found in {folder}\n")


def test_eval_lists_each_bad_file_and_scores_the_rest(trained):
    res, out, root, data, n_rows, catalogue = trained
    assert res.exit_code == 0, res.output
    res = run("eval", data, "--model", out, "--bootstrap", 0, "--baseline", "none", "--k", "1,2")
    assert res.exit_code == 3, res.output
    bad = expected_failures(catalogue)
    lines = res.stdout.splitlines()
    start = lines.index(f"{len(bad)} images could not be read and are not counted:")
    with open(data, newline="") as fh:
        order = [str(root / r["img_name"]) for r in csv.DictReader(fh)]
    assert lines[start + 1:start + 1 + len(bad)] == [f"  {p}: {bad[p]}" for p in order if p in bad]
    assert f"{n_rows - len(bad)} images" in res.stdout
    assert "Traceback" not in res.output
