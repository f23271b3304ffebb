"""Building and updating an image index (``devise index``): incremental, crash-safe, one pipeline, locked.

- **Incremental.** Re-indexing a grown folder must not pay for the photos already
  embedded: a file whose absolute path, size and mtime match a row of the old index
  keeps that row's embedding bit for bit; new and changed files are embedded; files no
  longer listed drop out.
- **One pipeline.** Every file to embed goes through one :meth:`models.bundle.Bundle.run_batches`
  stream (one tf.data pipeline decoding ahead of the model for the whole run).
- **Crash-safe.** Embeddings are committed every ``commit_every`` images (or
  ``COMMIT_SECONDS``, whichever comes first) as a chunk file of the run's journal
  (:mod:`models.index.journal`), so a SIGKILL loses at most the chunk in progress and
  the next run continues from the committed ones. When the run ends (or is stopped with
  Ctrl-C) the kept rows and the chunks are written as the new index file in one atomic
  replace (rows sorted by path, embeddings copied a block at a time from memory maps),
  the approximate index beside it is brought up to date (:mod:`models.index.approx`)
  and the journal is removed.
- **Locked.** The run holds ``.INDEX.lock`` (:func:`wordnet.base.files.exclusive_lock`):
  a second writer into the same index is refused with the holder's pid.
- **Sharded.** With ``shard`` only the files of that shard (:mod:`models.data.shards`)
  are indexed; N such part indexes are joined by :func:`models.index.merge.merge_indexes`.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.bundle import model_checksum
from models.index import COMMIT_EVERY, approx
from models.index.journal import Journal
from models.index.merge import Picks, RowFile, write_rows
from models.index.store import IndexFile
from wordnet.base.errors import DeviseError
from wordnet.base.files import exclusive_lock, lock_path_for, remove_stale_temps
from wordnet.vocab import label_matrix

COMMIT_SECONDS = 120.0  # ... or this much embedding time, on slow machines


@dataclass
class IndexStats:
    """What one ``devise index`` run did (counts of input files)."""

    total: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0  # new or changed files already embedded by an interrupted run (its committed chunks)
    failures: list[tuple[str, str]] = field(default_factory=list)
    shard: object = None  # the models.data.shards.Shard indexed, or None for every file

    @property
    def indexed(self) -> int:
        return self.total - len(self.failures)

    @property
    def embedded(self) -> int:
        """Files embedded by this run."""
        return self.new + self.changed - self.resumed - len(self.failures)


def list_files(paths: Sequence[str | os.PathLike]) -> list[tuple[str, int, int]]:
    """The unique inputs as ``(absolute path, size, mtime_ns)``; files gone since the listing are left out."""
    files, seen = [], set()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:  # vanished since the folder was listed: as if removed
            continue
        name = os.path.abspath(p)
        if name not in seen:
            seen.add(name)
            files.append((name, int(st.st_size), int(st.st_mtime_ns)))
    return files


def plan_update(base: IndexFile | None, chunks, files):
    """Compare ``files`` with the index ``base`` and the committed ``chunks`` of an interrupted run.

    Returns ``(stats, picks, todo)``: ``picks`` are the rows to keep, as (source, row)
    with source 0 = ``base`` and source 1 + i = ``chunks[i]``; ``todo`` are the
    ``(path, size, mtime)`` to embed. A row is kept when its path, size and mtime match.
    new/changed/unchanged/removed compare with ``base``; ``resumed`` counts new or
    changed files whose embedding a chunk already holds.
    """
    stats, picks, todo = IndexStats(), Picks(), []
    known = {p: r for r, p in enumerate(base.paths)} if base is not None else {}
    sizes, mtimes = (base.sizes, base.mtimes) if base is not None else ((), ())
    done = {}  # path -> (chunk, row, size, mtime); a later chunk wins
    for c, chunk in enumerate(chunks):
        for r, (p, size, mtime) in enumerate(zip(chunk.paths, chunk.sizes.tolist(), chunk.mtimes.tolist())):
            done[p] = (c, r, size, mtime)
    listed = 0
    for name, size, mtime in files:
        r = known.get(name, -1)
        listed += r >= 0
        if r >= 0 and sizes[r] == size and mtimes[r] == mtime:
            stats.unchanged += 1
            picks.add(name, size, mtime, 0, r)
            continue
        stats.new += r < 0
        stats.changed += r >= 0
        hit = done.get(name)
        if hit is not None and hit[2:] == (size, mtime):
            stats.resumed += 1
            picks.add(name, size, mtime, 1 + hit[0], hit[1])
        else:
            todo.append((name, size, mtime))
    stats.total = len(files)
    stats.removed = len(known) - listed
    return stats, picks, todo


def bundle_attrs(bundle, method: str = "devise") -> dict:
    """What an index records about the model: identity, geometry, its word vectors and the embedding ``method``."""
    prov = bundle.config.get("provenance", {}) if isinstance(bundle.config, dict) else {}
    vectors = prov.get("vectors") or bundle.vocab.attrs.get("vector_source", "")
    return {
        "model_path": os.path.abspath(bundle.path),
        "model_checksum": model_checksum(bundle.path),
        "method": method,  # which embedding (Bundle.run_batches): an image query must be embedded alike
        "backbone": bundle.backbone,
        "image_size": int(bundle.image_size),
        "vectors": str(vectors or ""),
        "vector_checksum": str(prov.get("vector_checksum") or bundle.vocab.attrs.get("vector_checksum", "")),
        "label_text": str(bundle.vocab.attrs.get("label_text", "lemmas")),  # how synset queries are embedded
    }


def update_index(
    bundle,
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    rebuild: bool = False,
    sources: Sequence[str] = (),
    batch_size: int = 32,
    commit_every: int = COMMIT_EVERY,
    shard=None,
    progress: Callable[[int, int], None] | None = None,
    method: str = "devise",
) -> IndexStats:
    """Embed the new and changed ``paths`` with ``bundle`` into the index ``output`` (see the module).

    ``rebuild`` embeds every file again (the old index is replaced). ``shard`` (a
    :class:`models.data.shards.Shard`) keeps only its files. Undecodable images are
    left out and listed in ``stats.failures`` (a later run tries them again). ``method``: which
    embedding is stored (:meth:`models.bundle.Bundle.run_batches`; recorded, and an index or
    journal made with another is refused or ignored, like another model's).
    ``progress(done, total)`` counts files to embed. On KeyboardInterrupt the images
    embedded so far are written into the index before it re-raises.
    """
    output = Path(output)
    with exclusive_lock(lock_path_for(output), f"index {output}"):
        remove_stale_temps(output.parent, name=output.name)  # left by a killed run; we hold the lock
        return _update_locked(bundle, paths, output, rebuild=rebuild, sources=list(sources), batch_size=batch_size,
                              commit_every=max(1, int(commit_every)), shard=shard, progress=progress, method=method)


def _update_locked(bundle, paths, output: Path, *, rebuild, sources, batch_size, commit_every, shard, progress, method):
    attrs = bundle_attrs(bundle, method)
    if shard is not None:
        attrs["shard"] = str(shard)
        paths = shard.select(paths)
    base = IndexFile.open(output) if output.exists() and not rebuild else None
    try:
        if base is not None:
            base.check_model(attrs["model_checksum"], bundle.path)
            base.check_method(method)
        journal = Journal(output)
        chunks = journal.read_chunks(attrs["model_checksum"], method)
        stats, picks, todo = plan_update(base, chunks, list_files(paths))
        stats.shard = shard
        run = _Run(journal, attrs, commit_every)
        try:
            run.embed(bundle, todo, batch_size, stats, progress)
        except KeyboardInterrupt:
            run.commit()
            _write(output, base, chunks, run.chunks, picks, stats, attrs, sources, bundle.dim, rebuild)
            raise
        run.commit()
        _write(output, base, chunks, run.chunks, picks, stats, attrs, sources, bundle.dim, rebuild)
    finally:
        if base is not None:
            base.close()
    return stats


class _Run:
    """The embedding loop: one pipeline, rows committed to the journal in chunks as they come."""

    def __init__(self, journal: Journal, attrs: dict, commit_every: int) -> None:
        self.journal, self.attrs, self.commit_every = journal, attrs, commit_every
        self.rows: list[tuple[str, int, int]] = []  # embedded, not yet committed
        self.embs: list[np.ndarray] = []
        self.chunks: list[tuple[Path, list[tuple[str, int, int]]]] = []  # committed by this run
        self.last = time.monotonic()

    def embed(self, bundle, todo, batch_size: int, stats: IndexStats, progress) -> None:
        info = {name: (size, mtime) for name, size, mtime in todo}
        done = 0
        for piece in bundle.run_batches([name for name, _, _ in todo], batch_size=batch_size,
                                        method=self.attrs["method"]):
            for p in piece.paths:
                self.rows.append((str(p), *info[str(p)]))
            if len(piece.paths):
                self.embs.append(label_matrix(piece.embeddings))
            stats.failures.extend((str(p), reason) for p, reason in piece.failures)
            done += len(piece.paths) + len(piece.failures)
            while len(self.rows) >= self.commit_every:
                self.commit(self.commit_every)
            if self.rows and time.monotonic() - self.last >= COMMIT_SECONDS:
                self.commit()
            if progress is not None:
                progress(done, len(todo))

    def commit(self, n: int | None = None) -> None:
        """Write the first ``n`` pending rows (default all) as one chunk."""
        n = len(self.rows) if n is None else n
        if not n:
            return
        emb = np.concatenate(self.embs) if len(self.embs) > 1 else self.embs[0]
        rows = self.rows[:n]
        path = self.journal.commit([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], emb[:n],
                                   self.attrs)
        self.chunks.append((path, rows))  # only now: a commit cut short by Ctrl-C keeps its rows pending
        self.rows, self.embs = self.rows[n:], ([emb[n:]] if n < len(emb) else [])
        self.last = time.monotonic()


def _write(output: Path, base, old_chunks, new_chunks, picks: Picks, stats: IndexStats, attrs: dict, sources,
           dim: int, rebuild: bool) -> None:
    """Fold the kept rows and every chunk into a new ``output``; update the approximate index; clear the journal."""
    journal = Journal(output)
    unchanged = (base is not None and not old_chunks and not new_chunks and not stats.removed
                 and stats.unchanged == len(base) == len(picks) and list(base.attrs.get("sources") or []) == sources)
    if unchanged:
        journal.clear()
        return  # nothing to write: the file already is this index
    matrices = [base.embeddings if base is not None else None] + [RowFile(c.file) for c in old_chunks]
    for path, rows in new_chunks:
        matrices.append(RowFile(path))
        for r, (name, size, mtime) in enumerate(rows):
            picks.add(name, size, mtime, len(matrices) - 1, r)
    created = base.attrs.get("created") if base is not None else None
    meta = {**attrs, "sources": list(sources), "devise_version": _version(),
            "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    _, position = write_rows(output, matrices, picks, meta, dim)
    if base is None:
        approx.discard(output)
    else:
        src, row = np.asarray(picks.source, np.int64), np.asarray(picks.row, np.int64)
        old_to_new = np.full(len(base), -1, np.int64)
        old_to_new[row[src == 0]] = position[src == 0]
        try:
            with IndexFile.open(output) as written:
                approx.update(output, base.generation, old_to_new, written)
        except (DeviseError, RuntimeError, ValueError, OSError):  # faiss gone, a damaged sidecar...: drop it,
            approx.discard(output)  # the next --approx search trains a new one
    journal.clear()


def _version() -> str:
    from wordnet.base.version import __version__

    return __version__
