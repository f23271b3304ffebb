"""The data home: where devise keeps what is not the user's own.

The NLTK-layout WordNet corpus built from Debian's files, the default skip-gram vectors,
their text corpus and caches all live under one folder: ``$DEVISE_HOME``, else the
platform's user data directory (``~/.local/share/devise`` on Linux).
"""
from __future__ import annotations

import os
from pathlib import Path

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


def installed_dir(folder: str | os.PathLike | None, env: str, defaults, what: str, how_to_get: str) -> Path:
    """The folder an installed package's files live in: ``folder`` if given, else ``$env``, else the first of
    ``defaults`` that exists; :class:`~wordnet.base.errors.DatasetError` naming every place tried otherwise."""
    from wordnet.base.errors import DatasetError

    candidates = [Path(folder).expanduser()] if folder else []
    if os.environ.get(env):
        candidates.append(Path(os.environ[env]).expanduser())
    candidates += [Path(p) for p in defaults]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetError(f"{what} is not installed ({', '.join(str(c) for c in candidates)} not found); {how_to_get}")
