"""Shared primitives at the bottom of devise, used by every package (``models``, ``wordnet``, ``devise``, the CLI).

- :mod:`~wordnet.base.errors`: :class:`DeviseError` and its kinds (one-line, user-facing);
- :mod:`~wordnet.base.files`: atomic writes, stale temporary files, exclusive locks;
- :mod:`~wordnet.base.home`: the data home (``$DEVISE_HOME``) and installed packages' folders;
- :mod:`~wordnet.base.version`: the version, from the installed package's metadata.

Nothing here imports a heavy library (no numpy, NLTK or Keras), so any layer may use it.
"""
