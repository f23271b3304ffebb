"""Building and updating an image index incrementally (``devise index``).

Re-indexing a grown folder must not pay for the photos already embedded: a file whose
absolute path, size and mtime match a row of the old index keeps that row's embedding
bit for bit; new and changed files go through :meth:`models.bundle.Bundle.run` in
chunks; files no longer listed drop out. The result is written atomically, and a
Ctrl-C saves the chunks already embedded before it stops, so a long run is never lost.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.index.store import ImageIndex, model_checksum
from wordnet.vocab import label_matrix

CHUNK_IMAGES = 512  # images per Bundle.run call; what an interrupt can lose at most


@dataclass
class IndexStats:
    """What one ``devise index`` run did (counts of input files)."""

    total: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def indexed(self) -> int:
        return self.total - len(self.failures)


def _stat(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return os.path.abspath(path), int(st.st_size), int(st.st_mtime_ns)


def plan_update(old: ImageIndex | None, paths: Sequence[str | os.PathLike]):
    """Compare ``paths`` with ``old``: returns ``(stats, files, rows, todo)``.

    ``files`` are the unique inputs as ``(absolute path, size, mtime_ns)``; ``rows[i]`` is
    the old row reused for ``files[i]`` (same path, size and mtime) or -1; ``todo`` lists
    the absolute paths to embed. Files of ``old`` not among ``paths`` count as removed.
    """
    stats = IndexStats()
    known = {p: r for r, p in enumerate(old.paths)} if old is not None else {}
    files, seen = [], set()
    for p in paths:
        try:
            entry = _stat(Path(p))
        except OSError:  # vanished since the folder was listed: as if removed
            continue
        if entry[0] not in seen:
            seen.add(entry[0])
            files.append(entry)
    rows, todo = [], []
    for name, size, mtime in files:
        r = known.get(name, -1)
        if r >= 0 and old.sizes[r] == size and old.mtimes[r] == mtime:
            stats.unchanged += 1
        else:
            stats.new += r < 0
            stats.changed += r >= 0
            todo.append(name)
            r = -1
        rows.append(r)
    stats.total = len(files)
    stats.removed = len(set(known) - seen)
    return stats, files, rows, todo


def bundle_attrs(bundle) -> dict:
    """What an index records about the model: identity, geometry and its word vectors."""
    prov = bundle.config.get("provenance", {}) if isinstance(bundle.config, dict) else {}
    vectors = prov.get("vectors") or bundle.vocab.attrs.get("vector_source", "")
    return {
        "model_path": os.path.abspath(bundle.path),
        "model_checksum": model_checksum(bundle.path),
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
    old: ImageIndex | None = None,
    sources: Sequence[str] = (),
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> IndexStats:
    """Embed the new and changed ``paths`` with ``bundle``, reuse the rest of ``old``, save to ``output``.

    Undecodable images are left out and listed in ``stats.failures`` (a later run tries
    them again). ``progress(done, total)`` counts files to embed. On KeyboardInterrupt
    the images embedded so far are saved (with the unchanged ones) before it re-raises.
    """
    attrs = bundle_attrs(bundle)
    if old is not None:
        old.check_model(attrs["model_checksum"], bundle.path)
    stats, files, rows, todo = plan_update(old, paths)
    fresh: dict[str, np.ndarray] = {}
    dim = bundle.dim

    def save() -> None:
        keep = [i for i, (name, _, _) in enumerate(files) if rows[i] >= 0 or name in fresh]
        emb = np.zeros((len(keep), dim), np.float32)
        for j, i in enumerate(keep):
            emb[j] = old.embeddings[rows[i]] if rows[i] >= 0 else fresh[files[i][0]]
        created = old.attrs.get("created") if old is not None else None
        meta = {**attrs, "sources": list(sources),
                "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "devise_version": _version()}
        ImageIndex([files[i][0] for i in keep], [files[i][1] for i in keep], [files[i][2] for i in keep],
                   emb, meta).save(output)

    try:
        for start in range(0, len(todo), CHUNK_IMAGES):
            chunk = todo[start:start + CHUNK_IMAGES]
            cb = None if progress is None else (lambda done, _t, s=start: progress(s + done, len(todo)))
            res = bundle.run(chunk, batch_size=batch_size, progress=cb)
            for p, e in zip(res.paths, label_matrix(res.embeddings)):
                fresh[str(p)] = e
            order = {p: i for i, p in enumerate(chunk)}
            stats.failures.extend(sorted(((str(p), reason) for p, reason in res.failures),
                                         key=lambda f: order.get(f[0], len(order))))
    except KeyboardInterrupt:
        save()
        raise
    save()
    return stats


def _version() -> str:
    from wordnet.base.version import __version__

    return __version__
