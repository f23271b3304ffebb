"""Image indexes at scale without TensorFlow: shards, memory-mapped block search, journal, merge, approximate index.

``update_index`` is driven by a stand-in bundle whose embeddings are a fixed function of
each file's name (``FakeBundle``), so incremental updates, resumption from committed
chunks, Ctrl-C and the approximate index's upkeep are checked exactly and in
milliseconds; the real network is exercised in tests/devise_cli/test_search_cmds.py.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models.bundle import BundleOutput
from models.data.shards import Shard, shard_of
from models.index.journal import Journal
from models.index.merge import merge_indexes
from models.index.scan import MappedRows, scan_top_k
from models.index.store import ImageIndex, ImageIndexError, IndexFile, write_index
from models.index.update import update_index
from wordnet.base.errors import UsageError
from wordnet.vocab import top_k

DIM = 8


def unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def vector_of(path) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(Path(path).name.encode()).digest()[:4], "big")
    return unit(np.random.default_rng(seed).normal(size=(1, DIM)))[0]


class FakeBundle:
    """What update_index needs of a bundle; embeddings depend on the file name only."""

    def __init__(self, folder: Path, model_bytes: bytes = b"model", label_text: str = "lemmas"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.keras").write_bytes(model_bytes)
        self.path, self.config, self.backbone, self.image_size, self.dim = folder, {}, "fake", 32, DIM
        self.vocab = SimpleNamespace(attrs={"label_text": label_text})
        self.calls: list[list[str]] = []
        self.stop_after: int | None = None  # raise KeyboardInterrupt after this many batches

    def run_batches(self, paths, batch_size=32, softmax=False, method=None):
        assert method == "devise"  # update_index's default: the DeViSE head's embeddings
        self.calls.append([str(p) for p in paths])
        for b, s in enumerate(range(0, len(paths), batch_size)):
            if self.stop_after is not None and b == self.stop_after:
                raise KeyboardInterrupt
            batch = [Path(p) for p in paths[s:s + batch_size]]
            ok = [p for p in batch if p.read_bytes() != b"bad"]
            fails = [(p, "not an image") for p in batch if p.read_bytes() == b"bad"]
            emb = np.stack([vector_of(p) * 3 for p in ok]) if ok else np.zeros((0, DIM), np.float32)
            yield BundleOutput(ok, emb, None, fails)


def photos(folder: Path, n: int, start: int = 0) -> list[Path]:
    out = []
    for i in range(start, start + n):
        p = folder / f"d{i % 3}" / f"p{i:03d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"photo {i}".encode())
        out.append(p)
    return out


# -- shards -----------------------------------------------------------------------------
def test_shards_partition_by_a_stable_hash_of_the_absolute_path(tmp_path, monkeypatch):
    # the same on every host, process and Python version: BLAKE2b of the path's bytes (not hash()), pinned
    digest = int.from_bytes(hashlib.blake2b(b"/photos/a.jpg", digest_size=8).digest(), "big")
    assert [shard_of("/photos/a.jpg", n) for n in (1, 2, 7, 1000)] == [digest % n for n in (1, 2, 7, 1000)] \
        == [0, 1, 5, 783]
    files = [Path("/photos") / f"f{i}.jpg" for i in range(300)]  # fixed paths: fixed shards (need not exist)
    shards = [Shard(i, 4).select(files) for i in range(4)]
    assert sorted(p for s in shards for p in s) == sorted(files)  # every file once
    assert all(s == [p for p in files if p in s] for s in shards)  # input order kept
    assert sorted(map(len, shards)) == [63, 78, 79, 80]  # roughly even, and pinned: the hash is fixed
    grown = files + [Path("/photos/new.jpg")]
    assert [p for p in Shard(1, 4).select(grown) if p.name != "new.jpg"] == shards[1]  # nothing moves
    monkeypatch.chdir(tmp_path)  # a relative path is sharded as its absolute path
    assert [shard_of(f"f{i}.jpg", 4) for i in range(20)] == [shard_of(tmp_path / f"f{i}.jpg", 4) for i in range(20)]
    assert Shard.parse(" 3 / 8 ") == Shard(3, 8) and str(Shard(3, 8)) == "3/8" and Shard(0, 1).select(files) == files
    for bad in ("4/4", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(UsageError, match=r"is not I/N with 0 <= I < N"):
            Shard.parse(bad)


# -- memory-mapped exact search ---------------------------------------------------------------
def test_block_scan_equals_one_top_k_and_breaks_ties_by_row(tmp_path):
    rng = np.random.default_rng(0)
    emb = unit(rng.normal(size=(1000, DIM)))
    emb[700] = emb[10]  # a tie across blocks: the lower row first
    emb[11] = emb[10]  # and within a block
    write_index(tmp_path / "i.h5", [f"/p/{i:04d}" for i in range(1000)], np.arange(1000), np.arange(1000), emb, {})
    with IndexFile.open(tmp_path / "i.h5") as f:
        assert isinstance(f.embeddings, MappedRows) and f.embeddings.shape == (1000, DIM)
        q = np.vstack([emb[10] + 0.01, rng.normal(size=(2, DIM))])
        want = top_k(q, emb, 6)
        for block_bytes in (DIM * 4, DIM * 4 * 7, DIM * 4 * 333, 1 << 30):
            idx, scores = scan_top_k(q, f.embeddings, 6, block_bytes=block_bytes)
            np.testing.assert_array_equal(idx, want[0])
            np.testing.assert_allclose(scores, want[1], atol=1e-6)
        assert list(idx[0, :3]) == [10, 11, 700]
        rows, scores = f.search(emb[42], 3)
        assert rows[0] == 42 and f.paths_at(rows)[0] == "/p/0042" and "paths" not in f._cache  # paths not all read
        np.testing.assert_array_equal(f.embeddings[[5, 3]], emb[[5, 3]])
        np.testing.assert_array_equal(f.embeddings[998:], emb[998:])
        with pytest.raises(ImageIndexError, match="the query is 3-d but .* holds 8-d embeddings"):
            f.search(np.ones(3), 2)


def test_index_file_is_rewritten_with_a_new_generation_and_read_back(tmp_path):
    emb = unit(np.eye(3, DIM) + 0.1)
    g1 = write_index(tmp_path / "i.h5", ["/a", "/b", "/c"], [1, 2, 3], [4, 5, 6], emb, {"sources": ["/x"], "k": 1})
    idx = ImageIndex.load(tmp_path / "i.h5")
    assert idx.paths == ["/a", "/b", "/c"] and list(idx.sizes) == [1, 2, 3] and list(idx.mtimes) == [4, 5, 6]
    np.testing.assert_array_equal(idx.embeddings, emb)
    assert idx.attrs["sources"] == ["/x"] and idx.attrs["generation"] == g1 and idx.attrs["dim"] == DIM
    g2 = write_index(tmp_path / "i.h5", ["/a"], [1], [4], emb[:1], {})
    assert g2 != g1 and len(ImageIndex.load(tmp_path / "i.h5")) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["i.h5"]  # nothing else left behind


# -- update_index: incremental, chunked, resumable -------------------------------------------------
def test_update_commits_chunks_and_writes_sorted_rows_incrementally(tmp_path):
    bundle = FakeBundle(tmp_path / "bundle")
    files = photos(tmp_path / "photos", 10)
    out = tmp_path / "idx.h5"
    commits = []
    real = Journal.commit

    def spy(self, paths, *args):
        commits.append(len(paths))
        return real(self, paths, *args)

    Journal.commit = spy
    try:
        stats = update_index(bundle, files, out, batch_size=3, commit_every=4, sources=["/s"])
    finally:
        Journal.commit = real
    assert (stats.new, stats.unchanged, stats.embedded, stats.resumed) == (10, 0, 10, 0)
    assert commits == [4, 4, 2] and len(bundle.calls) == 1  # one pipeline, three chunks
    idx = ImageIndex.load(out)
    assert idx.paths == sorted(map(str, files)) and idx.paths != list(map(str, files))  # path order, not input order
    np.testing.assert_allclose(idx.embeddings, [vector_of(p) for p in idx.paths], atol=1e-6)
    assert idx.attrs["sources"] == ["/s"] and not Journal(out).exists() and not (tmp_path / ".idx.h5.lock").exists()

    generation = idx.attrs["generation"]
    stats = update_index(bundle, files, out, sources=["/s"])
    assert (stats.unchanged, stats.embedded) == (10, 0) and bundle.calls[-1] == []
    assert ImageIndex.load(out).attrs["generation"] == generation  # nothing changed: not rewritten

    files[3].write_bytes(b"changed")
    os.utime(files[3], ns=(1, 1))
    files[5].unlink()
    added = photos(tmp_path / "photos", 1, start=50)[0]
    stats = update_index(bundle, [*files[:5], *files[6:], added], out, sources=["/s"])
    assert (stats.new, stats.changed, stats.unchanged, stats.removed) == (1, 1, 8, 1)
    assert sorted(bundle.calls[-1]) == sorted([str(files[3]), str(added)])
    after = ImageIndex.load(out)
    np.testing.assert_array_equal(after.embeddings[after.paths.index(str(files[0]))],
                                  idx.embeddings[idx.paths.index(str(files[0]))])  # kept bit for bit
    assert str(files[5]) not in after.paths and after.paths == sorted(after.paths, key=lambda p: p.split(os.sep))


def test_a_killed_run_is_continued_from_its_committed_chunks(tmp_path):
    bundle = FakeBundle(tmp_path / "bundle")
    files = photos(tmp_path / "photos", 9)
    out = tmp_path / "idx.h5"
    update_index(bundle, files[:3], out)  # an index to extend
    # what a run SIGKILLed after two commits leaves: chunks in the journal, a temporary file, the old index
    from models.index.update import bundle_attrs

    journal, attrs = Journal(out), bundle_attrs(bundle)
    journal.commit([str(p) for p in files[3:5]], [p.stat().st_size for p in files[3:5]],
                   [p.stat().st_mtime_ns for p in files[3:5]], unit([vector_of(p) for p in files[3:5]]), attrs)
    journal.commit([str(files[5])], [files[5].stat().st_size], [files[5].stat().st_mtime_ns + 1],  # file changed since
                   unit([vector_of(files[5])]), attrs)
    other = dict(attrs, model_checksum="sha256:other")
    journal.commit([str(files[6])], [files[6].stat().st_size], [files[6].stat().st_mtime_ns],
                   unit([vector_of(files[6])]), other)  # another model's chunk: ignored
    (journal.folder / ".chunk-000004.h5.abcdefgh.tmp.h5").write_bytes(b"half")
    (tmp_path / ".idx.h5.abcdefgh.tmp.h5").write_bytes(b"half")
    stats = update_index(bundle, files, out)
    assert (stats.new, stats.unchanged, stats.resumed, stats.embedded) == (6, 3, 2, 4)
    assert sorted(bundle.calls[-1]) == sorted(map(str, files[5:]))  # not the committed two
    idx = ImageIndex.load(out)
    assert idx.paths == sorted(map(str, files))
    np.testing.assert_allclose(idx.embeddings, [vector_of(p) for p in idx.paths], atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "idx.h5", "photos"]


def test_ctrl_c_writes_what_was_embedded_and_failures_are_listed(tmp_path):
    bundle = FakeBundle(tmp_path / "bundle")
    files = photos(tmp_path / "photos", 8)
    files[1].write_bytes(b"bad")
    bundle.stop_after = 2
    with pytest.raises(KeyboardInterrupt):
        update_index(bundle, files, tmp_path / "idx.h5", batch_size=3, commit_every=100)
    kept = ImageIndex.load(tmp_path / "idx.h5").paths
    assert kept == sorted(str(p) for p in files[:6] if p != files[1])
    assert not Journal(tmp_path / "idx.h5").exists()
    bundle.stop_after = None
    stats = update_index(bundle, files, tmp_path / "idx.h5", batch_size=3)
    assert stats.failures == [(str(files[1]), "not an image")] and (stats.unchanged, stats.new) == (5, 3)
    assert bundle.calls[-1] == [str(files[1]), str(files[6]), str(files[7])]


def test_shard_runs_merge_to_the_one_process_index(tmp_path):
    bundle = FakeBundle(tmp_path / "bundle")
    files = photos(tmp_path / "photos", 40)
    update_index(bundle, files, tmp_path / "one.h5", sources=["/s"])
    parts = [tmp_path / f"part{i}.h5" for i in range(3)]
    for i, part in enumerate(parts):
        update_index(bundle, files, part, shard=Shard(i, 3), sources=["/s"])
        assert ImageIndex.load(part).attrs["shard"] == f"{i}/3"
    stats = merge_indexes(tmp_path / "all.h5", parts)
    assert (stats.parts, stats.rows, stats.duplicates) == (3, 40, 0)
    one, merged = ImageIndex.load(tmp_path / "one.h5"), ImageIndex.load(tmp_path / "all.h5")
    assert merged.paths == one.paths
    np.testing.assert_array_equal(merged.embeddings, one.embeddings)
    np.testing.assert_array_equal(merged.mtimes, one.mtimes)
    assert merged.attrs["sources"] == ["/s"] and "shard" not in merged.attrs


def test_merge_keeps_the_newest_row_and_refuses_other_label_texts(tmp_path):
    a = write_index(tmp_path / "a.h5", ["/x", "/y"], [1, 1], [10, 10], unit(np.eye(2, DIM)), {"model_checksum": "m"})
    write_index(tmp_path / "b.h5", ["/y", "/z"], [2, 2], [20, 5], unit(np.eye(2, DIM, 2)), {"model_checksum": "m"})
    assert a
    stats = merge_indexes(tmp_path / "m.h5", [tmp_path / "a.h5", tmp_path / "b.h5"])
    m = ImageIndex.load(tmp_path / "m.h5")
    assert (stats.rows, stats.duplicates) == (3, 1) and m.paths == ["/x", "/y", "/z"] and list(m.mtimes) == [10, 20, 5]
    np.testing.assert_array_equal(m.embeddings[1], unit(np.eye(2, DIM, 2))[0])
    write_index(tmp_path / "c.h5", ["/q"], [1], [1], unit(np.eye(1, DIM)), {"model_checksum": "m",
                                                                              "label_text": "lemmas+gloss"})
    with pytest.raises(ImageIndexError, match=r"c\.h5 embeds synset queries with label text 'lemmas\+gloss', "
                                              r".*a\.h5 with None; merge only parts indexed with the same --model"):
        merge_indexes(tmp_path / "n.h5", [tmp_path / "a.h5", tmp_path / "c.h5"])
    with pytest.raises(ImageIndexError, match=r"nope\.h5: no such index"):
        merge_indexes(tmp_path / "n.h5", [tmp_path / "a.h5", tmp_path / "nope.h5"])
    assert not (tmp_path / "n.h5").exists()


# -- the approximate index beside the file ------------------------------------------------------
def test_approximate_index_is_renumbered_and_extended_not_retrained(tmp_path):
    faiss = pytest.importorskip("faiss")
    from models.index import approx

    def centroids():
        whole = faiss.read_index(str(approx.sidecar(out)))
        ivf = faiss.extract_index_ivf(whole)
        return ivf.quantizer.reconstruct_n(0, ivf.nlist).copy()

    bundle = FakeBundle(tmp_path / "bundle")
    files = photos(tmp_path / "photos", 1200)
    out = tmp_path / "idx.h5"
    update_index(bundle, files, out)
    with IndexFile.open(out) as f:
        built = []
        index = approx.approximate_index(f, on_build=built.append)
        assert built == [1200] and index.cells > 1
        assert approx.approximate_index(f, on_build=built.append).cells == index.cells and built == [1200]
    trained = centroids()

    keep = files[::2] + photos(tmp_path / "photos", 300, start=2000)  # drop half, add new ones in between
    update_index(bundle, keep, out)
    with IndexFile.open(out) as f:
        index = approx.approximate_index(f, on_build=built.append)
        assert built == [1200]  # updated by update_index, not rebuilt
        assert index.index.ntotal == len(f) == 900
        np.testing.assert_array_equal(centroids(), trained)
        emb = np.asarray(f.embeddings)
        rows, _ = index.search(emb, 1)
        assert (rows[:, 0] == np.arange(900)).mean() > 0.99  # every row findable under its new number
        exact = scan_top_k(emb[:50], f.embeddings, 5)[0]
        approx_rows = index.search(emb[:50], 5)[0]
        assert np.mean([len(set(a) & set(e)) / 5 for a, e in zip(approx_rows, exact)]) > 0.8

    write_index(out, ["/a"], [1], [1], emb[:1], {})  # written by someone else: the sidecar no longer matches
    with IndexFile.open(out) as f:
        approx.approximate_index(f, on_build=built.append)
    assert built == [1200, 1]
