"""Which decoder each image file goes to, read from its header: TensorFlow's own, or PIL.

The tf.data pipelines (:mod:`models.data.tfdata`) decode JPEG, PNG, GIF and BMP with
TensorFlow ops inside the graph (no Python, no GIL); PIL (:func:`models.data.images.read_rgb`)
takes everything those decoders would get wrong or cannot read. :func:`scan_headers`
decides per file from a few hundred bytes of header plus the file's last bytes, without
decoding anything, and :func:`cached_scan` does it once per dataset.

A file goes to TensorFlow only when its header proves it plain:

- JPEG: baseline/extended/progressive Huffman, 8-bit, 1 or 3 components (not CMYK/YCCK),
  ending with the EOI marker; an EXIF orientation (phone photos) is recorded and applied
  by TensorFlow after decoding (an orientation in XMP, which PIL also honours, goes to PIL);
- PNG: 8 bits per channel, a valid IHDR checksum, no ``tRNS`` transparency, no ``eXIf``
  or orientation in XMP before the pixel data, not animated (APNG), ending with ``IEND``;
  grey-alpha and RGBA go to TensorFlow too (alpha is composited onto white exactly as
  :func:`~models.data.images.read_rgb` does);
- GIF: a single frame covering the whole canvas, no transparency, the trailer present;
- BMP: uncompressed 24-bit.

Everything else (CMYK, 16-bit, EXIF-rotated, WebP, TIFF, palette transparency, animations,
truncated or damaged headers, empty or unreadable files, folders, FIFOs, images over PIL's
decompression-bomb limit) goes to PIL, so every refusal still reads exactly as
:func:`~models.data.images.load_image` words it. A file that passes the scan but that
TensorFlow still refuses (damage after the header) is caught by the pipeline and handed
to PIL; see :mod:`models.data.tfdata`. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import hashlib
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from wordnet.base.errors import ImageError
from wordnet.base.files import atomic_path

# decoder kinds (the values live in tf.data tensors; keep them small ints)
PIL, JPEG, PNG, PNG_ALPHA, GIF, BMP = range(6)
KIND_NAMES = ("pil", "jpeg", "png", "png-alpha", "gif", "bmp")

_HEAD = 4096       # first read; most headers are far smaller
_GIF_LIMIT = 4 << 20  # a GIF is walked block by block up to its second frame; bigger ones go to PIL
_NATIVE_SOF = {0xC0, 0xC1, 0xC2}
_OTHER_SOF = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass
class ImageHeaders:
    """Per path: decoder ``kinds`` (int8), displayed ``widths`` and ``heights`` (int32; 0 when PIL decides)
    and the EXIF ``orientations`` (int8, 1-8; 1 = stored upright) TensorFlow applies after decoding."""

    kinds: np.ndarray
    widths: np.ndarray
    heights: np.ndarray
    orientations: np.ndarray

    def __len__(self) -> int:
        return len(self.kinds)

    def subset(self, indices) -> "ImageHeaders":
        """The rows ``indices`` (copies: marking a file for PIL in the subset leaves this one alone)."""
        idx = np.asarray(indices, np.int64)
        return ImageHeaders(self.kinds[idx], self.widths[idx], self.heights[idx], self.orientations[idx])

    def counts(self) -> dict[str, int]:
        return {KIND_NAMES[k]: int(n) for k, n in zip(*np.unique(self.kinds, return_counts=True))}


def _max_pixels() -> int:
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 0)


def scan_file(path: str | Path, max_pixels: int | None = None) -> tuple[int, int, int, int]:
    """``(kind, width, height, orientation)`` of one file (displayed size); ``(PIL, 0, 0, 1)`` whenever
    anything is doubtful."""
    from models.data.images import open_regular

    max_pixels = _max_pixels() if max_pixels is None else max_pixels
    doubtful = (PIL, 0, 0, 1)
    try:
        fh = open_regular(Path(path))
    except ImageError:
        return doubtful
    with fh:
        fd = fh.fileno()
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, _HEAD, 0)
            kind, w, h, orientation = _classify(fd, head, size)
        except (OSError, struct.error, IndexError, ValueError):
            return doubtful
    if kind == PIL or w <= 0 or h <= 0 or (max_pixels and w * h > max_pixels):
        return doubtful
    return (kind, h, w, orientation) if orientation >= 5 else (kind, w, h, orientation)


def scan_headers(paths: Sequence[str | Path], threads: int = 8) -> ImageHeaders:
    """:func:`scan_file` for every path (threads overlap the file opens of network filesystems)."""
    max_pixels = _max_pixels()
    paths = [str(p) for p in paths]
    if len(paths) > 256 and threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            rows = list(pool.map(lambda p: scan_file(p, max_pixels), paths, chunksize=256))
    else:
        rows = [scan_file(p, max_pixels) for p in paths]
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    return ImageHeaders(arr[:, 0].astype(np.int8), arr[:, 1].astype(np.int32), arr[:, 2].astype(np.int32),
                        arr[:, 3].astype(np.int8))


def manifest_digest(paths: Sequence[str | Path], labels: Sequence[int] | None = None) -> str:
    """SHA-256 of the path list (and labels): what identifies a dataset for caches, without a ``stat`` per file.

    A file replaced in place under the same name keeps the digest; caches keyed on it
    (header scans, features) would then describe the old file. TensorFlow-decoded files
    stay safe (a file that no longer decodes natively falls back to PIL), and
    ``devise train --overwrite`` starts afresh.
    """
    h = hashlib.sha256()
    h.update(str(len(paths)).encode())
    for p in paths:
        h.update(os.fsencode(str(p)))
        h.update(b"\0")
    if labels is not None:
        h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


def cached_scan(paths: Sequence[str | Path], cache_file: str | Path | None, key: str | None = None) -> ImageHeaders:
    """:func:`scan_headers`, read from ``cache_file`` (``.npz``) when it holds the scan of these paths.

    ``key`` defaults to :func:`manifest_digest` of ``paths``. The file is written atomically.
    """
    key = key or manifest_digest(paths)
    if cache_file is not None and Path(cache_file).is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as data:
                if str(data["key"]) == key and len(data["kinds"]) == len(paths):
                    return ImageHeaders(data["kinds"].astype(np.int8), data["widths"].astype(np.int32),
                                        data["heights"].astype(np.int32), data["orientations"].astype(np.int8))
        except (OSError, KeyError, ValueError):
            pass  # unreadable: scan again
    headers = scan_headers(paths)
    if cache_file is not None:
        save_scan(headers, cache_file, key)
    return headers


def save_scan(headers: ImageHeaders, cache_file: str | Path, key: str) -> None:
    Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache_file) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, key=np.asarray(key), kinds=headers.kinds, widths=headers.widths, heights=headers.heights,
                     orientations=headers.orientations)


# -- per format --------------------------------------------------------------------------
class _File:
    """Random access over an open file: the first bytes from memory, the rest by ``pread``."""

    def __init__(self, fd: int, head: bytes, size: int):
        self.fd, self.head, self.size = fd, head, size

    def read(self, offset: int, n: int) -> bytes:
        if offset + n <= len(self.head):
            return self.head[offset:offset + n]
        data = os.pread(self.fd, n, offset)
        if len(data) < n:
            raise ValueError("short read")
        return data


def _classify(fd: int, head: bytes, size: int) -> tuple[int, int, int, int]:
    f = _File(fd, head, size)
    if head.startswith(b"\xff\xd8\xff"):
        return _jpeg(f)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = _png(f)
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        found = _gif(f)
    elif head.startswith(b"BM"):
        found = _bmp(f)
    else:
        found = (PIL, 0, 0)
    return found + (1,)


def _jpeg(f: _File) -> tuple[int, int, int, int]:
    doubtful = (PIL, 0, 0, 1)
    if f.size < 4 or f.read(f.size - 2, 2) != b"\xff\xd9":
        return doubtful  # truncated (or trailing data): PIL says what is wrong, or reads it
    pos, dims, orientation, exif_seen = 2, None, 1, False
    while pos + 4 <= f.size:
        if f.read(pos, 1) != b"\xff":
            return doubtful
        while f.read(pos, 1) == b"\xff":
            pos += 1
        marker = f.read(pos, 1)[0]
        pos += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue  # standalone markers
        if marker == 0xD9:
            return doubtful
        length = struct.unpack(">H", f.read(pos, 2))[0]
        if length < 2:
            return doubtful
        if marker == 0xDA:  # start of scan: the header is over
            return (JPEG, dims[1], dims[0], orientation) if dims else doubtful
        if marker in _OTHER_SOF:
            return doubtful  # lossless, hierarchical or arithmetic-coded
        if marker in _NATIVE_SOF:
            precision, height, width, components = struct.unpack(">BHHB", f.read(pos + 2, 6))
            if precision != 8 or components not in (1, 3) or height == 0 or dims is not None:
                return doubtful
            dims = (height, width)
        elif marker == 0xE1:
            body = f.read(pos + 2, length - 2)
            if body.startswith(b"Exif\0\0") and not exif_seen:  # PIL reads the first EXIF block
                exif_seen = True
                found = _exif_orientation(body[6:])
                if found is not None and found not in range(1, 9):
                    return doubtful
                orientation = found or 1
            if body.startswith(b"http://ns.adobe.com/xap/") and b"Orientation" in body:
                return doubtful  # PIL also honours an XMP orientation
        pos += length  # the length counts its own two bytes
    return doubtful


def _exif_orientation(tiff: bytes) -> int | None:
    """The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block, if any."""
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == 0x0112:
            return struct.unpack(order + "H", entry[8:10])[0] if kind == 3 else -1
    return None


def _png(f: _File) -> tuple[int, int, int]:
    if f.size < 8 + 25 + 12 or f.read(f.size - 12, 12) != _IEND:
        return PIL, 0, 0
    length, kind = struct.unpack(">I4s", f.read(8, 8))
    if kind != b"IHDR" or length != 13:
        return PIL, 0, 0
    body = f.read(16, 13)
    if struct.unpack(">I", f.read(29, 4))[0] != zlib.crc32(b"IHDR" + body):
        return PIL, 0, 0
    width, height, depth, colour = struct.unpack(">IIBB", body[:10])
    if depth != 8 or colour not in (0, 2, 3, 4, 6):
        return PIL, 0, 0
    pos = 33
    while pos + 8 <= f.size:
        length, kind = struct.unpack(">I4s", f.read(pos, 8))
        if kind == b"IDAT":
            return (PNG_ALPHA if colour in (4, 6) else PNG), width, height
        if kind in (b"tRNS", b"eXIf", b"acTL") or kind == b"IEND":
            return PIL, 0, 0
        if kind in (b"iTXt", b"zTXt", b"tEXt") and length < (1 << 20) and b"Orientation" in f.read(pos + 8, length):
            return PIL, 0, 0
        pos += 12 + length
    return PIL, 0, 0


def _gif(f: _File) -> tuple[int, int, int]:
    if f.size > _GIF_LIMIT or f.read(f.size - 1, 1) != b"\x3b":
        return PIL, 0, 0
    data = f.read(0, f.size)
    width, height, packed = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0)
    frames = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            return (GIF, width, height) if frames == 1 else (PIL, 0, 0)
        if block == 0x21:  # extension: label, then data sub-blocks
            label = data[pos + 1]
            if label == 0xF9 and data[pos + 3] & 1:
                return PIL, 0, 0  # transparency
            pos = _skip_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            frames += 1
            if frames > 1:
                return PIL, 0, 0  # animated: PIL reads the first frame only
            left, top, w, h, flags = struct.unpack("<HHHHB", data[pos + 1:pos + 10])
            if (left, top, w, h) != (0, 0, width, height):
                return PIL, 0, 0
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _skip_blocks(data, pos + 1)  # LZW minimum code size, then the pixel sub-blocks
        else:
            return PIL, 0, 0
    return PIL, 0, 0


def _skip_blocks(data: bytes, pos: int) -> int:
    while True:
        n = data[pos]
        pos += 1 + n
        if n == 0:
            return pos


def _bmp(f: _File) -> tuple[int, int, int]:
    header = f.read(14, 26)
    dib = struct.unpack("<I", header[:4])[0]
    if dib not in (40, 108, 124):
        return PIL, 0, 0
    width, height, planes, bits, compression = struct.unpack("<iiHHI", header[4:20])
    if planes != 1 or bits != 24 or compression != 0 or width <= 0 or height == 0:
        return PIL, 0, 0
    offset = struct.unpack("<I", f.read(10, 4))[0]
    if offset + (3 * width + 3) // 4 * 4 * abs(height) > f.size:
        return PIL, 0, 0  # truncated pixel data
    return BMP, width, abs(height)
