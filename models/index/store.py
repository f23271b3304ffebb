"""Image indexes: a photo collection embedded once into the joint space, searched many times.

DeViSE puts images and label vectors in one space, so a folder that was never labelled
can be searched by a word (its word vector) or by another image (its embedding). An
index is an HDF5 file holding, per image, its absolute path, size and mtime and its
unit float32 embedding, plus the identity of the model that made the embeddings (the
SHA-256 of the bundle's ``model.keras``) and the word vectors that model was trained
on, so text queries later need no Keras at all and an index is never searched with the
wrong model.

Re-indexing is incremental: a file whose path, size and mtime are unchanged keeps its
stored embedding; new and changed files are embedded; files no longer found drop out.
Building and updating (only new or changed files are embedded) is in
:mod:`models.index.update`; files are always written through :func:`wordnet.base.files.atomic_path`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wordnet.base.errors import DeviseError
from wordnet.base.files import atomic_path
from wordnet.vocab import top_k

FORMAT = "devise-image-index"
FORMAT_VERSION = 1


class ImageIndexError(DeviseError):
    """An image index that is missing, corrupt, empty or made by another model."""


def model_checksum(bundle_path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a bundle's ``model.keras``: the identity of the embeddings it makes."""
    from models.bundle import MODEL_FILE

    model_file = Path(bundle_path).expanduser() / MODEL_FILE
    if not model_file.is_file():
        raise ImageIndexError(f"{bundle_path}: no such model bundle (no {MODEL_FILE}); "
                              f"give the --model the index was built with")
    h = hashlib.sha256()
    with open(model_file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _short(checksum: str) -> str:
    return checksum.split(":")[-1][:12]


@dataclass
class ImageIndex:
    """Rows of (path, size, mtime_ns, unit embedding), and the attributes naming the model."""

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

    @property
    def location(self) -> str:
        return str(self.attrs.get("path", "the index"))

    def check_model(self, checksum: str, model_path: str | os.PathLike) -> None:
        """Raise :class:`ImageIndexError` unless the embeddings came from this model."""
        built = self.attrs.get("model_checksum", "")
        if built != checksum:
            raise ImageIndexError(
                f"{self.location} was built with another model ({self.attrs.get('model_path', '?')}, "
                f"{_short(built)}), not {model_path} ({_short(checksum)}); search it with that model "
                f"or re-index with --rebuild")

    def require_images(self) -> None:
        """Raise :class:`ImageIndexError` if there is nothing to search."""
        if not len(self):
            raise ImageIndexError(f"{self.location} holds no images; add some with "
                                  f"`devise index PHOTOS --model M --output {self.location}`")

    @property
    def vectors(self) -> np.ndarray:
        """The unit embeddings, under the name :func:`wordnet.ann.vector_index` reads."""
        return self.embeddings

    def search(self, query: np.ndarray, k: int, approx: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Rows and cosine scores of the ``k`` images nearest ``query``, best first.

        Exact by default: one matrix product and a top-k over every image. With
        ``approx`` a faiss inverted-file index (:mod:`wordnet.ann`, cached in the data home per
        index file version) proposes candidates that are re-scored exactly.
        """
        self.require_images()
        query = np.asarray(query, np.float32).reshape(1, -1)
        if query.shape[1] != self.embeddings.shape[1]:
            raise ImageIndexError(f"the query is {query.shape[1]}-d but {self.location} holds "
                                  f"{self.embeddings.shape[1]}-d embeddings")
        if approx:
            from wordnet.ann import vector_index

            idx, scores = vector_index(self).search(query, min(k, len(self)))
        else:
            idx, scores = top_k(query, self.embeddings, min(k, len(self)))
        return idx[0], scores[0]

    # -- HDF5 ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically."""
        import h5py

        path = Path(path)
        attrs = {k: v for k, v in self.attrs.items() if k != "path"}
        attrs["dim"] = int(self.embeddings.shape[1])
        attrs["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                for k, v in attrs.items():
                    f.attrs[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
                f.create_dataset("paths", data=list(self.paths), dtype=h5py.string_dtype("utf-8"))
                f.create_dataset("sizes", data=self.sizes)
                f.create_dataset("mtimes", data=self.mtimes)
                f.create_dataset("embeddings", data=self.embeddings)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImageIndex":
        """Read an index; one :class:`ImageIndexError` line if it is missing, corrupt or another file."""
        import h5py

        path = Path(path)
        if not path.is_file():
            raise ImageIndexError(f"{path}: no such index; build one with "
                                  f"`devise index PHOTOS --model M --output {path}`")
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise ImageIndexError(f"{path} is not a devise image index; build one with "
                                          f"`devise index PHOTOS --model M --output INDEX`")
                paths = [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in f["paths"][()]]
                sizes, mtimes = f["sizes"][()], f["mtimes"][()]
                emb = np.asarray(f["embeddings"][()], np.float32)
                attrs = {k: _plain(v) for k, v in f.attrs.items() if k not in ("format", "format_version")}
        except ImageIndexError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ImageIndexError(f"{path} is corrupt or not an image index ({exc.__class__.__name__}); "
                                  f"rebuild it with `devise index PHOTOS --model M --output {path} --rebuild`") from None
        if not (len(paths) == len(sizes) == len(mtimes) == len(emb)) or emb.ndim != 2:
            raise ImageIndexError(f"{path} is corrupt (columns of different lengths); rebuild it with --rebuild")
        attrs["path"] = str(path)
        if isinstance(attrs.get("sources"), str):
            attrs["sources"] = json.loads(attrs["sources"])
        return cls(paths, sizes, mtimes, emb, attrs)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_output(path: str | os.PathLike, rebuild: bool) -> "ImageIndex | None":
    """The index already at ``path`` to update (None if there is none, or with ``rebuild``).

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
        return ImageIndex.load(path)
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
