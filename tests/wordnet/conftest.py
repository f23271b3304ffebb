"""Fixtures of the label-half tests: the real WordNet and the emoji benchmark's concepts."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def wn():
    from wordnet.reader import load_wordnet

    return load_wordnet()


@pytest.fixture(scope="module")
def concepts(wn):
    from wordnet.datasets.emoji_concepts import load_concepts

    return load_concepts(wn)
