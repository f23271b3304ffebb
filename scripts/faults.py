#!/usr/bin/env python
"""Run devise's commands into the faults a real machine has; count crashes and tracebacks.

Each case runs the real command as a subprocess on tiny data (the PNGs, word vectors and
MobileNetV2 x0.35 / 32 px network of scripts/kill_resume.py, one `devise train` at the start
makes the bundle) and checks what the user sees:

- ``full disk``: vocab build, train, index, eval --json / --plot / --result, export and the
  data home's caches (predict --labels) writing to a 4 MiB tmpfs filled to the last byte;
  expected: exit 1, one ``Error:`` line naming the target, no temporary file left, a previous
  file unchanged. Needs root (to mount); skipped otherwise.
- ``read-only``: the same commands writing to a read-only filesystem (a tmpfs mounted ``ro``
  as root, else a folder chmod 555); expected: exit 1, one ``Error:`` line.
- ``unreadable``: a bundle's model.keras, vocab.h5 or config.json, an image, the word vectors
  that cannot be read (chmod 000; as root, who reads any file, in a user namespace of its own,
  ``unshare -U``, else ``open`` is made to raise EACCES for that path); expected: one ``Error:``
  line (exit 1, or 2 where Click's own option check finds it), or for an image the others
  labelled and exit 3 — never "corrupt".
- ``Ctrl-C``: SIGINT to `devise index` early (during start-up), while it embeds, while it folds
  the journal into the index (after the last batch; writes slowed so the signal lands there)
  and to `devise train` mid-run; expected: exit != 0, "interrupted" (or Click's "Aborted!" during
  start-up), no traceback; an index
  run again afterwards finishes with exit 0.
- ``SIGKILL``: `devise index` killed while embedding, then run again: exit 0.

A crash is an exit by a signal other than the one sent (e.g. 139, a segmentation fault) or an
exit 0 where a failure was expected; a traceback is "Traceback" or "Exception ignored" in the
output. One line per case, then the summary::

    python scripts/faults.py                 # every case (about 6 minutes on 2 cores)
    python scripts/faults.py --only disk,sigint
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import child_env, make_dataset, make_vectors, train_args  # noqa: E402

GROUPS = ("disk", "readonly", "unreadable", "sigint", "sigkill")

# The child: `devise ...`, with (1) paths in $DEVISE_FAULT_UNREADABLE made unreadable to open()
# (root reads any file, so chmod 000 cannot show it) and (2) $DEVISE_FAULT_SLOW seconds of sleep
# in each embedded batch and each block the index writer writes (so a signal lands there).
DRIVER = r"""
import builtins, errno, io, os, sys, time
denied = {os.path.abspath(p) for p in os.environ.get("DEVISE_FAULT_UNREADABLE", "").split(os.pathsep) if p}
if denied:
    real_open = builtins.open
    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) in denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return real_open(file, *args, **kwargs)
    builtins.open = io.open = guarded
slow = float(os.environ.get("DEVISE_FAULT_SLOW", "0"))
if slow:
    import models.bundle, models.index.store
    real_run, real_blocks = models.bundle.Bundle.run_batches, models.index.store.row_blocks
    def run_batches(self, *args, **kwargs):
        for piece in real_run(self, *args, **kwargs):
            time.sleep(slow)
            yield piece
    def row_blocks(*args, **kwargs):
        for block in real_blocks(*args, **kwargs):
            time.sleep(slow)
            yield block
    models.bundle.Bundle.run_batches, models.index.store.row_blocks = run_batches, row_blocks
from devise_cli.cli import main
main(sys.argv[1:], prog_name="devise")
"""


@dataclass
class Case:
    group: str
    name: str
    expect: str  # "error" (exit 1, one Error line), "partial" (exit 3), "interrupted", "ok"
    code: int | None = None
    output: str = ""
    problems: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def crashed(self) -> bool:
        return any(p.startswith("crash") for p in self.problems)

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.output or "Exception ignored" in self.output

    def line(self) -> str:
        if self.skipped:
            return f"{self.group:<10} {self.name:<34} skipped: {self.skipped}"
        last = next((ln for ln in reversed(self.output.strip().splitlines())
                     if ln.strip() and not ln.startswith("[sent ")), "(no output)")
        verdict = "ok" if not self.problems and not self.traceback else "FAIL " + "; ".join(
            self.problems + (["traceback"] if self.traceback else []))
        return f"{self.group:<10} {self.name:<34} exit {self.code!s:<4} {verdict:<5}  {last[:110]}"


def _ctrl_c_default() -> None:
    """In the child: Ctrl-C's default disposition, as at a terminal, even when this script runs with SIGINT
    ignored (``nohup``, ``&``), which the child would inherit and, as every program should, keep to."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def devise(args, env, *, unreadable=(), slow=0.0, signal_at=None, timeout=600, prefix=()) -> tuple[int, str]:
    """Run ``devise args`` (after ``prefix``, e.g. ``unshare -U``); ``signal_at(proc, seconds) -> signal or
    None`` is polled every 20 ms until it sends one."""
    env = dict(env, DEVISE_FAULT_UNREADABLE=os.pathsep.join(map(str, unreadable)), DEVISE_FAULT_SLOW=str(slow))
    proc = subprocess.Popen([*prefix, sys.executable, "-c", DRIVER, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_ctrl_c_default)
    sent = None
    if signal_at is not None:
        start = time.monotonic()
        while proc.poll() is None and sent is None and time.monotonic() - start < timeout:
            sig = signal_at(proc, time.monotonic() - start)
            if sig is not None:
                proc.send_signal(sig)
                sent = sig
            time.sleep(0.02)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out + (f"\n[sent {signal.Signals(sent).name}]" if sent else "")


def judge(case: Case, code: int, out: str, temps: list[Path] = (), before: bytes | None = None,
          after: bytes | None = None) -> Case:
    case.code, case.output = code, out
    errors = [ln for ln in out.splitlines() if ln.startswith("Error:")]
    if code < 0 and not (case.expect == "killed" and code == -signal.SIGKILL):
        case.problems.append(f"crash (signal {-code})")
    elif code >= 128:
        case.problems.append(f"crash (exit {code})")
    elif case.expect == "error" and (code not in (1, 2) or len(errors) != 1):  # 2: Click's own usage check
        case.problems.append("crash (exit 0)" if code == 0
                             else f"expected exit 1 and one Error line, got {len(errors)}")
    elif case.expect == "partial" and code != 3:
        case.problems.append(f"expected exit 3, got {code}")
    elif case.expect == "interrupted" and (code == 0 or ("interrupted" not in out and "Aborted!" not in out)):
        # "Aborted!": Click's own line for a Ctrl-C that lands before the command runs (start-up)
        case.problems.append("crash (exit 0: the Ctrl-C was swallowed)" if code == 0 else "no 'interrupted' line")
    elif case.expect == "ok" and code != 0:
        case.problems.append(f"expected exit 0, got {code}")
    if "corrupt" in out and case.group == "unreadable":
        case.problems.append("called corrupt")
    if temps:
        case.problems.append(f"left {len(temps)} temporary file(s): {temps[0].name}")
    if before is not None and after != before:
        case.problems.append("the previous file changed")
    return case


def temps_under(folder: Path) -> list[Path]:
    from wordnet.base.files import is_stale_temp

    if not folder.is_dir():
        return []
    return [p for p in folder.rglob(".*") if (p.is_file() and is_stale_temp(p)) or p.name.endswith(".tmp")]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "4m", readonly: bool = False):
    """A tmpfs mounted on ``folder`` (root only); yields False if it cannot be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    ok = sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("mount") is not None and \
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       capture_output=True).returncode == 0
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    with open(folder / "padding", "wb") as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * (64 << 10))
                fh.flush()


class Fixture:
    """The tiny data, vectors and bundle every case uses."""

    def __init__(self, root: Path, say):
        self.root, self.env = root, child_env()
        self.env["DEVISE_HOME"] = str(root / "home")
        self.data = make_dataset(root / "data", per_class=4)
        self.vectors = make_vectors(root / "vectors.kv")
        self.synsets = root / "labels.txt"
        self.synsets.write_text("dog.n.01\ncat.n.01\n")
        self.bundle = root / "bundle"
        say("setting up: `devise train` of the tiny bundle ...")
        code, out = devise(train_args(self.data, self.bundle, self.vectors, 1, 0), self.env)
        if code != 0:
            raise SystemExit(f"could not train the tiny bundle (exit {code}):\n{out[-2000:]}")

    def writers(self, target: Path) -> list[tuple[str, list[str], Path]]:
        """``(name, args, what it writes)`` of every command writing under ``target``."""
        b, d = self.bundle, self.data
        return [
            ("vocab build", ["vocab", "build", target / "nouns.h5", "--synsets", self.synsets, "--vectors",
                             self.vectors], target / "nouns.h5"),
            ("train", train_args(d, target / "run", self.vectors, 1, 0), target / "run"),
            ("index", ["index", d, "--model", b, "--output", target / "pics.h5"], target / "pics.h5"),
            ("eval --json", ["eval", d, "--model", b, "--json", target / "r.json", "--bootstrap", "0"],
             target / "r.json"),
            ("eval --plot", ["eval", d, "--model", b, "--plot", target / "r.png", "--bootstrap", "0"],
             target / "r.png"),
            ("eval --result", ["eval", d, "--model", b, "--result", target / "res.json", "--bootstrap", "0"],
             target / "res.json"),
            ("export", ["export", b, "--format", "savedmodel", "-o", target / "exp"], target / "exp"),
        ]


def disk_cases(fx: Fixture, say) -> list[Case]:
    cases = []
    folder = fx.root / "full"
    with tmpfs(folder) as mounted:
        if not mounted:
            return [Case("disk", name, "error", skipped="cannot mount a tmpfs here (needs root on Linux)")
                    for name, _, _ in fx.writers(folder)] + [Case("disk", "data home (predict --labels)", "error",
                                                                  skipped="cannot mount a tmpfs here")]
        code, out = devise(fx.writers(folder)[0][1], fx.env)  # a previous vocabulary, to be kept
        before = (folder / "nouns.h5").read_bytes() if code == 0 else None
        fill(folder)
        for name, args, target in fx.writers(folder):
            code, out = devise(args, fx.env)
            old = before if name == "vocab build" else None
            now = (folder / "nouns.h5").read_bytes() if old is not None else None
            case = judge(Case("disk", name, "error"), code, out, temps_under(folder), old, now)
            if case.code == 1 and str(target) not in out:
                case.problems.append("the Error line does not name the target")
            cases.append(case)
            say(case.line())
        padding = folder / "padding"  # room for the vocabulary and config, not for the first weights
        os.truncate(padding, max(0, padding.stat().st_size - (256 << 10)))
        code, out = devise(train_args(fx.data, folder / "run2", fx.vectors, 1, 0), fx.env)
        case = judge(Case("disk", "train (disk fills mid-run)", "error"), code, out, temps_under(folder))
        if case.code == 1 and str(folder / "run2") not in out:
            case.problems.append("the Error line does not name the target")
        cases.append(case)
        say(case.line())
        fill(folder)
        env = dict(fx.env, DEVISE_HOME=str(folder / "home"))
        code, out = devise(["predict", fx.data, "--model", fx.bundle, "--labels", "cat, dog"], env)
        case = judge(Case("disk", "data home (predict --labels)", "error"), code, out, temps_under(folder))
        if case.code == 1 and f"Error: {folder / 'home'}" not in out:
            case.problems.append("the Error line does not name the data home")
        cases.append(case)
        say(case.line())
    return cases


def readonly_cases(fx: Fixture, say) -> list[Case]:
    cases = []
    folder = fx.root / "ro"
    with tmpfs(folder, readonly=False) as mounted:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            folder.chmod(0o555)
        for name, args, _ in fx.writers(folder):
            code, out = devise(args, fx.env)
            cases.append(judge(Case("readonly", name, "error"), code, out))
            say(cases[-1].line())
        if not mounted:
            folder.chmod(0o755)
    return cases


def without_root_override() -> tuple[list[str], str]:
    """How to make chmod 000 bite: nothing for a normal user; for root, a user namespace of its own
    (``unshare -U``: root's files are then owned by an unmapped user, so no capability overrides
    their mode bits), else the driver's ``open`` refusal (which TensorFlow's C++ file reads bypass)."""
    if os.geteuid() != 0:
        return [], "chmod 000"
    if shutil.which("unshare") and subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-U"], "chmod 000, run in a user namespace (root's override off)"
    return [], "open() refused (root reads any file)"


def unreadable_cases(fx: Fixture, say) -> list[Case]:
    cases = []
    prefix, how = without_root_override()
    say(f"unreadable files: {how}")
    patched = not prefix and os.geteuid() == 0
    for name in ("model.keras", "vocab.h5", "config.json"):
        bundle = fx.root / f"bundle-{name}"
        shutil.copytree(fx.bundle, bundle)
        (bundle / name).chmod(0)
        code, out = devise(["predict", fx.data, "--model", bundle], fx.env, unreadable=[bundle / name], prefix=prefix)
        cases.append(judge(Case("unreadable", f"bundle {name}", "error"), code, out))
        say(cases[-1].line())
    images = fx.root / "imgs"
    shutil.copytree(fx.data, images)
    image = sorted(images.rglob("*.png"))[0]
    image.chmod(0)
    if patched:
        cases.append(Case("unreadable", "one image of a folder", "partial", skipped="TensorFlow reads images itself"))
    else:
        code, out = devise(["predict", images, "--model", fx.bundle], fx.env, prefix=prefix)
        cases.append(judge(Case("unreadable", "one image of a folder", "partial"), code, out))
    say(cases[-1].line())
    vectors = fx.root / "vectors-locked.kv"
    shutil.copy(fx.vectors, vectors)
    vectors.chmod(0)
    code, out = devise(["vocab", "build", fx.root / "v.h5", "--synsets", fx.synsets, "--vectors", vectors], fx.env,
                       unreadable=[vectors], prefix=prefix)
    cases.append(judge(Case("unreadable", "word vectors", "error"), code, out))
    say(cases[-1].line())
    return cases


def _index(fx: Fixture, out: Path) -> list[str]:
    return ["index", fx.data, "--model", fx.bundle, "--output", out, "--batch-size", "2", "--commit-every", "4"]


def sigint_cases(fx: Fixture, say) -> list[Case]:
    cases = []

    def after(seconds):
        return lambda proc, t: signal.SIGINT if t >= seconds else None

    def when_exists(pattern, folder):
        return lambda proc, t: signal.SIGINT if any(folder.glob(pattern)) else None

    plans = [("index, early (start-up)", after(0.5), 0.0),
             ("index, while embedding", when_exists(".pics-2.h5.journal/chunk-*.h5", fx.root / "sig"), 0.5),
             ("index, late (folding the journal)", when_exists(".pics-3.h5.*.tmp.h5", fx.root / "sig"), 0.5)]
    (fx.root / "sig").mkdir(exist_ok=True)
    for i, (name, plan, slow) in enumerate(plans, 1):
        out_path = fx.root / "sig" / f"pics-{i}.h5"
        code, out = devise(_index(fx, out_path), fx.env, slow=slow, signal_at=plan)
        case = judge(Case("sigint", name, "interrupted"), code, out)
        if "[sent SIGINT]" not in out:
            case.problems.append("finished before the signal")
        again, out2 = devise(_index(fx, out_path), fx.env)
        if again != 0:
            case.problems.append(f"the run after it exits {again}")
        cases.append(case)
        say(case.line())
    code, out = devise(train_args(fx.data, fx.root / "sig" / "run", fx.vectors, 3, 0), fx.env,
                       signal_at=lambda proc, t: signal.SIGINT if (fx.root / "sig" / "run" / "config.json").exists()
                       and t > 1 else None)
    cases.append(judge(Case("sigint", "train, mid-run", "interrupted"), code, out))
    say(cases[-1].line())
    return cases


def sigkill_cases(fx: Fixture, say) -> list[Case]:
    folder = fx.root / "kill"
    folder.mkdir(exist_ok=True)
    out_path = folder / "pics.h5"
    code, out = devise(_index(fx, out_path), fx.env, slow=0.5,
                       signal_at=lambda proc, t: signal.SIGKILL if any(folder.glob(".pics.h5.journal/chunk-*.h5"))
                       else None)
    killed = judge(Case("sigkill", "index, while embedding", "killed"), code, out)
    say(killed.line())
    code, out = devise(_index(fx, out_path), fx.env)
    rerun = judge(Case("sigkill", "index, run again", "ok"), code, out, temps_under(folder))
    if code == 0 and "continu" not in out.lower() and "resum" not in out.lower():
        rerun.problems.append("did not say it continued")
    say(rerun.line())
    return [killed, rerun]


RUNNERS = {"disk": disk_cases, "readonly": readonly_cases, "unreadable": unreadable_cases, "sigint": sigint_cases,
           "sigkill": sigkill_cases}


def run_faults(root: Path, groups=GROUPS, say=print) -> dict:
    fx = Fixture(root, say)
    cases = [c for g in groups for c in RUNNERS[g](fx, say)]
    logs = root / "logs"  # every case's whole output, to read after the run
    logs.mkdir(exist_ok=True)
    for c in cases:
        (logs / f"{c.group}-{c.name}.txt".replace(" ", "_").replace("/", "_")).write_text(c.output)
    run = [c for c in cases if not c.skipped]
    summary = {"cases": len(run), "skipped": len(cases) - len(run), "crashes": sum(c.crashed for c in run),
               "tracebacks": sum(c.traceback for c in run),
               "failed": sum(bool(c.problems) or c.traceback for c in run)}
    say(f"{summary['cases']} cases ({summary['skipped']} skipped): {summary['crashes']} crashes, "
        f"{summary['tracebacks']} tracebacks, {summary['failed']} not as expected")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    ap.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        ap.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        summary = run_faults(args.workdir, groups)
    else:
        with tempfile.TemporaryDirectory(prefix="devise-faults-") as tmp:
            summary = run_faults(Path(tmp), groups)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
