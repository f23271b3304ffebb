"""Readable scores: the softmax temperature of a bundle's cosines, fitted on its own validation images.

``devise predict --scores softmax`` turns cosines into probabilities, softmax(cosine / T).
T is fitted on demand rather than at training time: every bundle gets one (those trained
before this existed too) without retraining, the training code is untouched, and the bundle
folder is never written to (it may be read-only). The fit costs one pass over the bundle's
validation images, once per model: T is cached in the data home under the checksum of
``model.keras``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

TEMPERATURE_CACHE = "temperatures.json"  # in the data home: model checksum -> fitted temperature


def score_temperature(bundle, *, batch_size: int = 32, on_fit: Callable[[int], None] | None = None) -> float:
    """The softmax temperature T of ``bundle``'s cosine scores: ``softmax(cosine / T)`` are probabilities.

    T minimises the negative log-likelihood of the true labels of the bundle's own validation
    images over its training labels (:func:`wordnet.scoring.metrics.fit_temperature`). It is fitted
    on demand, once per model, and cached in the data home under the checksum of ``model.keras``:
    every bundle gets one, including those trained before this existed, without retraining
    and without touching the bundle (which may be read-only). The validation images are
    found again from the bundle's provenance (its data, ``--val`` or the seeded
    ``--val-split``); ``on_fit(n_images)`` is called before a fit.
    """
    import json

    from models.bundle import model_checksum
    from wordnet.base.files import atomic_write
    from wordnet.base.home import data_home

    key = model_checksum(bundle.path)
    cache = data_home() / TEMPERATURE_CACHE
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), dict) and known[key].get("temperature", 0) > 0:
        return float(known[key]["temperature"])
    temperature, n = _fit_temperature(bundle, batch_size, on_fit)
    known[key] = {"temperature": temperature, "images": n, "model": str(Path(bundle.path).resolve())}
    try:
        with atomic_write(cache, encoding="utf-8") as fh:
            json.dump(dict(list(known.items())[-256:]), fh, indent=1)
    except OSError:
        pass  # a read-only data home: fitted again next time
    return temperature



def _validation_items(bundle):
    """The bundle's validation images ``[(path, training row)]``, found again from its provenance."""
    from devise.synsets import dataset_labels
    from models.bundle import VOCAB_FILE
    from models.data.datasets import stratified_split
    from wordnet.base.errors import BundleError

    prov = bundle.config.get("provenance") or {}
    hyper = bundle.config.get("hyperparameters") or {}
    data, val = prov.get("data"), prov.get("val")
    why = "(softmax scores need a temperature fitted on them; use --scores cosine)"
    if not data or not Path(data).exists() or (val and not Path(val).exists()):
        raise BundleError(f"{bundle.path} was trained on {val or data or 'data it does not record'}, which cannot "
                          f"be found: its validation images are needed once {why}")
    items, val_items, _, _ = dataset_labels(Path(data), Path(val) if val else None,
                                            overrides=prov.get("overrides"),
                                            resume_vocab=bundle.path / VOCAB_FILE)
    if val_items is None:
        val_items = stratified_split(items, float(hyper.get("val_split", 0.1)), int(hyper.get("seed", 0)))[1]
    if not val_items:
        raise BundleError(f"{bundle.path} has no validation images (trained with --val-split 0) {why}")
    return val_items


def _fit_temperature(bundle, batch_size: int, on_fit) -> tuple[float, int]:
    import numpy as np

    from wordnet.base.errors import BundleError
    from wordnet.scoring.metrics import fit_temperature

    items = _validation_items(bundle)
    if on_fit is not None:
        on_fit(len(items))
    res = bundle.run([p for p, _ in items], batch_size=batch_size)
    if not len(res.paths):
        raise BundleError(f"none of the {len(items)} validation images of {bundle.path} could be read")
    row_of = {str(p): r for p, r in items}
    true = np.array([row_of[str(p)] for p in res.paths])
    scores = res.embeddings @ bundle.vocab.vectors.T
    return fit_temperature(scores, true), len(true)
