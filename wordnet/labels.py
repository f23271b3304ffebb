"""Labels -> WordNet noun synsets.

A label may be a wnid (``n02084071``, ImageNet's id: POS letter + 8-digit offset), a synset
name (``dog.n.01``) or words (``snow leopard``, ``snow_leopard``, ``Snow Leopard``). Words
take their FIRST noun sense (WordNet orders senses by corpus frequency), which is right for
most class names and wrong for some ("crane" the bird vs the machine): an overrides CSV
(``label,synset``) pins those. Unknown labels are reported all at once, each with close
noun lemma names, so one run fixes a whole label file.

Also: display labels, short definitions, and reading label lists (one label a line), including
the ImageNet 1K / 21K wnid lists and the published ImageNet zero-shot test sets (2-hop, 3-hop,
all) shipped in ``wordnet/data`` (:data:`SHIPPED_LISTS`).
"""
from __future__ import annotations

import csv
import difflib
import functools
import re
import textwrap
import warnings
from importlib import resources
from pathlib import Path

from wordnet.base.errors import DeviseError, UnknownLabelError

WNID_RE = re.compile(r"^([nvasr])(\d{8})$")
SYNSET_NAME_RE = re.compile(r"^\S.*\.([nvasr])\.(\d+)$")
_COMMENT_RE = re.compile(r"(^|\s)#.*$")
# label lists shipped in wordnet/data (see its README for sources): name -> file
SHIPPED_LISTS = {
    "imagenet1k": "imagenet1k_wnids.txt",        # the 1,000 ILSVRC-2012 classes
    "imagenet21k": "imagenet21k_wnids.txt",      # the 21,841 classes of the fall-2011 release
    "imagenet-2hop": "imagenet_2hop_wnids.txt",  # the published zero-shot test sets of ConSE, SYNC,
    "imagenet-3hop": "imagenet_3hop_wnids.txt",  # GCNZ and DGP: 1,549 / 7,860 / 20,842 wnids
    "imagenet-all": "imagenet_all_wnids.txt",
}
MAX_SUGGESTED = 10  # unknown labels that get suggestions (each costs a scan of ~118k names)


def wnid_of(synset) -> str:
    """``Synset('dog.n.01')`` -> ``"n02084071"`` (POS letter + zero-padded offset)."""
    return f"{synset.pos()}{synset.offset():08d}"


def synset_of_wnid(wn, wnid: str):
    """The synset with this wnid; :class:`UnknownLabelError` when there is none."""
    from nltk.corpus.reader.wordnet import WordNetError

    match = WNID_RE.match(wnid.strip())
    if not match:
        raise UnknownLabelError(f"{wnid!r} is not a wnid (expected like n02084071)")
    try:
        with warnings.catch_warnings():  # NLTK warns, then returns None, for a bad offset
            warnings.simplefilter("ignore")
            synset = wn.synset_from_pos_and_offset(match.group(1), int(match.group(2)))
    except (WordNetError, ValueError, IndexError):
        synset = None
    if synset is None:
        raise UnknownLabelError(f"wnid {wnid.strip()} is not in WordNet {wn.get_version()}")
    return synset


def normalise(label: str) -> str:
    """Words as WordNet spells lemma names: stripped, lower case, spaces -> ``_``."""
    return "_".join(label.strip().lower().split())


def _lookup(wn, label: str):
    """Resolve without overrides; None when the label names no noun synset."""
    from nltk.corpus.reader.wordnet import WordNetError

    text = label.strip()
    if not text:
        return None
    if WNID_RE.match(text):
        try:
            return synset_of_wnid(wn, text)
        except UnknownLabelError:
            return None
    if SYNSET_NAME_RE.match(text):
        try:
            synset = wn.synset(text)
        except (WordNetError, ValueError):
            return None
        return synset if synset.pos() == "n" else None  # labels are nouns: run.v.01 names none
    senses = wn.synsets(normalise(text), pos="n") or wn.synsets(unaccented(normalise(text)), pos="n")
    return senses[0] if senses else None


def unaccented(word: str) -> str:
    """``word`` without its accents (``crème_brûlée`` -> ``creme_brulee``): WordNet's lemma names are ASCII."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def resolve_label(wn, label: str, overrides: dict[str, str] | None = None):
    """Map one label to a synset (see the module doc); raises :class:`UnknownLabelError`."""
    if overrides:
        table = {normalise(k): v for k, v in overrides.items()}
        target = table.get(normalise(label))
        if target is not None:
            synset = _lookup(wn, target)
            if synset is None:
                raise UnknownLabelError(
                    f"override for {label!r} names {target!r}, which is not a WordNet synset; "
                    "fix the overrides file"
                )
            return synset
    synset = _lookup(wn, label)
    if synset is None:
        match = SYNSET_NAME_RE.match(label.strip())
        if match and match.group(1) != "n":
            raise UnknownLabelError(f"{label.strip()!r} is not a noun synset: labels are nouns (things a picture "
                                    f"shows); use a noun synset, like dog.n.01")
        raise UnknownLabelError(_unknown_message(wn, [label]))
    return synset


def resolve_labels(wn, labels, overrides: dict[str, str] | None = None) -> list:
    """Resolve every label; one :class:`UnknownLabelError` naming ALL that fail."""
    table = {normalise(k): v for k, v in (overrides or {}).items()}
    synsets, unknown = [], []
    for label in labels:
        if normalise(label) in table:  # a bad override raises its own message
            synsets.append(resolve_label(wn, label, table))
            continue
        synset = _lookup(wn, label)
        if synset is None:
            unknown.append(label)
        else:
            synsets.append(synset)
    if unknown:
        raise UnknownLabelError(_unknown_message(wn, unknown))
    return synsets


@functools.lru_cache(maxsize=2)
def _noun_lemma_names(wn) -> dict[int, list[str]]:
    """All noun lemma names (~118k), bucketed by length so suggestions scan few of them."""
    buckets: dict[int, list[str]] = {}
    for name in sorted(set(wn.all_lemma_names(pos="n"))):
        buckets.setdefault(len(name), []).append(name.lower())
    return buckets


def suggestions(wn, label: str, n: int = 3) -> list[str]:
    """Close noun lemma names for a misspelt label (difflib ratio >= 0.75)."""
    word = normalise(label)
    if not word:
        return []
    buckets = _noun_lemma_names(wn)
    # ratio >= 0.75 is impossible when lengths differ by more than ~40%
    slack = max(1, len(word) * 2 // 5)
    pool = [name for size in range(len(word) - slack, len(word) + slack + 1)
            for name in buckets.get(size, ())]
    return [m.replace("_", " ") for m in difflib.get_close_matches(word, pool, n=n, cutoff=0.75)]


def _unknown_message(wn, labels: list[str]) -> str:
    parts = []
    for i, label in enumerate(labels):
        close = suggestions(wn, label) if i < MAX_SUGGESTED else []
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        parts.append(f"{label!r}{hint}")
    noun = "label" if len(labels) == 1 else f"{len(labels)} labels"
    return (
        f"unknown {noun}: {'; '.join(parts)}. Use a wnid (n02084071), a synset name "
        "(dog.n.01) or noun words, or map it in an overrides CSV (label,synset)"
    )


def csv_rows(text: str, header: tuple[str, ...], *also: tuple[str, ...]):
    """``(line number, row, stripped cells)`` of a small CSV file, without blank and ``#`` comment
    lines and without a first line equal to ``header`` or one of the ``also`` headers (any case)."""
    headers = (header, *also)
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if lineno == 1 and any(tuple(c.lower() for c in cells[:len(h)]) == h for h in headers):
            continue
        yield lineno, row, cells


def load_overrides(path) -> dict[str, str]:
    """Read an overrides CSV: ``label,synset`` rows (optional header, ``#`` comments)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviseError(f"{path}: cannot read overrides file ({exc.__class__.__name__}: {exc})") from None
    table: dict[str, str] = {}
    for lineno, row, cells in csv_rows(text, ("label", "synset")):
        if len(cells) != 2 or not all(cells):
            raise DeviseError(
                f"{path}:{lineno}: expected two columns 'label,synset' "
                f"(like: crane,crane.n.05), got {','.join(row)!r}"
            )
        table[cells[0]] = cells[1]
    return table


def display_label(synset) -> str:
    """A human label: the first lemma name with spaces (``German shepherd``)."""
    return synset.lemmas()[0].name().replace("_", " ")


def noun_senses(wn, query: str, overrides: dict[str, str] | None = None, first_only: bool = False) -> list:
    """The synsets ``query`` can mean, the one it maps to as a label first.

    A wnid or synset name means one synset. Words mean every noun sense; the first is the
    one :func:`resolve_label` picks (the most frequent, or the override). Unknown queries
    raise :class:`UnknownLabelError` with suggestions.
    """
    first = resolve_label(wn, query, overrides)
    explicit = WNID_RE.match(query.strip()) or SYNSET_NAME_RE.match(query.strip())
    if first_only or explicit:
        return [first]
    senses = wn.synsets(normalise(query), pos="n") or wn.synsets(unaccented(normalise(query)), pos="n")
    return [first] + [s for s in senses if s != first]


def synset_record(synset) -> dict:
    """One synset as ``devise wordnet lookup`` shows it (and as its JSON): wnid, name, lemmas, gloss, hypernyms."""
    path = max(synset.hypernym_paths(), key=len)  # the most detailed chain
    return {
        "wnid": wnid_of(synset),
        "synset": synset.name(),
        "label": display_label(synset),
        "lemmas": [lemma.name() for lemma in synset.lemmas()],
        "definition": synset.definition(),
        "hypernym_path": [s.name() for s in path[:-1]],  # root first, self excluded
    }


def short_definition(synset, width: int = 100) -> str:
    """The gloss, shortened on a word boundary to at most ``width`` characters."""
    return textwrap.shorten(synset.definition() or "", width=width, placeholder="…")


def read_label_list(name_or_path) -> list[str]:
    """Labels one a line from a file, or a shipped list by name (:data:`SHIPPED_LISTS`: ``imagenet1k``,
    ``imagenet21k``, ``imagenet-2hop``, ``imagenet-3hop``, ``imagenet-all``).

    ``#`` starts a comment; blank lines are skipped. An empty list is an error.
    """
    key = str(name_or_path)
    if key in SHIPPED_LISTS:
        source = resources.files("wordnet") / "data" / SHIPPED_LISTS[key]
        where = f"{key} ({SHIPPED_LISTS[key]})"
    else:
        source = Path(key).expanduser()
        where = str(source)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeviseError(
            f"{where}: no such file; give a path or one of {', '.join(SHIPPED_LISTS)}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviseError(f"{where}: cannot read label list ({exc.__class__.__name__})") from None
    labels = [_COMMENT_RE.sub("", line).strip() for line in text.splitlines()]
    labels = [label for label in labels if label and not label.startswith("#")]
    if not labels:
        raise DeviseError(f"{where}: no labels (expected one label per line)")
    return labels


IN1K_CLASS, IN1K_BELOW, IN1K_ABOVE = "class", "hyponym of a class", "hypernym of a class"


def imagenet1k_relation(wn, synset, in1k: set[str]) -> str:
    """How ``synset`` stands to the ImageNet-1K classes ``in1k`` (wnids): ``"class"``, ``"hyponym of a
    class"`` (a gosling is a goose), ``"hypernym of a class"`` (dog.n.01 is above 118 breeds), or ``""``.

    An ImageNet-trained backbone has seen the 1K classes and, through them, their hyponyms and
    hypernyms, so zero-shot figures on such concepts are reported apart (the photo and emoji
    datasets' strict views)."""
    if wnid_of(synset) in in1k:
        return IN1K_CLASS
    if any(wnid_of(a) in in1k for path in synset.hypernym_paths() for a in path):
        return IN1K_BELOW
    if any(wnid_of(d) in in1k for d in synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms())):
        return IN1K_ABOVE
    return ""
