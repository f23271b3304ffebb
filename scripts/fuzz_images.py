#!/usr/bin/env python
"""Fuzz the image loader every devise command uses (``models.data.images.load_image``).

Starts from small valid PNG, JPEG and GIF files (plus BMP, TIFF and WebP), mutates
them (bit flips, interesting integers over header fields, truncation, insertions,
deletions, duplicated and spliced ranges, PNG chunks with their CRC fixed so the
mutation reaches the decoder) or writes pure random bytes, and loads each result from
disk. A case passes when ``load_image`` returns a ``(size, size, 3)`` uint8 array or
raises ``ImageError`` within the time limit; anything else (another exception, a
hang, a crash of the interpreter) is a failure, saved under ``--crashes`` to replay.

    python scripts/fuzz_images.py --cases 10000 --seed 1
    python scripts/fuzz_images.py --replay fuzz-crashes/case-00042.bin

``tests/test_fuzz_images.py`` imports :func:`seed_images` and :func:`mutate` from here
and runs a few hundred cases through hypothesis in CI.
"""
from __future__ import annotations

import argparse
import faulthandler
import io
import random
import signal
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               20000, 65500, 30000 * 30000]


def seed_images() -> dict[str, bytes]:
    """Small valid images in many encodings: ``{"name.ext": bytes}`` (made with PIL, deterministic)."""
    from PIL import Image

    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), "RGB")
    rgba = Image.fromarray(rng.integers(0, 256, (10, 10, 4), dtype=np.uint8), "RGBA")
    grey = rgb.convert("L")
    out: dict[str, bytes] = {}

    def save(name, img, **kw):
        buf = io.BytesIO()
        img.save(buf, format=kw.pop("format"), **kw)
        out[name] = buf.getvalue()

    save("rgb.png", rgb, format="PNG")
    save("rgba.png", rgba, format="PNG")
    save("grey.png", grey, format="PNG")
    save("palette.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), format="PNG", transparency=0)
    save("deep.png", Image.fromarray(rng.integers(0, 65536, (8, 8), dtype=np.uint16)), format="PNG")
    save("bilevel.png", grey.convert("1"), format="PNG")
    save("baseline.jpg", rgb, format="JPEG", quality=80)
    save("progressive.jpg", rgb, format="JPEG", quality=80, progressive=True)
    save("grey.jpg", grey, format="JPEG")
    save("cmyk.jpg", rgb.convert("CMYK"), format="JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif.jpg", rgb, format="JPEG", exif=exif)
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    out["animated.gif"] = buf.getvalue()
    save("still.gif", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), format="GIF", transparency=3)
    save("rgb.bmp", rgb, format="BMP")
    save("rgb.tif", rgb, format="TIFF")
    save("rgb.webp", rgb, format="WEBP", lossless=True)
    return out


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def _png_join(chunks) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


def _flip(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)


def _interesting(data: bytearray, rng: random.Random) -> None:
    width = rng.choice((1, 2, 4))
    i = rng.randrange(max(1, len(data) - width + 1))
    value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    data[i:i + width] = value.to_bytes(width, rng.choice(("big", "little")))


def _truncate(data: bytearray, rng: random.Random) -> None:
    del data[rng.randrange(len(data)):]


def _insert(data: bytearray, rng: random.Random) -> None:
    i = rng.randrange(len(data) + 1)
    data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))


def _delete(data: bytearray, rng: random.Random) -> None:
    i = rng.randrange(len(data))
    del data[i:i + rng.randint(1, 64)]


def _duplicate(data: bytearray, rng: random.Random) -> None:
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 256))
    k = rng.randrange(len(data) + 1)
    data[k:k] = data[i:j]


MUTATIONS = (_flip, _interesting, _truncate, _insert, _delete, _duplicate)


def _mutate_png_chunk(data: bytes, rng: random.Random) -> bytes:
    """Mutate inside one PNG chunk (IHDR, PLTE, tRNS, IDAT, ...) and fix every CRC, so PIL decodes it."""
    chunks = _png_chunks(data)
    if not chunks:
        return data
    i = rng.randrange(len(chunks))
    kind, body = chunks[i]
    if kind == b"IDAT" and rng.random() < 0.5:  # mutate the pixels, not the zlib stream
        try:
            raw = bytearray(zlib.decompress(body))
            if raw:
                rng.choice(MUTATIONS[:2])(raw, rng)
            body = zlib.compress(bytes(raw))
        except zlib.error:
            pass
    elif body:
        b = bytearray(body)
        rng.choice(MUTATIONS)(b, rng)
        body = bytes(b)
    chunks[i] = (kind, body)
    return _png_join(chunks)


def mutate(data: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """One fuzz case from a valid image: 1-4 random mutations (or a splice with ``others``)."""
    if rng.random() < 0.25 and _png_chunks(data):
        data = _mutate_png_chunk(data, rng)
        if rng.random() < 0.5:
            return data
    if others and rng.random() < 0.1:
        other = rng.choice(others)
        data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        rng.choice(MUTATIONS)(buf, rng)
    return bytes(buf)


def random_bytes(rng: random.Random, seeds: dict[str, bytes]) -> bytes:
    """Pure random bytes, half of them behind a real image magic number."""
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 512)))
    if rng.random() < 0.5:
        magic = rng.choice(list(seeds.values()))[:rng.randint(2, 16)]
        body = magic + body
    return body


# -- running cases ----------------------------------------------------------------------
class Hang(BaseException):
    """The per-case time limit passed (a BaseException, so load_image's catch-all cannot swallow it)."""


def _alarm(signum, frame):
    raise Hang()


def run_case(data: bytes, path: Path, size: int, timeout: float) -> tuple[str, str, float]:
    """Write ``data`` to ``path`` and load it: ``(outcome, detail, seconds)``.

    ``outcome`` is "ok", "image-error", "hang" or "crash" (any exception but ImageError).
    """
    from models.data.images import load_image
    from wordnet.base.errors import ImageError

    path.write_bytes(data)
    t0 = time.perf_counter()
    use_alarm = hasattr(signal, "setitimer")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        arr = load_image(path, size)
        if arr.shape != (size, size, 3) or arr.dtype != np.uint8:
            return "crash", f"bad result {arr.shape} {arr.dtype}", time.perf_counter() - t0
        return "ok", "", time.perf_counter() - t0
    except ImageError as exc:
        text = str(exc)
        if "\n" in text or not text.startswith(f"{path}: "):
            return "crash", f"ImageError not one line naming the file: {text!r}", time.perf_counter() - t0
        return "image-error", text[len(str(path)) + 2:], time.perf_counter() - t0
    except Hang:
        return "hang", f"over {timeout} s", time.perf_counter() - t0
    except BaseException as exc:  # noqa: BLE001 - that is what we are looking for
        return "crash", f"{exc.__class__.__name__}: {exc}", time.perf_counter() - t0
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def generate(n: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """``n`` cases ``(seed name or 'random', bytes)``, reproducible from ``seed``."""
    seeds = seed_images()
    names = sorted(seeds)
    rng = random.Random(seed)
    for _ in range(n):
        if rng.random() < 0.05:
            yield "random", random_bytes(rng, seeds)
        else:
            name = rng.choice(names)
            yield name, mutate(seeds[name], rng, [seeds[m] for m in names])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=32, help="load_image's output size")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--max-memory-mb", type=int, default=4096,
                    help="address-space limit (RLIMIT_AS), so a huge allocation is a MemoryError, not the OOM killer")
    ap.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where failing inputs are saved")
    ap.add_argument("--replay", type=Path, help="load one saved input and print the outcome")
    args = ap.parse_args(argv)
    if args.max_memory_mb and sys.platform.startswith("linux"):
        import resource

        limit = args.max_memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with tempfile.TemporaryDirectory(prefix="devise-fuzz-") as tmp:
        return _run(args, Path(tmp))


def _run(args, work: Path) -> int:
    if args.replay:
        outcome, detail, secs = run_case(args.replay.read_bytes(), work / args.replay.name, args.size, args.timeout)
        print(f"{outcome} ({secs:.3f} s): {detail}")
        return 0 if outcome in ("ok", "image-error") else 1
    # a crash inside C code (segfault) or a hang the alarm cannot interrupt: dump where, and the
    # current input is still on disk as work/current.<ext>
    faulthandler.enable()
    counts: Counter = Counter()
    reasons: Counter = Counter()
    failures = []
    slowest = (0.0, "")
    t_start = time.perf_counter()
    for i, (name, data) in enumerate(generate(args.cases, args.seed)):
        path = work / f"current{Path(name).suffix or '.bin'}"
        faulthandler.dump_traceback_later(args.timeout * 3, exit=True)
        outcome, detail, secs = run_case(data, path, args.size, args.timeout)
        faulthandler.cancel_dump_traceback_later()
        counts[outcome] += 1
        if secs > slowest[0]:
            slowest = (secs, f"case {i} ({name})")
        if outcome == "image-error":
            reasons[detail.split(" (")[0][:60]] += 1
        elif outcome in ("crash", "hang"):
            args.crashes.mkdir(parents=True, exist_ok=True)
            saved = args.crashes / f"case-{i:05d}{Path(name).suffix or '.bin'}"
            saved.write_bytes(data)
            failures.append((i, name, outcome, detail, saved))
            print(f"case {i} from {name}: {outcome}: {detail} -> {saved}", flush=True)
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} cases, {dict(counts)}", flush=True)
    total = time.perf_counter() - t_start
    print(f"\n{args.cases} cases in {total:.1f} s (seed {args.seed}): {dict(counts)}")
    print(f"slowest case: {slowest[0]:.3f} s ({slowest[1]})")
    print("most common ImageError reasons:")
    for reason, n in reasons.most_common(12):
        print(f"  {n:6d}  {reason}")
    print(f"{len(failures)} failure(s)" + (f", inputs in {args.crashes}/" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
