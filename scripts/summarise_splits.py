"""Average `devise eval --json` reports over seen/unseen splits (written by scripts/emoji_splits.sh).

Prints, per method and metric, the mean over splits and the range, then the aim line:
zero-shot DeViSE hit@5 as a multiple of chance, and DeViSE minus ConSE (paired by split).

    python scripts/summarise_splits.py runs/emoji-splits --splits 5
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load(folder: Path, kind: str, n: int) -> list[dict]:
    reports = []
    for k in range(n):
        path = folder / f"{kind}-{k}.json"
        if not path.is_file():
            raise SystemExit(f"Error: {path} is missing; run scripts/emoji_splits.sh to finish split {k}")
        reports.append(json.loads(path.read_text()))
    return reports


def table(title: str, methods_per_split: list[dict], metrics: list[str]) -> dict:
    """Print mean [min-max] in % for each method and metric; return the means."""
    names = list(methods_per_split[0])
    print(f"\n{title}")
    print(f"{'method':<12}" + "".join(f"{m:>18}" for m in metrics))
    means = {}
    for name in names:
        cells = []
        for metric in metrics:
            values = [100 * s[name][metric] for s in methods_per_split if metric in s.get(name, {})]
            if len(values) != len(methods_per_split):
                cells.append(f"{'-':>18}")
                continue
            means[(name, metric)] = float(np.mean(values))
            cells.append(f"{np.mean(values):>7.1f} [{min(values):4.1f}-{max(values):4.1f}]")
        print(f"{name:<12}" + "".join(cells))
    return means


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--splits", type=int, default=5)
    args = p.parse_args()
    seen, unseen = load(args.folder, "seen", args.splits), load(args.folder, "unseen", args.splits)
    print(f"{args.splits} splits; each split: {unseen[0]['n_classes']} unseen concepts "
          f"({unseen[0]['n_images']} images), {seen[0]['n_classes']} seen concepts in the held-out style "
          f"({seen[0]['n_images']} images). Cells: mean over splits [min-max], %.")
    table("seen concepts, held-out style", [r["methods"] for r in seen], ["hit@1", "hit@5", "hp@2", "hp@5"])
    zsl = table("unseen concepts, zero-shot (unseen candidates)", [r["methods"] for r in unseen],
                ["hit@1", "hit@2", "hit@5", "hit@10", "hp@2", "hp@5", "hp@10"])
    gzsl = [r["settings"]["gzsl"]["methods"] for r in unseen if "gzsl" in r.get("settings", {})]
    if len(gzsl) == len(unseen):
        table("unseen concepts, generalised (seen + unseen candidates)", gzsl, ["hit@1", "hit@5", "hit@10"])
    ratio = zsl[("devise", "hit@5")] / zsl[("chance", "hit@5")]
    diffs = [100 * (r["methods"]["devise"]["hit@5"] - r["methods"]["conse"]["hit@5"]) for r in unseen]
    print(f"\nzero-shot hit@5: DeViSE {zsl[('devise', 'hit@5')]:.1f}% = {ratio:.2f}x chance "
          f"({zsl[('chance', 'hit@5')]:.1f}%); DeViSE - ConSE per split: "
          + ", ".join(f"{d:+.1f}" for d in diffs) + f" (mean {np.mean(diffs):+.1f} points)")


if __name__ == "__main__":
    main()
