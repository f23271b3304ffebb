"""Image indexes: a photo collection embedded once into the joint space, searched many times.

DeViSE puts images and label vectors in one space, so a folder that was never labelled
can be searched by a word (its word vector) or by another image (its embedding). An
index is an HDF5 file holding, per image, its absolute path, size and mtime and its
unit float32 embedding, plus the identity of the model that made the embeddings (the
SHA-256 of the bundle's ``model.keras``) and the word vectors that model was trained
on, so text queries later need no Keras at all and an index is never searched with the
wrong model.

The file is laid out for millions of photos: the embeddings are one contiguous,
uncompressed dataset, so :class:`IndexFile` memory-maps them and a search scores them
a block at a time (:mod:`models.index.scan`) without reading them into memory, and
reads only the paths of the rows it returns. Rows are sorted by path (component by
component, as ``sorted()`` orders a folder of ``Path`` objects), so two indexes of the
same files hold the same rows in the same order however they were built: in one
process, in shards merged afterwards (:mod:`models.index.merge`), or over several
incremental runs (:mod:`models.index.update`). Every write replaces the whole file
atomically (:func:`wordnet.base.files.atomic_write`) and gives it a new ``generation``,
which the approximate index kept beside it (:mod:`models.index.approx`) records.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from models.index.scan import BLOCK_BYTES, MappedRows, row_blocks, scan_top_k
from wordnet.base.errors import DeviseError
from wordnet.base.files import atomic_write
from wordnet.vocab import plain_attr

FORMAT = "devise-image-index"
FORMAT_VERSION = 1


class ImageIndexError(DeviseError):
    """An image index that is missing, corrupt, empty or made by another model."""


def short_checksum(checksum: str) -> str:
    return checksum.split(":")[-1][:12]


def row_key(path: str) -> str:
    """Sort key of a row: its path compared component by component (``os.sep`` sorts first)."""
    return path.replace(os.sep, "\0")


class _Identity:
    """What every index (in memory or on disk) says about itself through its attributes."""

    attrs: dict

    @property
    def location(self) -> str:
        return str(self.attrs.get("path", "the index"))

    @property
    def generation(self) -> str | None:
        """Which version of the file this is (new at every write), or None for an index not read from a file."""
        return self.attrs.get("generation")

    def check_model(self, checksum: str, model_path: str | os.PathLike) -> None:
        """Raise :class:`ImageIndexError` unless the embeddings came from this model."""
        built = self.attrs.get("model_checksum", "")
        if built != checksum:
            raise ImageIndexError(
                f"{self.location} was built with another model ({self.attrs.get('model_path', '?')}, "
                f"{short_checksum(built)}), not {model_path} ({short_checksum(checksum)}); search it with that "
                f"model or re-index with --rebuild")

    @property
    def method(self) -> str:
        """The ranking method whose embeddings the index holds (:meth:`models.bundle.Bundle.run_batches`);
        indexes written before it was recorded hold the DeViSE head's."""
        return str(self.attrs.get("method") or "devise")

    def check_method(self, method: str) -> None:
        """Raise :class:`ImageIndexError` unless the embeddings were made with ``method`` (never mix spaces)."""
        if self.method != method:
            raise ImageIndexError(
                f"{self.location} holds {self.method} embeddings, not {method}; index it again with --rebuild "
                f"(or search it with the method it was built with)")

    def require_images(self) -> None:
        """Raise :class:`ImageIndexError` if there is nothing to search."""
        if not len(self):
            raise ImageIndexError(f"{self.location} holds no images; add some with "
                                  f"`devise index PHOTOS --model M --output {self.location}`")

    @property
    def vectors(self):
        """The unit embeddings, under the name :mod:`wordnet.ann` reads."""
        return self.embeddings

    def search(self, query: np.ndarray, k: int, approx: bool = False, on_build=None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and cosine scores of the ``k`` images nearest ``query``, best first.

        Exact by default: every embedding is scored, a block at a time, with a running
        top-k. With ``approx`` the faiss inverted-file index kept beside the index file
        (:mod:`models.index.approx`; built on first use, ``on_build(n)`` said first)
        proposes candidates that are re-scored exactly.
        """
        idx, scores = self.search_many(np.asarray(query, np.float32).reshape(1, -1), k, approx, on_build)
        return idx[0], scores[0]

    def search_many(self, queries: np.ndarray, k: int, approx: bool = False, on_build=None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for several queries at once (one pass over the embeddings): (n, k) rows and scores."""
        self.require_images()
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        dim = self.embeddings.shape[1]
        if queries.shape[1] != dim:
            raise ImageIndexError(f"the query is {queries.shape[1]}-d but {self.location} holds {dim}-d embeddings")
        if approx:
            from models.index.approx import approximate_index

            return approximate_index(self, on_build=on_build).search(queries, min(k, len(self)))
        return scan_top_k(queries, self.embeddings, min(k, len(self)))


@dataclass
class ImageIndex(_Identity):
    """An index in memory: rows of (path, size, mtime_ns, unit embedding), and the attributes naming the model."""

    paths: list[str]
    sizes: np.ndarray
    mtimes: np.ndarray
    embeddings: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.paths)
        self.sizes = np.asarray(self.sizes, np.int64).reshape(n)
        self.mtimes = np.asarray(self.mtimes, np.int64).reshape(n)
        emb = np.asarray(self.embeddings, np.float32)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ImageIndexError(f"{n} paths but embeddings of shape {emb.shape}")
        self.embeddings = np.ascontiguousarray(emb)  # unit rows (update_index normalises new ones)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.attrs.get("dim", self.embeddings.shape[1]))

    def paths_at(self, rows) -> list[str]:
        return [self.paths[int(i)] for i in rows]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically (rows as they are; :func:`write_index`)."""
        write_index(path, self.paths, self.sizes, self.mtimes, self.embeddings, self.attrs)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImageIndex":
        """Read a whole index into memory; one :class:`ImageIndexError` line if it is missing, corrupt or
        another file. (Searching needs no such load: see :class:`IndexFile`.)"""
        with IndexFile.open(path) as f:
            return f.read()


class IndexFile(_Identity):
    """An index file opened for reading: attributes at once, embeddings memory-mapped, other columns on demand.

    The HDF5 file stays open, so the rows read later come from the same file even if
    an ``index`` run replaces it meanwhile.
    """

    def __init__(self, path: Path, h5, attrs: dict, n: int, dim: int) -> None:
        self.path, self._h5, self.attrs = Path(path), h5, attrs
        self._n, self._dim = int(n), int(dim)
        self._cache: dict = {}

    @classmethod
    def open(cls, path: str | os.PathLike) -> "IndexFile":
        import h5py

        path = Path(path)
        if not path.is_file():
            raise ImageIndexError(f"{path}: no such index; build one with "
                                  f"`devise index PHOTOS --model M --output {path}`")
        f = None
        try:
            f = h5py.File(path, "r")
            if f.attrs.get("format") != FORMAT:
                raise ImageIndexError(f"{path} is not a devise image index; build one with "
                                      f"`devise index PHOTOS --model M --output INDEX`")
            n, emb = len(f["paths"]), f["embeddings"]
            if not (n == len(f["sizes"]) == len(f["mtimes"]) == emb.shape[0]) or emb.ndim != 2:
                raise ImageIndexError(f"{path} is corrupt (columns of different lengths); rebuild it with --rebuild")
            attrs = {k: plain_attr(v) for k, v in f.attrs.items() if k not in ("format", "format_version")}
            dim = emb.shape[1]
        except ImageIndexError:
            if f is not None:
                f.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            if f is not None:
                f.close()
            raise ImageIndexError(f"{path} is corrupt or not an image index ({exc.__class__.__name__}); "
                                  f"rebuild it with `devise index PHOTOS --model M --output {path} "
                                  f"--rebuild`") from None
        attrs["path"] = str(path)
        if isinstance(attrs.get("sources"), str):
            attrs["sources"] = json.loads(attrs["sources"])
        return cls(path, f, attrs, n, dim)

    def __enter__(self) -> "IndexFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        emb = self._cache.pop("embeddings", None)
        if isinstance(emb, MappedRows):
            emb.close()
        self._h5.close()

    def __len__(self) -> int:
        return self._n

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def generation(self) -> str:
        """The ``generation`` attribute; for a file written before it existed, its size and mtime."""
        if self.attrs.get("generation"):
            return self.attrs["generation"]
        st = os.fstat(self._h5.id.get_vfd_handle()) if os.name == "posix" else self.path.stat()
        return f"file-{st.st_size}-{st.st_mtime_ns}"

    @property
    def embeddings(self):
        """(n, dim) unit rows: a :class:`~models.index.scan.MappedRows` over the file (never read whole)."""
        if "embeddings" not in self._cache:
            ds = self._h5["embeddings"]
            offset = ds.id.get_offset() if ds.chunks is None and ds.compression is None else None
            matrix = None
            if offset is not None and ds.dtype == np.dtype(np.float32) and self._n:
                fileno = self._h5.id.get_vfd_handle() if os.name == "posix" else None  # the inode h5py read
                try:
                    matrix = MappedRows(self.path, offset, ds.shape, fileno=fileno)
                except (OSError, ValueError):  # a file system that cannot map files
                    matrix = None
            if matrix is None:  # empty, written by another tool (chunked, compressed), or not mappable: read it
                matrix = np.asarray(ds[()], np.float32).reshape(self._n, self._dim)
            self._cache["embeddings"] = matrix
        return self._cache["embeddings"]

    def detach_embeddings(self):
        """:attr:`embeddings`, left open when this file is closed (the caller closes it)."""
        emb = self.embeddings
        del self._cache["embeddings"]
        return emb

    @property
    def paths(self) -> list[str]:
        if "paths" not in self._cache:
            self._cache["paths"] = [_text(p) for p in self._h5["paths"][()]]
        return self._cache["paths"]

    @property
    def sizes(self) -> np.ndarray:
        return np.asarray(self._h5["sizes"][()], np.int64)

    @property
    def mtimes(self) -> np.ndarray:
        return np.asarray(self._h5["mtimes"][()], np.int64)

    def paths_at(self, rows) -> list[str]:
        """The paths of ``rows`` (in that order), reading only those."""
        rows = np.asarray(rows, np.int64)
        if "paths" in self._cache or not len(rows):
            return [self.paths[int(i)] for i in rows]
        uniq = np.unique(rows)
        found = dict(zip(uniq.tolist(), (_text(p) for p in self._h5["paths"][uniq])))
        return [found[int(i)] for i in rows]

    def read(self) -> ImageIndex:
        return ImageIndex(self.paths, self.sizes, self.mtimes, np.asarray(self.embeddings), dict(self.attrs))


def write_index(path: str | os.PathLike, paths: Sequence[str], sizes, mtimes, embeddings, attrs: dict,
                block_bytes: int = BLOCK_BYTES) -> str:
    """Write an index file atomically; returns its new ``generation``.

    ``embeddings`` is anything with a ``shape`` that slices into row blocks (an array, a
    :class:`~models.index.scan.MappedRows`, a gather over other indexes): it is copied a
    block at a time into one contiguous dataset, so writing never holds it all in memory.
    """
    import h5py

    path, n = Path(path), len(paths)
    dim = int(embeddings.shape[1])
    generation = uuid.uuid4().hex
    meta = {k: v for k, v in attrs.items() if k not in ("path", "generation")}
    meta.update(dim=dim, generation=generation,
                updated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    with atomic_write(path, "w+b") as fh, h5py.File(fh, "w") as f:  # see atomic_write
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        for k, v in meta.items():
            f.attrs[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
        f.create_dataset("paths", data=list(paths), shape=(n,), dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("sizes", data=np.asarray(sizes, np.int64).reshape(n))
        f.create_dataset("mtimes", data=np.asarray(mtimes, np.int64).reshape(n))
        ds = f.create_dataset("embeddings", shape=(n, dim), dtype=np.float32)  # contiguous: memory-mappable
        for start, rows in row_blocks(embeddings, block_bytes):
            ds[start:start + len(rows)] = np.asarray(rows, np.float32)
    return generation


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def check_output(path: str | os.PathLike, rebuild: bool) -> "IndexFile | None":
    """The index already at ``path`` to update, opened (None if there is none, or with ``rebuild``).

    ``rebuild`` replaces an index, even a damaged one, but never another kind of file:
    a folder, or an HDF5 file of another format (a vocabulary, say), is refused.
    """
    import h5py

    path = Path(path)
    if path.is_dir():
        raise ImageIndexError(f"{path} is a folder; --output names the index file to write (e.g. photos.h5)")
    if not path.exists():
        return None
    if not rebuild:
        return IndexFile.open(path)
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
    except OSError:
        fmt = None
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if fmt is not None and fmt != FORMAT or (fmt is None and path.suffix.lower() not in (".h5", ".hdf5")):
        raise ImageIndexError(f"{path} exists and is not a devise image index; refusing to replace it, "
                              f"choose another --output")
    return None
