"""Model bundles: the folder ``devise train`` writes and ``predict``/``eval`` read.

A bundle directory holds::

    model.keras     the DeviseModel (images -> {"embedding", "probs"}), weights included
    vocab.h5        the training Vocabulary (row order = softmax order = label indices)
    config.json     every hyperparameter, data and vector provenance, versions, "complete"
    history.csv     one row per completed epoch: phase, epoch, loss, val hit@k ...
    checkpoints/    per-phase backups, best weights, feature caches, training state

Completeness is explicit: ``config.json`` is rewritten with ``"complete": true`` only
after ``model.keras`` has been atomically written, so a killed run never leaves a
bundle that loads as if finished. :func:`load_bundle` turns every missing or corrupt
file into one :class:`BundleError` line naming it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from wordnet.errors import BundleError, VocabularyError
from wordnet.home import atomic_write
from wordnet.vocab import Vocabulary

FORMAT = "devise-bundle"
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.h5"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class BundleOutput:
    """Result of :meth:`Bundle.run`: rows follow ``paths`` (the images that decoded)."""

    paths: list[Path]
    embeddings: np.ndarray
    probs: np.ndarray | None
    failures: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Bundle:
    """A loaded bundle. ``model``: images -> unit embeddings; ``softmax``: images -> probs or None."""

    path: Path
    full: object  # DeviseModel
    vocab: Vocabulary
    config: dict

    def __post_init__(self) -> None:
        self.model = self.full.embedder
        self.softmax = self.full.classifier if self.config.get("softmax_trained") else None
        self.image_size = int(self.full.image_size)
        self.backbone = str(self.full.backbone_name)
        self._infer = None

    @property
    def dim(self) -> int:
        return int(self.full.embedding_dim)

    def run(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 32,
        softmax: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> BundleOutput:
        """Embed image files in batches (tf.data decode); undecodable files go to ``failures``.

        ``progress(done, total)`` is called after each batch with the number of input
        files handled so far. With ``softmax=True`` (and a trained softmax head) the
        class probabilities in vocabulary order come back as ``probs``.
        """
        from .features import inference_function
        from .pipeline import FailureLog, image_dataset

        if softmax and self.softmax is None:
            raise BundleError(f"{self.path} has no trained softmax head")
        paths = [Path(p) for p in paths]
        log = FailureLog()
        dim = self.dim
        embs, probs, kept = [], [], []
        if paths:
            ds = image_dataset(paths, None, self.image_size, batch_size, log=log, with_index=True)
            done = 0
            if self._infer is None:
                self._infer = inference_function(self.full)
            for images, idx in ds:
                out = self._infer(images)
                embs.append(np.asarray(out["embedding"], np.float32))
                if softmax:
                    probs.append(np.asarray(out["probs"], np.float32))
                batch_idx = idx.numpy().tolist()
                kept.extend(batch_idx)
                done = batch_idx[-1] + 1 if batch_idx else done
                if progress is not None:
                    progress(min(done, len(paths)), len(paths))
        if progress is not None and paths:
            progress(len(paths), len(paths))
        emb = np.concatenate(embs) if embs else np.zeros((0, dim), np.float32)
        prob = None
        if softmax:
            prob = np.concatenate(probs) if probs else np.zeros((0, len(self.vocab)), np.float32)
        failures = [(Path(p), r) for p, r in log.items()]
        return BundleOutput([paths[i] for i in kept], emb, prob, failures)


def load_bundle(path: str | Path) -> Bundle:
    """Load a complete bundle; :class:`BundleError` (one line, naming the file) otherwise."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise BundleError(f"{path}: no such model bundle; train one with `devise train DATA --output {path}`")
    config = read_config(path)
    if config.get("format") != FORMAT:
        raise BundleError(f"{path / CONFIG_FILE} is not a devise bundle config")
    if not config.get("complete"):
        raise BundleError(
            f"{path} is incomplete (training was interrupted or is still running); "
            f"finish it with `devise train ... --output {path} --resume`"
        )
    vocab_path = path / VOCAB_FILE
    if not vocab_path.is_file():
        raise BundleError(f"{vocab_path} is missing; the bundle is damaged, retrain it")
    try:
        vocab = Vocabulary.load(vocab_path)
    except VocabularyError as exc:
        raise BundleError(f"{vocab_path}: {exc}") from None
    model = load_model_file(path / MODEL_FILE)
    if int(model.embedding_dim) != vocab.dim or int(model.num_classes) != len(vocab):
        raise BundleError(f"{path}: model.keras and vocab.h5 do not match (retrain the bundle)")
    return Bundle(path=path, full=model, vocab=vocab, config=config)


def load_model_file(model_path: Path):
    """Read ``model.keras`` into a :class:`DeviseModel` (imports register the custom classes)."""
    import keras

    from . import backbones, head, losses  # noqa: F401  (register serialisable classes)

    if not model_path.is_file():
        raise BundleError(f"{model_path} is missing; the bundle is damaged, retrain it")
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:160]
        raise BundleError(
            f"{model_path} is corrupt or not a devise model ({exc.__class__.__name__}: {first})") from None
    if not isinstance(model, head.DeviseModel):
        raise BundleError(f"{model_path} is a Keras model but not a devise DeviseModel")
    return model


def read_config(path: Path) -> dict:
    cfg_path = Path(path) / CONFIG_FILE
    if not cfg_path.is_file():
        raise BundleError(f"{cfg_path} is missing; {path} is not a devise model bundle")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{cfg_path} is corrupt ({exc.__class__.__name__}); retrain the bundle") from None
    if not isinstance(cfg, dict):
        raise BundleError(f"{cfg_path} is corrupt (not a JSON object); retrain the bundle")
    return cfg


def write_config(path: Path, config: dict) -> None:
    """Write ``config.json`` atomically (``format`` fields added)."""
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, **config}
    with atomic_write(Path(path) / CONFIG_FILE, encoding="utf-8") as fh:
        json.dump(config, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")


def _json_default(obj):
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_output(path: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Raise :class:`BundleError` if training into ``path`` would lose something; changes nothing.

    - new or empty folder: fine;
    - ``resume``: must hold a run's ``config.json``;
    - existing non-empty folder without ``resume``/``overwrite``: refused;
    - ``overwrite``: allowed only for a folder that is a devise bundle (never a random folder).
    """
    path = Path(path).expanduser()
    if resume and overwrite:
        raise BundleError("--resume and --overwrite exclude each other")
    if path.exists() and not path.is_dir():
        raise BundleError(f"{path} exists and is not a folder; choose another --output")
    non_empty = path.is_dir() and any(path.iterdir())
    if resume:
        if not (path / CONFIG_FILE).is_file():
            raise BundleError(f"{path} holds no run to resume (no {CONFIG_FILE}); drop --resume to start one")
    elif non_empty:
        if not overwrite:
            raise BundleError(
                f"{path} already exists; pass --resume to continue that run or --overwrite to replace it"
            )
        if not (path / CONFIG_FILE).is_file():
            raise BundleError(f"{path} is not a devise bundle; refusing to overwrite it, choose another --output")
    return path


def prepare_output(path: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """:func:`check_output`, then create the folder (removing the old bundle with ``overwrite``)."""
    path = check_output(path, resume=resume, overwrite=overwrite)
    if not resume and overwrite and path.is_dir() and any(path.iterdir()):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
