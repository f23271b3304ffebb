"""scripts/summarise_splits.py: the five-split averages and the aim line, from eval --json reports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "summarise_splits.py"


def methods(**hits):
    return {name: {"hit@1": h / 2, "hit@5": h, "hp@2": h / 3, "hp@5": h / 4} for name, h in hits.items()}


def write(folder: Path, k: int, devise: float, conse: float) -> None:
    seen = {"n_classes": 455, "n_images": 455, "methods": methods(devise=0.5, softmax=0.7, chance=0.011)}
    zsl = methods(devise=devise, conse=conse, chance=0.044)
    for m in zsl.values():
        m.update({"hit@2": m["hit@5"] / 2, "hit@10": m["hit@5"] * 1.5, "hp@10": m["hit@5"]})
    unseen = {"n_classes": 114, "n_images": 780, "methods": zsl,
              "settings": {"gzsl": {"methods": {"devise": {"hit@1": 0.01, "hit@5": 0.05, "hit@10": 0.09},
                                                "chance": {"hit@1": 0.002, "hit@5": 0.009, "hit@10": 0.018}}}}}
    (folder / f"seen-{k}.json").write_text(json.dumps(seen))
    (folder / f"unseen-{k}.json").write_text(json.dumps(unseen))


def run(folder, n):
    return subprocess.run([sys.executable, str(SCRIPT), str(folder), "--splits", str(n)],
                          capture_output=True, text=True)


def test_means_ranges_and_the_aim_line(tmp_path):
    write(tmp_path, 0, 0.20, 0.15)
    write(tmp_path, 1, 0.24, 0.20)
    res = run(tmp_path, 2)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("2 splits; each split: 114 unseen concepts (780 images), 455 seen concepts")
    devise_zsl = [l for l in lines if l.startswith("devise")][1]
    assert devise_zsl.split()[5:8] == ["22.0", "[20.0-24.0]", "33.0"]  # hit@5 mean [range], hit@10 = 1.5 x hit@5
    assert lines[-1] == ("zero-shot hit@5: DeViSE 22.0% = 5.00x chance (4.4%); DeViSE - ConSE per split: "
                         "+5.0, +4.0 (mean +4.5 points)")


def test_a_missing_split_is_named(tmp_path):
    write(tmp_path, 0, 0.2, 0.1)
    res = run(tmp_path, 2)
    assert res.returncode == 1
    assert res.stderr.strip() == (f"Error: {tmp_path / 'seen-1.json'} is missing; run scripts/emoji_splits.sh "
                                  "to finish split 1")
