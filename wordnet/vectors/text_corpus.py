"""The text skip-gram vectors are trained on, built offline from what the machine has.

DeViSE needs a skip-gram space in which related labels lie close together. Without
network access we cannot fetch Wikipedia or GoogleNews, so the corpus is built from
local text: every WordNet synset (its lemma names, its hypernyms' names, its gloss and
examples; always there) and, when Debian's ``dict-gcide`` is installed, GNU GCIDE
(Webster 1913 + WordNet definitions), with its markup stripped. Multi-word lemmas
become phrase tokens (``snow_leopard``) everywhere, by a greedy longest match, so that
labels like "snow leopard" get their own vector.

The corpus (one sentence per line, tokens separated by spaces) is cached in the data
home under a name derived from its sources; :mod:`wordnet.vectors.skipgram` trains on it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from wordnet.base.errors import VectorsError
from wordnet.base.files import atomic_write
from wordnet.base.home import data_home
from wordnet.vectors.gcide import GCIDE_PATH, gcide_sentences

CORPUS_VERSION = 2

# progress(description, completed, total): called from time to time; the CLI draws it.
Progress = Callable[[str, int, "int | None"], None]

_TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; hyphenated words stay whole, a possessive ``'s`` is dropped."""
    return [t[:-2] if t.endswith("'s") else t for t in _TOKEN.findall(text.lower())]


class PhraseJoiner:
    """Joins runs of words that spell a known multi-word lemma into one phrase token.

    Greedy longest match, left to right: ``a snow leopard cub`` -> ``a snow_leopard cub``.
    The phrases live in a word trie, so a token costs one dict lookup unless it starts
    a phrase, and then one more per matching word.
    """

    _END = ""  # trie key marking "a phrase ends here" (never a token)

    def __init__(self, lemma_names: Iterable[str]):
        self.trie: dict = {}
        self.size = 0
        for name in lemma_names:
            if "_" not in name:
                continue
            words = tokenize(name.replace("_", " "))
            if len(words) < 2:
                continue
            node = self.trie
            for w in words:
                node = node.setdefault(w, {})
            if self._END not in node:
                node[self._END] = name.lower()
                self.size += 1

    def __len__(self) -> int:
        return self.size

    def __call__(self, tokens: Sequence[str]) -> list[str]:
        out, i, n, trie, end = [], 0, len(tokens), self.trie, self._END
        while i < n:
            node = trie.get(tokens[i])
            best, best_j, j = None, i, i
            while node is not None:
                j += 1
                if end in node and j - i >= 2:
                    best, best_j = node[end], j
                if j >= n:
                    break
                node = node.get(tokens[j])
            if best is None:
                out.append(tokens[i])
                i += 1
            else:
                out.append(best)
                i = best_j
        return out


def lemma_tokens(synsets: Iterable) -> set[str]:
    """Corpus tokens naming the noun synsets given: lemma names and the words of phrases."""
    out: set[str] = set()
    for s in synsets:
        if s.pos() != "n":
            continue
        for name in s.lemma_names():
            out.add(name.lower())
            if "_" in name:
                out.update(tokenize(name.replace("_", " ")))
    return out


def noun_phrase_joiner(synsets: Iterable) -> PhraseJoiner:
    """A :class:`PhraseJoiner` for the multi-word lemma names of the noun synsets given."""
    return PhraseJoiner(n for s in synsets if s.pos() == "n" for n in s.lemma_names())


# -- sources -------------------------------------------------------------------
def wordnet_sentences(synsets: Iterable, joiner: PhraseJoiner) -> Iterator[list[str]]:
    """One sentence per synset: lemma names, hypernym lemma names, gloss, examples."""
    for s in synsets:
        words = [n.lower() for n in s.lemma_names()]
        for h in s.hypernyms() + s.instance_hypernyms():
            words.extend(n.lower() for n in h.lemma_names())
        text = " ".join([s.definition()] + list(s.examples()))
        words.extend(joiner(tokenize(text)))
        yield words


def text_file_sentences(path: Path, joiner: PhraseJoiner) -> Iterator[list[str]]:
    """Sentences from a plain UTF-8 text file (one per non-empty line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                tokens = joiner(tokenize(line))
                if tokens:
                    yield tokens
    except OSError as exc:
        raise VectorsError(f"cannot read text file {path} ({exc.strerror or exc})") from None


# -- the corpus ------------------------------------------------------------------
@dataclass
class CorpusStats:
    path: str
    sentences: int
    tokens: int
    phrase_tokens: int
    sources: list
    seconds: float


def _source_key(wn, synsets, gcide: Path | None, extra: Sequence[Path]) -> tuple[str, list]:
    sources = [f"wordnet {wn.get_version()}" + ("" if synsets is None else f" ({len(synsets)} synsets)")]
    parts = [f"v{CORPUS_VERSION}", sources[0]]
    if synsets is not None:
        parts.append(hashlib.sha256(" ".join(s.name() for s in synsets).encode()).hexdigest())
    for p in ([gcide] if gcide else []) + list(extra):
        st = Path(p).stat()
        sources.append(str(p))
        parts.append(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12], sources


def corpus_paths(key: str) -> tuple[Path, Path]:
    folder = data_home() / "vectors"
    return folder / f"corpus-{key}.txt", folder / f"corpus-{key}.json"


def build_corpus(
    wn, *, synsets: Sequence | None = None, gcide: Path | None = GCIDE_PATH, extra: Sequence[Path] = (),
    rebuild: bool = False, progress: Progress | None = None,
) -> CorpusStats:
    """Write (or reuse) the cached training corpus; returns its statistics.

    ``synsets`` defaults to every WordNet synset; ``gcide`` is used only when the file
    exists; ``extra`` plain-text files are added.
    """
    gcide = Path(gcide) if gcide and Path(gcide).is_file() else None
    extra = [Path(p) for p in extra]
    for p in extra:
        if not p.is_file():
            raise VectorsError(f"text file {p} does not exist")
    synsets = None if synsets is None else list(synsets)
    key, sources = _source_key(wn, synsets, gcide, extra)
    text_path, meta_path = corpus_paths(key)
    if not rebuild and text_path.is_file() and meta_path.is_file():
        try:
            return CorpusStats(**json.loads(meta_path.read_text()))
        except (ValueError, TypeError):
            pass  # damaged metadata: rebuild
    t0 = time.perf_counter()
    if synsets is None:
        synsets = list(wn.all_synsets())
    n_synsets = len(synsets)
    # phrases are noun lemmas only: labels are nouns, and verb/adverb lemmas such as
    # "get_to" or "at_last" would glue common words together everywhere
    joiner = noun_phrase_joiner(synsets)
    n_sent = n_tok = n_phrase = 0
    streams: list[tuple[str, Iterable[list[str]]]] = [("WordNet", wordnet_sentences(synsets, joiner))]
    if gcide:
        streams.append(("GCIDE", gcide_sentences(gcide, lambda text: joiner(tokenize(text)), progress)))
    streams += [(p.name, text_file_sentences(p, joiner)) for p in extra]
    with atomic_write(text_path, "w", encoding="utf-8") as out:
        for name, sentences in streams:
            for i, tokens in enumerate(sentences):
                # gensim truncates sentences at 10,000 tokens: split long ones
                for j in range(0, len(tokens), 10000):
                    out.write(" ".join(tokens[j:j + 10000]))
                    out.write("\n")
                n_sent += 1
                n_tok += len(tokens)
                n_phrase += sum("_" in t for t in tokens)
                if progress and name == "WordNet" and i % 5000 == 0:
                    progress("WordNet", i, n_synsets)
            if progress and name == "WordNet":
                progress("WordNet", n_synsets, n_synsets)
    stats = CorpusStats(str(text_path), n_sent, n_tok, n_phrase, sources, round(time.perf_counter() - t0, 1))
    with atomic_write(meta_path, "w") as fh:
        json.dump(asdict(stats), fh, indent=1)
    return stats


class CorpusFile:
    """Re-iterable sentences of a corpus file, reporting progress in tokens."""

    def __init__(self, path: str | os.PathLike, progress: Progress | None = None, label: str = "training",
                 total: int | None = None):
        self.path, self.progress, self.label, self.total = Path(path), progress, label, total
        self.done = 0

    def __iter__(self) -> Iterator[list[str]]:
        with open(self.path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                tokens = line.split()
                self.done += len(tokens)
                if self.progress and i % 2000 == 0:
                    self.progress(self.label, self.done, self.total)
                yield tokens
