"""wordnet.vectors.skipgram: tokens, phrase joining, GCIDE markup, the cached corpus, a tiny training run."""
from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pytest

from wordnet.base.errors import VectorsError
from wordnet.vectors.gcide import gcide_sentences, strip_gcide_markup
from wordnet.vectors.loading import load_vectors
from wordnet.vectors.skipgram import train_vectors
from wordnet.vectors.text_corpus import (
    CorpusStats,
    PhraseJoiner,
    build_corpus,
    lemma_tokens,
    noun_phrase_joiner,
    tokenize,
    wordnet_sentences,
)

# Two entries in GCIDE's dictd layout (copied in form, not content, from gcide.dict.dz)
GCIDE_SAMPLE = r"""00-database-short
   The Collaborative International Dictionary of English v.0.48

Leopard \Leop"ard\ (l[e^]p"[~e]rd), n. [OE. leopart, OF. leopard,
   l['e]opard. See {Lion}.] (Zool.)
   A large, savage, carnivorous mammal ({Felis leopardus}). The snow
   leopard lives in the mountains of Central Asia.
   [1913 Webster]

Tiger \Ti"ger\, n. [L. tigris.]
   A very large and powerful carnivore native of Southern Asia; it
   exceeds the lion in size. Called also {royal tiger}. Caf[ae] [Obs.]
   [1913 Webster]
"""


@pytest.fixture(scope="module")
def wn():
    from wordnet.reader import load_wordnet

    return load_wordnet()


@pytest.fixture(scope="module")
def cats(wn):
    """A small slice of WordNet: the felines (~60 synsets)."""
    root = wn.synset("feline.n.01")
    return [root, *root.closure(lambda s: s.hyponyms())]


def test_tokenize():
    assert tokenize("The Snow Leopard's den -- a T-shirt, 3 cats!") == [
        "the", "snow", "leopard", "den", "a", "t-shirt", "3", "cats"]


def test_phrase_joiner_greedy_longest_match():
    joiner = PhraseJoiner(["snow_leopard", "New_York", "New_York_City", "in_the_first_place", "cat"])
    assert len(joiner) == 4
    tokens = tokenize("A snow leopard in New York City and in New York, not new zealand; in the first place")
    assert joiner(tokens) == ["a", "snow_leopard", "in", "new_york_city", "and", "in", "new_york", "not", "new",
                              "zealand", "in_the_first_place"]
    assert joiner(["snow"]) == ["snow"]  # a phrase's first word alone stays a word


def test_strip_gcide_markup():
    text = strip_gcide_markup(GCIDE_SAMPLE)
    # headword spelling, pronunciation and etymology gone
    assert re.search(r"^Leopard +, n\. +\(Zool\.\)$", text, re.M)
    assert "({Felis" not in text and "(Felis leopardus)" in text
    assert "[" not in text and "Webster" not in text and "Obs" not in text
    assert "Cafae" in text  # character entity [ae] resolved


def test_gcide_sentences(tmp_path):
    path = tmp_path / "gcide.dict.dz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(GCIDE_SAMPLE)
    joiner = PhraseJoiner(["snow_leopard", "royal_tiger"])
    sentences = list(gcide_sentences(path, lambda text: joiner(tokenize(text))))
    assert len(sentences) == 2  # the 00-database header is skipped
    assert sentences[0][:8] == ["leopard", "n", "zool", "a", "large", "savage", "carnivorous", "mammal"]
    assert "snow_leopard" in sentences[0] and "snow" not in sentences[0]
    assert "royal_tiger" in sentences[1] and "webster" not in sentences[1]
    bad = tmp_path / "bad.dz"
    bad.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(VectorsError, match="cannot read GCIDE"):
        list(gcide_sentences(bad, tokenize))


def test_wordnet_sentences_have_lemmas_hypernyms_and_phrased_glosses(wn, cats):
    joiner = noun_phrase_joiner(cats)
    sentences = dict(zip((s.name() for s in cats), wordnet_sentences(cats, joiner)))
    tiger = sentences["tiger.n.02"]
    assert tiger[:2] == ["tiger", "panthera_tigris"]
    assert "big_cat" in tiger  # hypernym name as a phrase token
    assert {"tawny", "stripes", "asia"} <= set(tiger)  # gloss words
    snow = sentences["snow_leopard.n.01"]
    assert snow[:3] == ["snow_leopard", "ounce", "panthera_uncia"]


def test_build_corpus_is_cached_and_trains(wn, cats, tmp_path, devise_home):
    gcide = tmp_path / "gcide.dict.dz"
    with gzip.open(gcide, "wt", encoding="utf-8") as fh:
        fh.write(GCIDE_SAMPLE)
    seen = []
    stats = build_corpus(wn, synsets=cats, gcide=gcide, progress=lambda *a: seen.append(a))
    assert stats.sentences == len(cats) + 2
    assert stats.sources == [f"wordnet 3.0 ({len(cats)} synsets)", str(gcide)]
    lines = open(stats.path, encoding="utf-8").read().splitlines()
    assert len(lines) == stats.sentences
    assert sum(len(line.split()) for line in lines) == stats.tokens
    assert sum(t.count("_") > 0 for line in lines for t in line.split()) == stats.phrase_tokens
    assert "snow_leopard" in lines[-2].split()  # GCIDE text got the WordNet phrase token
    # GCIDE progress counts 4 paragraphs: the header, two entries and the empty tail
    assert ("WordNet", len(cats), len(cats)) in seen and ("GCIDE", 4, 4) in seen
    assert stats.path.startswith(str(devise_home / "vectors"))

    mtime = os.stat(stats.path).st_mtime_ns
    again = build_corpus(wn, synsets=cats, gcide=gcide)
    assert again == stats and os.stat(stats.path).st_mtime_ns == mtime  # reused, not rebuilt
    without = build_corpus(wn, synsets=cats, gcide=None)
    assert without.path != stats.path and without.sentences == len(cats)

    out = tmp_path / "tiny.kv"
    kv, result = train_vectors(stats, out, dim=12, window=5, min_count=1, epochs=3, workers=1)
    corpus_words = {t for line in lines for t in line.split()}
    assert set(kv.index_to_key) == corpus_words
    assert result.vocabulary == len(corpus_words) and result.dim == 12 and result.corpus_tokens == stats.tokens
    loaded = load_vectors(out)
    assert "snow_leopard" in loaded.key_to_index and loaded.vector_size == 12
    np.testing.assert_allclose(loaded["tiger"], kv["tiger"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_keep_gives_rare_label_words_a_vector(wn, cats, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the snow_leopard is a big_cat\n" + "the cat sat on the mat\n" * 5)
    stats = CorpusStats(str(corpus), 6, 31, 2, [], 0.0)
    kv, _ = train_vectors(stats, tmp_path / "plain.kv", dim=4, min_count=3, epochs=1, workers=1)
    assert set(kv.index_to_key) == {"the", "cat", "sat", "on", "mat"}
    keep = lemma_tokens(cats)
    assert {"snow_leopard", "snow", "leopard", "big_cat", "big", "cat", "panthera_uncia", "uncia"} <= keep
    kv, _ = train_vectors(stats, tmp_path / "kept.kv", dim=4, min_count=3, epochs=1, workers=1, keep=keep)
    assert set(kv.index_to_key) == {"the", "cat", "sat", "on", "mat", "snow_leopard", "big_cat"}


def test_train_rejects_a_corpus_with_no_frequent_word(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("one two three\n")
    stats = CorpusStats(str(corpus), 1, 3, 0, [], 0.0)
    with pytest.raises(VectorsError, match="has no word seen 5 times; lower --min-count"):
        train_vectors(stats, tmp_path / "x.kv", dim=4, min_count=5, epochs=1, workers=1)
    assert not (tmp_path / "x.kv").exists()
