"""`devise train` killed with SIGKILL and resumed with --resume (scripts/kill_resume.py, CI-sized).

The script starts the real command as a subprocess on a tiny dataset, kills it at the
chosen points, resumes until it finishes, and asserts: no traceback, every resumed
phase restarts right after its last committed epoch, history.csv holds every epoch
exactly once, the bundle loads and embeds images, no temporary or lock file is left.
"""
from __future__ import annotations

import sys

import pytest

from tests.scripts.script_modules import load_script

pytest.importorskip("tensorflow")



@pytest.mark.slow  # ~50 s of subprocesses; the default run covers resume in-process (test_training's resume
# tests) and a writer killed mid-write (test_files); the real SIGKILLs run with -m slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_in_a_checkpoint_write_and_in_phase_2_then_resume(tmp_path):
    kr = load_script("kill_resume")
    lines = []
    summary = kr.kill_and_resume(tmp_path, ["write", "phase2"], seed=0, head_epochs=2, finetune_epochs=2,
                                 say=lines.append)
    assert summary["kills"] == 2, lines
    assert summary["kinds"] == ["write", "phase2"]
    assert summary["history"] == [("head", 1), ("head", 2), ("finetune", 1), ("finetune", 2)]
    # the first kill came while phase 1's first epoch checkpoint was being written
    assert lines[0].startswith("run 0: start, write: killed after ")
    assert lines[-1].startswith(f"run {summary['runs'] - 1}: resume, finish: exit 0 after ")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_four_kills_anywhere(tmp_path):
    kr = load_script("kill_resume")
    summary = kr.kill_and_resume(tmp_path, ["phase1", "anywrite", "write", "phase2"], seed=1,
                                 head_epochs=3, finetune_epochs=3, say=lambda line: None)
    assert summary["kills"] >= 3
    assert len(summary["history"]) == 6
