"""`devise index` killed with SIGKILL and run again (scripts/index_kill.py, CI-sized).

The script runs the real command as a subprocess on generated PNGs with a tiny bundle,
kills it while it embeds, while it commits a chunk and while it folds the chunks into
the index, runs it again each time, and asserts: no traceback, each kill lost at most
one chunk of images, the rerun continued from what was committed, and the final index
holds every image once with the embeddings of an uninterrupted run; nothing left behind.
"""
from __future__ import annotations

import sys

import pytest

from tests.scripts.script_modules import load_script

pytest.importorskip("tensorflow")


@pytest.mark.slow  # ~45 s of subprocesses; the default run covers a killed run's journal in-process
# (test_index's continued run, test_search_cmds' interrupted indexing); the real SIGKILLs run with -m slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_while_embedding_committing_and_folding_loses_at_most_one_chunk(tmp_path):
    ik = load_script("index_kill")
    lines = []
    summary = ik.kill_and_rerun(tmp_path, ["embed", "commit", "fold"], seed=0, images=32, batch_size=4,
                                commit_every=8, say=lines.append)
    assert summary["kinds"] == ["embed", "commit", "fold"], lines
    assert summary["max_lost"] <= 8 and len(summary["losses"]) == 3
    assert summary["losses"][2] == 0  # killed while folding: every chunk was committed already
    assert lines[-1].startswith(f"run {summary['runs'] - 1}, finish: exit 0 after ")
