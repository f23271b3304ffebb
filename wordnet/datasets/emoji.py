"""Build the emoji benchmark: render every concept in every installed style, write the splits.

Layout of ``OUT`` (every file written atomically)::

    images/<wnid>/<style>.png     one RGB PNG per concept and style (folder per synset)
    manifest.csv                  path,wnid,synset,concept,style,emoji,source,licence
    concepts.csv                  wnid,synset,concept,lexname,split,styles,imagenet1k
    ATTRIBUTION.md                who drew what, under which licence
    splits/seen.txt, unseen.txt   WordNet ids, one a line (``devise vocab build --synsets``)
    splits/heldout_style.txt      the style kept out of training
    train.csv                     seen concepts, every style but the held-out one
    test_seen_style.csv           seen concepts, held-out style only
    test_unseen.csv               unseen concepts, every style (zero-shot)
    splits/unseen_strict.txt      the unseen concepts an ImageNet-trained backbone has not seen:
    test_unseen_strict.csv        neither an ImageNet-1K class nor above or below one in WordNet
    splits/split-K/...            the same files for each extra split seed (``splits > 1``)

The dataset CSVs are ``img_name,class`` with paths relative to the CSV and the WordNet id
as class, the CSV mode of ``devise train`` / ``devise eval``. The ``imagenet1k`` column of concepts.csv
says how each concept stands to the ImageNet-1K classes (:func:`wordnet.labels.imagenet1k_relation`):
a backbone pre-trained on ImageNet (``--weights imagenet``) has seen the related ones, so its zero-shot
figures are reported on the strict view apart. :func:`read_emoji_splits` reads
the concepts and splits back (the clip-art builder reuses them).
"""
from __future__ import annotations

import csv
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wordnet.base.errors import DatasetError
from wordnet.base.files import atomic_path, atomic_write, locks_output_folder
from wordnet.datasets.emoji_concepts import Concept, choose_heldout_style, split_concepts
from wordnet.datasets.emoji_sources import STYLE_INFO, Source

MANIFEST_COLUMNS = ("path", "wnid", "synset", "concept", "style", "emoji", "source", "licence")


@dataclass
class BuildResult:
    """What a build wrote and measured."""

    out: Path
    images: list[dict] = field(default_factory=list)  # manifest rows
    concepts: list[Concept] = field(default_factory=list)  # kept (>= min_styles)
    dropped: list[tuple[Concept, int]] = field(default_factory=list)  # (concept, styles found)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (concept, style, reason)
    heldout_style: str = ""
    splits: list[tuple[int, list[Concept], list[Concept]]] = field(default_factory=list)
    seconds: float = 0.0
    infos: dict = field(default_factory=dict)  # style -> StyleInfo (for the attribution)
    in1k: dict = field(default_factory=dict)  # wnid -> relation to the ImageNet-1K classes ("" = none)

    def strict(self, concepts) -> list:
        """``concepts`` less those that are, or lie above or below, an ImageNet-1K class."""
        return [c for c in concepts if not self.in1k.get(c.wnid)]

    def per_style(self) -> dict[str, int]:
        """Images per style (set), in the order styles first appear."""
        counts: dict[str, int] = {}
        for row in self.images:
            counts[row["style"]] = counts.get(row["style"], 0) + 1
        return counts

    def per_concept(self) -> dict[str, int]:
        """Images per concept wnid: the styles (sets) that draw it, one image each."""
        counts: dict[str, int] = {}
        for row in self.images:
            counts[row["wnid"]] = counts.get(row["wnid"], 0) + 1
        return counts


def plan(concepts: list[Concept], sources: list[Source]) -> list[tuple[Concept, list[tuple[Source, str]]]]:
    """For each concept, the ``(source, icon key)`` pairs that have a drawing of it."""
    out = []
    for concept in concepts:
        found = [(s, key) for s in sources
                 if (key := s.find(concept.codepoints, concept.names)) is not None]
        out.append((concept, found))
    return out


def _render_concept(item, size):
    concept, found = item
    images, failures = [], []
    for source, key in found:
        try:
            images.append((source, key, source.render(key, size)))
        except Exception as exc:  # noqa: BLE001 - a broken icon must not stop the build
            failures.append((concept.concept, source.name, f"{type(exc).__name__}: {exc}"))
    return concept, images, failures


def clear_previous(out: Path) -> None:
    """Remove the images a previous build listed, so no stale class folder survives."""
    manifest = out / "manifest.csv"
    if not manifest.is_file():
        if (out / "images").exists() or (out.exists() and any(out.iterdir())):
            raise DatasetError(f"{out}: exists and is not an emoji dataset built by devise; "
                               "choose an empty or new folder")
        return
    with open(manifest, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            (out / row["path"]).unlink(missing_ok=True)
    images = out / "images"
    if images.is_dir():
        for folder in images.iterdir():
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    shutil.rmtree(out / "splits", ignore_errors=True)


@locks_output_folder("dataset folder")
def build_emoji_dataset(out: str | os.PathLike, concepts: list[Concept], sources: list[Source], *,
                        size: int = 96, min_styles: int = 4, split_seed: int = 0, n_splits: int = 1,
                        unseen_fraction: float = 0.2, heldout_style: str | None = "twemoji",
                        workers: int = 1, on_concept: Callable[[int, int], None] | None = None
                        ) -> BuildResult:
    """Render ``concepts`` with every source, keep those with ``min_styles`` styles, write ``out``.

    ``on_concept(done, total)`` is called after each concept (for a progress bar).
    """
    if size < 8:
        raise DatasetError(f"--size must be at least 8 pixels, got {size}")
    if not sources:
        raise DatasetError("no emoji source is installed; see the messages above for how to get one")
    out = Path(out).expanduser()
    clear_previous(out)
    result = BuildResult(out=out)
    start = time.perf_counter()
    planned = plan(concepts, sources)
    todo = [p for p in planned if len(p[1]) >= min_styles]
    result.dropped = [(c, len(found)) for c, found in planned if len(found) < min_styles]
    if not todo:
        raise DatasetError(f"no concept has drawings in {min_styles} or more of the installed "
                           f"styles ({', '.join(s.name for s in sources)}); lower --min-styles")
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, (concept, images, failures) in enumerate(
                pool.map(lambda item: _render_concept(item, size), todo), start=1):
            result.failures.extend(failures)
            if len(images) < min_styles:
                result.dropped.append((concept, len(images)))
            else:
                result.concepts.append(concept)
                for source, key, image in images:
                    result.infos[source.name] = source.info
                    rel = f"images/{concept.wnid}/{source.name}.png"
                    with atomic_path(out / rel) as tmp:
                        image.save(tmp, format="PNG")
                    result.images.append({
                        "path": rel, "wnid": concept.wnid, "synset": concept.synset,
                        "concept": concept.concept, "style": source.name, "emoji": key,
                        "source": source.info.package, "licence": source.info.licence})
            if on_concept:
                on_concept(done, len(todo))
    result.seconds = time.perf_counter() - start
    if not result.concepts:
        raise DatasetError(f"every drawing failed to render ({len(result.failures)} failures); "
                           "first: " + " ".join(result.failures[0][1:]))
    finish_dataset(result, split_seed=split_seed, n_splits=n_splits,
                   unseen_fraction=unseen_fraction, heldout_style=heldout_style)
    return result


def finish_dataset(result: BuildResult, *, split_seed: int, n_splits: int,
                   unseen_fraction: float, heldout_style: str | None) -> None:
    """Choose the held-out style, split the concepts, write manifest, splits and attribution."""
    styles = sorted({row["style"] for row in result.images})
    result.heldout_style = choose_heldout_style(styles, heldout_style, split_seed)
    result.in1k = imagenet1k_relations(result.concepts)
    for k in range(max(1, n_splits)):
        seen, unseen = split_concepts(result.concepts, unseen_fraction, split_seed + k)
        result.splits.append((split_seed + k, seen, unseen))
    _write_outputs(result)


def imagenet1k_relations(concepts: list[Concept]) -> dict[str, str]:
    """wnid -> how each concept stands to the ImageNet-1K classes (``""``: unrelated)."""
    from wordnet.labels import imagenet1k_relation, read_label_list
    from wordnet.reader import load_wordnet

    wn = load_wordnet()
    in1k = set(read_label_list("imagenet1k"))
    return {c.wnid: imagenet1k_relation(wn, wn.synset(c.synset), in1k) for c in concepts}


def write_csv(path: Path, header, rows) -> None:
    """A CSV with ``header`` then ``rows``, written atomically (every dataset builder's views)."""
    with atomic_write(path, newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_split(folder: Path, prefix: str, result: BuildResult, seen, unseen) -> None:
    seen_ids = {c.wnid for c in seen}
    unseen_ids = {c.wnid for c in unseen}
    held = result.heldout_style
    rows = result.images
    write_csv(folder / "train.csv", ("img_name", "class"),
               [(prefix + r["path"], r["wnid"]) for r in rows
                if r["wnid"] in seen_ids and r["style"] != held])
    write_csv(folder / "test_seen_style.csv", ("img_name", "class"),
               [(prefix + r["path"], r["wnid"]) for r in rows
                if r["wnid"] in seen_ids and r["style"] == held])
    write_csv(folder / "test_unseen.csv", ("img_name", "class"),
               [(prefix + r["path"], r["wnid"]) for r in rows if r["wnid"] in unseen_ids])
    strict_ids = {c.wnid for c in result.strict(unseen)}
    write_csv(folder / "test_unseen_strict.csv", ("img_name", "class"),
               [(prefix + r["path"], r["wnid"]) for r in rows if r["wnid"] in strict_ids])


def write_lines(path: Path, lines) -> None:
    """One item a line, written atomically (split files)."""
    with atomic_write(path, encoding="utf-8") as fh:
        fh.writelines(f"{line}\n" for line in lines)


def _write_outputs(result: BuildResult) -> None:
    out = result.out
    write_csv(out / "manifest.csv", MANIFEST_COLUMNS,
               [[row[c] for c in MANIFEST_COLUMNS] for row in result.images])
    seed0, seen, unseen = result.splits[0]
    unseen_ids = {c.wnid for c in unseen}
    styles_of: dict[str, list[str]] = {}
    for row in result.images:
        styles_of.setdefault(row["wnid"], []).append(row["style"])
    write_csv(out / "concepts.csv", ("wnid", "synset", "concept", "lexname", "split", "styles", "imagenet1k"),
               [(c.wnid, c.synset, c.concept, c.lexname,
                 "unseen" if c.wnid in unseen_ids else "seen", " ".join(styles_of[c.wnid]),
                 result.in1k.get(c.wnid, ""))
                for c in sorted(result.concepts, key=lambda c: c.wnid)])
    write_lines(out / "splits" / "seen.txt", [c.wnid for c in seen])
    write_lines(out / "splits" / "unseen.txt", [c.wnid for c in unseen])
    write_lines(out / "splits" / "unseen_strict.txt", [c.wnid for c in result.strict(unseen)])
    write_lines(out / "splits" / "heldout_style.txt", [result.heldout_style])
    _write_split(out, "", result, seen, unseen)
    if len(result.splits) > 1:
        for k, (seed, seen_k, unseen_k) in enumerate(result.splits):
            folder = out / "splits" / f"split-{k}"
            write_lines(folder / "seen.txt", [c.wnid for c in seen_k])
            write_lines(folder / "unseen.txt", [c.wnid for c in unseen_k])
            write_lines(folder / "unseen_strict.txt", [c.wnid for c in result.strict(unseen_k)])
            write_lines(folder / "seed.txt", [seed])
            _write_split(folder, "../../", result, seen_k, unseen_k)
    _write_attribution(result)


def _write_attribution(result: BuildResult) -> None:
    counts = result.per_style()
    lines = [
        "# Attribution",
        "",
        "The images under `images/` are renderings of emoji drawn by the projects below, made by",
        "`devise data emoji`: each drawing was rasterised, cropped to its drawn pixels, resized to",
        "a square and composited onto white. They keep their original licences; images from the",
        "CC BY-SA 4.0 sets are adaptations that must be shared under the same licence.",
        "`manifest.csv` names the style, source package and licence of every image.",
        "",
        "| style | images | drawn by | package | licence |",
        "|---|---|---|---|---|",
    ]
    for style in sorted(counts):
        info = result.infos.get(style) or STYLE_INFO[style]
        lines.append(f"| {style} | {counts[style]} | [{info.title}]({info.url}) | {info.package} "
                     f"| {info.licence} |")
    lines += [
        "",
        "Licence texts: CC BY 4.0 https://creativecommons.org/licenses/by/4.0/ ;",
        "CC BY-SA 4.0 https://creativecommons.org/licenses/by-sa/4.0/ ;",
        "MIT https://opensource.org/license/mit ; Apache-2.0 https://www.apache.org/licenses/LICENSE-2.0 ;",
        "OFL-1.1 https://openfontlicense.org .",
        "",
        "OpenMoji: \"All emojis designed by OpenMoji - the open-source emoji and icon project.",
        "License: CC BY-SA 4.0\".",
        "",
        "Class labels are WordNet 3.0 synsets (Princeton University, WordNet 3.0 licence,",
        "https://wordnet.princeton.edu/license-and-commercial-use).",
    ]
    with atomic_write(result.out / "ATTRIBUTION.md", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def read_emoji_splits(folder: str | Path) -> tuple[list[str], list[tuple[int, list[str], list[str]]]]:
    """``(concept wnids, splits)`` of an emoji dataset built by ``devise data emoji`` (its concepts.csv and
    splits/), so the clip-art views use exactly its concepts and seen/unseen splits."""
    folder = Path(folder).expanduser()
    concepts_csv = folder / "concepts.csv"
    if not concepts_csv.is_file():
        raise DatasetError(f"{folder}: not an emoji dataset built by devise (no concepts.csv)")

    def lines(path: Path) -> list[str]:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    with open(concepts_csv, newline="", encoding="utf-8") as fh:
        wnids = [row["wnid"] for row in csv.DictReader(fh)]
    split_dirs = sorted((folder / "splits").glob("split-*"), key=lambda p: int(p.name.split("-")[1]))
    if split_dirs:
        splits = [(int(lines(d / "seed.txt")[0]), lines(d / "seen.txt"), lines(d / "unseen.txt")) for d in split_dirs]
    else:
        splits = [(0, lines(folder / "splits" / "seen.txt"), lines(folder / "splits" / "unseen.txt"))]
    return wnids, splits
