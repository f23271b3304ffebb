"""Evaluating a model on labelled images: dataset -> WordNet ids -> model outputs -> the report.

This joins the two halves (``models`` may not load WordNet; ``wordnet`` may not load
Keras): class names are resolved through :mod:`wordnet.labels`, images embedded by the
bundle, and :mod:`wordnet.scoring.evaluation` scores them (hit@k, hierarchical
precision@k, baselines, zero-shot settings, bootstrap intervals).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from devise.prediction import load_model_and_vocab
from wordnet.base.errors import DatasetError

SPLITS_FILE = "splits.json"  # DATA/splits.json: seen/unseen splits averaged over by default


def _wnids_of(names, overrides) -> dict[str, str]:
    """Class name -> WordNet id through wordnet.labels (one error naming every unknown name)."""
    from wordnet.labels import load_overrides, resolve_labels, wnid_of
    from wordnet.reader import load_wordnet

    wn = load_wordnet()
    names = list(dict.fromkeys(names))
    synsets = resolve_labels(wn, names, load_overrides(overrides) if overrides else None)
    return {n: wnid_of(s) for n, s in zip(names, synsets)}


def _embed(bundle, items, batch_size, softmax, progress):
    """Run the bundle over (path, class) items; align outputs with classes; collect failures."""
    from wordnet.scoring.evaluation import Outputs

    paths = [p for p, _ in items]
    res = bundle.run(paths, batch_size=batch_size, softmax=softmax, progress=progress)
    # kept paths are a subsequence of the input, in order (a CSV may list a file twice)
    classes, j = [], 0
    for p in res.paths:
        while str(items[j][0]) != str(p):
            j += 1
        classes.append(items[j][1])
        j += 1
    return Outputs(res.embeddings, res.probs, classes), res.failures


def evaluate(data: str | Path, model: str | Path, vocab="trained", *, ks: Sequence[int] = (1, 2, 5, 10, 20),
             hierarchical: bool = False, baselines: Sequence[str] = ("softmax", "conse"),
             calibration: float | str | None = "auto", calibration_data: str | Path | None = None,
             splits: str | Path | None = None, bootstrap: int = 1000, overrides: str | Path | None = None,
             batch_size: int = 32, seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Score the bundle ``model`` on labelled images ``data`` (class folders or a CSV ``img_name,class``).

    ``vocab`` is the candidate labels (``"trained"``, a vocabulary or its ``.h5``); when
    ``data`` holds classes the model was not trained on, the zero-shot and generalised
    settings are added (``calibration``: a gamma, ``"auto"`` or None). ``splits`` (default
    ``DATA/splits.json``) averages over seen/unseen splits. Returns the JSON-ready report
    of :func:`wordnet.scoring.evaluation.evaluate`, plus the inputs and the unreadable
    images (``failed``); ``progress(done, total)`` counts embedded images.
    """
    model_path, vocab_arg, splits_file = Path(model), vocab, (Path(splits) if splits is not None else None)
    data = Path(data)
    calibration_data = Path(calibration_data) if calibration_data is not None else None
    from models.data.datasets import scan_dataset
    from wordnet.scoring import evaluation as ev

    items = scan_dataset(data)
    cal_items = scan_dataset(calibration_data) if calibration_data is not None else []
    if splits_file is None and Path(data).is_dir() and (Path(data) / SPLITS_FILE).is_file():
        splits_file = Path(data) / SPLITS_FILE
    raw_splits = ev.load_splits(splits_file) if splits_file is not None else None
    names = [c for _, c in items] + [c for _, c in cal_items] + [c for s in raw_splits or [] for c in s["unseen"]]
    wnid = _wnids_of(names, overrides)
    bundle, cands = load_model_and_vocab(model_path, vocab_arg)
    notes = []
    use_probs = bool(baselines) and bundle.softmax is not None
    if baselines and not use_probs:
        notes.append("the softmax and ConSE baselines need a trained softmax head; this bundle has none")
    out, failures = _embed(bundle, items, batch_size, use_probs, progress)
    if not len(out.true_wnids):
        first = failures[0][1] if failures else "no images"
        raise DatasetError(f"none of the {len(items)} images of {data} could be read (first: {first})")
    out.true_wnids = [wnid[c] for c in out.true_wnids]
    val = None
    if cal_items and calibration == "auto":
        val, _ = _embed(bundle, cal_items, batch_size, use_probs, progress)
        val.true_wnids = [wnid[c] for c in val.true_wnids]
    splits = None if raw_splits is None else [
        ev.Split(s["name"], [wnid[c] for c in s["unseen"]]) for s in raw_splits]
    opts = ev.EvalOptions(ks=tuple(ks), hierarchical=hierarchical, baselines=tuple(baselines),
                          bootstrap=bootstrap, seed=seed, calibration=calibration)
    report = ev.evaluate(out, cands, bundle.vocab, opts, _gt_factory() if hierarchical else None, splits, val)
    report.update({
        "model": str(model_path), "vocab": str(vocab_arg.attrs.get("path", "given") if hasattr(vocab_arg, "attrs")
                                                 else vocab_arg), "data": str(data),
        "calibration_data": str(calibration_data) if calibration_data is not None else "seen-class images of DATA",
        "n_failed": len(failures), "failed": [{"path": str(p), "error": r} for p, r in failures],
    })
    report["notes"] = notes + report.get("notes", [])
    return report


def _gt_factory():
    """candidate wnids -> ground_truth(wnid, k) -> set of rows, one cached hierarchy per candidate list."""
    from wordnet.hierarchy import HierarchicalGroundTruth
    from wordnet.reader import load_wordnet

    wn = load_wordnet()
    cache: dict[tuple, Callable] = {}

    def factory(wnids):
        key = tuple(wnids)
        if key not in cache:
            cache[key] = HierarchicalGroundTruth(wn, list(wnids)).indices
        return cache[key]

    return factory
