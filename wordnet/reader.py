"""An offline NLTK WordNet reader.

devise never downloads WordNet at run time. :func:`load_wordnet` uses, in order:

1. NLTK's own ``corpora/wordnet`` when ``nltk.data`` finds one (``python -m nltk.downloader
   wordnet`` puts it there);
2. Debian's WordNet 3.0 (``apt-get install wordnet-base wordnet-sense-index``, files in
   ``/usr/share/wordnet`` or ``$DEVISE_WORDNET_DIR``), turned ONCE into an NLTK-layout corpus
   at ``<data home>/nltk_data/corpora/wordnet``.

Why a copy rather than pointing NLTK at ``/usr/share/wordnet``: NLTK 3.10 refuses to open
files outside ``nltk.data.path`` and symlinks that escape a corpus root, and its reader wants
a ``lexnames`` file that Debian does not ship (its 45 lines live only in the ``lexnames(5WN)``
man page). The copy is built in a temporary folder and renamed into place, so an interrupted
build never leaves a half corpus behind. The multilingual (OMW) part of NLTK is never touched:
the reader is created without an OMW reader.
"""
from __future__ import annotations

import functools
import gzip
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

from wordnet.base.errors import WordNetMissingError
from wordnet.base.files import names_target
from wordnet.base.home import data_home

ENV_WORDNET_DIR = "DEVISE_WORDNET_DIR"
DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
LEXNAMES_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")

HOW_TO_GET = (
    "run `apt-get install wordnet-base wordnet-sense-index` "
    "or `python -m nltk.downloader wordnet`"
)

# Files NLTK's WordNetCorpusReader opens (its ``_FILES``); every one must be in the corpus.
REQUIRED_FILES = (
    "cntlist.rev", "index.sense",
    "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
# Also copied when present (verb frames, sense counts); NLTK does not need them.
OPTIONAL_FILES = ("cntlist", "frames.vrb", "sents.vrb", "sentidx.vrb")

# WordNet 3.0's lexicographer files in number order, used only when the man page is not
# installed (Docker images often exclude /usr/share/man). Same text as lexnames(5WN).
LEXNAMES_30 = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food "
    "noun.group noun.location noun.motive noun.object noun.person noun.phenomenon "
    "noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative "
    "verb.weather adj.ppl"
).split()
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_LEXNAME_ROW = re.compile(r"^(\d\d)\t((?:noun|verb|adj|adv)\.\w+)\s*\t")

# nltk.data.path entries this module added (our own built corpora); they are not
# "NLTK's own" WordNet when looking for one.
_ADDED_PATHS: set[str] = set()


def debian_wordnet_dir() -> Path:
    """Where Debian's WordNet files are looked for: ``$DEVISE_WORDNET_DIR`` or /usr/share/wordnet."""
    env = os.environ.get(ENV_WORDNET_DIR)
    return Path(env).expanduser() if env else DEBIAN_WORDNET_DIR


def nltk_data_dir() -> Path:
    """The NLTK data folder inside the devise data home (holds ``corpora/wordnet``)."""
    return data_home() / "nltk_data"


def parse_lexnames(man_page: Path = LEXNAMES_MAN_PAGE) -> list[tuple[int, str, int]]:
    """Return ``(number, name, pos number)`` rows from the ``lexnames(5WN)`` man page.

    Falls back to the built-in WordNet 3.0 list when the page is not installed.
    """
    names: list[str] = []
    if man_page.is_file():
        with gzip.open(man_page, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                match = _LEXNAME_ROW.match(line)
                if match and int(match.group(1)) == len(names):
                    names.append(match.group(2))
    if len(names) != len(LEXNAMES_30):
        names = list(LEXNAMES_30)
    return [(i, name, _POS_NUMBER[name.split(".")[0]]) for i, name in enumerate(names)]


def _missing_error(source: Path, missing: list[str] | None = None) -> WordNetMissingError:
    if missing:
        return WordNetMissingError(
            f"WordNet in {source} is incomplete (missing {', '.join(missing)}): {HOW_TO_GET}"
        )
    return WordNetMissingError(
        f"WordNet not found (no NLTK corpora/wordnet, no WordNet files in {source}): {HOW_TO_GET}"
    )


def build_corpus(source: Path, target: Path) -> Path:
    """Copy Debian's WordNet files from ``source`` into an NLTK-layout corpus at ``target``.

    Files are copied, not linked (NLTK refuses symlinks that leave the corpus root), and
    ``lexnames`` is written from the man page. The folder appears under its final name
    only once complete; if another process won the race, its corpus is kept.
    """
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if len(missing) == len(REQUIRED_FILES):
        raise _missing_error(source)
    if missing:
        raise _missing_error(source, missing)
    with names_target(target):  # a full data home is named, not the source file being copied
        _copy_corpus(source, target)
    return target


def _copy_corpus(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        for name in REQUIRED_FILES + OPTIONAL_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        rows = parse_lexnames()
        (tmp / "lexnames").write_text("".join(f"{n:02d}\t{name}\t{pos}\n" for n, name, pos in rows))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "lexnames").is_file():  # not a finished corpus from a racing build
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _find_nltk_wordnet():
    """NLTK's own installed WordNet (folder or zip), ignoring corpora devise built."""
    import nltk

    paths = [p for p in nltk.data.path if str(p) not in _ADDED_PATHS]
    for resource in ("corpora/wordnet.zip/wordnet/", "corpora/wordnet"):
        try:
            return nltk.data.find(resource, paths=paths)
        except LookupError:
            continue
    return None


def _register_nltk_path(path: Path) -> None:
    import nltk

    text = str(path)
    _ADDED_PATHS.add(text)
    if text not in nltk.data.path:
        nltk.data.path.append(text)


def wordnet_root():
    """Return the corpus root to read: NLTK's own, else the one built from Debian's files."""
    root = _find_nltk_wordnet()
    if root is not None:
        return root
    nltk_dir = nltk_data_dir()
    target = nltk_dir / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        build_corpus(debian_wordnet_dir(), target)
    # NLTK opens corpus files only under nltk.data.path, and its reader looks the corpus
    # up again by name ("wordnet") while loading, so our folder must be on that path.
    _register_nltk_path(nltk_dir)
    import nltk

    return nltk.data.find("corpora/wordnet", paths=[str(nltk_dir)])


def _reader_class():
    """NLTK's ``WordNetCorpusReader`` with two load-time costs removed (cold load ~2x faster).

    * ``map_wn`` builds a WordNet-3.0-to-loaded-version sense map (two full passes over
      ``index.sense``) that only the multilingual OMW functions use; devise never does.
    * Files NLTK reads start to end once (the lemma indexes, exception lists, lexnames)
      are opened as plain text files once NLTK's own path checks have passed, instead of
      through its seekable stream reader, which is several times slower line by line.
      Files read by offset (``data.*``, ``index.sense``, ``cntlist.rev``) keep NLTK's reader.
    """
    import io

    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.data import FileSystemPathPointer

    sequential = {"lexnames", "index.noun", "index.verb", "index.adj", "index.adv",
                  "noun.exc", "verb.exc", "adj.exc", "adv.exc"}

    class OfflineWordNetReader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None

        def open(self, file):
            stream = super().open(file)  # NLTK's sandbox checks
            if file in sequential and isinstance(self._root, FileSystemPathPointer):
                stream.close()
                return io.open(self._root.join(file).path, encoding=self._encoding)
            return stream

    return OfflineWordNetReader


@functools.lru_cache(maxsize=1)
def load_wordnet():
    """Return a cached NLTK WordNet reader that works offline.

    Raises :class:`~wordnet.base.errors.WordNetMissingError` (one line: how to install one)
    when neither NLTK's own WordNet nor Debian's files are present. Clear the cache with
    ``load_wordnet.cache_clear()`` after changing ``$DEVISE_HOME``/``$DEVISE_WORDNET_DIR``.
    """
    root = wordnet_root()
    reader = _reader_class()
    with warnings.catch_warnings():
        # "The multilingual functions are not available": intended, OMW is never used.
        warnings.filterwarnings("ignore", message=".*multilingual.*")
        return reader(root, None)
