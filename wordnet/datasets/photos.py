"""Labelled real photographs, offline: GCompris' photo resources and scikit-image's bundled photos.

The other builders make drawings (emoji, icons, clip art); this one makes the photographs devise
is to recognise, from what Debian and PyPI ship:

* Debian's ``gcompris-qt-data`` keeps its activities' pictures inside Qt resource files
  (``/usr/share/gcompris-qt/rcc/*.rcc``). Several activities hold real photographs labelled
  by file name (``categorization``: household objects, tools, renewable energy, fishes;
  ``erase``, ``explore_farm_animals``, ``explore_world_animals``: animals). :func:`read_rcc`
  reads that binary format with the standard library. Each picture's licence and author come
  from the package's machine-readable ``copyright`` file (:func:`parse_copyright`,
  :func:`credit_for`), which credits the original file (``fish3.jpg``; the package ships
  ``fish3.webp``).
* scikit-image's bundled photos (``skimage.data``) that show one nameable thing.

``data/photo_concepts.csv`` is the hand-checked table ``source,file,synset,wnid,credit_check,note``:
each photo was looked at and given the WordNet noun synset it shows (drawings, cartoons, scenes,
monuments and species nobody here can name are not listed). ``credit_check`` records whether the
source the Debian credit names (its ``Comment:`` link) is the picture shipped: ``matches``,
``mismatch`` (the credit names another picture: GCompris replaced the image but not its
credit, so the licence written is the credit's and unverified), or empty (the credit names no
source to compare).

Layout of ``OUT`` (every file written atomically)::

    images/<wnid>/<source>--<name>.<ext>  one photo each, original pixels, longer side <= max_side
    manifest.csv                           path,wnid,synset,label,source,file,licence,author,credit_check,note
    ATTRIBUTION.md                         every image with its licence, author and the credit's source
    test.csv                               img_name,class (devise eval / devise train)
    in1k.csv, not_in1k.csv                 test.csv split by whether the synset is an ImageNet-1K class
    not_in1k_strict.csv                    not_in1k.csv less the synsets above or below a 1K class in
                                           WordNet (dog.n.01 is above 118 breeds, gosling.n.01 is a goose)

Zero-shot figures on photographs must be reported apart for the 1K classes (an ImageNet-trained
backbone has seen them); the manifest's ``imagenet1k`` column (:func:`imagenet1k_relation`) says
how each synset stands to the 1K, so a stricter split needs no WordNet at evaluation time.
"""
from __future__ import annotations

import csv
import fnmatch
import io
import os
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wordnet.base.errors import DatasetError
from wordnet.base.files import atomic_path, atomic_write, locks_output_folder
from wordnet.datasets.emoji import clear_previous, write_csv
from wordnet.labels import imagenet1k_relation

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "photo_concepts.csv"
ENV_GCOMPRIS_DIR = "DEVISE_GCOMPRIS_DIR"
GCOMPRIS_DIRS = ("/usr/share/gcompris-qt/rcc",)
GCOMPRIS_COPYRIGHT = Path("/usr/share/doc/gcompris-qt-data/copyright")
HOW_TO_GET = "apt-get install gcompris-qt-data"
PHOTO_SOURCES = ("gcompris", "skimage")
SOURCE_TITLES = {
    "gcompris": "GCompris (Debian gcompris-qt-data)",
    "skimage": "scikit-image (skimage.data)",
}
# scikit-image's own credits (the skimage.data docstrings)
SKIMAGE_CREDITS = {
    "astronaut": ("public domain (no known copyright restrictions)", "NASA (Great Images in NASA collection)"),
    "chelsea": ("CC0-1.0", "Stefan van der Walt"),
    "coffee": ("CC0-1.0", "Rachel Michetti"),
    "coins": ("no known copyright restrictions", "Brooklyn Museum Collection"),
    "rocket": ("public domain", "SpaceX"),
    "stereo_motorcycle": ("not stated (Middlebury 2014 stereo datasets, as shipped by scikit-image)",
                          "D. Scharstein, H. Hirschmueller et al., Middlebury College"),
}
MANIFEST_COLUMNS = ("path", "wnid", "synset", "label", "imagenet1k", "source", "file", "licence", "author",
                    "credit_check", "note")
TABLE_COLUMNS = ("source", "file", "synset", "wnid", "credit_check", "note")
CREDIT_CHECKS = ("", "matches", "mismatch")
RCC_PREFIX = "gcompris/src/activities/"  # where activity resources sit inside each .rcc
ORIGINAL_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".webp", ".svg")  # how debian/copyright may name them


# --- Qt resource files -----------------------------------------------------------------------

RCC_MAGIC = b"qres"
RCC_DIRECTORY, RCC_COMPRESSED, RCC_COMPRESSED_ZSTD = 0x02, 0x01, 0x04


def read_rcc(data: bytes, name: str = "rcc") -> dict[str, bytes]:
    """Every file of a Qt binary resource (``rcc -binary`` output): ``{path: bytes}``.

    The format (Qt's ``rcc.cpp``): ``"qres"``, then big-endian u32 version, tree, data and names
    offsets (version 3 adds a u32 of flags). Tree nodes are 14 bytes (22 from version 2, which
    appends a u64 modification time): u32 name offset, u16 flags, then for a directory u32 child
    count and u32 first-child index, else u16 country, u16 language and u32 data offset. A name is
    u16 length, u32 hash, UTF-16BE text; a data entry is u32 size and the bytes, which are zlib
    (``qCompress``: u32 big-endian length, then a zlib stream) when flag 1 is set, or zstd when
    flag 4 is. :class:`DatasetError` for anything else.
    """
    def u32(offset: int) -> int:
        return struct.unpack_from(">I", data, offset)[0]

    if data[:4] != RCC_MAGIC or len(data) < 20:
        raise DatasetError(f"{name}: not a Qt resource file (no 'qres' header)")
    version, tree, payload, names = struct.unpack_from(">IIII", data, 4)
    if version not in (1, 2, 3):
        raise DatasetError(f"{name}: Qt resource version {version} is not supported (1 to 3 are)")
    node_size = 14 if version == 1 else 22
    files: dict[str, bytes] = {}

    def node_name(offset: int) -> str:
        length = struct.unpack_from(">H", data, names + offset)[0]
        start = names + offset + 6  # u16 length, u32 hash
        return data[start:start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise DatasetError(f"{name}: resource tree deeper than 64 levels (a corrupt file?)")
        at = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", data, at)
        label = node_name(name_offset) if index else ""
        path = f"{prefix}{label}"
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", data, at + 6)
            for child in range(first, first + count):
                walk(child, f"{path}/" if index else "", depth + 1)
            return
        offset = payload + u32(at + 10)
        size = u32(offset)
        raw = data[offset + 4:offset + 4 + size]
        if len(raw) != size:
            raise DatasetError(f"{name}: {path} runs past the end of the file (a truncated file?)")
        files[path] = _decompress(raw, flags, f"{name}: {path}")

    try:
        walk(0, "", 0)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise DatasetError(f"{name}: corrupt Qt resource file ({exc})") from None
    return files


def _decompress(raw: bytes, flags: int, where: str) -> bytes:
    if flags & RCC_COMPRESSED:
        try:
            return zlib.decompress(raw[4:])  # qCompress: u32 expected length, then zlib
        except zlib.error as exc:
            raise DatasetError(f"{where}: broken zlib data ({exc})") from None
    if flags & RCC_COMPRESSED_ZSTD:
        try:
            import zstandard
        except ImportError:
            raise DatasetError(f"{where} is zstd-compressed; pip install zstandard to read it") from None
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw


# --- Debian machine-readable copyright ---------------------------------------------------------

@dataclass(frozen=True)
class Credit:
    """One ``Files:`` stanza of a debian/copyright file."""

    patterns: tuple[str, ...]
    copyright: str
    licence: str
    comment: str = ""


def parse_copyright(text: str) -> list[Credit]:
    """The ``Files:`` stanzas of a DEP-5 copyright file, in file order (the last match wins).

    Continuation lines (starting with a space or tab) join their field; a ``License:`` field's
    text after its first line is the licence body and is dropped.
    """
    credits = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = [value.strip()]
        if "files" not in fields:
            continue
        patterns = tuple(p for line in fields["files"] for p in line.split())
        holders = [h for h in fields.get("copyright", []) if h]
        credits.append(Credit(patterns, "; ".join(holders), (fields.get("license") or [""])[0],
                              " ".join(fields.get("comment", []))))
    return credits


def credit_for(path: str, credits: list[Credit]) -> tuple[Credit | None, str]:
    """``(stanza, basis)`` for ``path`` (as debian/copyright names files, e.g. ``src/activities/...``).

    The packaged ``.webp`` is credited under its original name, so every extension of
    :data:`ORIGINAL_EXTS` is tried. DEP-5: ``*`` matches any characters including ``/``, and the
    last matching stanza wins. ``basis`` says which kind matched: ``"file"`` (a stanza naming the
    file), ``"folder"`` (a wildcard other than the catch-all) or ``"package default"`` (``*``).
    """
    stem = os.path.splitext(path)[0]
    names = [stem + ext for ext in ORIGINAL_EXTS]
    best, basis = None, ""
    for credit in credits:
        for pattern in credit.patterns:
            if any(fnmatch.fnmatchcase(n, pattern) for n in names):
                best = credit
                basis = "package default" if pattern == "*" else ("folder" if "*" in pattern or "?" in pattern
                                                                   else "file")
    return best, basis


# --- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    """One row of the photo table."""

    source: str
    file: str
    synset: str
    wnid: str
    credit_check: str = ""
    note: str = ""

    @property
    def name(self) -> str:
        """The output file's stem: ``<source>--<activity>-<stem>`` (unique within the table)."""
        if self.source == "gcompris":
            parts = Path(self.file).parts
            return f"{self.source}--{parts[0]}-{Path(self.file).stem}"
        return f"{self.source}--{self.file}"


def read_photo_table(path: str | os.PathLike | None = None) -> list[Photo]:
    """The hand-checked table (default: the one shipped with devise); no WordNet needed."""
    path = Path(path) if path is not None else TABLE_PATH
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("source", "file", "synset", "wnid") if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                                   f"{','.join(TABLE_COLUMNS)}")
            rows = list(reader)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the photo table ({exc.strerror})") from None
    photos, names = [], set()
    for line, row in enumerate(rows, start=2):
        values = {k: (row.get(k) or "").strip() for k in TABLE_COLUMNS}
        if not all(values[k] for k in ("source", "file", "synset", "wnid")):
            raise DatasetError(f"{path}:{line}: source, file, synset and wnid are required")
        if values["source"] not in PHOTO_SOURCES:
            raise DatasetError(f"{path}:{line}: unknown source {values['source']!r}; one of {', '.join(PHOTO_SOURCES)}")
        if values["credit_check"] not in CREDIT_CHECKS:
            raise DatasetError(f"{path}:{line}: credit_check must be empty, matches or mismatch, "
                               f"not {values['credit_check']!r}")
        photo = Photo(**values)
        if photo.name in names:
            raise DatasetError(f"{path}:{line}: {photo.file} is listed twice")
        names.add(photo.name)
        photos.append(photo)
    return photos


def validate_photos(wn, photos: list[Photo]) -> None:
    """Every synset must be a WordNet noun whose wnid is the one the table gives."""
    from nltk.corpus.reader.wordnet import WordNetError

    from wordnet.labels import wnid_of

    problems = []
    for p in photos:
        try:
            synset = wn.synset(p.synset)
        except (WordNetError, ValueError):
            problems.append(f"{p.file}: no synset {p.synset}")
            continue
        if synset.pos() != "n":
            problems.append(f"{p.file}: {p.synset} is not a noun")
        elif wnid_of(synset) != p.wnid:
            problems.append(f"{p.file}: {p.synset} is {wnid_of(synset)}, not {p.wnid}")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DatasetError(f"photo table: {shown}")


# --- sources -----------------------------------------------------------------------------------

def gcompris_dir(folder: str | os.PathLike | None = None) -> Path:
    """The installed ``.rcc`` folder: ``folder``, ``$DEVISE_GCOMPRIS_DIR`` or Debian's.

    :class:`DatasetError` if there is none."""
    from wordnet.base.home import installed_dir

    return installed_dir(folder, ENV_GCOMPRIS_DIR, GCOMPRIS_DIRS, "GCompris' data", HOW_TO_GET)


def _gcompris_copyright(rcc_dir: Path, path: str | os.PathLike | None) -> Path | None:
    """The copyright file: ``path``, else Debian's (beside a Debian install), else ``None``."""
    for candidate in ([Path(path)] if path else []) + [GCOMPRIS_COPYRIGHT]:
        if candidate.is_file():
            return candidate
    return None


class _GcomprisReader:
    """Reads each ``.rcc`` once and credits each photo from debian/copyright."""

    def __init__(self, rcc_dir: Path, copyright_path: Path | None):
        self.rcc_dir = rcc_dir
        self.cache: dict[str, dict[str, bytes]] = {}
        self.credits = parse_copyright(copyright_path.read_text(encoding="utf-8")) if copyright_path else []
        self.copyright_path = copyright_path

    def read(self, file: str) -> bytes:
        activity = Path(file).parts[0]
        rcc = self.rcc_dir / f"{activity}.rcc"
        if activity not in self.cache:
            if not rcc.is_file():
                raise FileNotFoundError(f"{rcc} not found")
            self.cache[activity] = read_rcc(rcc.read_bytes(), str(rcc))
        files = self.cache[activity]
        if RCC_PREFIX + file not in files:
            raise FileNotFoundError(f"{file} is not in {rcc}")
        return files[RCC_PREFIX + file]

    def credit(self, file: str) -> tuple[str, str, str]:
        """``(licence, author, source note)`` from debian/copyright."""
        if not self.credits:
            return "unknown (no debian/copyright found)", "GCompris contributors", ""
        credit, basis = credit_for("src/activities/" + file, self.credits)
        if credit is None:
            return "unknown (not in debian/copyright)", "GCompris contributors", ""
        author = credit.copyright
        if basis == "package default":
            author = "GCompris contributors (debian/copyright names no author for this file)"
        source = credit.comment if basis == "file" else f"debian/copyright, {basis} stanza"
        return credit.licence, author, source


def _skimage_image(name: str):
    """A scikit-image photo as a PIL image (the left view of the stereo pair for ``stereo_motorcycle``)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    data = getattr(skimage.data, name)()
    image = np.asarray(data[0] if name == "stereo_motorcycle" else data)  # (left, right, disparity)
    if image.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name} is {image.dtype}, not an 8-bit photo")
    return Image.fromarray(image)


# --- the build ---------------------------------------------------------------------------------

@dataclass
class PhotoResult:
    out: Path
    images: list[dict] = field(default_factory=list)  # manifest rows
    missing: list[tuple[str, str]] = field(default_factory=list)  # (file, why) not installed
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    in1k: set[str] = field(default_factory=set)  # wnids that are ImageNet-1K classes
    seconds: float = 0.0


def _finish(image, max_side: int):
    """RGB (transparency composited onto white), shrunk so the longer side is at most ``max_side``;
    ``(image, format)``: JPEG for photographs, PNG where the source had transparency."""
    from PIL import Image

    had_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if had_alpha:
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(page, rgba).convert("RGB")
    else:
        image = image.convert("RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    return image, ("PNG" if had_alpha else "JPEG")


@locks_output_folder("dataset folder")
def build_photo_dataset(out: str | os.PathLike, wn, photos: list[Photo], *, sources: tuple[str, ...] = PHOTO_SOURCES,
                        gcompris: str | os.PathLike | None = None, copyright_file: str | os.PathLike | None = None,
                        max_side: int = 512, on_image: Callable[[int, int], None] | None = None) -> PhotoResult:
    """Extract every photo of the table from ``sources``, write the layout above.

    A source that is not installed is reported in ``missing`` (each of its photos once) rather
    than failing, so scikit-image alone still gives a small set; no photo at all is an error.
    """
    from PIL import Image

    from wordnet.labels import display_label, read_label_list

    if max_side < 32:
        raise DatasetError(f"--max-side must be at least 32 pixels, got {max_side}")
    unknown = [s for s in sources if s not in PHOTO_SOURCES]
    if unknown:
        raise DatasetError(f"unknown photo source(s) {', '.join(unknown)}; choose from {', '.join(PHOTO_SOURCES)}")
    validate_photos(wn, photos)
    wanted = [p for p in photos if p.source in sources]
    out = Path(out).expanduser()
    clear_previous(out)
    start = time.perf_counter()
    result = PhotoResult(out=out)
    result.in1k = set(read_label_list("imagenet1k"))

    reader, why_no_gcompris = None, ""
    if "gcompris" in sources:
        try:
            rcc_dir = gcompris_dir(gcompris)
        except DatasetError as exc:
            why_no_gcompris = str(exc)
        else:
            reader = _GcomprisReader(rcc_dir, _gcompris_copyright(rcc_dir, copyright_file))
    for done, photo in enumerate(wanted, start=1):
        try:
            if photo.source == "gcompris":
                if reader is None:
                    result.missing.append((photo.file, why_no_gcompris))
                    continue
                image = Image.open(io.BytesIO(reader.read(photo.file)))
                image.load()
                licence, author, credit_source = reader.credit(photo.file)
            else:
                image = _skimage_image(photo.file)
                licence, author = SKIMAGE_CREDITS.get(photo.file, ("BSD-3-Clause (scikit-image)", "scikit-image"))
                credit_source = f"scikit-image, skimage.data.{photo.file} docstring"
            image, fmt = _finish(image, max_side)
        except FileNotFoundError as exc:
            result.missing.append((photo.file, str(exc)))
            continue
        except ImportError as exc:
            result.missing.append((photo.file, f"{exc}; pip install scikit-image"))
            continue
        except Exception as exc:  # noqa: BLE001 - one broken picture must not stop the build
            result.failures.append((photo.file, f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            if on_image:
                on_image(done, len(wanted))
        rel = f"images/{photo.wnid}/{photo.name}.{'png' if fmt == 'PNG' else 'jpg'}"
        with atomic_path(out / rel) as tmp:
            image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        synset = wn.synset(photo.synset)
        result.images.append({
            "path": rel, "wnid": photo.wnid, "synset": photo.synset, "label": display_label(synset),
            "imagenet1k": imagenet1k_relation(wn, synset, result.in1k),
            "source": photo.source, "file": photo.file, "licence": licence, "author": author,
            "credit_check": photo.credit_check or "", "note": photo.note, "credit_source": credit_source})
    if not result.images:
        reasons = "; ".join(sorted({why for _f, why in result.missing} | {why for _f, why in result.failures}))
        raise DatasetError(f"no photo could be extracted ({reasons or 'empty table'})")
    result.seconds = time.perf_counter() - start
    _write_outputs(result)
    return result


def _write_outputs(result: PhotoResult) -> None:
    out, rows = result.out, result.images
    write_csv(out / "manifest.csv", MANIFEST_COLUMNS, [[r[c] for c in MANIFEST_COLUMNS] for r in rows])
    write_csv(out / "test.csv", ("img_name", "class"), [(r["path"], r["wnid"]) for r in rows])
    write_csv(out / "in1k.csv", ("img_name", "class"),
              [(r["path"], r["wnid"]) for r in rows if r["wnid"] in result.in1k])
    write_csv(out / "not_in1k.csv", ("img_name", "class"),
              [(r["path"], r["wnid"]) for r in rows if r["wnid"] not in result.in1k])
    write_csv(out / "not_in1k_strict.csv", ("img_name", "class"),
              [(r["path"], r["wnid"]) for r in rows if not r["imagenet1k"]])
    _write_attribution(result)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _write_attribution(result: PhotoResult) -> None:
    rows = result.images
    lines = [
        "# Attribution",
        "",
        f"The {len(rows)} photographs under `images/` were extracted by `devise data photos` and re-encoded",
        "(original pixels; shrunk only where the longer side exceeded the size asked for; transparency",
        "composited onto white). Each keeps its original licence, listed below.",
        "",
        "* GCompris photographs: from Debian's `gcompris-qt-data` (the Qt resource files of GCompris,",
        "  https://gcompris.net). Licence and author are those that the package's",
        "  `/usr/share/doc/gcompris-qt-data/copyright` gives for the original file. `credit check`:",
        "  `matches` when the source that credit names is the picture shipped; `mismatch` when it names",
        "  another picture (GCompris replaced the image but not its credit), so the licence written is",
        "  the credit's and unverified; empty when the credit names no source to compare. Files under",
        "  the package's catch-all stanza only are GPL-3+ as part of GCompris, author not named.",
        "* scikit-image photographs: `skimage.data` (scikit-image, BSD-3-Clause; the photos' own",
        "  credits are in the `skimage.data` docstrings).",
        "",
        "Class labels are WordNet 3.0 synsets (Princeton University, WordNet 3.0 licence,",
        "https://wordnet.princeton.edu/license-and-commercial-use), chosen by looking at each photo.",
        "",
        "| image | licence | author | credit's source | credit check |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {_md(r['path'])} | {_md(r['licence'])} | {_md(r['author'])} | "
                     f"{_md(r['credit_source'])} | {_md(r['credit_check'])} |")
    with atomic_write(result.out / "ATTRIBUTION.md", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
