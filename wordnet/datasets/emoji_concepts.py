"""The hand-checked emoji concept table and the zero-shot splits built on it.

``data/emoji_concepts.csv`` maps each concept (the CLDR name of its main emoji) to one WordNet
noun synset, chosen by reading the definitions, not by taking the first sense blindly
(``tiger`` -> ``tiger.n.02``, the animal; ``headstone`` -> ``gravestone.n.01``). Columns:

* ``concept``  -- the main emoji's CLDR short name, ``_`` for spaces;
* ``synset``   -- the WordNet 3.0 noun synset name;
* ``codepoints`` -- the emoji that depict it, most typical first (``1F415 1F436``: dog, dog face);
  a sequence is written ``1F3F3-FE0F``;
* ``names``    -- icon names for sets matched by name: CLDR names (older ones too),
  ``set:name`` entries tried first in that set only (``fxemoji:dogside``), and ``!set`` where
  a set's drawing of that name is something else (streamline's ``turkey`` is a flag);
* ``note``     -- free text.

Only concrete nouns are kept (:data:`CONCRETE_LEXNAMES`). Splits are by concept, never by image:
a concept is either seen (training) or unseen (zero-shot test), chosen per WordNet
lexicographer file so both sides hold animals, artifacts, food, ... in the same proportions.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from wordnet.base.errors import DatasetError

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "emoji_concepts.csv"
COLUMNS = ("concept", "synset", "codepoints", "names", "note")
CONCRETE_LEXNAMES = frozenset({
    "noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.object", "noun.plant",
})


@dataclass(frozen=True)
class Concept:
    """One row of the concept table (after validation: with its WordNet id and lexname)."""

    concept: str
    synset: str
    codepoints: tuple[str, ...]
    names: tuple[str, ...]
    note: str = ""
    wnid: str = ""
    lexname: str = ""


def read_table(path: str | Path | None = None) -> list[Concept]:
    """Read the concept table (default: the one shipped with devise); no WordNet needed."""
    path = Path(path) if path is not None else TABLE_PATH
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; "
                                   f"expected header {','.join(COLUMNS)}")
            rows = list(reader)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the concept table ({exc.strerror})") from None
    concepts = []
    for line, row in enumerate(rows, start=2):
        codepoints = tuple((row.get("codepoints") or "").upper().split())
        if not row.get("concept") or not row.get("synset") or not codepoints:
            raise DatasetError(f"{path}:{line}: concept, synset and codepoints are required")
        bad = [c for c in codepoints if not all(_is_hex(p) for p in c.split("-"))]
        if bad:
            raise DatasetError(f"{path}:{line}: not hexadecimal code points: {' '.join(bad)}")
        concepts.append(Concept(row["concept"].strip(), row["synset"].strip(), codepoints,
                                tuple((row.get("names") or "").split()),
                                (row.get("note") or "").strip()))
    return concepts


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return 1 <= len(text) <= 6


def validate_table(wn, concepts: list[Concept]) -> list[Concept]:
    """Resolve every synset in WordNet; return the concepts with ``wnid`` and ``lexname`` set.

    Raises :class:`DatasetError` naming every problem: an unknown or non-noun synset, a
    lexicographer file outside :data:`CONCRETE_LEXNAMES`, a concept or synset listed twice.
    """
    from nltk.corpus.reader.wordnet import WordNetError

    from wordnet.labels import wnid_of

    problems, resolved, seen_synsets, seen_names = [], [], {}, set()
    for c in concepts:
        try:
            synset = wn.synset(c.synset)
        except (WordNetError, ValueError):
            problems.append(f"{c.concept}: no synset {c.synset}")
            continue
        if synset.pos() != "n":
            problems.append(f"{c.concept}: {c.synset} is not a noun")
        elif synset.lexname() not in CONCRETE_LEXNAMES:
            problems.append(f"{c.concept}: {c.synset} is {synset.lexname()}, not a concrete noun")
        if synset.name() in seen_synsets:
            problems.append(f"{c.concept}: {synset.name()} already used by {seen_synsets[synset.name()]}")
        if c.concept in seen_names:
            problems.append(f"{c.concept}: concept listed twice")
        seen_synsets[synset.name()] = c.concept
        seen_names.add(c.concept)
        resolved.append(Concept(c.concept, synset.name(), c.codepoints, c.names, c.note,
                                wnid_of(synset), synset.lexname()))
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DatasetError(f"concept table: {shown}")
    return resolved


def load_concepts(wn=None, path: str | Path | None = None) -> list[Concept]:
    """Read and validate the concept table against WordNet (default: :func:`load_wordnet`)."""
    if wn is None:
        from wordnet.reader import load_wordnet

        wn = load_wordnet()
    return validate_table(wn, read_table(path))


def select_concepts(concepts: list[Concept], wanted: list[str] | None) -> list[Concept]:
    """The concepts named in ``wanted`` (concept names, synsets or wnids, any case); all when ``wanted`` is empty.

    A name that matches no concept is a :class:`DatasetError` listing every such name.
    """
    if not wanted:
        return concepts
    keys = {w.lower() for w in wanted}
    chosen = [c for c in concepts if {c.concept.lower(), c.synset.lower(), c.wnid} & keys]
    found = {k for c in chosen for k in (c.concept.lower(), c.synset.lower(), c.wnid)}
    missing = [w for w in wanted if w.lower() not in found]
    if missing:
        raise DatasetError(f"not in the concept table: {', '.join(missing)}")
    return chosen


def split_concepts(concepts: list[Concept], unseen_fraction: float = 0.2,
                   seed: int = 0) -> tuple[list[Concept], list[Concept]]:
    """Split concepts into ``(seen, unseen)``, stratified by lexicographer file.

    Deterministic for a given seed and concept list (order does not matter): each
    lexname's concepts are sorted by WordNet id and shuffled with a generator seeded from
    ``(seed, lexname)``; ``round(n * unseen_fraction)`` of them become unseen, at least one
    when the lexname has two or more concepts and the fraction is positive.
    """
    if not 0.0 <= unseen_fraction < 1.0:
        raise DatasetError(f"unseen fraction must be in [0, 1), got {unseen_fraction}")
    groups: dict[str, list[Concept]] = {}
    for c in concepts:
        groups.setdefault(c.lexname, []).append(c)
    seen, unseen = [], []
    for lexname in sorted(groups):
        members = sorted(groups[lexname], key=lambda c: c.wnid)
        random.Random(f"{seed}:{lexname}").shuffle(members)
        k = round(len(members) * unseen_fraction)
        if unseen_fraction > 0 and k == 0 and len(members) >= 2:
            k = 1
        unseen.extend(members[:k])
        seen.extend(members[k:])
    return sorted(seen, key=lambda c: c.wnid), sorted(unseen, key=lambda c: c.wnid)


def choose_heldout_style(styles: list[str], preferred: str | None = "twemoji",
                         seed: int = 0) -> str:
    """The drawing style kept out of training, to test seen concepts in an unseen style.

    ``preferred`` when it is among ``styles``; else one picked with ``seed``.
    """
    if not styles:
        raise DatasetError("no emoji style is installed, so none can be held out")
    if preferred in styles:
        return preferred
    return random.Random(seed).choice(sorted(styles))
