#!/usr/bin/env python
"""SIGKILL `devise index` at random moments and run it again until it finishes; count the images each kill lost.

A tiny bundle (tests/tiny.py: MobileNetV2 x0.35, random weights, 32 px) indexes a folder
of generated PNGs, committing every ``--commit-every`` images. The command runs as a
subprocess through a small driver that appends to a log the number of images each batch
leaves the pipeline with (so the images embedded so far are known at the moment of the
kill) and slows the pipeline and every file write a little (so kills land inside them).
Kill points are drawn from:

- ``embed``: after a random number of batches have been embedded;
- ``commit``: the moment a chunk's temporary file appears in ``.INDEX.journal/`` (a commit
  being written);
- ``fold``: the moment the index's own temporary file appears beside it (the final write
  that folds the chunks into the index);
- ``any``: a random time after the first batch.

After each kill the committed images are read from disk (the index file's rows and the
journal's chunks), and a kill's loss is the images that run had embedded minus those it
committed. Checks: no traceback; every kill lost at most one chunk (``commit_every``
images; the batch size divides it); the run that finishes says it continued from the
committed images; the final index holds every image once, in path order, with the
embeddings an uninterrupted run computes; no journal, lock or temporary file is left.

    python scripts/index_kill.py --kills 20 --seed 1
    python scripts/index_kill.py --plan embed,commit,fold --images 64

``tests/models/test_index_kill.py`` runs a 3-kill plan of this in the default suite.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import child_env, plan_and_workdir, plan_parser  # noqa: E402

KINDS = ("embed", "commit", "fold", "any")

# The child: `devise index ...` with a log line per embedded batch, and slowed batches and writes.
DRIVER = r"""
import sys, time
log, embed_delay, write_delay = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
import models.bundle, models.index.store
real_run, real_blocks = models.bundle.Bundle.run_batches, models.index.store.row_blocks

def run_batches(self, paths, *args, **kwargs):
    with open(log, "a") as fh:
        for piece in real_run(self, paths, *args, **kwargs):
            fh.write(f"{len(piece.paths)}\n")
            fh.flush()  # in the kernel now: survives the SIGKILL
            time.sleep(embed_delay)
            yield piece

def row_blocks(*args, **kwargs):  # every index file write, inside its atomic temporary file
    for block in real_blocks(*args, **kwargs):
        time.sleep(write_delay)
        yield block

models.bundle.Bundle.run_batches = run_batches
models.index.store.row_blocks = row_blocks
from devise_cli.cli import main
main(sys.argv[4:])
"""


@dataclass
class Run:
    kind: str
    code: int
    seconds: float
    stdout: str
    stderr: str
    killed: bool
    embedded: int  # images the pipeline handed over before the process ended
    committed: int  # images on disk (index + journal) after it ended


def make_images(folder: Path, n: int, start: int = 0) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(start)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        p = folder / f"sub{i % 3}" / f"img{i:04d}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return sorted(paths)


def make_bundle(folder: Path) -> Path:
    from tests.tiny import save_bundle, tiny_model
    from wordnet.vocab import Vocabulary

    rng = np.random.default_rng(0)
    vocab = Vocabulary(wnids=["n02084071", "n02121808"], synsets=["dog.n.01", "domestic_cat.n.01"],
                       labels=["dog", "cat"], definitions=["", ""], vectors=rng.normal(size=(2, 16)))
    return save_bundle(tiny_model(16, 2), vocab, folder)


def on_disk(index: Path) -> tuple[set[str], set[str]]:
    """Paths whose embeddings are on disk: the index file's rows, and the journal's chunks' rows."""
    from models.index.journal import Journal
    from models.index.store import ImageIndexError, IndexFile

    rows: set[str] = set()
    chunks: set[str] = set()
    if index.is_file():
        with IndexFile.open(index) as f:
            rows.update(f.paths)
    for chunk in Journal(index).chunk_files():
        try:
            with IndexFile.open(chunk) as f:
                chunks.update(f.paths)
        except ImageIndexError:
            pass
    return rows, chunks


def committed(index: Path) -> set[str]:
    rows, chunks = on_disk(index)
    return rows | chunks


def temp_files(folder: Path) -> list[Path]:
    """Temporary files of atomic writes under ``folder`` (os.walk: the journal may vanish meanwhile)."""
    from wordnet.base.files import is_stale_temp

    return [Path(root) / name for root, _, names in os.walk(folder) for name in names
            if is_stale_temp(Path(root) / name)]


def run_once(args: list[str], index: Path, kind: str | None, rng: random.Random, log: Path, *,
             embed_delay: float, write_delay: float, timeout: float = 300.0) -> Run:
    """Start the driver; SIGKILL it at a point of ``kind`` (None: let it finish)."""
    if log.exists():
        log.unlink()
    cmd = [sys.executable, "-c", DRIVER, str(log), str(embed_delay), str(write_delay), *args]
    out_path, err_path = log.with_suffix(".stdout"), log.with_suffix(".stderr")
    with open(err_path, "w") as err, open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(), cwd=REPO)
    t0 = time.perf_counter()
    journal = index.parent / f".{index.name}.journal"
    after_batches = rng.randint(1, 6)
    any_after = rng.uniform(0.0, 2.0)
    old = set(temp_files(index.parent))
    first_batch_at = None
    killed = False
    while proc.poll() is None:
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"devise index did not finish in {timeout} s; see {err_path}")
        if kind is not None:
            batches = len(log.read_text().split()) if log.exists() else 0
            if batches and first_batch_at is None:
                first_batch_at = time.perf_counter()
            new_temps = [p for p in temp_files(index.parent) if p not in old]
            fire = {
                "embed": batches >= after_batches,
                "commit": any(p.parent == journal for p in new_temps),
                "fold": any(p.parent == index.parent and p.name.startswith(f".{index.name}.") for p in new_temps),
                "any": first_batch_at is not None and time.perf_counter() - first_batch_at >= any_after,
            }[kind]
            if fire:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed = True
                break
        time.sleep(0.002)
    proc.wait()
    embedded = sum(int(x) for x in log.read_text().split()) if log.exists() else 0
    return Run(kind or "finish", proc.returncode, time.perf_counter() - t0, out_path.read_text(),
               err_path.read_text(errors="replace"), killed, embedded, len(committed(index)))


def kill_and_rerun(workdir: Path, plan: list[str], *, seed: int = 0, images: int = 48, batch_size: int = 4,
                   commit_every: int = 8, embed_delay: float = 0.05, write_delay: float = 0.2, say=print) -> dict:
    """Run the whole experiment; return a summary. Raises AssertionError on any violation."""
    rng = random.Random(seed)
    paths = make_images(workdir / "photos", images)
    bundle = make_bundle(workdir / "bundle")
    index = workdir / "photos.h5"
    args = ["index", str(workdir / "photos"), "--model", str(bundle), "--output", str(index),
            "--batch-size", str(batch_size), "--commit-every", str(commit_every)]
    runs: list[Run] = []
    before = 0
    for i, kind in enumerate(plan + [None]):
        rows, chunks = on_disk(index)
        if kind is not None and len(rows | chunks) == len(paths):  # all committed: more photos arrive
            paths = sorted(paths + make_images(workdir / "photos", images, start=len(paths)))
            rows, chunks = on_disk(index)
        resumable = len(chunks - rows)  # what the run must say it kept from the killed one
        run = run_once(args, index, kind, rng, workdir / f"run{i:02d}.log", embed_delay=embed_delay,
                       write_delay=write_delay)
        runs.append(run)
        lost = run.embedded - (run.committed - before)
        say(f"run {i}, {run.kind}: {'killed' if run.killed else f'exit {run.code}'} after {run.seconds:.1f} s; "
            f"embedded {run.embedded}, committed {run.committed - before} -> {run.committed} of {len(paths)}, "
            f"lost {lost}")
        assert "Traceback" not in run.stderr, f"run {i} printed a traceback:\n{run.stderr[-3000:]}"
        assert lost <= commit_every, f"run {i} lost {lost} images, more than one chunk ({commit_every})"
        if not run.killed:
            assert run.code == 0, f"run {i} exited {run.code}:\n{run.stderr[-3000:]}"
            if resumable:
                assert f"continued an interrupted run: kept the {resumable} images it had committed" in run.stdout, \
                    run.stdout
            break
        before = run.committed
    final = runs[-1]
    assert not final.killed and final.code == 0
    from models.bundle import load_bundle
    from models.index.store import ImageIndex

    idx = ImageIndex.load(index)
    assert idx.paths == [str(p) for p in paths], "the index does not hold every image once, in path order"
    reference = load_bundle(bundle).run(paths, batch_size=batch_size).embeddings
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(idx.embeddings, reference, atol=1e-5)
    assert not (workdir / ".photos.h5.journal").exists(), "the journal was not removed"
    assert not (workdir / ".photos.h5.lock").exists(), "the lock file was not removed"
    assert not temp_files(workdir), f"temporary files left behind: {temp_files(workdir)}"
    kills = [r for r in runs if r.killed]
    losses = [r.embedded - (r.committed - p) for r, p in zip(kills, [0] + [k.committed for k in kills])]
    return {"images": len(paths), "kills": len(kills), "kinds": [r.kind for r in kills], "runs": len(runs),
            "losses": losses,
            "max_lost": max(losses, default=0), "re_embedded": sum(r.embedded for r in runs) - len(paths),
            "commit_every": commit_every, "seconds": round(sum(r.seconds for r in runs), 1)}


def main(argv=None) -> int:
    ap = plan_parser(__doc__, KINDS)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--commit-every", type=int, default=8)
    args = ap.parse_args(argv)
    plan, workdir = plan_and_workdir(ap, args, KINDS, "devise-index-kill-")
    print(f"plan: {', '.join(plan)}; {args.images} images, batch {args.batch_size}, commit every "
          f"{args.commit_every}; work folder {workdir}")
    s = kill_and_rerun(workdir, plan, seed=args.seed, images=args.images, batch_size=args.batch_size,
                       commit_every=args.commit_every)
    print(f"survived {s['kills']} SIGKILLs ({', '.join(s['kinds'])}) in {s['runs']} runs, {s['seconds']} s, "
          f"{s['images']} images; "
          f"images lost per kill: max {s['max_lost']} (one chunk = {s['commit_every']}), "
          f"{s['re_embedded']} re-embedded in all; the final index holds every image once with the right embeddings")
    print(f"ratio max lost / chunk: {s['max_lost'] / s['commit_every']:.2f} (goal <= 1: "
          f"{'met' if s['max_lost'] <= s['commit_every'] else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
