"""Images that would not decode: the run's :class:`FailureLog` and the one way a failure is worded.

Both input implementations (:mod:`models.data.tfdata`, :mod:`models.data.pydataset`), the
feature cache and every command that reads images report bad files through one log: each
file is reported once, however many epochs or passes revisit it, and later passes consult
the log to leave known-bad files out.
"""
from __future__ import annotations

import threading
from typing import Callable

from wordnet.base.errors import ImageError


def failure_reason(path: str, exc: BaseException) -> str:
    """The reason recorded for ``path``: an :class:`ImageError`'s message without its ``"path: "`` prefix
    (the log names the file itself), or ``"ExceptionType: message"`` for anything else (a decoder bug)."""
    reason = str(exc)
    if isinstance(exc, ImageError):
        prefix = f"{path}: "
        return reason[len(prefix):] if reason.startswith(prefix) else reason
    return f"{exc.__class__.__name__}: {exc}"


class FailureLog:
    """Thread-safe record of images that would not decode: ``{path: reason}``, first reason wins."""

    def __init__(self, on_new: Callable[[str, str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self.failures: dict[str, str] = {}
        self.on_new = on_new

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            if path in self.failures:
                return
            self.failures[path] = reason
        if self.on_new is not None:
            self.on_new(path, reason)

    def add_error(self, path: str, exc: BaseException) -> None:
        """Record an exception raised while reading ``path`` (worded by :func:`failure_reason`)."""
        self.add(path, failure_reason(path, exc))

    def __contains__(self, path) -> bool:
        return str(path) in self.failures

    def __len__(self) -> int:
        return len(self.failures)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.failures.items())
