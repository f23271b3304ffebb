"""Model bundles: the folder ``devise train`` writes and ``predict``/``eval`` read.

A bundle directory holds::

    model.keras     the DeviseModel (images -> {"embedding", "probs"}), weights included
    vocab.h5        the training Vocabulary (row order = softmax order = label indices)
    config.json     every hyperparameter, data and vector provenance, versions, "complete",
                    "preprocessing" (the augmentation recipe: how inference crops images)
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
from typing import Callable, Iterator, Sequence

import numpy as np

from models.net.inference import compiled_inference, eager_inference
from wordnet.base.errors import BundleError, VocabularyError
from wordnet.base.files import atomic_write, ensure_readable, sha256_file
from wordnet.scoring.metrics import method_embeddings
from wordnet.vocab import Vocabulary

FORMAT = "devise-bundle"
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.h5"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
DEFAULT_RECIPE = "square"  # bundles written before recipes existed: the centre square


def preprocessing_entry(recipe: str) -> dict:
    """``config.json``'s ``preprocessing``: the recipe's name and its evaluation crop."""
    from models.data.augment import get_recipe

    return {"recipe": recipe, "eval_crop": get_recipe(recipe).eval_crop}


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
        self.image_size = int(self.full.image_size)
        self.backbone = str(self.full.backbone_name)
        self._views: dict = {}
        self._infer: dict = {}

    @property
    def model(self):
        """images -> unit embeddings (a Keras view of ``full``, built on first use)."""
        if "model" not in self._views:
            self._views["model"] = self.full.embedder
        return self._views["model"]

    @property
    def softmax(self):
        """images -> softmax probabilities, or None when the bundle's softmax head was not trained."""
        if not self.has_softmax:
            return None
        if "softmax" not in self._views:
            self._views["softmax"] = self.full.classifier
        return self._views["softmax"]

    @property
    def recipe(self) -> str:
        """The augmentation recipe training used (its evaluation view is what inference sees)."""
        return str((self.config.get("preprocessing") or {}).get("recipe", DEFAULT_RECIPE))

    def default_vocab(self) -> Vocabulary:
        """The labels this bundle ranks unless told otherwise: the vocabulary file its ``config.json`` names as
        ``default_vocab`` (the default model's broad visual nouns), else its own training labels."""
        name = self.config.get("default_vocab")
        if not name:
            return self.vocab
        path = self.path / name
        if "default" not in self._views:
            try:
                self._views["default"] = Vocabulary.load(path)
            except VocabularyError as exc:
                raise BundleError(f"{path}: the model's default labels cannot be read ({exc}); rebuild the model "
                                  f"(`devise model build --overwrite`) or pass --vocab/--labels") from None
        return self._views["default"]

    @property
    def has_softmax(self) -> bool:
        return bool(self.config.get("softmax_trained"))

    @property
    def dim(self) -> int:
        return int(self.full.embedding_dim)

    def _inference(self, softmax: bool, n_images: int | None = None, batch_size: int = 32):
        """One compiled ``uint8/float images -> outputs`` function per output set, traced once.

        Only the outputs asked for are returned, so the softmax head is pruned from the
        graph when it is not wanted. A single batch (``n_images <= batch_size``) on a
        bundle that has not traced yet runs eagerly instead: tracing a ResNet50 costs
        more than one eager forward pass, and ``devise predict one.jpg`` waits for it.
        """
        if softmax not in self._infer and n_images is not None and n_images <= batch_size:
            return eager_inference(self.full, ("embedding", "probs") if softmax else ("embedding",))
        if softmax not in self._infer:
            self._infer[softmax] = compiled_inference(self.full, ("embedding", "probs") if softmax else ("embedding",))
        return self._infer[softmax]

    def run_batches(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 32,
        softmax: bool = False,
        method: str | None = None,
    ) -> Iterator[BundleOutput]:
        """Stream :class:`BundleOutput` pieces, one per batch, from ONE tf.data pipeline.

        Pieces come in input order; each carries the files that failed to decode since
        the previous piece (in input order too), and a last piece with no images may
        carry trailing failures. Decoding runs in parallel threads ahead of the model.
        ``method`` ``conse`` or ``combined`` makes ``embeddings`` that ranking method's
        (:func:`wordnet.scoring.metrics.method_embeddings` over this bundle's label vectors,
        ``probs`` kept), so every caller (predict, index, an image query) embeds one way;
        None or ``devise`` keeps the DeViSE head's.
        """
        from models.data.failures import FailureLog
        from models.data.tfdata import inference_dataset

        if method not in (None, "devise"):
            if method == "softmax":
                raise BundleError("the softmax method ranks the model's own classes and has no embedding")
            softmax = True
        if softmax and not self.has_softmax:
            raise BundleError(f"{self.path} has no trained softmax head")
        paths = [Path(p) for p in paths]
        if not paths:
            return
        log = FailureLog()
        infer = self._inference(softmax, len(paths), batch_size)
        ds = inference_dataset(paths, self.image_size, batch_size, log=log, recipe=self.recipe)
        nxt = 0  # first input position not yet accounted for

        def failed_upto(stop):
            if stop <= nxt:
                return []
            reasons = dict(log.items())
            return [(paths[i], reasons.get(str(paths[i]), "could not be read")) for i in range(nxt, stop)]

        for images, idx in ds:
            batch_idx = idx.numpy()
            if not len(batch_idx):
                continue  # every file of this batch failed: reported with the next piece
            out = infer(images)
            fails = []
            for i in batch_idx.tolist():
                fails += failed_upto(i)
                nxt = i + 1
            emb = np.asarray(out["embedding"], np.float32)
            probs = np.asarray(out["probs"], np.float32) if softmax else None
            if method not in (None, "devise"):
                emb = method_embeddings(method, emb, probs, self.vocab.vectors)
            yield BundleOutput([paths[i] for i in batch_idx.tolist()], emb, probs, fails)
        if nxt < len(paths):
            yield BundleOutput([], np.zeros((0, self.dim), np.float32),
                               np.zeros((0, len(self.vocab)), np.float32) if softmax else None, failed_upto(len(paths)))

    def run(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 32,
        softmax: bool = False,
        progress: Callable[[int, int], None] | None = None,
        method: str | None = None,
    ) -> BundleOutput:
        """Embed image files in batches (tf.data decode); undecodable files go to ``failures``.

        ``progress(done, total)`` is called after each batch with the number of input
        files handled so far. With ``softmax=True`` (and a trained softmax head) the
        class probabilities in vocabulary order come back as ``probs``; ``method`` as
        :meth:`run_batches` takes it.
        """
        if softmax and not self.has_softmax:
            raise BundleError(f"{self.path} has no trained softmax head")
        paths = [Path(p) for p in paths]
        kept, embs, probs, failures, done = [], [], [], [], 0
        for piece in self.run_batches(paths, batch_size, softmax, method=method):
            kept += piece.paths
            embs.append(piece.embeddings)
            if softmax:
                probs.append(piece.probs)
            failures += piece.failures
            done += len(piece.paths) + len(piece.failures)
            if progress is not None:
                progress(done, len(paths))
        emb = np.concatenate(embs) if embs else np.zeros((0, self.dim), np.float32)
        prob = None
        if softmax:
            prob = np.concatenate(probs) if probs else np.zeros((0, len(self.vocab)), np.float32)
        return BundleOutput(kept, emb, prob, failures)


def model_checksum(bundle_path: str | Path) -> str:
    """``sha256:<hex>`` of the ``model.keras`` in the bundle folder ``bundle_path``: the identity of the
    embeddings it makes. Only the model file is hashed (a vocabulary swapped in the bundle changes no
    embedding). Image indexes store it (their ``model_checksum`` attribute) to refuse another model's
    rows; the softmax temperature is cached under it."""
    model_file = Path(bundle_path).expanduser() / MODEL_FILE
    if not model_file.is_file():
        raise BundleError(f"{bundle_path}: no such model bundle (no {MODEL_FILE}); give the folder of a model "
                          f"trained with devise train (--model)")
    return "sha256:" + sha256_file(model_file).hexdigest()


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
    ensure_readable(vocab_path)
    try:
        vocab = Vocabulary.load(vocab_path)
    except VocabularyError as exc:  # its message already names the file; a bundle's fix is not `vocab build`
        raise BundleError(bundle_vocab_message(str(exc), vocab_path)) from None
    model = load_model_file(path / MODEL_FILE)
    if int(model.embedding_dim) != vocab.dim or int(model.num_classes) != len(vocab):
        raise BundleError(f"{path}: model.keras and vocab.h5 do not match (retrain the bundle)")
    return Bundle(path=path, full=model, vocab=vocab, config=config)


def load_model_file(model_path: Path):
    """Read ``model.keras`` into a :class:`DeviseModel` (imports register the custom classes)."""
    import keras

    from models.net import backbones, losses  # noqa: F401  (register serialisable classes)
    from models.net import devise_model as head

    if not model_path.is_file():
        raise BundleError(f"{model_path} is missing; the bundle is damaged, retrain it")
    import zipfile

    ensure_readable(model_path)  # is_zipfile says False for a file it may not read: not "corrupt"
    if not zipfile.is_zipfile(model_path):  # Keras would say "File not found" for a truncated file
        raise BundleError(f"{model_path} is corrupt or not a devise model (truncated, or not a .keras zip "
                          f"file); the bundle is damaged, retrain it")
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged bundle: one line naming it
        first = (str(exc).splitlines() or [""])[0][:160]
        raise BundleError(
            f"{model_path} is corrupt or not a devise model ({exc.__class__.__name__}: {first})") from None
    if not isinstance(model, head.DeviseModel):
        raise BundleError(f"{model_path} is a Keras model but not a devise DeviseModel")
    return model


def bundle_vocab_message(message: str, vocab_path: Path) -> str:
    """A vocabulary error about a bundle's ``vocab.h5``: the file named, and the bundle's fix (retrain),
    not the advice for a stand-alone vocabulary (`devise vocab build`)."""
    message = message if str(vocab_path) in message else f"{vocab_path}: {message}"
    head, sep, advice = message.rpartition("; ")
    if sep and "devise vocab build" in advice:
        message = head
    return f"{message}; the bundle is damaged, retrain it"


def read_config(path: Path) -> dict:
    cfg_path = Path(path) / CONFIG_FILE
    if not cfg_path.is_file():
        raise BundleError(f"{cfg_path} is missing; {path} is not a devise model bundle")
    ensure_readable(cfg_path)
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


def copy_backbone(model, bundle_path: str | Path):
    """Give the built DeviseModel ``model`` the trained backbone of another bundle (BatchNorm statistics too).

    One softmax pre-training can so serve several runs (``devise train --weights BUNDLE``).
    The backbones must match in architecture, image size and options, or :class:`WeightsError`
    says which differs. Returns ``model``.
    """
    from models.net.backbones import WeightsError

    bundle_path = Path(bundle_path).expanduser()
    source = load_bundle(bundle_path).full
    mine = {"backbone": model.backbone_name, "image_size": int(model.image_size),
            "options": dict(model.backbone_options)}
    theirs = {"backbone": source.backbone_name, "image_size": int(source.image_size),
              "options": dict(source.backbone_options)}
    if mine != theirs:
        raise WeightsError(f"{bundle_path}: its backbone is {theirs['backbone']} at {theirs['image_size']} px "
                           f"{theirs['options'] or ''}, not {mine['backbone']} at {mine['image_size']} px "
                           f"{mine['options'] or ''}; use the same --backbone, --image-size and options")
    model.backbone.set_weights(source.backbone.get_weights())
    return model
