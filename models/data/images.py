"""Decoding one image file into RGB pixels with PIL, by the rules every command shares.

:func:`load_image` (one file, centre square, resized) and :func:`read_rgb` (the whole
image) fix orientation (EXIF), colour handling (any PIL mode becomes RGB, transparency
is flattened onto white, as the icons and emoji we train on are drawn on a transparent
page) and what a bad file's one-line reason says. A file that will not decode raises
:class:`ImageError` naming the file; callers skip and count it. The tf.data pipelines
decode plain JPEG/PNG/GIF/BMP files with TensorFlow to the same pixels and hand PIL the
rest (:mod:`models.data.headers` decides which).

Nothing here imports TensorFlow; the tf.data pipelines live in :mod:`models.data.tfdata`,
finding files and reading labelled datasets in :mod:`models.data.datasets`.
"""
from __future__ import annotations

import logging
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np

from wordnet.base.errors import ImageError

# PIL logs warnings about damaged files (TIFF tags...) that Python would print on stderr
# beside our own one-line reason; a NullHandler keeps them out unless the app configures logging
logging.getLogger("PIL").addHandler(logging.NullHandler())



def load_image(path: str | Path, size: int, crop: float = 1.0) -> np.ndarray:
    """Decode ``path`` into a ``(size, size, 3)`` uint8 RGB array.

    EXIF orientation is applied, the first frame of an animation is used, 16-bit and
    float images are rescaled to 8 bits, CMYK/palette/grey become RGB, alpha is
    composited onto white, and images larger than ``PIL.Image.MAX_IMAGE_PIXELS`` are
    refused (decompression bombs). The centre square (its side ``crop`` times the short
    side: :func:`centre_box`) is resized to ``size`` with PIL.

    Whatever the file holds, the only exception is :class:`ImageError` ("path: reason"):
    folders, FIFOs and devices are refused before reading (a FIFO would block forever),
    only the raster formats of :data:`DECODERS` are tried (never EPS, which PIL hands
    to Ghostscript), and any failure inside the decoder — the fuzz tests feed it
    mutated files — becomes a one-line reason. The tf.data pipelines decode with
    TensorFlow where they can and use :func:`read_rgb` (same rules, whole image) for the rest.
    """
    return _square_resize(_read(path, size), size, crop)


def load_window(path: str | Path, size: int, window, draft: int | None = None) -> np.ndarray:
    """Decode ``path`` by :func:`load_image`'s rules, crop ``window((h, w)) -> (top, left, height, width)``
    (chosen from the decoded image's size) and resize it to ``(size, size, 3)`` uint8 (bilinear).

    The TF-free input path (:mod:`models.data.pydataset`) builds training and evaluation
    views with it; ``draft`` as in :func:`read_rgb`.
    """
    img = _read(path, draft)
    w, h = img.size
    top, left, ch, cw = (int(v) for v in window((h, w)))
    # crop, then resize: load_image's arithmetic, so centre windows give its pixels
    return _crop_resize(img, (left, top, left + cw, top + ch), size, f"{path}: ")


def read_rgb(path: str | Path, draft: int | None = None) -> np.ndarray:
    """The whole image of ``path`` as an ``(h, w, 3)`` uint8 RGB array, by :func:`load_image`'s rules.

    ``draft``: a big JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, fast)
    as long as both sides stay at least ``draft`` pixels.
    """
    img = _read(path, draft)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - defensive
        raise ImageError(f"{path}: unexpected decoded shape {arr.shape}")
    return np.ascontiguousarray(arr)


def centre_box(width: int, height: int, crop: float = 1.0) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the centred square whose side is ``round(crop * short side)``.

    The same arithmetic as :func:`models.data.augment.centre_window` (double precision,
    round half to even, at least one pixel), so PIL and TensorFlow crop the same pixels.
    """
    short = min(width, height)
    side = short if crop == 1 else min(max(int(round(short * crop)), 1), max(short, 1))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _read(path: str | Path, draft: int | None):
    """Open, check and decode ``path`` into an RGB PIL image (every failure an :class:`ImageError`)."""
    from PIL import Image

    path = Path(path)
    try:
        with open_regular(path) as fh:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL warns about odd metadata it then ignores
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return _decode(fh, draft)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        what = f"{pixels.group(1)} pixels, " if pixels else ""
        raise ImageError(f"{path}: refused, image too large ({what}more than the {Image.MAX_IMAGE_PIXELS} "
                         f"allowed: a possible decompression bomb)") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - a hostile file can make PIL raise almost anything
        raise ImageError(f"{path}: cannot decode ({_reason(exc)})") from None


# raster formats devise reads (PIL names); the file's content decides, not its suffix
DECODERS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "PPM", "ICO")


def open_regular(path: Path):
    """Open ``path`` for reading, refusing anything that is not a regular file (ImageError reasons)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image file") from None
    except PermissionError:
        if path.is_dir():
            raise ImageError("is a folder, not an image file") from None
        raise ImageError("permission denied (the file is not readable by this user)") from None
    except OSError as exc:
        raise ImageError(f"cannot open it ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "is a folder, not an image file" if stat.S_ISDIR(st.st_mode) else "is not a regular file"
        raise ImageError(kind)
    if st.st_size == 0:
        os.close(fd)
        raise ImageError("empty file (0 bytes)")
    return os.fdopen(fd, "rb")


def _decode(fh, draft: int | None):
    """PIL work proper: open, first frame, fast JPEG draft, load, EXIF rotation, RGB."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(fh, formats=DECODERS)
    except UnidentifiedImageError:
        raise ImageError(_unidentified_reason(fh)) from None
    with img:
        img.seek(0)
        if draft and img.format in ("JPEG", "MPO"):  # MPO: multi-picture camera JPEGs
            img.draft("RGB", (draft, draft))  # fast DCT downscale of big JPEGs
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _unidentified_reason(fh) -> str:
    """Why PIL identified nothing: a damaged file of a known format says what broke, else 'not an image'.

    PIL's ``Image.open`` reports any header failure as "cannot identify"; for a file
    that starts with a PNG/JPEG/GIF/TIFF signature (or RIFF....WEBP) the plugin is asked
    again directly, so a PNG with a bad header checksum reads "damaged PNG file (...)".
    """
    from PIL import Image

    fh.seek(0)
    head = fh.read(16)
    fmt = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if fmt is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "WEBP"
    if fmt is None:
        return "not an image PIL can read"
    fh.seek(0)
    try:
        Image.OPEN[fmt][0](fh, "")
    except Exception as exc:  # noqa: BLE001 - the plugin's own complaint is the reason
        return f"damaged {fmt} file ({_reason(exc)})"
    return f"damaged {fmt} file"


def _reason(exc: BaseException) -> str:
    """One short line: the exception's first line, its type when the text says nothing."""
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    if isinstance(exc, (OSError, ValueError, SyntaxError, struct.error)) and text:
        return text
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _to_rgb(img):
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16") and lo >= 0 and hi <= 65535:
            scaled = arr / 257.0
        elif hi > lo:
            scaled = (arr - lo) * (255.0 / (hi - lo))
        else:
            scaled = np.zeros_like(arr)
        img = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        page = Image.new("RGB", img.size, (255, 255, 255))
        page.paste(img, mask=img.getchannel("A"))
        return page
    return img.convert("RGB") if img.mode != "RGB" else img


def _square_resize(img, size: int, crop: float = 1.0) -> np.ndarray:
    w, h = img.size
    return _crop_resize(img, centre_box(w, h, crop), size)


def _crop_resize(img, box, size: int, where: str = "") -> np.ndarray:
    """``img`` cropped to ``box`` (left, top, right, bottom) and resized to ``(size, size, 3)`` uint8 (bilinear)."""
    from PIL import Image

    if box != (0, 0, *img.size):
        img = img.crop(box)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.shape != (size, size, 3):  # pragma: no cover - defensive
        raise ImageError(f"{where}unexpected decoded shape {arr.shape}")
    return np.ascontiguousarray(arr)
