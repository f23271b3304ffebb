"""Label search fast paths: blocked exact top-k, zero-copy memory-mapped vocabularies, the IVF index."""
from __future__ import annotations

import numpy as np
import pytest

from wordnet import vocab as vocab_mod
from wordnet.scoring.metrics import top_k_from_scores
from wordnet.vocab import Vocabulary, label_matrix, top_k


def unit(rng, n, d=16):
    m = rng.normal(size=(n, d)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def make_vocab(vectors):
    n = len(vectors)
    return Vocabulary(wnids=[f"n{i:08d}" for i in range(n)], synsets=[f"s{i}.n.01" for i in range(n)],
                      labels=[f"l{i}" for i in range(n)], definitions=[f"d{i}" for i in range(n)], vectors=vectors)


@pytest.mark.parametrize("block_bytes", [4 * 50, 64 << 20])
def test_blocked_top_k_is_the_eval_ranking_including_ties(monkeypatch, block_bytes):
    rng = np.random.default_rng(0)
    matrix = label_matrix(np.round(rng.normal(size=(50, 4)), 0))  # coarse values: many exact ties
    q = rng.normal(size=(7, 4)).astype(np.float32)
    monkeypatch.setattr(vocab_mod, "SCORE_BLOCK_BYTES", block_bytes)  # 1 query per block, or all at once
    for k in (1, 5, 50, 80):
        idx, scores = top_k(q, matrix, k)
        want_idx, want_scores = top_k_from_scores(label_matrix(q) @ matrix.T, k)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_allclose(scores, want_scores, atol=1e-6)  # GEMV vs GEMM: last-bit differences
        assert idx.shape == (7, min(k, 50)) and scores.dtype == np.float32
    empty_idx, empty_scores = top_k(np.zeros((0, 4), np.float32), matrix, 3)
    assert empty_idx.shape == (0, 3) and empty_scores.shape == (0, 3)


def test_label_matrix_copies_unless_given_a_read_only_unit_matrix():
    rng = np.random.default_rng(1)
    m = unit(rng, 10)
    assert label_matrix(m) is not m and np.shares_memory(label_matrix(m), m) is False
    ro = m.copy()
    ro.flags.writeable = False
    assert np.shares_memory(label_matrix(ro), ro)
    ro_scaled = (m * 3).copy()
    ro_scaled.flags.writeable = False
    out = label_matrix(ro_scaled)
    assert not np.shares_memory(out, ro_scaled)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_big_vocabularies_are_memory_mapped_and_score_the_same(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    v = make_vocab(unit(rng, 300))
    v.save(tmp_path / "v.h5")
    in_memory = Vocabulary.load(tmp_path / "v.h5")
    assert in_memory.vectors.flags.writeable  # small: read into memory
    monkeypatch.setattr(vocab_mod, "MMAP_MIN_BYTES", 0)
    mapped = Vocabulary.load(tmp_path / "v.h5")
    assert not mapped.vectors.flags.writeable and mapped.vectors.flags.c_contiguous
    np.testing.assert_array_equal(mapped.vectors, in_memory.vectors)
    q = rng.normal(size=(5, 16))
    for a, b in zip(mapped.top_k(q, 4), in_memory.top_k(q, 4)):
        np.testing.assert_array_equal(a, b)
    sub = mapped.subset(mapped.wnids[:3])
    np.testing.assert_array_equal(sub.vectors, in_memory.vectors[:3])


def test_truncated_mapped_vocabulary_is_one_clear_error(tmp_path, monkeypatch):
    from wordnet.base.errors import VocabularyError

    rng = np.random.default_rng(3)
    make_vocab(unit(rng, 2000, 64)).save(tmp_path / "v.h5")
    data = (tmp_path / "v.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) - 200_000])
    monkeypatch.setattr(vocab_mod, "MMAP_MIN_BYTES", 0)
    with pytest.raises(VocabularyError, match="cut.h5 is corrupt or truncated"):
        Vocabulary.load(tmp_path / "cut.h5")


# -- approximate index ---------------------------------------------------------------
def clustered(rng, n, d=32, centres=40):
    c = unit(rng, centres, d)
    x = c[rng.integers(0, centres, n)] + rng.normal(scale=0.3 / np.sqrt(d), size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_approximate_search_matches_exact_closely():
    from wordnet.ann import VectorIndex, recall_at_k

    rng = np.random.default_rng(4)
    v = make_vocab(clustered(rng, 3000))
    q = v.vectors[rng.integers(0, len(v), 64)] + rng.normal(scale=0.05, size=(64, 32)).astype(np.float32)
    index = VectorIndex.build(v.vectors, threads=1)
    idx, scores = index.search(q, 5)
    exact_idx, exact_scores = v.top_k(q, 5)
    assert idx.shape == (64, 5) and idx.dtype == np.int64 and scores.dtype == np.float32
    assert recall_at_k(idx, exact_idx) >= 0.95
    # scores are exact cosines of the rows returned, best first
    want = np.einsum("nd,nkd->nk", label_matrix(q), v.vectors[idx])
    np.testing.assert_allclose(scores, want, atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert index.search(q[:2], 10_000)[0].shape == (2, 3000)  # k clipped to the vocabulary
    assert index.search(np.zeros((0, 32)), 5)[0].shape == (0, 5)


def test_recall_at_k():
    from wordnet.ann import recall_at_k

    assert recall_at_k([[1, 2, 3], [4, 5, 6]], [[3, 2, 1], [4, 9, 8]]) == pytest.approx((1 + 1 / 3) / 2)


def test_index_is_cached_per_vocabulary_file_and_rebuilt_when_it_changes(tmp_path, devise_home):
    from wordnet.ann import INDEX_DIR, cache_path, vector_index

    rng = np.random.default_rng(5)
    make_vocab(clustered(rng, 500)).save(tmp_path / "v.h5")
    v = Vocabulary.load(tmp_path / "v.h5")
    builds = []
    first = vector_index(v, on_build=builds.append)
    assert builds == [500] and cache_path(tmp_path / "v.h5").is_file()
    again = vector_index(Vocabulary.load(tmp_path / "v.h5"), on_build=builds.append)
    assert builds == [500]  # loaded from the cache
    q = rng.normal(size=(8, 32))
    for a, b in zip(first.search(q, 5), again.search(q, 5)):
        np.testing.assert_array_equal(a, b)
    old = cache_path(tmp_path / "v.h5")
    make_vocab(clustered(rng, 400)).save(tmp_path / "v.h5")  # the file changes: new key, old index removed
    v2 = Vocabulary.load(tmp_path / "v.h5")
    assert len(vector_index(v2, on_build=builds.append)) == 400 and builds == [500, 400]
    assert not old.exists() and len(list((devise_home / INDEX_DIR).glob("v-*"))) == 1
    cache_path(tmp_path / "v.h5").write_bytes(b"damaged")  # unreadable cache: rebuilt, not an error
    assert len(vector_index(v2, on_build=builds.append)) == 400 and builds == [500, 400, 400]
    in_memory = make_vocab(clustered(rng, 50))
    assert len(vector_index(in_memory, on_build=builds.append)) == 50 and builds[-1] == 50


def test_missing_library_is_a_clear_error(monkeypatch):
    import builtins

    from wordnet.ann import VectorIndex
    from wordnet.base.errors import VocabularyError

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(VocabularyError, match=r"approximate search needs the faiss-cpu package: pip install"):
        VectorIndex.build(unit(np.random.default_rng(6), 10))


def test_queries_whose_cells_hold_fewer_than_k_labels_are_filled_exactly():
    from wordnet.ann import VectorIndex, n_cells

    rng = np.random.default_rng(7)
    v = make_vocab(clustered(rng, 400, centres=8))
    assert n_cells(400) == 10 and n_cells(40) == 1 and n_cells(10**6) == 4000
    index = VectorIndex.build(v.vectors, threads=1, nprobe=1)
    q = rng.normal(size=(6, 32)).astype(np.float32)
    idx, scores = index.search(q, 150)  # more than one cell holds
    assert idx.min() >= 0 and all(len(set(r)) == 150 for r in idx.tolist())
    np.testing.assert_array_equal(idx, v.top_k(q, 150)[0])  # filled rows come from the exact search
