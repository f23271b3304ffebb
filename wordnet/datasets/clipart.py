"""The clip-art test set: emoji-benchmark concepts drawn by Open Clip Art artists, a style family never trained on.

Debian's ``openclipart-png`` holds about 8,000 public-domain drawings, named by their artists
(partly in Italian: ``lumaca`` is a snail, ``orso`` a bear). ``data/clipart_concepts.csv`` is a
hand-checked table ``file,synset,note``: each drawing that shows one concrete thing, with the
WordNet noun synset it depicts (scenes, symbols, text, logos, flags and composites are not
listed). A drawing counts for a benchmark concept when its synset is that concept's or a
hyponym of it (a beagle is a dog), computed from WordNet at build time; the concept split
(seen/unseen) is the emoji benchmark's, so a model trained on a split's seen emoji is tested on
the same concepts drawn as clip art.

Layout of ``OUT`` (the emoji benchmark's; every file written atomically)::

    images/<wnid>/<file stem>.png   one RGB PNG per distinct drawing, cropped, centred on white
    manifest.csv                    path,wnid,synset,concept,benchmark_wnid,file,source,licence
    ATTRIBUTION.md                  where the drawings come from, their licence
    all.csv                         every drawing, class = its own synset
    benchmark.csv                   drawings of benchmark concepts, class = the concept's synset
    test_seen.csv, test_unseen.csv  benchmark.csv split by the emoji benchmark's concept split
    splits/seen.txt, unseen.txt     that split; splits/split-K/... for each extra split seed
"""
from __future__ import annotations

import csv
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wordnet.base.errors import DatasetError
from wordnet.base.files import atomic_path, atomic_write, locks_output_folder
from wordnet.datasets.emoji import clear_previous, write_csv, write_lines
from wordnet.datasets.emoji_concepts import Concept, split_concepts

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "clipart_concepts.csv"
ENV_CLIPART_DIR = "DEVISE_CLIPART_DIR"
CLIPART_DIRS = ("/usr/share/openclipart/png",)
HOW_TO_GET = "apt-get install openclipart-png"
MANIFEST_COLUMNS = ("path", "wnid", "synset", "concept", "benchmark_wnid", "file", "source", "licence")
LICENCE = "public domain (Creative Commons Public Domain Dedication)"
SOURCE = "openclipart-png (Debian)"


@dataclass(frozen=True)
class Drawing:
    """One row of the clip-art table."""

    file: str
    synset: str
    note: str = ""


@dataclass
class ClipartResult:
    out: Path
    images: list[dict] = field(default_factory=list)  # manifest rows
    duplicates: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    missing: list[str] = field(default_factory=list)  # table files not installed
    splits: list[tuple[int, list[str], list[str]]] = field(default_factory=list)  # (seed, seen, unseen wnids)
    seconds: float = 0.0

    def summary(self) -> dict:
        """What ``devise data clipart`` reports: synsets drawn, and the benchmark drawings, their
        concepts and how many are seen / unseen in the first split."""
        bench = [r for r in self.images if r["benchmark_wnid"]]
        seed, seen, unseen = self.splits[0]
        seen_ids, unseen_ids = set(seen), set(unseen)
        return {"synsets": len({r["wnid"] for r in self.images}), "benchmark_drawings": len(bench),
                "benchmark_concepts": len({r["benchmark_wnid"] for r in bench}), "seed": seed,
                "seen": sum(r["benchmark_wnid"] in seen_ids for r in bench),
                "unseen": sum(r["benchmark_wnid"] in unseen_ids for r in bench)}


def read_clipart_table(path: str | Path | None = None) -> list[Drawing]:
    """The hand-checked table (default: the one shipped with devise); no WordNet needed."""
    path = Path(path) if path is not None else TABLE_PATH
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("file", "synset") if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; expected file,synset,note")
            rows = list(reader)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the clip-art table ({exc.strerror})") from None
    drawings = []
    for line, row in enumerate(rows, start=2):
        if not (row.get("file") or "").strip() or not (row.get("synset") or "").strip():
            raise DatasetError(f"{path}:{line}: file and synset are required")
        drawings.append(Drawing(row["file"].strip(), row["synset"].strip(), (row.get("note") or "").strip()))
    return drawings


def clipart_dir(folder: str | os.PathLike | None = None) -> Path:
    """The installed PNG folder: ``folder``, ``$DEVISE_CLIPART_DIR`` or Debian's; :class:`DatasetError` if none."""
    from wordnet.base.home import installed_dir

    return installed_dir(folder, ENV_CLIPART_DIR, CLIPART_DIRS, "Open Clip Art", HOW_TO_GET)


def benchmark_concept(wn, synset: str, concepts: list[Concept]) -> Concept | None:
    """The benchmark concept a drawing of ``synset`` counts for: the same synset, else its nearest
    hypernym among the concepts (``beagle`` -> ``dog``); ``None`` when it is neither."""
    by_name = {c.synset: c for c in concepts}
    if synset in by_name:
        return by_name[synset]
    best = None
    for path in wn.synset(synset).hypernym_paths():
        for depth, ancestor in enumerate(reversed(path)):
            if ancestor.name() in by_name and (best is None or depth < best[0]):
                best = (depth, by_name[ancestor.name()])
                break
    return best[1] if best else None


def validate_drawings(wn, drawings: list[Drawing]) -> None:
    """Every synset must be a WordNet noun; every file listed once."""
    from nltk.corpus.reader.wordnet import WordNetError

    problems, seen = [], set()
    for d in drawings:
        try:
            if wn.synset(d.synset).pos() != "n":
                problems.append(f"{d.file}: {d.synset} is not a noun")
        except (WordNetError, ValueError):
            problems.append(f"{d.file}: no synset {d.synset}")
        if d.file in seen:
            problems.append(f"{d.file}: listed twice")
        seen.add(d.file)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DatasetError(f"clip-art table: {shown}")


def _render(path: Path, size: int):
    from PIL import Image

    from wordnet.datasets.emoji_sources import finish_drawing

    with Image.open(path) as image:
        image.load()
        image = image.convert("RGBA")
    if image.getchannel("A").getextrema() == (255, 255):  # no transparency: white is the page
        alpha = Image.eval(image.convert("L"), lambda v: 0 if v >= 250 else 255)
        image.putalpha(alpha)
    return finish_drawing(image, size)


@locks_output_folder("dataset folder")
def build_clipart_dataset(out: str | os.PathLike, wn, drawings: list[Drawing], concepts: list[Concept], *,
                          source: str | os.PathLike | None = None, size: int = 64,
                          splits: list[tuple[int, list[str], list[str]]] | None = None, split_seed: int = 0,
                          n_splits: int = 1, unseen_fraction: float = 0.2,
                          on_image: Callable[[int, int], None] | None = None) -> ClipartResult:
    """Render every drawing of the table, write the layout above.

    The concept split is ``splits`` (``(seed, seen wnids, unseen wnids)``, e.g. read from an emoji
    dataset) or, without it, :func:`~wordnet.datasets.emoji_concepts.split_concepts` of ``concepts``
    with ``split_seed`` .. ``split_seed + n_splits - 1`` (the emoji builder's own, for the same concepts).
    """
    from wordnet.labels import wnid_of

    if size < 8:
        raise DatasetError(f"--size must be at least 8 pixels, got {size}")
    root = clipart_dir(source)
    validate_drawings(wn, drawings)
    out = Path(out).expanduser()
    clear_previous(out)
    start = time.perf_counter()
    result = ClipartResult(out=out)
    digests: set[str] = set()
    for done, drawing in enumerate(drawings, start=1):
        path = root / drawing.file
        if not path.is_file():
            result.missing.append(drawing.file)
        else:
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if digest in digests:
                result.duplicates += 1  # the same drawing filed under two folders
            else:
                digests.add(digest)
                try:
                    image = _render(path, size)
                except Exception as exc:  # noqa: BLE001 - one broken or huge file must not stop the build
                    result.failures.append((drawing.file, f"{type(exc).__name__}: {exc}"))
                else:
                    synset = wn.synset(drawing.synset)
                    wnid = wnid_of(synset)
                    rel = f"images/{wnid}/{Path(drawing.file).stem}.png"
                    with atomic_path(out / rel) as tmp:
                        image.save(tmp, format="PNG")
                    concept = benchmark_concept(wn, synset.name(), concepts)
                    result.images.append({
                        "path": rel, "wnid": wnid, "synset": synset.name(),
                        "concept": concept.concept if concept else "",
                        "benchmark_wnid": concept.wnid if concept else "", "file": drawing.file,
                        "source": SOURCE, "licence": LICENCE})
        if on_image:
            on_image(done, len(drawings))
    if not result.images:
        raise DatasetError(f"no drawing of the table could be rendered from {root}")
    if splits is None:
        splits = []
        for k in range(max(1, n_splits)):
            seen, unseen = split_concepts(concepts, unseen_fraction, split_seed + k)
            splits.append((split_seed + k, [c.wnid for c in seen], [c.wnid for c in unseen]))
    result.splits = splits
    result.seconds = time.perf_counter() - start
    _write_outputs(result)
    return result




def _write_views(folder: Path, prefix: str, rows: list[dict], seen: list[str], unseen: list[str]) -> None:
    seen_ids, unseen_ids = set(seen), set(unseen)
    for name, ids in (("test_seen.csv", seen_ids), ("test_unseen.csv", unseen_ids)):
        write_csv(folder / name, ("img_name", "class"),
                   [(prefix + r["path"], r["benchmark_wnid"]) for r in rows if r["benchmark_wnid"] in ids])


def _write_outputs(result: ClipartResult) -> None:
    out, rows = result.out, result.images
    write_csv(out / "manifest.csv", MANIFEST_COLUMNS, [[r[c] for c in MANIFEST_COLUMNS] for r in rows])
    write_csv(out / "all.csv", ("img_name", "class"), [(r["path"], r["wnid"]) for r in rows])
    write_csv(out / "benchmark.csv", ("img_name", "class"),
               [(r["path"], r["benchmark_wnid"]) for r in rows if r["benchmark_wnid"]])
    _seed, seen, unseen = result.splits[0]
    write_lines(out / "splits" / "seen.txt", seen)
    write_lines(out / "splits" / "unseen.txt", unseen)
    _write_views(out, "", rows, seen, unseen)
    if len(result.splits) > 1:
        for k, (seed, seen_k, unseen_k) in enumerate(result.splits):
            folder = out / "splits" / f"split-{k}"
            write_lines(folder / "seen.txt", seen_k)
            write_lines(folder / "unseen.txt", unseen_k)
            write_lines(folder / "seed.txt", [seed])
            _write_views(folder, "../../", rows, seen_k, unseen_k)
    lines = [
        "# Attribution",
        "",
        f"The {len(rows)} images under `images/` are renderings of drawings from the Open Clip Art Library",
        "(https://openclipart.org), as packaged by Debian (`openclipart-png`), made by `devise data clipart`:",
        "each drawing was cropped to its drawn pixels, resized to a square and composited onto white.",
        "The drawings were dedicated to the public domain by their artists (Creative Commons Public",
        "Domain Dedication / Copyright-Only Dedication, or Public Domain Certification; see",
        "/usr/share/doc/openclipart-png/copyright). Artists are named in the original file names",
        "(`file` column of `manifest.csv`).",
        "",
        "Class labels are WordNet 3.0 synsets (Princeton University, WordNet 3.0 licence,",
        "https://wordnet.princeton.edu/license-and-commercial-use).",
    ]
    with atomic_write(out / "ATTRIBUTION.md", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
