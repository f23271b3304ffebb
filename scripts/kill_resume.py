#!/usr/bin/env python
"""SIGKILL `devise train` at random points and resume it until it finishes; then check nothing was lost.

A tiny run (MobileNetV2 x0.35, random init, 32 px, four classes of coloured noise,
16-d vectors) is started as a subprocess and killed with SIGKILL at points drawn from:

- ``phase1``: after "phase 1:" and 0-2 head epoch lines appear, plus a random 0-3 s;
- ``phase2``: after "phase 2:" and 0-2 fine-tuning epoch lines appear, plus a random 0-3 s;
- ``write``: the moment an epoch checkpoint's temporary file (``checkpoints/backup-<phase>/
  .epoch-<n>.weights.h5.<random>.tmp.weights.h5``) appears, i.e. in the middle of writing it;
- ``anywrite``: the moment any temporary file of :func:`wordnet.base.files.atomic_path` appears in
  the bundle (weights after a step, best weights, feature cache, state.json, history.csv);
  temporaries already there when the run starts (left by an earlier kill) do not count;
- ``any``: a random time after start.

(``phase1`` becomes ``phase2`` once phase 1 is finished.) A kill point that never comes
because the run finished first ends the experiment early; the summary counts real kills.

After each kill the committed state is read from disk (the per-phase backup's epoch,
the steps done) and ``devise train ... --resume`` is started. Checks, per resumed run:
no traceback, the first epoch it trains in the interrupted phase is the one after the
last committed epoch (nothing redone). At the end: exit 0, ``history.csv`` holds every
epoch of every phase exactly once, the bundle loads and embeds images to unit vectors,
no temporary file is left, the lock file is gone.

    python scripts/kill_resume.py --kills 10 --seed 1
    python scripts/kill_resume.py --plan phase1,write,phase2,anywrite

``tests/test_kill_resume.py`` runs a 3-kill plan of this in CI.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLASSES = {"dog": (220, 30, 30), "cat": (30, 200, 40), "car": (40, 40, 220), "guitar": (230, 220, 30)}
EPOCH_LINE = re.compile(r"^(pretrain|head|finetune) epoch (\d+)/(\d+)")
KINDS = ("phase1", "phase2", "write", "anywrite", "any")


@dataclass
class Run:
    """One subprocess: how it ended, what it printed, what was committed on disk when it died."""

    kind: str
    code: int
    seconds: float
    stderr: str
    killed: bool
    committed: dict = field(default_factory=dict)  # phase -> last committed epoch (at the kill)
    epochs: list = field(default_factory=list)  # (phase, epoch) lines printed

    def first_epoch(self, phase: str) -> int | None:
        return next((e for p, e in self.epochs if p == phase), None)


def make_dataset(root: Path, per_class: int = 4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in CLASSES.items():
        for i in range(per_class):
            arr = np.clip(np.array(colour) + rng.normal(0, 25, (36, 36, 3)), 0, 255).astype(np.uint8)
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
    return root


def make_vectors(path: Path) -> Path:
    """16-d gensim vectors for the class words (and a few others), saved as .kv."""
    from gensim.models import KeyedVectors

    words = list(CLASSES) + ["domestic_dog", "automobile", "auto", "machine", "motorcar", "true_cat"]
    rng = np.random.default_rng(1)
    kv = KeyedVectors(16)
    kv.add_vectors(words, rng.normal(size=(len(words), 16)).astype(np.float32))
    kv.save(str(path))
    return path


def train_args(data: Path, out: Path, vectors: Path, head_epochs: int, finetune_epochs: int) -> list[str]:
    return ["train", str(data), "--vectors", str(vectors), "-o", str(out), "--backbone", "mobilenet_v2",
            "--alpha", "0.35", "--weights", "none", "--image-size", "32", "--hidden-units", "8", "-b", "4",
            "--val-split", "0.25", "--bn-images", "16", "--head-epochs", str(head_epochs),
            "--finetune-epochs", str(finetune_epochs), "--run-eagerly", "--seed", "3"]


def child_env() -> dict:
    env = dict(os.environ)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "TF_NUM_INTRAOP_THREADS": "1",
                "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                "COLUMNS": "200"})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def temp_files(out: Path) -> list[Path]:
    """atomic_path temporaries anywhere in the bundle (a write in progress, or left by a kill)."""
    from wordnet.base.files import is_stale_temp

    if not out.is_dir():
        return []
    return [p for p in out.rglob(".*") if p.is_file() and is_stale_temp(p)]


def committed(out: Path) -> dict:
    """phase -> epochs committed on disk: all of them for a done step, else the backup's epoch."""
    ckpt = out / "checkpoints"
    try:
        state = json.loads((ckpt / "state.json").read_text())
    except (OSError, ValueError):
        state = {"done": []}
    result = {}
    for phase in ("pretrain", "head", "finetune"):
        if phase in state.get("done", []):
            result[phase] = "done"
            continue
        try:
            meta = json.loads((ckpt / f"backup-{phase}" / "training_metadata.json").read_text())
            result[phase] = int(meta["epoch"])
        except (OSError, ValueError, KeyError):
            result[phase] = 0
    return result


def run_once(args: list[str], out: Path, kind: str | None, rng: random.Random, log: Path,
             timeout: float = 300.0) -> Run:
    """Start `devise` with ``args``; SIGKILL it at a point of ``kind`` (None: let it finish)."""
    cmd = [sys.executable, "-c", "from devise_cli.cli import main; main()", *args]
    err_path = log.with_suffix(".stderr")
    with open(err_path, "w") as err, open(log.with_suffix(".stdout"), "w") as std:
        proc = subprocess.Popen(cmd, stdout=std, stderr=err, env=child_env(), cwd=REPO)
    t0 = time.perf_counter()
    armed_at = None
    delay = rng.uniform(0.0, 3.0)
    after_epochs = rng.randint(0, 2)  # phase kinds: let this many epochs of the phase finish first
    killed = False
    any_at = rng.uniform(8.0, 40.0)
    old_temps = set(temp_files(out))  # left by an earlier kill: not a write in progress
    phase = "head" if kind == "phase1" else "finetune"
    while proc.poll() is None:
        elapsed = time.perf_counter() - t0
        if elapsed > timeout:
            proc.kill()
            raise RuntimeError(f"devise train did not finish in {timeout} s; see {err_path}")
        if kind is not None:
            text = err_path.read_text(errors="replace")
            fire = False
            if kind == "write":
                fire = any(p.parent.name.startswith("backup-") and p.name.endswith(".weights.h5")
                           for p in temp_files(out) if p not in old_temps)
            elif kind == "anywrite":
                fire = any(p not in old_temps for p in temp_files(out))
            elif kind == "any":
                fire = elapsed >= any_at
            else:
                marker = "phase 1:" if kind == "phase1" else "phase 2:"
                done = sum(1 for m in map(EPOCH_LINE.match, text.splitlines()) if m and m.group(1) == phase)
                moved_on = kind == "phase1" and "phase 2:" in text  # phase 1 ended before enough epochs
                if armed_at is None and marker in text and (done >= after_epochs or moved_on):
                    armed_at = time.perf_counter()
                fire = armed_at is not None and time.perf_counter() - armed_at >= delay
            if fire:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed = True
                break
        time.sleep(0.002 if kind in ("write", "anywrite") else 0.02)
    proc.wait()
    stderr = err_path.read_text(errors="replace")
    epochs = [(m.group(1), int(m.group(2))) for m in map(EPOCH_LINE.match, stderr.splitlines()) if m]
    return Run(kind or "finish", proc.returncode, time.perf_counter() - t0, stderr, killed,
               committed(out) if killed else {}, epochs)


def read_history(path: Path) -> list[tuple[str, int]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [(r["phase"], int(r["epoch"])) for r in csv.DictReader(fh)]


def kill_and_resume(workdir: Path, plan: list[str], *, seed: int = 0, head_epochs: int = 3,
                    finetune_epochs: int = 3, say=print) -> dict:
    """Run the whole experiment; return a summary dict. Raises AssertionError on any violation."""
    rng = random.Random(seed)
    data = make_dataset(workdir / "data")
    vectors = make_vectors(workdir / "vectors.kv")
    out = workdir / "bundle"
    base = train_args(data, out, vectors, head_epochs, finetune_epochs)
    runs: list[Run] = []
    survived = 0
    for i, kind in enumerate(plan + [None]):
        if kind == "phase1" and committed(out).get("head") == "done":
            kind = "phase2"  # phase 1 is behind us: kill in phase 2 instead
        resume = (out / "config.json").is_file()
        args = base + (["--resume"] if resume else [])
        run = run_once(args, out, kind, rng, workdir / f"run{i:02d}")
        runs.append(run)
        where = ", ".join(f"{p} {e}" for p, e in run.committed.items()) if run.killed else ""
        say(f"run {i}: {'resume' if resume else 'start'}, {run.kind}: "
            f"{'killed' if run.killed else f'exit {run.code}'} after {run.seconds:.1f} s"
            + (f" (committed: {where})" if where else ""))
        assert "Traceback" not in run.stderr, f"run {i} printed a traceback:\n{run.stderr[-3000:]}"
        if run.killed:
            survived += 1
            continue
        if kind is not None:  # it finished before the kill point came: nothing to kill, go on
            assert run.code == 0, f"run {i} exited {run.code}:\n{run.stderr[-3000:]}"
            break
        assert run.code == 0, f"final run exited {run.code}:\n{run.stderr[-3000:]}"
    # nothing redone: after a kill, the next run starts each unfinished phase right after its last commit
    for before, after in zip(runs, runs[1:]):
        if not before.killed:
            continue
        for phase, done in before.committed.items():
            first = after.first_epoch(phase)
            if done == "done":
                assert first is None, f"{phase} was finished but the next run trained epoch {first} again"
            elif first is not None:
                assert first == done + 1, (f"{phase}: {done} epoch(s) were committed, but the resumed run "
                                           f"started at epoch {first}")
    assert runs[-1].code == 0 and not runs[-1].killed
    want = [("head", e) for e in range(1, head_epochs + 1)] + [("finetune", e) for e in range(1, finetune_epochs + 1)]
    history = read_history(out / "history.csv")
    assert history == want, f"history.csv has {history}, want every epoch once: {want}"
    leftovers = temp_files(out)
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert not (out.parent / f".{out.name}.lock").exists(), "the lock file was not removed"
    from models.bundle import load_bundle

    bundle = load_bundle(out)
    images = sorted((data / "cat").glob("*.png"))[:3]
    result = bundle.run(images, batch_size=4)
    assert [str(p) for p in result.paths] == [str(p) for p in images] and not result.failures
    norms = np.linalg.norm(result.embeddings, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-3), norms
    return {"kills": survived, "runs": len(runs), "history": history,
            "seconds": round(sum(r.seconds for r in runs), 1),
            "kinds": [r.kind for r in runs if r.killed]}


def plan_parser(doc: str, kinds) -> argparse.ArgumentParser:
    """The options every kill script shares: --kills, --plan (kinds), --seed, --workdir."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--plan", help=f"comma-separated kill kinds ({', '.join(kinds)}); default: random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary folder)")
    return ap


def plan_and_workdir(ap: argparse.ArgumentParser, args, kinds, prefix: str) -> tuple[list[str], Path]:
    """The kill plan (given, or drawn with --seed) and the work folder (its own data home)."""
    rng = random.Random(args.seed)
    plan = args.plan.split(",") if args.plan else [rng.choice(kinds) for _ in range(args.kills)]
    bad = [k for k in plan if k not in kinds]
    if bad:
        ap.error(f"unknown kill kind(s): {', '.join(bad)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=prefix))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DEVISE_HOME", str(workdir / "home"))
    return plan, workdir


def main(argv=None) -> int:
    ap = plan_parser(__doc__, KINDS)
    ap.add_argument("--head-epochs", type=int, default=4)
    ap.add_argument("--finetune-epochs", type=int, default=4)
    args = ap.parse_args(argv)
    plan, workdir = plan_and_workdir(ap, args, KINDS, "devise-kill-")
    print(f"plan: {', '.join(plan)}; work folder {workdir}")
    summary = kill_and_resume(workdir, plan, seed=args.seed, head_epochs=args.head_epochs,
                              finetune_epochs=args.finetune_epochs)
    print(f"survived {summary['kills']} SIGKILLs ({', '.join(summary['kinds'])}) in {summary['runs']} runs, "
          f"{summary['seconds']} s; history: {len(summary['history'])} epochs, each once; bundle loads and predicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
