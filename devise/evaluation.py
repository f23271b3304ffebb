"""Evaluating a model on labelled images: dataset -> WordNet ids -> model outputs -> the report.

This joins the two halves (``models`` may not load WordNet; ``wordnet`` may not load
Keras): class names are resolved through :mod:`wordnet.labels`, images embedded by the
bundle, and :mod:`wordnet.scoring.evaluation` scores them (hit@k, hierarchical
precision@k, baselines, zero-shot settings, bootstrap intervals).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from devise._lazy import lazy_exports
from devise.prediction import load_model_and_vocab
from wordnet.base.errors import DatasetError, DeviseError

# names handed on from the two halves, imported on first use (devise._lazy)
_EXPORTS = {
    "BASELINES": "wordnet.scoring",  # scored beside DeViSE
    "result_records": "wordnet.scoring.results:records",  # a report -> result records (--result)
    "read_results": "wordnet.scoring.results:read",
    "merge_results": "wordnet.scoring.results:merge",  # many runs' records -> one table
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

SPLITS_FILE = "splits.json"  # DATA/splits.json: seen/unseen splits averaged over by default


def _wnids_of(names, overrides, free: dict[str, str] | None = None) -> dict[str, str]:
    """Class name -> WordNet id through wordnet.labels (one error naming every unknown name).

    ``free`` maps free-phrase labels (given with ``--labels``, no synset) to their ids: a
    class named like one is that label.
    """
    from wordnet.labels import load_overrides, normalise, resolve_labels, wnid_of
    from wordnet.reader import load_wordnet

    names = list(dict.fromkeys(names))
    by_text = {normalise(k): v for k, v in (free or {}).items()}
    out = {n: by_text[normalise(n)] for n in names if normalise(n) in by_text}
    rest = [n for n in names if n not in out]
    if rest:
        synsets = resolve_labels(load_wordnet(), rest, load_overrides(overrides) if overrides else None)
        out.update({n: wnid_of(s) for n, s in zip(rest, synsets)})
    return out


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
             per_class: bool = False, per_class_images: int | float | None = None,
             batch_size: int = 32, seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Score the bundle ``model`` on labelled images ``data`` (class folders or a CSV ``img_name,class``).

    ``vocab`` is the candidate labels (``"trained"``, a vocabulary or its ``.h5``, or
    :class:`~devise.vocabularies.GivenLabels`); when ``data`` holds classes the model was not
    trained on, the zero-shot and generalised settings are added (``calibration``: a gamma,
    ``"auto"`` or None). ``splits`` (default ``DATA/splits.json``) averages over seen/unseen
    splits. ``per_class_images`` evaluates on a seeded sample of each class's images: N
    of them (an int), or that share (a float in (0, 1)), as GCNZ and DGP do. ``per_class``
    adds the per-class table (``report["per_class"]``). Returns the JSON-ready report of
    :func:`wordnet.scoring.evaluation.evaluate`, plus the inputs, the unreadable images
    (``failed``) and the versions; ``progress(done, total)`` counts embedded images.
    """
    model_path, vocab_arg, splits_file = Path(model), vocab, (Path(splits) if splits is not None else None)
    data = Path(data)
    calibration_data = Path(calibration_data) if calibration_data is not None else None
    from devise.vocabularies import GivenLabels
    from models.data.datasets import sample_per_class, scan_dataset
    from wordnet.label_vocab import is_free_phrase
    from wordnet.scoring import evaluation as ev

    items = scan_dataset(data)
    n_scanned = len(items)
    if per_class_images is not None:
        items = sample_per_class(items, per_class_images, seed)
    cal_items = scan_dataset(calibration_data) if calibration_data is not None else []
    if splits_file is None and Path(data).is_dir() and (Path(data) / SPLITS_FILE).is_file():
        splits_file = Path(data) / SPLITS_FILE
    raw_splits = ev.load_splits(splits_file) if splits_file is not None else None
    names = [c for _, c in items] + [c for _, c in cal_items] + [c for s in raw_splits or [] for c in s["unseen"]]
    given = isinstance(vocab_arg, GivenLabels)
    if not given:  # class names fail before TensorFlow loads
        wnid = _wnids_of(names, overrides)
    bundle, cands = load_model_and_vocab(model_path, vocab_arg)
    if given:
        wnid = _wnids_of(names, overrides, {lab: w for w, lab in zip(cands.wnids, cands.labels) if is_free_phrase(w)})
    notes = []
    use_probs = bool(baselines) and bundle.softmax is not None
    if baselines and not use_probs:
        notes.append("the softmax and ConSE baselines need a trained softmax head; this bundle has none")
    leak = leakage_note(bundle, cands)
    if leak:
        notes.append(leak)
    out, failures = _embed(bundle, items, batch_size, use_probs, progress)
    if not len(out.true_wnids):
        first = failures[0][1] if failures else "no images"
        raise DatasetError(f"none of the {len(items)} images of {data} could be read (first: {first})")
    names_of: dict[str, list[str]] = {}
    for c in dict.fromkeys(out.true_wnids):
        names_of.setdefault(wnid[c], []).append(c)
    out.true_wnids = [wnid[c] for c in out.true_wnids]
    val = None
    if cal_items and calibration == "auto":
        val, _ = _embed(bundle, cal_items, batch_size, use_probs, progress)
        val.true_wnids = [wnid[c] for c in val.true_wnids]
    splits = None if raw_splits is None else [
        ev.Split(s["name"], [wnid[c] for c in s["unseen"]]) for s in raw_splits]
    opts = ev.EvalOptions(ks=tuple(ks), hierarchical=hierarchical, baselines=tuple(baselines),
                          bootstrap=bootstrap, seed=seed, calibration=calibration, per_class=per_class)
    if hierarchical and any(is_free_phrase(w) for w in cands.wnids):
        notes.append("hierarchical precision treats the free-phrase labels as having no WordNet relatives: "
                     "only an exact hit counts for them")
    report = ev.evaluate(out, cands, bundle.vocab, opts, _gt_factory() if hierarchical else None, splits, val)
    if per_class:  # the class names as DATA writes them (names of one synset are joined)
        report["per_class"] = [{"class": " = ".join(names_of.get(r["wnid"], [])), **r} for r in report["per_class"]]
    report.update({
        "model": str(model_path), "vocab": _describe_vocab(vocab_arg, cands), "data": str(data),
        "calibration_data": str(calibration_data) if calibration_data is not None else "seen-class images of DATA",
        "n_failed": len(failures), "failed": [{"path": str(p), "error": r} for p, r in failures],
        "versions": _versions(),
    })
    if per_class_images is not None:
        report["per_class_images"] = {"per_class": per_class_images, "seed": seed, "images": len(items),
                                      "of": n_scanned}
    report["notes"] = notes + report.get("notes", [])
    return report


def _describe_vocab(vocab_arg, cands) -> str:
    if isinstance(vocab_arg, (str, Path)):
        return str(vocab_arg)
    return str(cands.attrs.get("path") or cands.attrs.get("source") or "given")


def _versions() -> dict:
    """What produced the figures: devise, Keras (and its backend), NumPy."""
    import keras
    import numpy as np

    from wordnet.base.version import __version__

    return {"devise": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
            "numpy": np.__version__}


def imagenet_origin(config: dict, depth: int = 0) -> str | None:
    """How a bundle's backbone came from ImageNet weights (``"--weights imagenet"``, or through the bundles
    it was initialised from), or None: its ``hyperparameters.weights`` is followed through bundle folders."""
    from models.bundle import read_config

    weights = str((config.get("hyperparameters") or {}).get("weights", "") or "")
    if weights == "imagenet":
        return "--weights imagenet"
    path = Path(weights).expanduser()
    if depth < 8 and weights and path.is_dir() and (path / "config.json").is_file():
        try:
            origin = imagenet_origin(read_config(path), depth + 1)
        except DeviseError:  # a damaged bundle says nothing about where its weights came from
            return None
        return f"{origin} via {path}" if origin else None
    return None


def leakage_note(bundle, cands) -> str | None:
    """The zero-shot literature's warning (Xian et al. 2018): a backbone pre-trained on ImageNet-1K has
    seen the images of any of its classes, so those classes are not zero-shot among the candidates."""
    from wordnet.labels import read_label_list

    origin = imagenet_origin(bundle.config)
    if origin is None:
        return None
    trained = set(bundle.vocab.wnids)
    in1k = set(read_label_list("imagenet1k"))
    leaked = [w for w in cands.wnids if w not in trained and w in in1k]
    if not leaked:
        return None
    shown = ", ".join(f"{cands.labels[cands.index(w)]} ({w})" for w in leaked[:5]) + (" …" if len(leaked) > 5 else "")
    return (f"leakage: the backbone started from ImageNet weights ({origin}) and {len(leaked)} of the candidate "
            f"labels not trained on are ImageNet-1K classes ({shown}): their images were seen in pre-training, so "
            f"their figures are not zero-shot; use labels outside the 1K (e.g. --synsets imagenet-2hop)")


def _gt_factory():
    """candidate wnids -> ground_truth(wnid, k) -> set of rows, one cached hierarchy per candidate list."""
    from wordnet.hierarchy import HierarchicalGroundTruth
    from wordnet.label_vocab import is_free_phrase
    from wordnet.reader import load_wordnet

    wn = load_wordnet()
    cache: dict[tuple, Callable] = {}

    def factory(wnids):
        key = tuple(wnids)
        if key not in cache:
            rows = [i for i, w in enumerate(wnids) if not is_free_phrase(w)]
            if len(rows) == len(wnids):
                cache[key] = HierarchicalGroundTruth(wn, list(wnids)).indices
            else:  # free phrases have no WordNet relatives: only an exact hit counts for them
                tree = HierarchicalGroundTruth(wn, [wnids[i] for i in rows])
                own = {w: i for i, w in enumerate(wnids) if is_free_phrase(w)}

                def indices(wnid, k, tree=tree, rows=rows, own=own):
                    if is_free_phrase(wnid):
                        return {own[wnid]} if wnid in own else set()
                    return {rows[i] for i in tree.indices(wnid, k)}

                cache[key] = indices
        return cache[key]

    return factory
