"""The pre-training pool: icon names shared by many open Iconify sets, none of them a benchmark concept.

DeViSE starts from a visual model pre-trained on many classes that are disjoint from its
zero-shot test classes (ImageNet-1K vs the 21K). The offline stand-in is ``@iconify/json``:
a class is an icon *name* that many independent sets draw (``calendar``, ``wallet``,
``binoculars``, ``anchor``...), so each class comes in many styles, as ImageNet's classes come
in many photos. Classes need not be WordNet nouns, but none may be an emoji-benchmark
concept, or pre-training would leak the zero-shot test set. A name is left out when

* any run of its words is a benchmark name -- a concept, one of its icon names or one of its
  synset's lemmas (``cat-face`` -> ``cat``, ``ice-cream-cone`` -> ``ice-cream``);
* a concrete noun sense of it is a hyponym or hypernym of a benchmark synset in WordNet
  (``bulldog`` is under dog, ``truck`` above delivery truck, ``home`` and ``house``);
* it is a brand (a name in a logo set that is no WordNet noun: ``github``, ``paypal``);
* the reviewed table ``data/pool_class_review.csv`` says so: near-leaks the rules miss
  (``beer`` icons are beer mugs, the emoji ``beer_mug``), read by hand.

Sets are those of :func:`wordnet.datasets.icons.usable_collections` (no NC, ND or GPL licence,
no logos, flags or programming symbols) minus every emoji set (the benchmark's styles and
their siblings) and brand sets filed under other categories. Icon names are normalised to a
base name (style and size tokens such as ``outline``, ``-2``, ``16px`` dropped) and badge
variants folded into their glyph (``folder-plus``, ``lock-open`` -> ``folder``, ``lock``).

Layout of ``OUT`` (every file written atomically)::

    images/<class>/<set>--<icon>.png   one RGB PNG per chosen icon, on white
    manifest.csv                       path,class,set,icon,source,licence
    classes.csv                        class,sets,images
    excluded.csv                       class,sets,reason (every candidate left out, and why)
    train.csv                          img_name,class (``devise pretrain`` reads it)
    pool.json                          settings, counts, sets and licences, package version
    ATTRIBUTION.md                     who drew what, under which licence
"""
from __future__ import annotations

import csv
import json
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wordnet.base.errors import DatasetError
from wordnet.base.files import atomic_path, atomic_write, locks_output_folder
from wordnet.datasets.emoji import clear_previous, write_csv
from wordnet.datasets.emoji_concepts import Concept

REVIEW_PATH = Path(__file__).resolve().parents[1] / "data" / "pool_class_review.csv"
POOL_FORMAT = "devise-pool"
MANIFEST_COLUMNS = ("path", "class", "set", "icon", "source", "licence")
# leading and trailing tokens that only say how a glyph is drawn or sized
_STYLE_TOKENS = frozenset("""outline outlined outlines filled fill solid line lines linear bold duotone twotone two
tone sharp round rounded thin light regular alt o circle square broken variant small mini micro sm lg xl xs md big
stroke glyph flat color colored colour baseline simple full empty dark med medium heavy narrow wide tiny icon
symbolic r s l f b""".split())
_LEADING_TOKENS = frozenset("""baseline outline outlined round rounded sharp twotone filled fill solid regular light
thin bold ic icon""".split())
# badges added to a glyph: folded into it (folder-plus, lock-open, video-off -> folder, lock, video)
_BADGE_TOKENS = frozenset("""plus minus add remove check checked x off slash open opened closed close edit search
lock unlock locked sync share alert error warning question info download upload arrow up down left right new
delete cancel ok done bolt cog settings star heart time clock user person code zip network link multiple""".split())
_EMOJI_PREFIX = re.compile(r"emoji|moji")
_BRAND_PREFIX = re.compile(r"brand|logo|devicon|simple-icons|skill-icons")
CONCRETE = frozenset({"noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.object", "noun.plant"})


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(" ", "-").replace("'", "")


def base_name(icon: str) -> str:
    """``outline-home-2-16px`` -> ``home``: an icon name without its style, size and number tokens."""
    tokens = [t for t in re.split(r"[-_ ]+", icon.lower()) if t]
    while len(tokens) > 1 and tokens[0] in _LEADING_TOKENS:
        tokens = tokens[1:]
    while len(tokens) > 1 and (tokens[-1] in _STYLE_TOKENS or re.fullmatch(r"\d+(px|x\d+)?", tokens[-1])):
        tokens = tokens[:-1]
    return "-".join([t for t in tokens if not t.isdigit()] or tokens)


def class_name(icon: str) -> str:
    """The pool class of an icon name: its base name with badge tokens folded (``folder-plus`` -> ``folder``)."""
    tokens = base_name(icon).split("-")
    while len(tokens) > 1 and tokens[-1] in _BADGE_TOKENS:
        tokens = tokens[:-1]
    return "-".join(tokens)


def _singulars(word: str) -> list[str]:
    """``keys`` -> ``key``, ``boxes`` -> ``box``: a plural names the same thing."""
    out = []
    if len(word) > 3 and word.endswith("es"):
        out.append(word[:-2])
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])
    return out


class BenchmarkGuard:
    """Says why a class name would leak a benchmark concept (or ``""`` when it would not)."""

    def __init__(self, wn, concepts: list[Concept]):
        self.wn = wn
        self.names: dict[str, str] = {}
        for c in concepts:
            entries = [c.concept, *(n.split(":", 1)[-1] for n in c.names if not n.startswith("!")),
                       *wn.synset(c.synset).lemma_names()]
            for name in entries:
                self.names.setdefault(_norm(name), c.synset)
        self.synsets = {wn.synset(c.synset) for c in concepts}
        self._above: dict = {}
        self._cache: dict[str, str] = {}

    def _ancestors(self, synset) -> set:
        if synset not in self._above:
            self._above[synset] = set(synset.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))
        return self._above[synset]

    def clash(self, name: str) -> str:
        tokens = [t for t in _norm(name).split("-") if t]
        for i in range(len(tokens)):
            for j in range(len(tokens), i, -1):
                gram = "-".join(tokens[i:j])
                for form in (gram, *_singulars(gram)):
                    if form in self.names:
                        return f"name {gram} ({self.names[form]})"
        return ""

    def relation(self, name: str) -> str:
        lemma = "_".join(_norm(name).split("-"))
        if lemma not in self._cache:
            reason = ""
            for sense in self.wn.synsets(lemma, pos="n"):
                if sense.lexname() not in CONCRETE:
                    continue
                below = sorted(s.name() for s in self.synsets & self._ancestors(sense))
                if below:
                    reason = f"wordnet {sense.name()} is a kind of {below[0]}"
                    break
                above = sorted(s.name() for s in self.synsets if sense in self._ancestors(s))
                if above:
                    reason = f"wordnet {sense.name()} includes {above[0]}"
                    break
            self._cache[lemma] = reason
        return self._cache[lemma]

    def why_excluded(self, name: str) -> str:
        return self.clash(name) or self.relation(name)


def read_review(path: str | Path | None = None) -> dict[str, tuple[str, str]]:
    """The hand review: ``class -> (decision, reason)``, decision ``exclude`` or ``keep``."""
    path = Path(path or REVIEW_PATH)
    review = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            decision = (row.get("decision") or "").strip()
            if decision not in ("exclude", "keep"):
                raise DatasetError(f"{path}:{line}: decision must be exclude or keep, got {decision!r}")
            review[row["class"].strip()] = (decision, (row.get("reason") or "").strip())
    return review


def pool_collections(collections: dict, sets: list[str] | None = None) -> tuple[dict, list[str]]:
    """:func:`~wordnet.datasets.icons.usable_collections` minus emoji and brand sets."""
    from wordnet.datasets.icons import usable_collections

    kept, left_out = usable_collections(collections, sets)
    pool = {}
    for prefix, entry in kept.items():
        meta = entry[2]
        if meta.get("category") == "Emoji" or _EMOJI_PREFIX.search(prefix):
            left_out.append(f"{prefix}: emoji set")
        elif _BRAND_PREFIX.search(prefix):
            left_out.append(f"{prefix}: brand set")
        else:
            pool[prefix] = entry
    return pool, left_out


def _read_set(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the icon set ({exc.__class__.__name__}: {exc})") from None


def _icon_names(data: dict) -> dict[str, set[str]]:
    """``icon -> its names``: its own and those of its plain aliases (flipped or rotated ones are other glyphs)."""
    icons = {k for k, v in data.get("icons", {}).items() if not v.get("hidden")}
    aliases = data.get("aliases", {})
    names = {k: {k} for k in icons}
    for alias, spec in aliases.items():
        if spec.get("hidden") or any(spec.get(t) for t in ("rotate", "hFlip", "vFlip")):
            continue
        parent, hops = spec.get("parent"), 0
        while parent in aliases and hops < 8:
            parent, hops = aliases[parent].get("parent"), hops + 1
        if parent in names:
            names[parent].add(alias)
    return names


def brand_names(collections: dict, wn, min_logo_sets: int = 6) -> set[str]:
    """Brands, not classes: names drawn by logo sets that are no WordNet noun (``github``, ``paypal``),
    or that ``min_logo_sets`` logo sets draw (``twitter``, ``chrome``: words, but here logos)."""
    logo_sets: dict[str, int] = defaultdict(int)
    for prefix, (_info, path, meta) in collections.items():
        if meta.get("category") == "Logos" or _BRAND_PREFIX.search(prefix):
            for name in {class_name(icon) for icon in _icon_names(_read_set(path))}:
                logo_sets[name] += 1
    return {b for b, n in logo_sets.items()
            if n >= min_logo_sets or not wn.synsets("_".join(b.split("-")), pos="n")}


@dataclass
class PoolResult:
    """What a pool build chose, wrote and measured."""

    out: Path
    classes: dict[str, list[dict]] = field(default_factory=dict)  # class -> manifest rows
    excluded: list[tuple[str, int, str]] = field(default_factory=list)  # (class, sets, reason)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (set, icon, reason)
    infos: dict = field(default_factory=dict)  # set -> StyleInfo
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def images(self) -> list[dict]:
        return [row for rows in self.classes.values() for row in rows]

    def excluded_by_reason(self) -> dict[str, int]:
        """Excluded classes per kind of reason (the reason's first word: ``brand``, ``review``, ...), sorted."""
        reasons: dict[str, int] = {}
        for _cls, _n, reason in self.excluded:
            key = reason.split(" ", 1)[0].rstrip(":")
            reasons[key] = reasons.get(key, 0) + 1
        return dict(sorted(reasons.items()))


def survey(collections: dict, on_set: Callable[[int, int, str], None] | None = None
           ) -> dict[str, dict[str, list[str]]]:
    """``class -> {set -> icons}`` over ``collections`` (one icon counts once per set, under its first class)."""
    found: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for done, (prefix, (_info, path, _meta)) in enumerate(collections.items(), start=1):
        for icon, names in sorted(_icon_names(_read_set(path)).items()):
            for cls in sorted({class_name(n) for n in names}):
                found[cls].setdefault(prefix, []).append(icon)
                break
        if on_set:
            on_set(done, len(collections), prefix)
    return found


def choose_icons(by_set: dict[str, list[str]], limit: int, seed: int, cls: str) -> list[tuple[str, str]]:
    """Up to ``limit`` ``(set, icon)`` pairs, taken round-robin over the sets (seeded order): most styles first."""
    rng = random.Random(f"{seed}:{cls}")
    queues = []
    for prefix in sorted(by_set):
        icons = sorted(by_set[prefix])
        rng.shuffle(icons)
        queues.append((prefix, icons))
    rng.shuffle(queues)
    chosen = []
    while queues and len(chosen) < limit:
        for prefix, icons in list(queues):
            if len(chosen) >= limit:
                break
            chosen.append((prefix, icons.pop()))
            if not icons:
                queues.remove((prefix, icons))
    return chosen


@locks_output_folder("pool folder")
def build_icon_pool(out, wn, concepts: list[Concept], collections: dict, *, size: int = 64, min_sets: int = 8,
                    max_per_class: int = 40, seed: int = 0, brands: set[str] | None = None,
                    review: dict[str, tuple[str, str]] | None = None,
                    on_set: Callable[[int, int, str], None] | None = None) -> PoolResult:
    """Choose the classes (names in ``min_sets`` sets that leak no benchmark concept) and render them.

    ``collections`` are the sets to draw from (:func:`pool_collections`), ``brands`` the names
    to leave out as brands (:func:`brand_names`), ``review`` the hand decisions
    (:func:`read_review`). ``on_set(done, total, prefix)`` reports progress (two passes).
    """
    from wordnet.datasets.emoji_sources import IconifySource

    if not collections:
        raise DatasetError("no usable Iconify set is installed; npm install @iconify/json")
    if size < 8:
        raise DatasetError(f"--size must be at least 8 pixels, got {size}")
    out = Path(out).expanduser()
    clear_previous(out)
    start = time.perf_counter()
    review = read_review() if review is None else review
    brands = brands or set()
    guard = BenchmarkGuard(wn, concepts)
    total = 2 * len(collections)
    found = survey(collections, on_set and (lambda d, _t, p: on_set(d, total, p)))
    result = PoolResult(out=out, settings={"size": size, "min_sets": min_sets, "max_per_class": max_per_class,
                                           "seed": seed, "iconify_json": iconify_version(collections)})
    chosen: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cls, by_set in sorted(found.items(), key=lambda item: (-len(item[1]), item[0])):
        n_sets = len(by_set)
        if n_sets < min_sets:
            continue
        decision, note = review.get(cls, ("", ""))
        reason = ("" if decision == "keep" else guard.why_excluded(cls)) or (
            "brand" if cls in brands and decision != "keep" else "") or (
            f"review: {note}" if decision == "exclude" else "")
        if reason:
            result.excluded.append((cls, n_sets, reason))
            continue
        # an icon whose own name is a benchmark name (circle-clock, broken-heart) is left out too
        clean = {p: kept for p, icons in by_set.items() if (kept := [i for i in icons if not guard.clash(i)])}
        for prefix, icon in choose_icons(clean, max_per_class, seed, cls):
            chosen[prefix][cls].append(icon)
    del found
    for done, (prefix, (info, path, _meta)) in enumerate(collections.items(), start=len(collections) + 1):
        if prefix in chosen:
            source = IconifySource(prefix, info=info, path=path)
            for cls, icons in chosen[prefix].items():
                for icon in icons:
                    try:
                        image = source.render(icon, size)
                    except Exception as exc:  # noqa: BLE001 - one broken icon must not stop the build
                        result.failures.append((prefix, icon, f"{type(exc).__name__}: {exc}"))
                        continue
                    rel = f"images/{cls}/{prefix}--{icon}.png"
                    with atomic_path(out / rel) as tmp:
                        image.save(tmp, format="PNG")
                    result.classes.setdefault(cls, []).append({
                        "path": rel, "class": cls, "set": prefix, "icon": icon, "source": info.package,
                        "licence": info.licence})
                    result.infos[prefix] = info
            del source
        if on_set:
            on_set(done, total, prefix)
    result.classes = {c: sorted(result.classes[c], key=lambda r: r["path"]) for c in sorted(result.classes)}
    result.seconds = time.perf_counter() - start
    if not result.classes:
        raise DatasetError(f"no icon name is drawn by {min_sets} or more of the {len(collections)} sets "
                           "without clashing with a benchmark concept; lower --min-sets")
    _write_pool(result)
    return result



def _write_pool(result: PoolResult) -> None:
    out, rows = result.out, result.images
    write_csv(out / "manifest.csv", MANIFEST_COLUMNS, [[r[c] for c in MANIFEST_COLUMNS] for r in rows])
    write_csv(out / "train.csv", ("img_name", "class"), [(r["path"], r["class"]) for r in rows])
    write_csv(out / "classes.csv", ("class", "sets", "images"),
               [(c, len({r["set"] for r in rs}), len(rs)) for c, rs in result.classes.items()])
    write_csv(out / "excluded.csv", ("class", "sets", "reason"), result.excluded)
    per_set: dict[str, int] = defaultdict(int)
    for r in rows:
        per_set[r["set"]] += 1
    licences: dict[str, int] = defaultdict(int)
    for prefix, n in per_set.items():
        licences[result.infos[prefix].licence] += n
    reasons: dict[str, int] = defaultdict(int)
    for _c, _n, reason in result.excluded:
        reasons[reason.split(" ", 1)[0].rstrip(":")] += 1
    summary = {
        "format": POOL_FORMAT, "classes": len(result.classes), "images": len(rows), "sets": len(per_set),
        "settings": result.settings, "excluded_classes": len(result.excluded), "excluded_by": dict(reasons),
        "images_by_licence": dict(sorted(licences.items(), key=lambda kv: -kv[1])),
        "images_by_set": dict(sorted(per_set.items())), "failed_icons": len(result.failures),
        "source": sorted({result.infos[p].package for p in per_set}),
    }
    with atomic_write(out / "pool.json", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
        fh.write("\n")
    _write_attribution(result, per_set)


def iconify_version(collections: dict) -> str:
    """The installed ``@iconify/json`` version (from its package.json), or ``""``."""
    for _info, path, _meta in collections.values():
        package = Path(path).parents[1] / "package.json"
        if package.is_file():
            try:
                return json.loads(package.read_text(encoding="utf-8")).get("version", "")
            except (OSError, ValueError):
                return ""
    return ""


def _write_attribution(result: PoolResult, per_set: dict[str, int]) -> None:
    lines = [
        "# Attribution",
        "",
        "The images under `images/` are renderings of icons from the open icon sets below (npm",
        "`@iconify/json`), made by `devise data pool`: each icon was rasterised, cropped to its",
        "drawn pixels, resized to a square and composited onto white. They keep their original",
        "licences; images from share-alike sets are adaptations shared under the same licence.",
        "`manifest.csv` names the set, icon and licence of every image.",
        "",
        "| set | images | drawn by | licence |",
        "|---|---|---|---|",
    ]
    for prefix in sorted(per_set):
        info = result.infos[prefix]
        lines.append(f"| {prefix} | {per_set[prefix]} | [{info.title}]({info.url}) | {info.licence} |")
    with atomic_write(result.out / "ATTRIBUTION.md", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def read_pool(folder: str | Path) -> dict:
    """A pool's ``pool.json`` (what ``devise pretrain`` records as provenance), or :class:`DatasetError`."""
    path = Path(folder).expanduser() / "pool.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if data.get("format") == POOL_FORMAT else {}
