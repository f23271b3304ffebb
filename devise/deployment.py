"""Exporting a bundle for deployment: the image -> embedding model, or with labels the whole classifier.

:func:`export` joins a bundle and (optionally) a vocabulary — a file, the bundle's own
labels or labels given on the command line — and hands the Keras side to
:func:`models.export.export_model`. The export folder holds the model (``saved_model/``,
``model.tflite`` or ``model.onnx``), ``labels.json`` (row -> wnid, synset, label: what the
classifier's ``indices`` mean) and ``export.json`` (input and outputs, source bundle,
versions). Nothing here imports Keras at module level, so the CLI's help stays instant.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from models.export_formats import FORMATS
from wordnet.base.files import names_target, staging_folder

EXPORT_FORMATS = tuple(FORMATS)
LABELS_FILE = "labels.json"
INFO_FILE = "export.json"


def export(model: str | os.PathLike, output: str | os.PathLike, *, format: str, vocab=None, top: int = 5,
           overwrite: bool = False) -> dict:
    """Export the bundle ``model`` as ``format`` (:data:`EXPORT_FORMATS`) into the folder ``output``.

    Without ``vocab`` the graph is images -> ``embedding``; with one (a vocabulary, its
    ``.h5``, ``"trained"`` or :class:`~devise.vocabularies.GivenLabels`) it is the complete
    classifier images -> ``embedding``, ``scores`` and ``indices`` of the ``top`` labels.
    The folder is written beside ``output`` and renamed into place, so a failed export
    leaves nothing; an existing ``output`` is replaced only with ``overwrite``. Returns
    what ``export.json`` holds.
    """
    from devise.prediction import load_model, load_model_and_vocab
    from wordnet.base.errors import DeviseError

    if format not in EXPORT_FORMATS:
        raise DeviseError(f"unknown export format {format!r}; choose {', '.join(EXPORT_FORMATS)}")
    output = Path(output).expanduser()
    single = single_file(output, format)
    if output.exists() and not overwrite:
        raise DeviseError(f"{output} already exists; choose another --output or pass --overwrite")
    if output.exists() and output.is_dir() == bool(single):
        raise DeviseError(f"{output} exists and is not a {'file' if single else 'folder'}; choose another --output")
    if vocab is None:
        bundle, cands = load_model(model), None
    else:
        bundle, cands = load_model_and_vocab(model, vocab)
    with names_target(output):  # a full disk names the export folder, not a file of its staging copy
        if single:
            return _export_file(bundle, cands, output, format, top)
        return _export_staged(bundle, cands, output, format, top)


def single_file(output: Path, format: str) -> bool:
    """Whether ``output`` names the model file itself (``model.tflite`` for tflite, ``x.onnx`` for onnx):
    a single-file format given a file name writes that file, not a folder of that name."""
    artefact = FORMATS[format][1]
    return "." in artefact and output.suffix == Path(artefact).suffix


def side_file(output: Path, name: str) -> Path:
    """Where a single-file export puts labels.json / export.json: beside it, ``<stem>.labels.json``."""
    return output.with_name(f"{output.stem}.{name}")


def _export_file(bundle, cands, output: Path, format: str, top: int) -> dict:
    """Export into a staging folder beside ``output``, then move the model file onto ``output`` and its
    ``labels.json`` / ``export.json`` beside it as ``<stem>.labels.json`` / ``<stem>.export.json``."""
    stage = output.with_name(f".{output.name}.export")
    if stage.exists():
        shutil.rmtree(stage)
    info = _export_staged(bundle, cands, stage, format, top)
    try:
        info["model"] = output.name
        with open(stage / INFO_FILE, "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2, ensure_ascii=False)
        for name in (LABELS_FILE, INFO_FILE):
            if (stage / name).exists():
                os.replace(stage / name, side_file(output, name))
        os.replace(stage / FORMATS[format][1], output)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return info


def _export_staged(bundle, cands, output: Path, format: str, top: int) -> dict:
    """Write the export into a hidden folder beside ``output``, then rename it into place."""
    from models.export import export_model

    output.parent.mkdir(parents=True, exist_ok=True)
    stage = staging_folder(output)
    try:
        k = min(int(top), len(cands)) if cands is not None else None
        artefact = export_model(bundle.full, stage, format, cands.vectors if cands is not None else None, k or 5)
        info = _info(bundle, format, artefact.name, cands, k)
        if cands is not None:
            with open(stage / LABELS_FILE, "w", encoding="utf-8") as fh:
                json.dump([{"index": i, "wnid": w, "synset": s, "label": lab}
                           for i, (w, s, lab) in enumerate(zip(cands.wnids, cands.synsets, cands.labels))],
                          fh, indent=1, ensure_ascii=False)
        with open(stage / INFO_FILE, "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2, ensure_ascii=False)
        if output.exists():
            shutil.rmtree(output)
        os.rename(stage, output)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return info


def eval_crop(bundle) -> float:
    """The share of the short side ``predict`` crops (the centred square) before resizing: the
    evaluation view of the recipe the bundle was trained with (0.875 for ``inception``)."""
    from models.data.augment import get_recipe

    return float(get_recipe(bundle.recipe).eval_crop)


def _info(bundle, fmt: str, artefact: str, cands, k) -> dict:
    import keras
    import tensorflow as tf

    from wordnet.base.version import __version__

    size, crop = int(bundle.image_size), eval_crop(bundle)
    outputs = {"embedding": f"(batch, {bundle.dim}) float32, unit length"}
    if cands is not None:
        outputs.update({"scores": f"(batch, {k}) float32 cosines, best first",
                        "indices": f"(batch, {k}) int32 rows of {LABELS_FILE}"})
    return {"format": fmt, "model": artefact, "bundle": str(bundle.path), "backbone": bundle.backbone,
            "input": {"name": "image", "shape": [None, size, size, 3], "dtype": "float32", "crop": crop,
                      "pixels": f"RGB in [0, 255]: the centred square whose side is round(crop x the image's short "
                                f"side), resized to {size} px (bilinear), as `devise predict` sees it (the "
                                f"backbone's own scaling is inside the model)"},
            "outputs": outputs, "labels": len(cands) if cands is not None else 0, "top": k,
            "vocabulary": (str(cands.attrs.get("path") or cands.attrs.get("source", ""))
                           if cands is not None else None),
            "versions": {"devise": __version__, "keras": keras.__version__, "tensorflow": tf.__version__}}
