"""``--label-text``: label vectors from a synset's names, definition and hypernyms (NumPy references)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from devise_cli.cli import main
from wordnet.base.errors import VectorsError
from wordnet.reader import load_wordnet
from wordnet.vectors.label_text import (
    GLOSS_WEIGHT,
    HYPERNYM_WEIGHT,
    LABEL_TEXTS,
    SIF_A,
    gloss_vector,
    hypernym_vector,
    label_vectors,
    synset_vector,
)
from wordnet.vocab import Vocabulary
from wordnet.vocab_build import query_vector


def unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def wn():
    return load_wordnet()


@pytest.fixture(scope="module")
def counted_kv():
    """Tiny vectors that carry word counts (as gensim's Word2Vec saves them)."""
    from gensim.models import KeyedVectors

    words = ["large", "feline", "of", "forests", "in", "most", "asia", "having", "a", "tawny", "coat", "with",
             "black", "stripes", "tiger", "big_cat", "cat", "dog", "canine"]
    rng = np.random.default_rng(3)
    kv = KeyedVectors(8)
    kv.add_vectors(words, rng.normal(size=(len(words), 8)).astype(np.float32))
    for i, w in enumerate(words):
        kv.set_vecattr(w, "count", 5000 if w in ("of", "in", "a", "with") else 10 + i)
    return kv


def test_gloss_vector_is_the_sif_weighted_mean_of_the_definition(counted_kv, wn):
    tiger = wn.synset("tiger.n.02")
    assert tiger.definition().startswith("large feline of forests in most of Asia")
    counts = np.array([counted_kv.get_vecattr(w, "count") for w in counted_kv.index_to_key], float)
    freq = counts / counts.sum()
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", tiger.definition())]
    rows = [(unit(counted_kv[w]), SIF_A / (SIF_A + freq[counted_kv.key_to_index[w]]))
            for w in words if w in counted_kv.key_to_index]
    expected = unit(sum(w * v for v, w in rows))
    np.testing.assert_allclose(gloss_vector(counted_kv, tiger), expected, atol=1e-5)
    # frequent words barely count: "of" (5000 of ~20k tokens) weighs < 1% of "tawny"
    of, tawny = (SIF_A / (SIF_A + freq[counted_kv.key_to_index[w]]) for w in ("of", "tawny"))
    assert of < 0.01 * tawny


def test_hypernym_vector_and_the_combined_label_vector(counted_kv, wn):
    tiger = wn.synset("tiger.n.02")
    assert [h.name() for h in tiger.hypernyms()] == ["big_cat.n.01"]
    np.testing.assert_allclose(hypernym_vector(counted_kv, tiger),
                               unit(unit(counted_kv["big_cat"]) + unit(counted_kv["cat"])), atol=1e-5)
    lemmas = synset_vector(counted_kv, tiger)
    np.testing.assert_allclose(lemmas, unit(counted_kv["tiger"]), atol=1e-6)
    both = synset_vector(counted_kv, tiger, "lemmas+gloss+hypernyms")
    expected = unit(lemmas + GLOSS_WEIGHT * gloss_vector(counted_kv, tiger)
                    + HYPERNYM_WEIGHT * hypernym_vector(counted_kv, tiger))
    np.testing.assert_allclose(both, expected, atol=1e-5)
    gloss_only = synset_vector(counted_kv, tiger, "lemmas+gloss")
    np.testing.assert_allclose(gloss_only, unit(lemmas + GLOSS_WEIGHT * gloss_vector(counted_kv, tiger)), atol=1e-5)
    assert not np.allclose(gloss_only, both)


def test_a_label_without_a_name_vector_stays_missing_whatever_the_text(counted_kv, wn):
    matrix, missing = label_vectors(counted_kv, [wn.synset("violin.n.01"), wn.synset("tiger.n.02")],
                                    "lemmas+gloss+hypernyms")
    assert [s.name() for s in missing] == ["violin.n.01"] and matrix.shape == (1, 8)
    with pytest.raises(VectorsError, match="unknown label text 'names'; choose one of lemmas, lemmas\\+gloss"):
        label_vectors(counted_kv, [wn.synset("tiger.n.02")], "names")


def test_vocab_build_records_the_text_and_queries_follow_it(tiny_kv, tiny_kv_file, tmp_path, wn):
    labels = tmp_path / "labels.txt"
    labels.write_text("tiger.n.02\ndog\ncar\n")
    out = tmp_path / "rich.h5"
    res = CliRunner().invoke(main, ["vocab", "build", str(out), "--vectors", str(tiny_kv_file), "--synsets",
                                    str(labels), "--label-text", "lemmas+hypernyms"], env={"DEVISE_VECTORS": None})
    assert res.exit_code == 0, res.output
    vocab = Vocabulary.load(out)
    assert vocab.attrs["label_text"] == "lemmas+hypernyms"
    tiger = wn.synset("tiger.n.02")
    np.testing.assert_allclose(vocab.vectors[0], synset_vector(tiny_kv, tiger, "lemmas+hypernyms"), atol=1e-6)
    assert not np.allclose(vocab.vectors[0], synset_vector(tiny_kv, tiger), atol=1e-3)
    # a synset query outside the vocabulary is embedded with the vocabulary's own recipe
    leopard = wn.synset("leopard.n.02")
    np.testing.assert_allclose(query_vector(tiny_kv, "leopard.n.02", vocab, wn),
                               synset_vector(tiny_kv, leopard, "lemmas+hypernyms"), atol=1e-6)
    bad = CliRunner().invoke(main, ["vocab", "build", str(out), "--synsets", str(labels), "--label-text", "all"])
    assert bad.exit_code == 2 and "'all' is not one of 'lemmas', 'lemmas+gloss'" in bad.output


def test_train_refuses_label_text_with_a_ready_vocabulary(tmp_path):
    (tmp_path / "data" / "dog").mkdir(parents=True)
    vocab = tmp_path / "v.h5"
    vocab.write_bytes(b"")
    res = CliRunner().invoke(main, ["train", str(tmp_path / "data"), "--vocab", str(vocab),
                                    "--label-text", "lemmas+gloss", "-o", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert res.output.endswith("Error: --label-text builds the training vocabulary from --vectors; "
                               "--vocab has its own\n")
    assert LABEL_TEXTS[0] == "lemmas"
