"""The icon benchmark (``devise data icons``): the emoji concepts drawn by every open icon set in ``@iconify/json``.

Not the pre-training pool (:mod:`wordnet.datasets.icon_pool`), which uses the same sets for
classes that are no benchmark concept.

``@iconify/json`` holds a few hundred icon sets (mostly one-colour pictograms) with each set's
licence in ``collections.json``. Sets under a non-commercial, no-derivatives or GPL licence
are left out, and so are logos, flags and programming symbols (an ``apple`` there is a brand).
Concepts come from the same hand-checked emoji table; an icon matches a concept by name --
the emoji's CLDR names and the synset's WordNet lemmas -- except the names listed in
``data/icon_name_denylist.csv``, reviewed by hand because pictogram sets mean something else
by them (``mouse`` is a computer mouse, ``seal`` a stamp, ``tablet`` a computer).

Sets are opened one at a time (the package is 465 MB of JSON), so memory stays small.
"""
from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path
from typing import Callable

from wordnet.base.errors import DatasetError
from wordnet.base.files import atomic_path
from wordnet.datasets.emoji import BuildResult, clear_previous, finish_dataset
from wordnet.datasets.emoji_concepts import Concept
from wordnet.datasets.emoji_sources import IconifySource, StyleInfo, node_modules_dirs

DENYLIST_PATH = Path(__file__).resolve().parents[1] / "data" / "icon_name_denylist.csv"
EXCLUDED_CATEGORIES = frozenset({"Logos", "Flags / Maps", "Programming"})
HOW_TO_GET = "npm install @iconify/json (465 MB), or single sets with npm install @iconify-json/<set>"


def licence_allowed(spdx: str) -> bool:
    """True for licences that allow reuse and derivatives commercially (no NC, ND or GPL)."""
    return bool(spdx) and not re.search(r"NC|ND|GPL|unknown", spdx, flags=re.IGNORECASE)


def _info(prefix: str, meta: dict, package: str) -> StyleInfo:
    licence = meta.get("license", {})
    author = meta.get("author", {})
    title = f"{meta.get('name', prefix)} ({author.get('name', 'unknown author')})"
    return StyleInfo(prefix, title, package, licence.get("spdx") or licence.get("title", ""),
                     author.get("url") or licence.get("url", ""), f"npm install {package.split()[0]}")


def iconify_collections(node_modules: str | os.PathLike | None = None) -> dict[str, tuple[StyleInfo, Path, dict]]:
    """Every installed Iconify set: ``prefix -> (info, icons JSON path, metadata)``.

    Reads ``@iconify/json`` (all sets) and any single ``@iconify-json/<set>`` packages.
    """
    found: dict[str, tuple[StyleInfo, Path, dict]] = {}
    for base in node_modules_dirs(node_modules):
        single = base / "@iconify-json"
        if single.is_dir():
            for info_path in sorted(single.glob("*/info.json")):
                meta = json.loads(info_path.read_text(encoding="utf-8"))
                prefix = meta.get("prefix", info_path.parent.name)
                found.setdefault(prefix, (_info(prefix, meta, f"@iconify-json/{prefix} (npm)"),
                                          info_path.parent / "icons.json", meta))
        whole = base / "@iconify" / "json" / "collections.json"
        if whole.is_file():
            for prefix, meta in json.loads(whole.read_text(encoding="utf-8")).items():
                path = whole.parent / "json" / f"{prefix}.json"
                if path.is_file():
                    found.setdefault(prefix, (_info(prefix, meta, "@iconify/json (npm)"), path, meta))
    return dict(sorted(found.items()))


def usable_collections(collections: dict, sets: list[str] | None = None) -> tuple[dict, list[str]]:
    """Keep the sets whose licence and category fit; return ``(kept, one line per left-out set)``."""
    kept, left_out = {}, []
    for prefix, (info, path, meta) in collections.items():
        if sets is not None and prefix not in sets:
            continue
        if not licence_allowed(info.licence):
            left_out.append(f"{prefix}: licence {info.licence or 'unknown'}")
        elif meta.get("category") in EXCLUDED_CATEGORIES:
            left_out.append(f"{prefix}: category {meta['category']}")
        else:
            kept[prefix] = (info, path, meta)
    return kept, left_out


def read_denylist(path: str | Path | None = None) -> set[tuple[str, str]]:
    """The reviewed ``(synset, icon name)`` pairs that must not match."""
    with open(path or DENYLIST_PATH, newline="", encoding="utf-8") as fh:
        return {(row["synset"], row["name"]) for row in csv.DictReader(fh)}


def icon_names(wn, concept: Concept, denied: set[tuple[str, str]]) -> tuple[str, ...]:
    """Names an icon of ``concept`` may have: the table's names, then the synset's lemmas."""
    lemmas = [name.lower().replace("_", "-") for name in wn.synset(concept.synset).lemma_names()]
    names = [n for n in (*concept.names, *lemmas) if (concept.synset, n) not in denied]
    return tuple(dict.fromkeys(names))


def build_icon_dataset(out: str | os.PathLike, wn, concepts: list[Concept], collections: dict, *,
                       size: int = 64, min_sets: int = 4, split_seed: int = 0, n_splits: int = 1,
                       unseen_fraction: float = 0.2, heldout_style: str | None = "twemoji",
                       on_set: Callable[[int, int, str], None] | None = None) -> BuildResult:
    """Render every concept from every set in ``collections``; keep concepts in ``min_sets`` sets."""
    if not collections:
        raise DatasetError(f"no usable Iconify set is installed; {HOW_TO_GET}")
    out = Path(out).expanduser()
    clear_previous(out)
    denied = read_denylist()
    names = {c.wnid: icon_names(wn, c, denied) for c in concepts}
    result = BuildResult(out=out)
    start = time.perf_counter()
    rows_by_wnid: dict[str, list[dict]] = {}
    for done, (prefix, (info, path, _meta)) in enumerate(collections.items(), start=1):
        source = IconifySource(prefix, info=info, path=path)
        for concept in concepts:
            key = source.find(concept.codepoints, names[concept.wnid])
            if key is None:
                continue
            try:
                image = source.render(key, size)
            except Exception as exc:  # noqa: BLE001 - one broken icon must not stop the build
                result.failures.append((concept.concept, prefix, f"{type(exc).__name__}: {exc}"))
                continue
            rel = f"images/{concept.wnid}/{prefix}.png"
            with atomic_path(out / rel) as tmp:
                image.save(tmp, format="PNG")
            rows_by_wnid.setdefault(concept.wnid, []).append({
                "path": rel, "wnid": concept.wnid, "synset": concept.synset,
                "concept": concept.concept, "style": prefix, "emoji": key,
                "source": info.package, "licence": info.licence})
            result.infos[prefix] = info
        del source
        if on_set:
            on_set(done, len(collections), prefix)
    for concept in concepts:
        rows = rows_by_wnid.get(concept.wnid, [])
        if len(rows) >= min_sets:
            result.concepts.append(concept)
            result.images.extend(rows)
        else:
            result.dropped.append((concept, len(rows)))
            for row in rows:
                (out / row["path"]).unlink()
            if rows:
                (out / "images" / concept.wnid).rmdir()
    result.infos = {k: v for k, v in result.infos.items() if any(r["style"] == k for r in result.images)}
    result.seconds = time.perf_counter() - start
    if not result.concepts:
        raise DatasetError(f"no concept has icons in {min_sets} or more of the "
                           f"{len(collections)} sets; lower --min-sets")
    finish_dataset(result, split_seed=split_seed, n_splits=n_splits,
                   unseen_fraction=unseen_fraction, heldout_style=heldout_style)
    return result
