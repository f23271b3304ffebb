"""Committed progress of an indexing run: chunk files beside the index, so a killed run loses one chunk at most.

Rewriting a million-row index file every few thousand images would cost more than
embedding them, so a run does not touch ``INDEX`` until it ends. What it embeds is
committed every ``commit_every`` images as one small index file (a *chunk*: the same
HDF5 layout, model attributes included) in the hidden folder ``.INDEX.journal/``
beside it, each written atomically. A run that ends (or is stopped with Ctrl-C)
folds its chunks into ``INDEX`` and removes the folder; a run killed with SIGKILL, an
OOM or a pre-empted node leaves the folder, and the next run into the same index reads
its chunks as rows already embedded (same path, size and mtime: the usual incremental
rule) and continues from there. Chunks made with another model or method are ignored.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.index.store import ImageIndexError, IndexFile, write_index
from wordnet.base.files import remove_stale_temps

CHUNK_GLOB = "chunk-*.h5"


@dataclass
class Chunk:
    """One committed chunk: its file and its rows' paths, sizes and mtimes (embeddings stay in the file)."""

    file: Path
    paths: list[str]
    sizes: np.ndarray
    mtimes: np.ndarray


class Journal:
    """The chunk folder of the index ``index_path`` (``.<name>.journal`` beside it)."""

    def __init__(self, index_path: str | os.PathLike) -> None:
        index_path = Path(index_path)
        self.folder = index_path.parent / f".{index_path.name}.journal"
        self._next = None

    def exists(self) -> bool:
        return self.folder.is_dir()

    def chunk_files(self) -> list[Path]:
        return sorted(self.folder.glob(CHUNK_GLOB)) if self.exists() else []

    def read_chunks(self, model_checksum: str, method: str = "devise") -> list["Chunk"]:
        """The committed chunks made with ``model_checksum`` and ``method``: their files and row columns.

        Only call this while holding the index's lock: a temporary file a killed writer
        left is removed first, and a live writer's looks the same.
        """
        remove_stale_temps(self.folder)
        chunks = []
        for p in self.chunk_files():
            try:
                with IndexFile.open(p) as f:
                    if f.attrs.get("model_checksum") == model_checksum and f.method == method and len(f):
                        chunks.append(Chunk(p, f.paths, f.sizes, f.mtimes))
            except ImageIndexError:
                continue  # unreadable (a damaged disk): its images are embedded again
        return chunks

    def commit(self, paths, sizes, mtimes, embeddings, attrs: dict) -> Path | None:
        """Write one chunk atomically (nothing for no rows); returns its path."""
        if not len(paths):
            return None
        if self._next is None:
            self._next = 1 + max((int(p.stem.split("-")[1]) for p in self.chunk_files()), default=0)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"chunk-{self._next:06d}.h5"
        write_index(path, paths, sizes, mtimes, embeddings, attrs)
        self._next += 1
        return path

    def clear(self) -> None:
        """Remove the folder (its chunks are now in the index file)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.folder)
