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

from wordnet.base.errors import DimensionMismatchError, VocabularyError
from wordnet.base.files import atomic_write

FORMAT = "devise-vocabulary"
FORMAT_VERSION = 1


def label_matrix(vectors: np.ndarray) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 matrix with unit-norm rows.

    Zero rows stay zero (they can never win a cosine ranking). Rows that already are
    unit (to float32 rounding) are kept bit for bit, so saving and loading a
    vocabulary changes nothing. A read-only matrix that already is one (float32,
    C-contiguous: a memory-mapped vocabulary) is returned as is, without a copy;
    anything else is a fresh array.
    """
    m = np.asarray(vectors, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"label vectors must be 2-D, got shape {m.shape}")
    sq = _row_norms_squared(m)
    if np.all((np.abs(sq - 1.0) < 2e-6) | (sq == 0.0)):
        return m if not m.flags.writeable and m.flags.c_contiguous else np.array(m, dtype=np.float32, order="C")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.ascontiguousarray(m / np.maximum(norms, 1e-12), dtype=np.float32)


def _row_norms_squared(m: np.ndarray, block: int = 65536) -> np.ndarray:
    """Squared row norms in float64, a block of rows at a time (no full-size temporary)."""
    out = np.empty(m.shape[0], np.float64)
    for s in range(0, m.shape[0], block):
        part = m[s:s + block]
        out[s:s + block] = np.einsum("ij,ij->i", part, part, dtype=np.float64)
    return out


SCORE_BLOCK_BYTES = 64 << 20  # scores materialised at a time by top_k (queries are split to fit)


def top_k(embeddings: np.ndarray, matrix: np.ndarray, k: int,
          temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the ``k`` best labels for each embedding.

    With ``temperature`` T the scores are probabilities instead, ``softmax(cosine / T)``
    over every row of ``matrix`` (the ranking is the same).

    ``embeddings`` is (n, d) and need not be normalised; ``matrix`` comes from
    :func:`label_matrix`. Returns two (n, k) arrays sorted by decreasing score; ties
    among the returned labels are broken by the lower row (the ranking of
    :func:`wordnet.scoring.metrics.top_k_from_scores`, which eval uses). Queries are scored a
    block at a time so a million-label vocabulary never needs an (n, labels) matrix,
    and the scores are negated in place rather than copied.
    """
    q = label_matrix(np.atleast_2d(embeddings))
    n_cand = matrix.shape[0]
    k = max(1, min(int(k), n_cand))
    idx = np.empty((q.shape[0], k), np.int64)
    scores = np.empty((q.shape[0], k), np.float32)
    step = max(1, SCORE_BLOCK_BYTES // (4 * max(1, n_cand)))
    for s in range(0, q.shape[0], step):
        neg = q[s:s + step] @ matrix.T
        np.negative(neg, out=neg)
        if k < n_cand:
            part = np.argpartition(neg, k - 1, axis=1)[:, :k]
            part.sort(axis=1)  # row order, so the stable sort below breaks ties by row
        else:
            part = np.broadcast_to(np.arange(n_cand), neg.shape).copy()
        part_neg = np.take_along_axis(neg, part, axis=1)
        order = np.argsort(part_neg, axis=1, kind="stable")
        idx[s:s + step] = np.take_along_axis(part, order, axis=1)
        scores[s:s + step] = -np.take_along_axis(part_neg, order, axis=1)
        if temperature is not None:  # log-sum-exp of cosine / T over every label, from the block at hand
            z = neg / np.float32(-temperature)
            top = z.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
            scores[s:s + step] = np.exp(scores[s:s + step] / temperature - lse[:, None])
    return idx, scores


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

    def check_same_space(self, reference: "Vocabulary", what: str) -> None:
        """Raise :class:`VocabularyError` unless this vocabulary was embedded like ``reference``.

        ``reference`` is a model's training vocabulary. Labels embedded with other word
        vectors (another checksum) or another label text (names vs names + definitions)
        share the dimension but not the space: every cosine would be meaningless and the
        predictions silently wrong. Only what both files record is compared, so an
        in-memory vocabulary without provenance passes.
        """
        mine, theirs = self.attrs, reference.attrs
        name = mine.get("path", "the vocabulary")
        vectors, ref_vectors = mine.get("vector_checksum") or "", theirs.get("vector_checksum") or ""
        if vectors and ref_vectors and vectors != ref_vectors:
            raise VocabularyError(
                f"{name} was built with word vectors {Path(str(mine.get('vector_source', '?'))).name} but {what} "
                f"was trained with {Path(str(theirs.get('vector_source', '?'))).name} (a different file): its "
                f"scores would be meaningless; rebuild it with `devise vocab build ... --vectors "
                f"{theirs.get('vector_source', 'FILE')}`")
        text, ref_text = mine.get("label_text") or "", theirs.get("label_text") or ""
        if text and ref_text and text != ref_text:
            raise VocabularyError(
                f"{name} was built with --label-text {text} but {what} was trained with --label-text {ref_text}: "
                f"its scores would be meaningless; rebuild it with `devise vocab build ... --label-text {ref_text}`")

    def top_k(self, embeddings: np.ndarray, k: int, temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:func:`top_k` against this vocabulary's (already normalised) vectors."""
        self.check_dim(np.atleast_2d(embeddings).shape[1], "the embedding")
        return top_k(embeddings, self.vectors, k, temperature)

    # -- HDF5 ---------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the vocabulary atomically as HDF5."""
        import h5py

        path = Path(path)
        attrs = {k: v for k, v in self.attrs.items() if k != "path"}
        attrs.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat())
        attrs.setdefault("devise_version", _version())
        str_dt = h5py.string_dtype("utf-8")
        with atomic_write(path, "w+b") as fh, h5py.File(fh, "w") as f:  # see atomic_write
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
                vectors = _read_vectors(path, f["vectors"])
                attrs = {k: plain_attr(v) for k, v in f.attrs.items() if k not in ("format", "format_version")}
        except VocabularyError:
            raise
        except (OSError, KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise VocabularyError(
                f"{path} is corrupt or truncated ({exc.__class__.__name__}); rebuild it with `devise vocab build`"
            ) from None
        attrs["path"] = str(path)
        try:
            return cls(vectors=vectors, attrs=attrs, **cols)
        except (VocabularyError, ValueError) as exc:  # columns of different lengths, vectors not 2-D...
            raise VocabularyError(f"{path} is corrupt ({exc}); rebuild it with `devise vocab build`") from None


MMAP_MIN_BYTES = 64 << 20  # vector matrices at least this big are memory-mapped, not read


def _read_vectors(path: Path, ds) -> np.ndarray:
    """The (n, d) float32 vectors: a read-only memory map of the file when the dataset is
    large, contiguous, uncompressed native float32 (pages load on demand and are shared
    between processes), else read into memory."""
    if (ds.ndim == 2 and ds.dtype == np.dtype(np.float32) and ds.chunks is None and ds.compression is None
            and ds.size * 4 >= MMAP_MIN_BYTES):
        offset = ds.id.get_offset()
        if offset is not None:
            return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
    return np.asarray(ds[()], dtype=np.float32)


def plain_attr(value):
    """HDF5 attribute -> plain Python value (for JSON and config files)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _version() -> str:
    from wordnet.base.version import __version__

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
