"""Image indexes: a photo collection embedded once into the joint space, searched many times.

- :mod:`~models.index.store`: :class:`ImageIndex`, the HDF5 file and exact/approximate search;
- :mod:`~models.index.update`: building and incrementally updating an index with a bundle.
"""
