"""wordnet.vocab (HDF5 vocabularies, top-k) and wordnet.vocab_build (synsets -> vocabulary)."""
from __future__ import annotations

import numpy as np
import pytest

from wordnet.base.errors import DimensionMismatchError, VectorsError, VocabularyError
from wordnet.vectors.label_text import synset_vector
from wordnet.vectors.loading import file_checksum
from wordnet.vocab import Vocabulary, top_k
from wordnet.vocab_build import build_vocabulary, hop_synsets, query_vector, subtree_synsets, synsets_from_file


@pytest.fixture(scope="module")
def wn():
    from wordnet.reader import load_wordnet

    return load_wordnet()


def _vocab(n=6, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    return Vocabulary(
        wnids=[f"n{i:08d}" for i in range(n)], synsets=[f"s{i}.n.01" for i in range(n)],
        labels=[f"label {i}" for i in range(n)], definitions=[f"définition {i}" for i in range(n)],
        vectors=rng.normal(size=(n, dim)), attrs={"vector_source": "/x/v.kv", "skipped": 2},
    )


def test_save_load_round_trip(tmp_path):
    vocab = _vocab()
    path = vocab.save(tmp_path / "v.h5")
    back = Vocabulary.load(path)
    assert (back.wnids, back.synsets, back.labels, back.definitions) == (
        vocab.wnids, vocab.synsets, vocab.labels, vocab.definitions)
    np.testing.assert_allclose(back.vectors, vocab.vectors, atol=1e-7)
    assert back.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(back.vectors, axis=1), 1.0, atol=1e-6)
    assert back.attrs["vector_source"] == "/x/v.kv" and back.attrs["skipped"] == 2
    assert back.attrs["dim"] == 5 and back.attrs["path"] == str(path)
    assert {"created", "devise_version"} <= set(back.attrs)
    assert [p.name for p in tmp_path.iterdir()] == ["v.h5"]  # atomic: no temp file left


def test_corrupt_truncated_and_foreign_files(tmp_path):
    good = _vocab().save(tmp_path / "good.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(VocabularyError) as err:
        Vocabulary.load(cut)
    assert str(err.value) == f"{cut} is corrupt or truncated (OSError); rebuild it with `devise vocab build`"
    import h5py

    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(VocabularyError, match="is not a devise vocabulary"):
        Vocabulary.load(foreign)
    with pytest.raises(VocabularyError, match="does not exist"):
        Vocabulary.load(tmp_path / "missing.h5")


def test_subset_and_dimension_check():
    vocab = _vocab()
    sub = vocab.subset(["n00000004", "n00000001"])
    assert sub.labels == ["label 4", "label 1"]
    np.testing.assert_array_equal(sub.vectors, vocab.vectors[[4, 1]])
    with pytest.raises(VocabularyError, match="1 label.s. not in the vocabulary: n99"):
        vocab.subset(["n99"])
    with pytest.raises(DimensionMismatchError, match="has 5-d vectors but the embedding is 3-d"):
        vocab.top_k(np.ones(3), 2)


def test_top_k_matches_brute_force():
    rng = np.random.default_rng(1)
    vocab = _vocab(n=50, dim=8)
    emb = rng.normal(size=(7, 8))
    idx, scores = vocab.top_k(emb, 5)
    cos = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ vocab.vectors.T
    expected = np.argsort(-cos, axis=1)[:, :5]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(cos, expected, axis=1), atol=1e-5)
    idx_all, _ = top_k(emb, vocab.vectors, 500)  # k larger than the vocabulary: everything, sorted
    np.testing.assert_array_equal(idx_all, np.argsort(-cos, axis=1))


# -- building ---------------------------------------------------------------------
def test_build_from_synsets(wn, tiny_kv, tiny_kv_file):
    synsets = [wn.synset(n) for n in ("dog.n.01", "tiger.n.02", "guitar.n.01", "car.n.01", "dog.n.01")]
    vocab, missing = build_vocabulary(synsets, tiny_kv, vector_source=tiny_kv_file, source="test")
    assert missing == []
    assert vocab.wnids == ["n02084071", "n02129604", "n03467517", "n02958343"]  # duplicate dropped
    assert vocab.synsets == ["dog.n.01", "tiger.n.02", "guitar.n.01", "car.n.01"]
    assert vocab.labels == ["dog", "tiger", "guitar", "car"]
    assert vocab.definitions[2] == wn.synset("guitar.n.01").definition()
    for row, s in enumerate(synsets[:4]):
        np.testing.assert_allclose(vocab.vectors[row], synset_vector(tiny_kv, s), atol=1e-6)
    assert vocab.attrs["vector_source"] == str(tiny_kv_file.resolve())
    assert vocab.attrs["vector_checksum"] == file_checksum(tiny_kv_file)
    assert vocab.attrs["source"] == "test" and vocab.dim == 16


def test_missing_vectors_error_and_skip(wn, tiny_kv, tiny_kv_file):
    synsets = [wn.synset(n) for n in ("cat.n.01", "quark.n.01", "neutrino.n.01")]
    with pytest.raises(VectorsError) as err:
        build_vocabulary(synsets, tiny_kv, vector_source=tiny_kv_file)
    assert str(err.value) == (
        "2 of 3 labels have no vector in tiny.kv: n09401834 (quark.n.01), n09369412 (neutrino.n.01); "
        "pass --skip-missing to leave them out, or use other vectors")
    vocab, missing = build_vocabulary(synsets, tiny_kv, vector_source=tiny_kv_file, skip_missing=True)
    assert vocab.synsets == ["cat.n.01"] and missing == synsets[1:] and vocab.attrs["skipped"] == 2
    with pytest.raises(VectorsError, match="none of the 2 labels has a vector in tiny.kv"):
        build_vocabulary(synsets[1:], tiny_kv, vector_source=tiny_kv_file, skip_missing=True)
    with pytest.raises(VocabularyError, match="the synset list is empty"):
        build_vocabulary([], tiny_kv, vector_source=tiny_kv_file)


def test_synset_sources(wn, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("n02084071\ntiger.n.02\nsnow leopard  # a comment\n\nGuitar\n")
    assert [s.name() for s in synsets_from_file(wn, labels)] == [
        "dog.n.01", "tiger.n.02", "snow_leopard.n.01", "guitar.n.01"]
    big_cats = subtree_synsets(wn, "big cat")
    assert big_cats[0].name() == "big_cat.n.01"
    assert {"leopard.n.02", "snow_leopard.n.01", "tiger.n.02", "lion.n.01"} <= {s.name() for s in big_cats}
    expected = {s for s in wn.synset("big_cat.n.01").closure(lambda s: s.hyponyms())}
    assert set(big_cats) == expected | {wn.synset("big_cat.n.01")}
    seen = tmp_path / "seen.txt"
    seen.write_text("tiger.n.02\n")
    universe = tmp_path / "universe.txt"
    universe.write_text("tiger.n.02\nbig_cat.n.01\nleopard.n.02\nfeline.n.01\nbengal_tiger.n.01\n")
    got = {s.name() for s in hop_synsets(wn, 2, seen, universe)}
    assert got == {"big_cat.n.01", "bengal_tiger.n.01"}  # the label is hop 1; parent and child are hop 2
    with pytest.raises(VocabularyError, match="no labels within 1 hops"):
        hop_synsets(wn, 1, seen, universe)


def test_query_vector(wn, tiny_kv, tiny_kv_file):
    synsets = [wn.synset(n) for n in ("tiger.n.02", "guitar.n.01")]
    vocab, _ = build_vocabulary(synsets, tiny_kv, vector_source=tiny_kv_file)
    np.testing.assert_allclose(query_vector(tiny_kv, "n03467517", vocab), vocab.vectors[1])
    np.testing.assert_allclose(query_vector(tiny_kv, "snow leopard"),
                               tiny_kv["snow_leopard"] / np.linalg.norm(tiny_kv["snow_leopard"]), atol=1e-6)
    np.testing.assert_allclose(query_vector(tiny_kv, "cat.n.01", vocab, wn=lambda: wn),
                               synset_vector(tiny_kv, wn.synset("cat.n.01")))
    with pytest.raises(VectorsError, match="'zebra' has no vector"):
        query_vector(tiny_kv, "zebra")
    with pytest.raises(VectorsError, match="quark.n.01 has no vector"):
        query_vector(tiny_kv, "quark.n.01", vocab, wn=wn)
