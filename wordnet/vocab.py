"""Label vocabularies: the candidate labels a model is scored against.

A vocabulary is an HDF5 file holding, for each label, its WordNet id, synset name,
display label and short definition, plus one unit-norm float32 vector. Carrying the
names and definitions means ``predict`` never needs WordNet, and any vocabulary of
the right dimension can be scored against any trained model: this is how new label
sets are added without retraining.

Scoring follows open_clip's zero-shot recipe: :func:`label_matrix` builds the
normalised matrix once; :func:`top_k` is one matrix product and a partial sort.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import DimensionMismatchError, VocabularyError
from .home import atomic_path

FORMAT = "devise-vocabulary"
FORMAT_VERSION = 1


def label_matrix(vectors: np.ndarray) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 matrix with unit-norm rows.

    Zero rows stay zero (they can never win a cosine ranking).
    """
    m = np.asarray(vectors, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"label vectors must be 2-D, got shape {m.shape}")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.ascontiguousarray(m / np.maximum(norms, 1e-12), dtype=np.float32)


def top_k(embeddings: np.ndarray, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the ``k`` best labels for each embedding.

    ``embeddings`` is (n, d) and need not be normalised; ``matrix`` comes from
    :func:`label_matrix`. Returns two (n, k) arrays sorted by decreasing score.
    """
    from .metrics import top_k_from_scores  # plain NumPy; one ranking for predict and eval

    return top_k_from_scores(label_matrix(np.atleast_2d(embeddings)) @ matrix.T, k)


@dataclass
class Vocabulary:
    """Labels with their unit-norm vectors, in a fixed order (the row order)."""

    wnids: list[str]
    synsets: list[str]
    labels: list[str]
    definitions: list[str]
    vectors: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.wnids)
        if not (len(self.synsets) == len(self.labels) == len(self.definitions) == n):
            raise VocabularyError("vocabulary columns have different lengths")
        if n == 0:
            raise VocabularyError("a vocabulary needs at least one label")
        self.vectors = label_matrix(self.vectors)
        if self.vectors.shape[0] != n:
            raise VocabularyError(f"{n} labels but {self.vectors.shape[0]} vectors")
        self._index = {w: i for i, w in enumerate(self.wnids)}

    def __len__(self) -> int:
        return len(self.wnids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index(self, wnid: str) -> int:
        """Row of ``wnid``; :class:`VocabularyError` if it is not in the vocabulary."""
        try:
            return self._index[wnid]
        except KeyError:
            raise VocabularyError(f"label {wnid!r} is not in the vocabulary") from None

    def __contains__(self, wnid: str) -> bool:
        return wnid in self._index

    def subset(self, wnids: Iterable[str]) -> "Vocabulary":
        """A new vocabulary with the given labels, in the given order."""
        wnids = list(wnids)
        missing = [w for w in wnids if w not in self._index]
        if missing:
            raise VocabularyError(
                f"{len(missing)} label(s) not in the vocabulary: {', '.join(missing[:10])}"
            )
        rows = [self._index[w] for w in wnids]
        return Vocabulary(
            wnids=wnids,
            synsets=[self.synsets[r] for r in rows],
            labels=[self.labels[r] for r in rows],
            definitions=[self.definitions[r] for r in rows],
            vectors=self.vectors[rows],
            attrs=dict(self.attrs),
        )

    def check_dim(self, dim: int, what: str) -> None:
        """Raise :class:`DimensionMismatchError` unless this vocabulary has ``dim``."""
        if self.dim != int(dim):
            name = self.attrs.get("path", "the vocabulary")
            raise DimensionMismatchError(
                f"{name} has {self.dim}-d vectors but {what} is {int(dim)}-d; "
                f"build the vocabulary with the same word vectors"
            )

    def top_k(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`top_k` against this vocabulary's (already normalised) vectors."""
        self.check_dim(np.atleast_2d(embeddings).shape[1], "the embedding")
        return top_k(embeddings, self.vectors, k)

    # -- HDF5 ---------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the vocabulary atomically as HDF5."""
        import h5py

        path = Path(path)
        attrs = {k: v for k, v in self.attrs.items() if k != "path"}
        attrs.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat())
        attrs.setdefault("devise_version", _version())
        str_dt = h5py.string_dtype("utf-8")
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["dim"] = self.dim
                for k, v in attrs.items():
                    f.attrs[k] = v
                for name in ("wnids", "synsets", "labels", "definitions"):
                    f.create_dataset(name, data=list(getattr(self, name)), dtype=str_dt)
                f.create_dataset("vectors", data=self.vectors)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save`; one clear error if it is not one."""
        import h5py

        path = Path(path)
        if not path.is_file():
            raise VocabularyError(f"vocabulary {path} does not exist; build one with `devise vocab build`")
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise VocabularyError(
                        f"{path} is not a devise vocabulary; build one with `devise vocab build`"
                    )
                cols = {
                    name: [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[name][()]]
                    for name in ("wnids", "synsets", "labels", "definitions")
                }
                vectors = np.asarray(f["vectors"][()], dtype=np.float32)
                attrs = {k: _plain(v) for k, v in f.attrs.items() if k not in ("format", "format_version")}
        except VocabularyError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise VocabularyError(
                f"{path} is corrupt or truncated ({exc.__class__.__name__}); rebuild it with `devise vocab build`"
            ) from None
        attrs["path"] = str(path)
        return cls(vectors=vectors, attrs=attrs, **cols)


def _plain(value):
    """HDF5 attribute -> plain Python value (for JSON and config files)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _version() -> str:
    from devise_cli import __version__

    return __version__


def concat(vocabs: Sequence[Vocabulary]) -> Vocabulary:
    """Union of vocabularies of one dimension, first occurrence of a wnid wins."""
    first = vocabs[0]
    seen: dict[str, tuple[Vocabulary, int]] = {}
    for v in vocabs:
        v.check_dim(first.dim, "the first vocabulary")
        for i, w in enumerate(v.wnids):
            seen.setdefault(w, (v, i))
    items = list(seen.items())
    return Vocabulary(
        wnids=[w for w, _ in items],
        synsets=[v.synsets[i] for _, (v, i) in items],
        labels=[v.labels[i] for _, (v, i) in items],
        definitions=[v.definitions[i] for _, (v, i) in items],
        vectors=np.stack([v.vectors[i] for _, (v, i) in items]),
        attrs=dict(first.attrs),
    )
