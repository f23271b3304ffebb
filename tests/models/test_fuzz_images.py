"""Fuzz models.data.images.load_image (the loader every command uses) with hypothesis: 650 cases in CI.

Inputs are valid small PNG/JPEG/GIF/BMP/TIFF/WebP files (scripts/fuzz_images.py's seeds)
mutated by that script's mutator under a hypothesis-drawn seed, plus raw byte strings.
Each is written to disk and loaded; it must decode to a (32, 32, 3) uint8 array or
raise ImageError whose one line starts with the path, within a time bound. The long
run (10,000+ cases) is ``python scripts/fuzz_images.py --cases 10000``.
"""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from tests.scripts.script_modules import load_script

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TIME_LIMIT = 10.0  # seconds per case: far above the slowest seen (~0.2 s), far below a hang


fz = load_script("fuzz_images")
SEEDS = fz.seed_images()
NAMES = sorted(SEEDS)


def _check(tmp_path, name: str, data: bytes) -> None:
    path = tmp_path / f"case{Path(name).suffix or '.bin'}"
    outcome, detail, seconds = fz.run_case(data, path, 32, TIME_LIMIT)
    assert outcome in ("ok", "image-error"), f"{name}: {outcome}: {detail}"
    assert seconds < TIME_LIMIT


def test_every_seed_decodes(tmp_path):
    """The mutations start from files that are valid: each one loads."""
    assert len(SEEDS) >= 15 and {Path(n).suffix for n in NAMES} >= {".png", ".jpg", ".gif"}
    for name in NAMES:
        outcome, detail, _ = fz.run_case(SEEDS[name], tmp_path / name, 32, TIME_LIMIT)
        assert outcome == "ok", (name, detail)


FUZZ = settings(max_examples=450, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(name=st.sampled_from(NAMES), seed=st.integers(0, 2**32 - 1))
def test_mutated_images_never_crash(tmp_path, name, seed):
    data = fz.mutate(SEEDS[name], random.Random(seed), [SEEDS[n] for n in NAMES])
    _check(tmp_path, name, data)


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b""] + [SEEDS[n][:8] for n in NAMES]), body=st.binary(max_size=600))
def test_random_bytes_never_crash(tmp_path, prefix, body):
    _check(tmp_path, "random.bin", prefix + body)


def test_seeded_mutator_cases_hit_both_outcomes(tmp_path):
    """100 cases straight from the script's generator (as the long run makes them): ok and ImageError both occur."""
    outcomes = Counter()
    for name, data in fz.generate(100, seed=12345):
        outcome, detail, seconds = fz.run_case(data, tmp_path / f"case{Path(name).suffix or '.bin'}", 32, TIME_LIMIT)
        assert outcome in ("ok", "image-error"), f"{name}: {outcome}: {detail}"
        outcomes[outcome] += 1
    assert outcomes["ok"] >= 5 and outcomes["image-error"] >= 50, outcomes
