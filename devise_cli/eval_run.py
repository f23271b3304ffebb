"""The body of ``devise eval``: dataset -> WordNet ids -> model outputs -> wordnet.evaluation.

Glue between the two libraries (``models`` may not load WordNet; ``wordnet`` may not
load Keras), kept out of the Click function so it can be read and tested on its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from wordnet.errors import DatasetError

TRAINED = "trained"
SPLITS_FILE = "splits.json"


def load_model_and_vocab(model_path: Path, vocab_arg: str):
    """The bundle and the candidate vocabulary (checked against the model's dimension).

    A vocabulary file is read first (cheap) so a wrong path fails before TensorFlow loads.
    """
    from models.bundle import load_bundle
    from wordnet.vocab import Vocabulary

    vocab = None if vocab_arg == TRAINED else Vocabulary.load(vocab_arg)
    bundle = load_bundle(model_path)
    if vocab is None:
        return bundle, bundle.vocab
    vocab.check_dim(bundle.dim, f"model {model_path}")
    return bundle, vocab


def _wnids_of(names, overrides) -> dict[str, str]:
    """Class name -> WordNet id through wordnet.labels (one error naming every unknown name)."""
    from wordnet.corpus import load_wordnet
    from wordnet.labels import load_overrides, resolve_labels, wnid_of

    wn = load_wordnet()
    names = list(dict.fromkeys(names))
    synsets = resolve_labels(wn, names, load_overrides(overrides) if overrides else None)
    return {n: wnid_of(s) for n, s in zip(names, synsets)}


def _embed(bundle, items, batch_size, softmax, progress):
    """Run the bundle over (path, class) items; align outputs with classes; collect failures."""
    from wordnet.evaluation import Outputs

    paths = [p for p, _ in items]
    bar, task = progress(len(paths)) if progress else (None, None)
    if bar is not None:
        with bar:
            res = bundle.run(paths, batch_size=batch_size, softmax=softmax,
                             progress=lambda done, _t: bar.update(task, completed=done))
    else:
        res = bundle.run(paths, batch_size=batch_size, softmax=softmax)
    # kept paths are a subsequence of the input, in order (a CSV may list a file twice)
    classes, j = [], 0
    for p in res.paths:
        while str(items[j][0]) != str(p):
            j += 1
        classes.append(items[j][1])
        j += 1
    return Outputs(res.embeddings, res.probs, classes), res.failures


def run_evaluation(data: Path, model_path: Path, vocab_arg: str, *, ks, hierarchical: bool, baselines,
                   calibration, calibration_data: Path | None, splits_file: Path | None, bootstrap: int,
                   overrides: Path | None, batch_size: int, seed: int,
                   progress: Callable | None = None) -> dict:
    """Everything ``devise eval`` reports, as the JSON-ready dict (see wordnet.evaluation)."""
    from models.data import scan_dataset
    from wordnet import evaluation as ev

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
        "model": str(model_path), "vocab": str(vocab_arg), "data": str(data),
        "calibration_data": str(calibration_data) if calibration_data is not None else "seen-class images of DATA",
        "n_failed": len(failures), "failed": [{"path": str(p), "error": r} for p, r in failures],
    })
    report["notes"] = notes + report.get("notes", [])
    return report


def _gt_factory():
    """candidate wnids -> ground_truth(wnid, k) -> set of rows, one cached hierarchy per candidate list."""
    from wordnet.corpus import load_wordnet
    from wordnet.hierarchy import HierarchicalGroundTruth

    wn = load_wordnet()
    cache: dict[tuple, Callable] = {}

    def factory(wnids):
        key = tuple(wnids)
        if key not in cache:
            cache[key] = HierarchicalGroundTruth(wn, list(wnids)).indices
        return cache[key]

    return factory
