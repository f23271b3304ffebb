"""Image indexes: a photo collection embedded once into the joint space, searched many times.

- :mod:`~models.index.store`: the HDF5 file: :class:`ImageIndex` (in memory), :class:`IndexFile`
  (memory-mapped, for search), the block-wise writer;
- :mod:`~models.index.scan`: exact search over a memory map, a block at a time, with a running top-k;
- :mod:`~models.index.update`: building and incrementally updating an index with a bundle (crash-safe);
- :mod:`~models.index.journal`: the committed chunks of a run in progress;
- :mod:`~models.index.merge`: joining the part indexes of a sharded run;
- :mod:`~models.index.approx`: the approximate (faiss) index kept beside an index file.

(Nothing is imported here: the CLI reads :data:`COMMIT_EVERY` without loading numpy.)
"""

COMMIT_EVERY = 4096  # images per committed chunk of `devise index`: what a SIGKILL can lose at most
