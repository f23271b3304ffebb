"""The data home and atomic writes.

Everything devise keeps that is not the user's own (the NLTK-layout WordNet corpus
built from Debian's files, default skip-gram vectors, corpora, caches) lives under
one folder: ``$DEVISE_HOME``, else the platform's user data directory. Every file
devise writes goes through :func:`atomic_path`, so an interrupted run never leaves
a half-written file under a final name.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

ENV_HOME = "DEVISE_HOME"


def data_home() -> Path:
    """Return (and create) the data home: ``$DEVISE_HOME`` or the user data dir."""
    env = os.environ.get(ENV_HOME)
    if env:
        home = Path(env).expanduser()
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("devise", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffix (Keras insists on ``.keras``), lives in
    the same directory (so the rename is atomic on POSIX) and is removed if the
    block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # let the writer create it (h5py/keras refuse some existing files)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing; it replaces ``path`` only when closed cleanly."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
