"""Benchmark 3: label search, top-5 of 256 embeddings, beside one NumPy matmul + argpartition.

Sizes: 1K and 21K (rows of the all-nouns vocabulary: the ImageNet wnids when
/work/shared/data lists them, else the first rows), 82K (every WordNet noun, built with
``devise vocab build --all-nouns``) and 1M synthetic rows shaped like real label
vectors (each a real noun vector plus noise, cosine ~0.85 to it, re-normalised).
Queries stand in for model outputs: real noun vectors plus noise (cosine ~0.7).

"ours" is :meth:`wordnet.vocab.Vocabulary.top_k` (normalise, matmul, partial sort,
tie-stable order); "numpy" is the bare ``q @ M.T`` + ``argpartition`` (unsorted, no
normalisation): the limit. Goal: ours / numpy <= 1.5 at every size. With ``--approx``
the approximate index (:mod:`wordnet.ann`) is timed too, with its recall@5 against the
exact result; ``--libs`` measures the candidate libraries side by side at the largest
size (goal: >= 10x faster than exact at 1M with recall@5 >= 0.95).

    python benchmarks/label_search.py --nouns nouns.h5 --approx --libs hnswlib,faiss,usearch
    python benchmarks/label_search.py --sizes 1000,21841 --repeats 5
"""
from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, timed

DEFAULT_NOUNS = Path("/tmp/devise_bench/nouns.h5")
WNID_LISTS = {1000: "imagenet1k_wnids.txt", 21841: "imagenet21k_wnids.txt"}
SHARED = Path("/work/shared/data")


def nouns_vocab(path: Path):
    """The all-nouns vocabulary, built with the CLI (default trained vectors) when missing."""
    from wordnet.vocab import Vocabulary

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {path} with `devise vocab build --all-nouns` ...", flush=True)
        subprocess.run([sys.executable, "-m", "devise_cli.cli", "vocab", "build", str(path), "--all-nouns"], check=True)
    return Vocabulary.load(path)


def vocab_of_size(nouns, n: int, rng):
    """A Vocabulary of ``n`` labels: ImageNet rows of nouns, a prefix of nouns, nouns, or synthetic."""
    from wordnet.vocab import Vocabulary

    if n in WNID_LISTS and (SHARED / WNID_LISTS[n]).is_file():
        wnids = [w for w in (SHARED / WNID_LISTS[n]).read_text().split() if w in nouns]
        if len(wnids) >= 0.95 * n:
            return nouns.subset(wnids), f"ImageNet {len(wnids):,}"
    if n <= len(nouns):
        return (nouns, "all nouns") if n == len(nouns) else (nouns.subset(nouns.wnids[:n]), f"first {n:,} nouns")
    base = nouns.vectors
    vecs = np.empty((n, base.shape[1]), np.float32)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        block = base[rng.integers(0, len(base), m)] + rng.normal(scale=0.62 / np.sqrt(base.shape[1]),
                                                                  size=(m, base.shape[1])).astype(np.float32)
        vecs[s:s + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    names = [f"s{i}" for i in range(n)]
    return Vocabulary(wnids=names, synsets=names, labels=names, definitions=[""] * n, vectors=vecs), "synthetic"


def queries(nouns, n: int, rng) -> np.ndarray:
    base = nouns.vectors[rng.integers(0, len(nouns), n)]
    return (base + rng.normal(scale=1.0 / np.sqrt(base.shape[1]), size=base.shape)).astype(np.float32)


def numpy_limit(q: np.ndarray, matrix: np.ndarray, k: int):
    s = q @ matrix.T
    return np.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    from wordnet.ann import recall_at_k

    return recall_at_k(approx, exact)


def other_libs(libs: list[str], matrix: np.ndarray, q: np.ndarray, exact_idx, exact_s: float, k: int, threads: int):
    """Build and query each candidate library once (recall@k, build s, query s, speed-up)."""
    rows = []
    n, d = matrix.shape
    for lib in libs:
        gc.collect()
        t = time.perf_counter()
        if lib == "hnswlib":
            from wordnet.ann import VectorIndex

            idx = VectorIndex.build(matrix, threads=threads)
            build = time.perf_counter() - t
            search = lambda idx=idx: idx.search(q, k)[0]  # noqa: E731
        elif lib == "faiss":
            import faiss

            faiss.omp_set_num_threads(threads)
            nlist = int(4 * np.sqrt(n))
            fi = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            fi.train(matrix[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)])
            fi.add(matrix)
            fi.nprobe = 32
            build = time.perf_counter() - t
            search = lambda fi=fi: fi.search(q / np.linalg.norm(q, axis=1, keepdims=True), k)[1]  # noqa: E731
        elif lib == "usearch":
            from usearch.index import Index

            ui = Index(ndim=d, metric="ip", dtype="f32", connectivity=16, expansion_add=100, expansion_search=64)
            ui.add(np.arange(n), matrix, threads=threads)
            build = time.perf_counter() - t
            search = lambda ui=ui: ui.search(q / np.linalg.norm(q, axis=1, keepdims=True), k, threads=threads).keys  # noqa: E731
        else:
            raise SystemExit(f"unknown library {lib}")
        secs = timed({"s": search}, 3)["s"]
        rows.append((lib, build, secs, recall(search(), exact_idx), exact_s / secs))
        del search
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nouns", type=Path, default=DEFAULT_NOUNS, help="all-nouns vocabulary (built if missing)")
    ap.add_argument("--sizes", default="1000,21841,all,1000000", help="'all' = every noun")
    ap.add_argument("--queries", type=int, default=256)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--approx", action="store_true", help="also time wordnet.ann at the two largest sizes")
    ap.add_argument("--libs", default="", help="candidate libraries to compare at the largest size")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    nouns = nouns_vocab(args.nouns)
    q = queries(nouns, args.queries, rng)
    sizes = [len(nouns) if s == "all" else int(s) for s in args.sizes.split(",")]
    print(f"machine: {machine_line()}")
    print(f"top-{args.k} of {args.queries} embeddings x 300 d; median of {args.repeats} interleaved rounds")
    print(f"{'labels':>10} {'source':<16}{'ours ms':>9}{'numpy ms':>10}{'ours/np':>9}{'approx ms':>11}{'recall@5':>10}"
          f"{'exact/approx':>14}{'build s':>9}")
    worst, last = 0.0, None
    for n in sizes:
        vocab, source = vocab_of_size(nouns, n, rng)
        secs = timed({"ours": lambda v=vocab: v.top_k(q, args.k),
                      "numpy": lambda v=vocab: numpy_limit(q, v.vectors, args.k)},
                     args.repeats)
        ratio = secs["ours"] / secs["numpy"]
        worst = max(worst, ratio)
        line = f"{len(vocab):>10,} {source:<16}{secs['ours'] * 1e3:>9.1f}{secs['numpy'] * 1e3:>10.1f}{ratio:>9.2f}"
        if args.approx and n >= 50_000:
            from wordnet.ann import VectorIndex

            t = time.perf_counter()
            index = VectorIndex.build(vocab.vectors, threads=args.threads)
            build = time.perf_counter() - t
            a = timed({"a": lambda index=index: index.search(q, args.k)}, args.repeats)["a"]
            rec = recall(index.search(q, args.k)[0], vocab.top_k(q, args.k)[0])
            line += f"{a * 1e3:>11.1f}{rec:>10.3f}{secs['ours'] / a:>14.1f}{build:>9.1f}"
            last = (len(vocab), secs["ours"] / a, rec)
            del index
        print(line, flush=True)
        if args.libs and n == sizes[-1]:
            exact_idx = vocab.top_k(q, args.k)[0]
            print(f"\ncandidate libraries at {len(vocab):,} labels "
                  f"({args.threads} threads; exact {secs['ours']:.2f} s):")
            print(f"{'library':<10}{'build s':>9}{'query ms':>10}{'recall@5':>10}{'speed-up':>10}")
            for lib, b, s, r, sp in other_libs(args.libs.split(","), vocab.vectors, q, exact_idx, secs["ours"],
                                               args.k, args.threads):
                print(f"{lib:<10}{b:>9.1f}{s * 1e3:>10.1f}{r:>10.3f}{sp:>10.1f}", flush=True)
        del vocab
        gc.collect()
    print(f"machine after: {machine_line()}")
    print(f"ratio ours/numpy (worst size): {worst:.2f} (goal <= 1.5: {'met' if worst <= 1.5 else 'MISSED'})")
    if last is not None:
        n, sp, rec = last
        ok = sp >= 10 and rec >= 0.95
        print(f"ratio exact/approx at {n:,} labels: {sp:.1f}x, recall@5 {rec:.3f} "
              f"(goal >= 10x and >= 0.95: {'met' if ok else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
