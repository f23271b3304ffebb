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
