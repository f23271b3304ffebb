"""Joining indexes: the rows of several index files written as one (``devise index merge``), and the
writer that an indexing run also uses to fold its committed chunks into the index.

A sharded run (``devise index ... --shard I/N``, one process per GPU, host or Slurm
array task) leaves N part indexes; :func:`merge_indexes` joins them. Rows are written
in the one canonical order (by path, :func:`~models.index.store.row_key`), so the
merged index holds exactly the rows, in the same order and with the same embeddings,
that one process indexing every file would have written. The embeddings are copied
a block at a time from the parts' memory maps, never all read into memory.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from models.index.store import ImageIndexError, IndexFile, row_key, short_checksum, write_index
from wordnet.base.files import ensure_unlocked, exclusive_lock, lock_path_for


@dataclass
class Picks:
    """Rows to write: for each, its path, size, mtime and where its embedding is (source, row)."""

    paths: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    mtimes: list[int] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    row: list[int] = field(default_factory=list)

    def add(self, path: str, size: int, mtime: int, source: int, row: int) -> None:
        self.paths.append(path)
        self.sizes.append(int(size))
        self.mtimes.append(int(mtime))
        self.source.append(source)
        self.row.append(int(row))

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class RowFile:
    """The embeddings of an index file, mapped only while a gather reads them (see :class:`RowGather`)."""

    path: Path

    def open(self):
        with IndexFile.open(self.path) as f:
            return f.detach_embeddings()


class RowGather:
    """The embeddings of picked rows, in output order, gathered from their sources a block at a time.

    A source is a matrix (an array, a :class:`~models.index.scan.MappedRows`) or a
    :class:`RowFile`; at most ``MAX_OPEN`` files are mapped at once (each map holds a
    file descriptor), so thousands of chunks or parts can be joined.
    """

    MAX_OPEN = 128

    def __init__(self, sources: Sequence, source: np.ndarray, row: np.ndarray, dim: int) -> None:
        self.sources, self.source, self.row = sources, source, row
        self.shape = (len(source), int(dim))
        self._open: OrderedDict = OrderedDict()

    def _matrix(self, s: int):
        src = self.sources[s]
        if not isinstance(src, RowFile):
            return src
        if s in self._open:
            self._open.move_to_end(s)
        else:
            if len(self._open) >= self.MAX_OPEN:
                _close(self._open.popitem(last=False)[1])
            self._open[s] = src.open()
        return self._open[s]

    def __getitem__(self, block: slice) -> np.ndarray:
        src, rows = self.source[block], self.row[block]
        out = np.empty((len(src), self.shape[1]), np.float32)
        for s in np.unique(src):
            sel = src == s
            out[sel] = self._matrix(int(s))[rows[sel]]
        return out

    def close(self) -> None:
        while self._open:
            _close(self._open.popitem()[1])


def _close(matrix) -> None:
    if hasattr(matrix, "close"):
        matrix.close()


def write_rows(path, sources: Sequence, picks: Picks, attrs: dict, dim: int) -> tuple[str, np.ndarray]:
    """Write ``picks`` (embeddings from ``sources[source][row]``, see :class:`RowGather`) as the index
    ``path``, sorted by path. Returns the file's generation and, for each pick, its row in the file.
    """
    order = np.asarray(sorted(range(len(picks)), key=[row_key(p) for p in picks.paths].__getitem__), np.int64)
    position = np.empty(len(picks), np.int64)
    position[order] = np.arange(len(picks))
    source, row = np.asarray(picks.source, np.int64)[order], np.asarray(picks.row, np.int64)[order]
    sizes, mtimes = np.asarray(picks.sizes, np.int64), np.asarray(picks.mtimes, np.int64)
    gather = RowGather(sources, source, row, dim)
    try:
        generation = write_index(path, [picks.paths[i] for i in order], sizes[order] if len(order) else sizes,
                                 mtimes[order] if len(order) else mtimes, gather, attrs)
    finally:
        gather.close()
    return generation, position


@dataclass
class MergeStats:
    parts: int = 0
    rows: int = 0
    duplicates: int = 0  # paths held by more than one part (the newest row was kept)


def merge_indexes(output: str | os.PathLike, parts: Sequence[str | os.PathLike]) -> MergeStats:
    """Join the index files ``parts`` into ``output`` (which may be one of them).

    Refused, with one line naming the part: a part made with another model or label
    text than the first, a part another process is writing, a part whose indexing run
    did not finish (it has committed chunks not yet folded in), a missing or corrupt
    part; and an existing ``output`` that is not among the parts. A path found in
    several parts keeps its newest row (latest mtime; the first part's on a tie).
    """
    from models.index import approx
    from models.index.journal import Journal

    output = Path(output)
    if output.is_dir():
        raise ImageIndexError(f"{output} is a folder; OUT names the index file to write (e.g. photos.h5)")
    same = [Path(p).resolve() == output.resolve() for p in parts]
    if output.exists() and not any(same):
        raise ImageIndexError(f"{output} exists; name it among the PARTs to merge into it, or choose another OUT")
    with exclusive_lock(lock_path_for(output), f"index {output}"):
        opened: list[IndexFile] = []
        try:
            for part, is_output in zip(parts, same):
                part = Path(part)
                if not is_output:
                    ensure_unlocked(lock_path_for(part), f"index {part}")
                if Journal(part).exists():
                    raise ImageIndexError(f"{part} has an unfinished indexing run ({Journal(part).folder}); "
                                          f"run its `devise index` command again to finish it, then merge")
                opened.append(IndexFile.open(part))
                _check_compatible(opened[0], opened[-1])
            picks, stats = _pick_newest(opened)
            first, dim = opened[0].attrs, opened[0].dim
            created = sorted(str(p.attrs["created"]) for p in opened if p.attrs.get("created"))
            sources = list(dict.fromkeys(s for p in opened for s in p.attrs.get("sources", [])))
        finally:
            for p in opened:
                p.close()
        attrs = {k: v for k, v in first.items() if k not in ("shard", "path", "generation", "dim", "updated")}
        attrs.update(sources=sources, created=created[0] if created else first.get("created", ""))
        write_rows(output, [RowFile(Path(p)) for p in parts], picks, attrs, dim)
        approx.discard(output)  # made for other rows; the next --approx search trains one for these
    return stats


def _check_compatible(first: IndexFile, part: IndexFile) -> None:
    a, b = first.attrs, part.attrs
    if a.get("model_checksum") != b.get("model_checksum"):
        raise ImageIndexError(
            f"{part.location} was made with another model ({b.get('model_path', '?')}, "
            f"{short_checksum(b.get('model_checksum', ''))}) than {first.location} ({a.get('model_path', '?')}, "
            f"{short_checksum(a.get('model_checksum', ''))}); merge only parts indexed with the same --model")
    if first.method != part.method:
        raise ImageIndexError(f"{part.location} holds {part.method} embeddings, {first.location} {first.method}; "
                              f"merge only parts indexed with the same --model and method")
    if (a.get("label_text") or "lemmas") != (b.get("label_text") or "lemmas"):
        raise ImageIndexError(
            f"{part.location} embeds synset queries with label text {b.get('label_text')!r}, {first.location} with "
            f"{a.get('label_text')!r}; merge only parts indexed with the same --model")
    if first.dim != part.dim:
        raise ImageIndexError(f"{part.location} holds {part.dim}-d embeddings, {first.location} {first.dim}-d; "
                              f"merge only parts indexed with the same --model")


def _pick_newest(parts: Sequence[IndexFile]) -> tuple[Picks, MergeStats]:
    best: dict[str, tuple[int, int, int, int]] = {}  # path -> (mtime, size, part, row)
    stats = MergeStats(parts=len(parts))
    for s, part in enumerate(parts):
        for r, (p, size, mtime) in enumerate(zip(part.paths, part.sizes.tolist(), part.mtimes.tolist())):
            held = best.get(p)
            if held is not None:
                stats.duplicates += 1
                if held[0] >= mtime:
                    continue
            best[p] = (mtime, size, s, r)
    picks = Picks()
    for p, (mtime, size, s, r) in best.items():
        picks.add(p, size, mtime, s, r)
    stats.rows = len(picks)
    return picks, stats
