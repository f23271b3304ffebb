"""GNU GCIDE as plain training text.

GCIDE (Webster 1913 + WordNet 1.5 definitions; Debian's ``dict-gcide``) is the largest
English text a machine without network access usually has, so it is the bulk of the
skip-gram corpus. Its dictd file is dictzip, which is gzip-readable; its markup
(character entities, headword spellings, etymologies, source tags) is stripped here.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Callable, Iterator

from wordnet.base.errors import VectorsError

GCIDE_PATH = Path("/usr/share/dictd/gcide.dict.dz")

# GCIDE (dictd) markup: character entities like [e^] ['e] [imac]; headword spellings
# \Leop"ard\ with a pronunciation in parentheses; bracketed etymologies and sources
# ([1913 Webster], [Obs.]); {cross references} keep their text.
_GCIDE_NAMED = {
    "imac": "i", "aum": "a", "add": "a", "asl": "a", "udd": "u", "eth": "th", "thorn": "th",
    "yogh": "y", "AE": "ae", "OE": "oe", "'E": "e", "root": "", "deg": "", "sect": "",
    "dsdot": "", "bprime": "",
}
_GCIDE_ENTITY = re.compile(r"\[([^\[\]\s]{1,6})\]")
_GCIDE_ACCENTED = re.compile(r"[^A-Za-z0-9]*([a-z]{1,2})[^A-Za-z0-9]*")
_GCIDE_HEADWORD = re.compile(r"\\[^\\\n]*\\(?:\s*\([^)\n]*\))?")
_GCIDE_BRACKETS = re.compile(r"\[[^\[\]]*\]")


def _entity(m: re.Match) -> str:
    inner = m.group(1)
    if inner in _GCIDE_NAMED:
        return _GCIDE_NAMED[inner]
    accented = _GCIDE_ACCENTED.fullmatch(inner)
    return accented.group(1) if accented else m.group(0)


def strip_gcide_markup(text: str) -> str:
    """Plain text from GCIDE dictd markup (entities resolved, etymologies/sources dropped)."""
    text = _GCIDE_ENTITY.sub(_entity, text)
    text = _GCIDE_HEADWORD.sub(" ", text)
    text = _GCIDE_BRACKETS.sub(" ", text)
    return text.replace("{", "").replace("}", "")


def gcide_sentences(path: Path, analyse: Callable[[str], list[str]],
                    progress: Callable | None = None) -> Iterator[list[str]]:
    """One token list per paragraph of GCIDE, markup stripped; ``analyse`` turns text into tokens.

    Paragraphs with fewer than two tokens and dictd's ``00-database-*`` headers are skipped;
    ``progress("GCIDE", done, total)`` counts paragraphs.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise VectorsError(f"cannot read GCIDE {path} ({exc}); reinstall dict-gcide or pass --no-gcide") from None
    paragraphs = re.split(r"\n\s*\n", strip_gcide_markup(raw))
    total = len(paragraphs)
    for i, para in enumerate(paragraphs):
        if progress and i % 20000 == 0:
            progress("GCIDE", i, total)
        if para.lstrip().startswith("00-database-"):
            continue
        tokens = analyse(para)
        if len(tokens) >= 2:
            yield tokens
    if progress:
        progress("GCIDE", total, total)
