"""Word vectors from any common file format, and the default vectors' location.

Users bring vectors in many formats (GoogleNews ``.bin``, GloVe ``.txt``, fastText
``.bin``/``.vec``, gensim ``.kv``); :func:`load_vectors` looks at the file's first bytes
rather than trusting its suffix, and hands the file to the matching gensim loader.
:func:`file_checksum` identifies a vectors file (cached), so vocabularies and bundles
can tell whether they were built with the same vectors.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from wordnet.base.errors import VectorsError
from wordnet.base.files import atomic_write, sha256_file
from wordnet.base.home import data_home
from wordnet.vectors.words import case_variants

DEFAULT_VECTORS_NAME = "skipgram-300.kv"
FASTTEXT_MAGIC = np.int32(793712314).tobytes()  # first 4 bytes of a fastText .bin
_SNIFF_BYTES = 1 << 16
_TRIED = "gensim .kv, fastText .bin, word2vec binary, word2vec/GloVe text"


def default_vectors_path() -> Path:
    """Where ``devise vectors train`` puts the default vectors: ``<data home>/vectors/skipgram-300.kv``."""
    return data_home() / "vectors" / DEFAULT_VECTORS_NAME


def resolve_vectors(path: str | os.PathLike | None) -> Path:
    """The vectors file to use: ``path`` if given, else the trained default vectors."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise VectorsError(f"vectors file {p} does not exist; pass --vectors FILE or run `devise vectors train`")
        return p
    p = default_vectors_path()
    if not p.is_file():
        raise VectorsError("no word vectors: run `devise vectors train` or pass --vectors FILE")
    return p


# -- format detection ----------------------------------------------------------
def detect_format(path: str | os.PathLike) -> str:
    """Name the format of a vectors file from its content.

    Returns one of ``"kv"`` (gensim pickle), ``"fasttext"``, ``"word2vec-binary"``,
    ``"word2vec-text"`` (header line ``count dim``) or ``"glove-text"`` (no header);
    raises :class:`VectorsError` naming the file and the formats tried.
    """
    path = Path(path)
    if not path.is_file():
        raise VectorsError(f"vectors file {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if head[:1] == b"\x80":  # pickle protocol >= 2: gensim SaveLoad (.kv, .model)
        return "kv"
    if head[:4] == FASTTEXT_MAGIC:
        return "fasttext"
    if head[:2] == b"\x1f\x8b":  # gzip: gensim decompresses by suffix
        if path.suffix != ".gz":
            raise VectorsError(f"{path} is gzip-compressed; rename it to end in .gz so it can be read")
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except (OSError, EOFError):
            raise VectorsError(f"{path} is a damaged gzip file (tried {_TRIED})") from None
    kind = _sniff_word2vec(head)
    if kind is None:
        raise VectorsError(f"{path} is not a word-vector file (tried {_TRIED})")
    return kind


def _sniff_word2vec(head: bytes) -> str | None:
    """word2vec binary/text with header, or GloVe-style text without one; None if neither."""
    first, sep, rest = head.partition(b"\n")
    if not sep and len(head) >= _SNIFF_BYTES:
        return None
    fields = first.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        dim = int(fields[1])
        if dim <= 0:
            return None
        line = rest.partition(b"\n")[0]
        if _is_text_vector_line(line, dim):
            return "word2vec-text"
        # binary: "word " then dim little-endian float32s
        word, space, _ = rest.partition(b" ")
        if space and 0 < len(word) < 1000 and len(rest) >= len(word) + 1 + min(4 * dim, 64):
            return "word2vec-binary"
        return None
    if len(fields) >= 3 and _is_text_vector_line(first, len(fields) - 1):
        return "glove-text"
    return None


def _is_text_vector_line(line: bytes, dim: int) -> bool:
    fields = line.split()
    if len(fields) != dim + 1:
        return False
    try:
        fields[0].decode("utf-8")
        [float(f) for f in fields[1:]]
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def load_vectors(path: str | os.PathLike):
    """Load word vectors in any supported format as gensim ``KeyedVectors``.

    The format comes from the file's content (see :func:`detect_format`); a full gensim
    Word2Vec/FastText model saved with ``.save()`` gives its ``.wv``.
    """
    from gensim.models import KeyedVectors

    path = Path(path).expanduser()
    kind = detect_format(path)
    try:
        if kind == "kv":
            obj = KeyedVectors.load(str(path))
            kv = getattr(obj, "wv", obj)
        elif kind == "fasttext":
            from gensim.models.fasttext import load_facebook_vectors

            kv = load_facebook_vectors(str(path))
        else:
            kv = KeyedVectors.load_word2vec_format(
                str(path),
                binary=kind == "word2vec-binary",
                no_header=kind == "glove-text",
                unicode_errors="replace",
            )
    except VectorsError:
        raise
    except Exception as exc:  # noqa: BLE001 - gensim/pickle raise many types for damaged files
        raise VectorsError(
            f"{path} looks like {kind} vectors but could not be read ({_one_line(exc)}); "
            f"the file is damaged or truncated (tried {_TRIED})"
        ) from None
    try:  # a damaged pickle can give a KeyedVectors whose insides are missing
        n = len(kv) if isinstance(kv, KeyedVectors) else 0
        shape = kv.vectors.shape if n else None
    except Exception as exc:  # noqa: BLE001
        raise VectorsError(f"{path} is damaged: it unpickles but holds no usable vectors ({_one_line(exc)})") from None
    if not n:
        raise VectorsError(f"{path} holds no word vectors (tried {_TRIED})")
    if shape is None or len(shape) != 2 or shape[0] < n:
        raise VectorsError(f"{path} is damaged: {n} words but vectors of shape {shape}")
    return kv


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


# -- checksums -----------------------------------------------------------------
_CHECKSUMS: dict[tuple, str] = {}


def file_checksum(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a file (and of gensim's ``<file>.*.npy`` side files), streamed.

    Cached by (path, size, mtime) in the process and in ``$DEVISE_HOME/checksums.json``,
    so a vectors file of hundreds of MB is hashed once, not on every command.
    """
    path = Path(path).resolve()
    parts = [path] + sorted(path.parent.glob(glob.escape(path.name) + ".*.npy"))
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in parts)
    if key in _CHECKSUMS:
        return _CHECKSUMS[key]
    disk_key = json.dumps(key)
    known = _read_checksum_cache()
    if disk_key in known:
        _CHECKSUMS[key] = known[disk_key]
        return known[disk_key]
    h = hashlib.sha256()
    for p in parts:
        sha256_file(p, h)
    digest = "sha256:" + h.hexdigest()
    _CHECKSUMS[key] = digest
    _write_checksum_cache({**known, disk_key: digest})
    return digest


def _checksum_cache_path() -> Path:
    return data_home() / "checksums.json"


def _read_checksum_cache() -> dict:
    try:
        data = json.loads(_checksum_cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: only a cache, rebuilt as files are hashed


def _write_checksum_cache(entries: dict) -> None:
    try:
        with atomic_write(_checksum_cache_path(), "w") as fh:
            json.dump(dict(list(entries.items())[-256:]), fh)
    except OSError:
        pass  # a read-only data home just means hashing again next time


def nearest_words(kv, word: str, topn: int = 10) -> list[tuple[str, float]]:
    """The ``topn`` nearest vocabulary words of ``word`` (case variants tried); [] if unknown."""
    for t in case_variants("_".join(word.split())):
        if t in kv.key_to_index:
            return [(w, float(s)) for w, s in kv.most_similar(t, topn=topn)]
    return []
