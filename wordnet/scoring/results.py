"""Result files: one flat record per setting and method of a ``devise eval`` run, and merged tables of many.

``devise eval --json`` writes the whole report (every setting, intervals, calibration,
curves). Comparing models or splits needs something flatter, as CLIP_benchmark's result
files are: ``devise eval --result FILE`` writes a JSON list of records ::

    {"dataset": "test/", "model": "runs/mine", "task": "zeroshot_classification",
     "setting": "zsl", "candidate_labels": "unseen", "method": "devise",
     "candidates": 114, "images": 780, "classes": 114,
     "metrics": {"acc1": 0.08, "acc5": 0.2, "mean_per_class_recall": 0.08,
                 "hit@1": 0.08, "hit@5": 0.2, "mean_per_class_hit@1": 0.08, "hp@2": 0.3, ...},
     "versions": {"devise": "0.1.0", "keras": "3.15.1", ...}}

``setting`` is the report's (``given``: the candidates as given; ``zsl``; ``gzsl``: unseen +
training labels, the literature's "+1K"), ``candidate_labels`` what the candidates were
(``seen``, ``unseen`` or ``seen+unseen``). ``metrics`` holds plain numbers only: every
``hit@k``, ``hp@k``, ``mean_per_class_hit@k`` of the report, ``S``/``U``/``H``/``AUSUC``
where scored, their interval ends as ``<name>_ci_low``/``_ci_high``, and CLIP_benchmark's
names as aliases: ``acc1`` = ``hit@1``, ``acc5`` = ``hit@5``, ``mean_per_class_recall`` =
``mean_per_class_hit@1``. :func:`merge` turns many such files (or whole reports) into one
table, optionally the mean and range over runs (``devise results``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from wordnet.base.errors import DeviseError

TASK = "zeroshot_classification"  # CLIP_benchmark's task name for this protocol
CANDIDATE_LABELS = {"seen": "seen", "zsl": "unseen", "gzsl": "seen+unseen"}
ALIASES = {"acc1": "hit@1", "acc5": "hit@5", "mean_per_class_recall": "mean_per_class_hit@1"}
KEY_FIELDS = ("task", "setting", "candidate_labels", "method")  # what --mean groups runs by
RECORD_FIELDS = ("dataset", "model") + KEY_FIELDS + ("candidates", "images", "classes")


def _candidate_labels(setting: dict, report: dict) -> str:
    if setting["setting"] == "given":
        return CANDIDATE_LABELS.get(report.get("candidate_kind", ""), "")
    return CANDIDATE_LABELS[setting["setting"]]


def records(report: dict, versions: dict | None = None) -> list[dict]:
    """The flat records of one ``devise eval`` report: one per setting and method."""
    out = []
    for s in [report] + list(report.get("settings", {}).values()):
        for method, entry in s["methods"].items():
            metrics: dict[str, float] = {}
            for alias, name in ALIASES.items():
                if name in entry:
                    metrics[alias] = entry[name]
            for key, value in entry.items():
                if key == "candidates":
                    continue
                if key.endswith("_ci"):
                    metrics[f"{key}_low"], metrics[f"{key}_high"] = value
                else:
                    metrics[key] = value
            out.append({"dataset": report.get("data", ""), "model": report.get("model", ""), "task": TASK,
                        "setting": s["setting"], "candidate_labels": _candidate_labels(s, report),
                        "method": method, "candidates": entry["candidates"], "images": s["n_images"],
                        "classes": s["n_classes"], "metrics": metrics,
                        "versions": dict(versions or report.get("versions", {}))})
    return out


def read(path: str | Path) -> list[dict]:
    """Records from a result file (a list of records or one record) or a whole ``eval --json`` report."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeviseError(f"result file {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DeviseError(f"{path}: not a JSON result file ({exc.__class__.__name__})") from None
    if isinstance(data, dict) and "methods" in data and "setting" in data:
        return records(data)
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("metrics"), dict):
            raise DeviseError(f"{path}: record {i + 1} is not a result record "
                              f'(expected {{"dataset", "model", "task", "setting", "metrics": {{...}}}})')
    return items


def _metric_names(rows: Iterable[dict]) -> list[str]:
    names: dict[str, None] = {}
    for r in rows:
        for k, v in r["metrics"].items():
            if isinstance(v, (int, float)) and not k.endswith(("_ci_low", "_ci_high")):
                names.setdefault(k, None)
    return list(names)


def merge(rows: Sequence[dict], metrics: Sequence[str] | None = None,
          mean: bool = False) -> tuple[list[str], list[dict]]:
    """``(metric columns, table rows)`` of many records.

    Without ``mean`` a row is a record (its :data:`RECORD_FIELDS` and the metric values).
    With ``mean`` records with the same :data:`KEY_FIELDS` are one row: ``runs`` (how many)
    and, per metric, ``{"mean", "min", "max"}`` over the runs (None unless every run has
    it: a mean over some of the runs would not compare with the others). ``metrics`` picks and
    orders the columns (default: every metric, intervals left out); a metric no record has
    is an error naming it.
    """
    if not rows:
        raise DeviseError("no result records to merge")
    available = _metric_names(rows)
    if metrics:
        known = {k for r in rows for k in r["metrics"]}
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise DeviseError(f"no result has the metric {', '.join(unknown)}; "
                              f"they have: {', '.join(available)}")
        columns = list(metrics)
    else:
        columns = available
    if not mean:
        return columns, [{**{f: r.get(f, "") for f in RECORD_FIELDS},
                          **{m: r["metrics"].get(m) for m in columns}} for r in rows]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(f, "") for f in KEY_FIELDS), []).append(r)
    table = []
    for key, members in groups.items():
        row = dict(zip(KEY_FIELDS, key))
        row["runs"] = len(members)
        for m in columns:
            values = [float(r["metrics"][m]) for r in members if isinstance(r["metrics"].get(m), (int, float))]
            row[m] = ({"mean": sum(values) / len(values), "min": min(values), "max": max(values)}
                      if len(values) == len(members) else None)
        table.append(row)
    return columns, table
