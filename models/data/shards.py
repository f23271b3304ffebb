"""Splitting a list of image files into N shards that independent processes can take (``--shard I/N``).

``devise index`` and ``devise predict`` scale out by running N processes — one per GPU,
per host, per Slurm array task — each over its shard of the same file list. A file's
shard is a hash of its absolute path modulo N, not its position in the listing:

- every process decides alone, from the path, with no coordination and no shared
  listing: two hosts that list the folder a minute apart (a photo added in between)
  still agree on every other file's shard;
- re-running a shard after the folder grew moves no file to another shard, so each
  shard's index stays incremental (a contiguous or round-robin split of the sorted
  listing would shift most files by one position and send them to a neighbour shard,
  which would embed them again while their old shard drops them as removed).

The price is that shards are equal only on average (binomial, ±√(n/N) files), which
does not matter at the scale sharding is for. The hash is BLAKE2b of the path's bytes
(never Python's per-process randomised ``hash``), so it is the same on every host and
Python version; the hosts must see the photos under the same absolute path (a shared
mount point), as the index records absolute paths anyway.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from wordnet.base.errors import UsageError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(path: str | os.PathLike, count: int) -> int:
    """The shard (0 .. count-1) of ``path``: a stable hash of its absolute path."""
    digest = hashlib.blake2b(os.fsencode(os.path.abspath(os.fspath(path))), digest_size=8).digest()
    return int.from_bytes(digest, "big") % int(count)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based, as ``SLURM_ARRAY_TASK_ID`` with ``--array=0-N``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise UsageError(f"shard {self.index}/{self.count} is not I/N with 0 <= I < N "
                             f"(e.g. --shard 0/4 ... --shard 3/4)")

    @classmethod
    def parse(cls, text: "str | Shard") -> "Shard":
        """``"I/N"`` -> :class:`Shard`; :class:`UsageError` for anything else."""
        if isinstance(text, Shard):
            return text
        m = _SHARD.match(str(text))
        if not m:
            raise UsageError(f"shard {str(text)!r} is not I/N with 0 <= I < N (e.g. --shard 0/4 ... --shard 3/4)")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, path: str | os.PathLike) -> bool:
        return self.count == 1 or shard_of(path, self.count) == self.index

    def select(self, paths: Iterable[str | os.PathLike | Path]) -> list:
        """The paths of this shard, in their input order."""
        return [p for p in paths if self.holds(p)]
