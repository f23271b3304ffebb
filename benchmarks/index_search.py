"""Benchmark 6: `devise search` over a million indexed photos beside the memory-map floor: time and resident memory.

A synthetic index of ROWS photos (unit 300-d embeddings scattered around 2,000 concept
directions, as photos of things are; paths like ``/photos/0123/0123456.jpg``; about
1.2 GB at 1M) is written once with the index writer and kept in ``--root``.
Side by side, interleaved, medians of ROUNDS (the file warm in the page cache for all):

- **floor**: the embeddings as one ``np.memmap`` opened once, then per query ``mm @ q`` and
  ``argpartition`` + sort of the top k: the least work any exact search must do (its pages stay
  mapped between queries, and count in its RSS); also with a new ``np.memmap`` per query;
- **ours**: what ``devise search`` does per query: open the index file, score its
  memory-mapped embeddings a block at a time with a running top-k
  (:class:`models.index.store.IndexFile`), read the k paths;
- **load all** (one round, for scale): the index read into memory and scored at once
  (:meth:`ImageIndex.load`, what search did before).

Peak RSS of fresh processes (``wait4``): ``devise search BIG tiger --json`` against the
same command on a 10-photo index with the same word vectors (the baseline: everything but
the index), and a script that reads the whole index and scores it. With ``--approx`` also
the faiss index kept beside the index: its one-off build, then query time and RSS.
Goals: ours / floor <= 1.5; ours' RSS <= baseline + 300 MB.

    python benchmarks/index_search.py                    # 1M photos
    python benchmarks/index_search.py --rows 200000 --approx
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, peak_rss_mib, timed
from cold_start import devise_cmd

K = 10
RSS_GOAL_MIB = 300
LOAD_ALL = """
import sys
from models.index.store import ImageIndex
from models.index.scan import scan_top_k
idx = ImageIndex.load(sys.argv[1])
import numpy as np
rows, _ = scan_top_k(np.ones((1, idx.embeddings.shape[1]), np.float32), idx.embeddings, 10, block_bytes=1 << 40)
print([idx.paths[i] for i in rows[0]])
"""


CONCEPTS = 2000  # synthetic photos are of this many concepts
SPREAD = 0.75  # noise norm around a concept's direction: cosine ~0.8 to it, as photos of one thing


def concepts(dim: int) -> np.ndarray:
    c = np.random.default_rng(1).standard_normal((CONCEPTS, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def near(centres: np.ndarray, rng) -> np.ndarray:
    """Unit rows scattered around ``centres`` (one per row)."""
    x = centres + np.float32(SPREAD / np.sqrt(centres.shape[1])) * rng.standard_normal(centres.shape, np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # float32: a float64 query would
    # make NumPy convert the whole memory-mapped matrix for the floor's product


class SyntheticRows:
    """Embeddings of photos of CONCEPTS things, seeded, generated a block at a time (never all in memory)."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.shape, self.seed, self.centres = (n, dim), seed, concepts(dim)

    def __getitem__(self, block: slice) -> np.ndarray:
        start, stop, _ = block.indices(self.shape[0])
        rng = np.random.default_rng([self.seed, start])
        return near(self.centres[rng.integers(0, CONCEPTS, stop - start)], rng)


def make_vectors(path: Path, dim: int) -> Path:
    """A few 300-d word vectors (the query words), saved as .kv."""
    from gensim.models import KeyedVectors

    if not path.is_file():
        words = ["tiger", "dog", "fire_engine", "beach"]
        kv = KeyedVectors(dim)
        kv.add_vectors(words, np.random.default_rng(5).standard_normal((len(words), dim)).astype(np.float32))
        kv.save(str(path))
    return path


def make_index(path: Path, rows: int, dim: int, vectors: Path) -> Path:
    from models.index.store import write_index

    if path.is_file():
        return path
    paths = [f"/photos/{i // 1000:04d}/{i:07d}.jpg" for i in range(rows)]
    attrs = {"model_checksum": "sha256:synthetic", "model_path": "/nonexistent", "vectors": str(vectors),
             "label_text": "lemmas", "sources": ["/photos"]}
    t = time.perf_counter()
    write_index(path, paths, np.full(rows, 100_000), np.arange(rows), SyntheticRows(rows, dim), attrs)
    os.sync()  # pages still being written back would slow the first rounds of whichever side reads them first
    print(f"wrote {path} ({rows:,} rows, {path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--approx", action="store_true", help="also the faiss index kept beside the index")
    ap.add_argument("--root", type=Path, default=Path("/tmp/devise_bench"))
    args = ap.parse_args(argv)

    from models.index.scan import scan_top_k
    from models.index.store import ImageIndex, IndexFile

    args.root.mkdir(parents=True, exist_ok=True)
    vectors = make_vectors(args.root / f"query_words_{args.dim}.kv", args.dim)
    big = make_index(args.root / f"index_{args.rows}_{args.dim}.h5", args.rows, args.dim, vectors)
    tiny = make_index(args.root / f"index_10_{args.dim}.h5", 10, args.dim, vectors)
    with IndexFile.open(big) as f:
        offset = f._h5["embeddings"].id.get_offset()
    mm = np.memmap(big, np.float32, "r", offset=offset, shape=(args.rows, args.dim))
    q = near(concepts(args.dim)[:1], np.random.default_rng(9))[0]  # a query about one of the concepts
    assert q.dtype == np.float32

    def top_of(matrix):
        scores = matrix @ q
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    def floor():
        return top_of(mm)

    def floor_fresh():  # what a fresh process pays: a new map, its pages mapped as they are read
        return top_of(np.memmap(big, np.float32, "r", offset=offset, shape=(args.rows, args.dim)))

    def ours():
        with IndexFile.open(big) as f:
            rows, _ = f.search(q, K)
            return f.paths_at(rows)

    with IndexFile.open(big) as f:
        want = f.paths_at(floor())
    assert ours() == want, "ours and the floor disagree"
    wall, cpu = timed({"floor": floor, "floor_fresh": floor_fresh, "ours": ours}, args.rounds, cpu=True)
    t = time.perf_counter()
    idx = ImageIndex.load(big)
    scan_top_k(q, idx.embeddings, K, block_bytes=1 << 40)
    load_all = time.perf_counter() - t
    del idx

    cmd = devise_cmd() + ["search"]
    rss = {"baseline": peak_rss_mib(cmd + [str(tiny), "tiger", "--json"]),
           "ours": peak_rss_mib(cmd + [str(big), "tiger", "--json"]),
           "load all": peak_rss_mib([sys.executable, "-c", LOAD_ALL, str(big)])}
    approx = None
    if args.approx:
        from models.index import approx as sidecar

        sidecar.discard(big)
        t = time.perf_counter()
        subprocess.run(cmd + [str(big), "tiger", "--approx", "--json"], check=True, capture_output=True)
        build = time.perf_counter() - t

        def approx_query():
            with IndexFile.open(big) as f:
                rows, _ = f.search(q, K, approx=True)
                return f.paths_at(rows)

        approx_wall = timed({"approx": approx_query}, args.rounds)["approx"]
        recall = len(set(approx_query()) & set(want)) / K
        approx = (build, approx_wall, recall, peak_rss_mib(cmd + [str(big), "tiger", "--approx", "--json"]))

    print(f"machine: {machine_line()}")
    print(f"{args.rows:,} photos x {args.dim} d ({args.rows * args.dim * 4 / 2**30:.2f} GiB of embeddings), "
          f"top {K}, one query, median of {args.rounds} interleaved rounds, index warm in the page cache")
    print(f"{'search':<44}{'wall ms':>10}{'CPU ms':>10}")
    print(f"{'floor: np.memmap (open) @ q + argpartition':<44}"
          f"{wall['floor'] * 1000:>10.1f}{cpu['floor'] * 1000:>10.1f}")
    print(f"{'  the same with a new np.memmap each query':<44}{wall['floor_fresh'] * 1000:>10.1f}"
          f"{cpu['floor_fresh'] * 1000:>10.1f}")
    print(f"{'ours: open + block scan + k paths':<44}{wall['ours'] * 1000:>10.1f}{cpu['ours'] * 1000:>10.1f}")
    print(f"{'load all: ImageIndex.load + top-k (1 round)':<44}{load_all * 1000:>10.1f}")
    if approx:
        print(f"{'approx: mapped faiss IVF + exact re-score':<44}{approx[1] * 1000:>10.1f}   "
              f"(recall@{K} {approx[2]:.2f}; built once in {approx[0]:.1f} s)")
    print(f"{'peak RSS of a fresh process':<44}{'MiB':>10}")
    print(f"{'devise search (10-photo index): baseline':<44}{rss['baseline']:>10.0f}")
    print(f"{'devise search (this index)':<44}{rss['ours']:>10.0f}")
    print(f"{'read the whole index + top-k':<44}{rss['load all']:>10.0f}")
    if approx:
        print(f"{'devise search --approx (this index)':<44}{approx[3]:>10.0f}")
    print(f"machine after: {machine_line()}")
    ratio, over = wall["ours"] / wall["floor"], rss["ours"] - rss["baseline"]
    print(f"ratio ours/floor with a new map each query: wall {wall['ours'] / wall['floor_fresh']:.2f}, "
          f"CPU {cpu['ours'] / cpu['floor_fresh']:.2f}")
    print(f"ratio ours/floor (CPU): {cpu['ours'] / cpu['floor']:.2f} (goal <= 1.5: "
          f"{'met' if cpu['ours'] / cpu['floor'] <= 1.5 else 'MISSED'})")
    print(f"ratio ours/floor (wall): {ratio:.2f} (goal <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'})")
    print(f"RSS over baseline: {over:.0f} MiB (goal <= {RSS_GOAL_MIB}: {'met' if over <= RSS_GOAL_MIB else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
