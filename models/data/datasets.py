"""Image files and labelled datasets on disk: finding images, reading a dataset, splitting it.

A labelled dataset is a folder with one sub-folder of images per class, or a CSV
``img_name,class[,text]`` (paths relative to the CSV). Class names are returned as
written; mapping them to WordNet is the label half's job (:mod:`devise.synsets`).
Nothing here decodes an image or imports TensorFlow.
"""
from __future__ import annotations

import csv
import glob
import random
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from wordnet.base.errors import DatasetError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jfif"}
)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def expand_image_paths(args: Iterable[str | Path]) -> list[Path]:
    """Files, folders (recursive, sorted) and glob patterns -> image paths, in order, no duplicates.

    A named file is kept whatever its extension (the user asked for it); folders and
    globs contribute files with an image extension. An argument matching nothing raises
    :class:`DatasetError` naming it.
    """
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        if p not in seen:
            seen.add(p)
            out.append(p)

    for arg in args:
        p = Path(arg).expanduser()
        if p.is_file() or (p.exists() and not p.is_dir()):  # a named FIFO/device: load_image says why not
            add(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and is_image_file(f):
                    add(f)
        elif glob.has_magic(str(arg)):
            matches = [Path(m) for m in sorted(glob.glob(str(p), recursive=True))]
            files = [m for m in matches if m.is_file() and is_image_file(m)]
            if not files:
                raise DatasetError(f"{arg}: the pattern matches no image files")
            for f in files:
                add(f)
        else:
            raise DatasetError(f"{arg}: no such file or folder")
    return out


def scan_dataset(path: str | Path) -> list[tuple[Path, str]]:
    """Labelled images: a folder with one sub-folder per class, or a CSV ``img_name,class[,text]``.

    Class names are returned as written (folder name or CSV cell); mapping them to
    WordNet is the caller's job. CSV paths are relative to the CSV's folder. Raises
    :class:`DatasetError` for a missing path, a CSV without the two columns, or a
    dataset with no images.
    """
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        items = _scan_csv(path)
    elif path.is_dir():
        items = []
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in sorted(sub.rglob("*")):
                if f.is_file() and is_image_file(f):
                    items.append((f, sub.name))
    elif path.exists():
        raise DatasetError(f"{path}: a dataset is a folder of class folders or a CSV file (img_name,class)")
    else:
        raise DatasetError(f"{path}: no such dataset folder or CSV file")
    if not items:
        raise DatasetError(
            f"{path}: no images found (expected one sub-folder of images per class, or a CSV img_name,class)"
        )
    return items


def _scan_csv(path: Path) -> list[tuple[Path, str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            if "img_name" not in fields or "class" not in fields:
                raise DatasetError(
                    f"{path}: a dataset CSV needs the columns img_name,class (found: {', '.join(fields) or 'none'})"
                )
            reader.fieldnames = fields
            items = []
            for lineno, row in enumerate(reader, start=2):
                name, cls = (row.get("img_name") or "").strip(), (row.get("class") or "").strip()
                if not name or not cls:
                    raise DatasetError(f"{path}, line {lineno}: empty img_name or class")
                items.append(((path.parent / name), cls))
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV ({exc})") from None
    return items


def stratified_split(
    items: Sequence[tuple[Path, int]], fraction: float, seed: int = 0
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Split labelled items into (train, val), ``fraction`` of each class to val.

    Seeded and stratified: every class keeps at least one training image; a class
    with one image contributes none to validation.
    """
    if not 0 <= fraction < 1:
        raise DatasetError(f"--val-split must be in [0, 1), got {fraction}")
    by_class: dict[int, list[tuple[Path, int]]] = defaultdict(list)
    for item in items:
        by_class[item[1]].append(item)
    rng = random.Random(seed)
    train, val = [], []
    for cls in sorted(by_class):
        group = list(by_class[cls])
        rng.shuffle(group)
        n_val = min(int(round(len(group) * fraction)), len(group) - 1)
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    key = {str(p): i for i, (p, _) in enumerate(items)}
    train.sort(key=lambda it: key[str(it[0])])
    val.sort(key=lambda it: key[str(it[0])])
    return train, val


def sample_per_class(items: Sequence[tuple[Path, str]], per_class: int | float,
                     seed: int = 0) -> list[tuple[Path, str]]:
    """A seeded sample of each class's images, in input order: ``per_class`` of them (an int >= 1; a
    class with fewer keeps all), or that share of them (a float in (0, 1), at least one image).

    The GCNZ/DGP evaluation convention: a fixed number or fraction of each test class's images,
    so big classes do not take hours and runs stay comparable.
    """
    if isinstance(per_class, bool) or not (
            (isinstance(per_class, int) and per_class >= 1) or (isinstance(per_class, float) and 0 < per_class < 1)):
        raise DatasetError(f"images per class must be a whole number >= 1 or a share in (0, 1), got {per_class!r}")
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, (_, cls) in enumerate(items):
        by_class[cls].append(i)
    rng = random.Random(seed)
    keep: list[int] = []
    for cls in sorted(by_class):
        rows = by_class[cls]
        n = per_class if isinstance(per_class, int) else max(1, int(round(per_class * len(rows))))
        keep += rows if n >= len(rows) else rng.sample(rows, n)
    return [items[i] for i in sorted(keep)]
