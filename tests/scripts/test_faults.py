"""scripts/faults.py, a CI-sized part: Ctrl-C and SIGKILL to the real commands, counted by the script.

The full run (full disk, read-only, unreadable files too) takes minutes; see docs/reliability.md.
"""
from __future__ import annotations

import sys

import pytest

from tests.scripts.script_modules import load_script

pytest.importorskip("tensorflow")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")
def test_ctrl_c_and_sigkill_cases_end_cleanly(tmp_path):
    faults = load_script("faults")
    lines = []
    summary = faults.run_faults(tmp_path, ["sigint", "sigkill"], say=lines.append)
    assert summary == {"cases": 6, "skipped": 0, "crashes": 0, "tracebacks": 0, "failed": 0}, "\n".join(lines)
