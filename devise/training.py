"""Training from a labelled folder or CSV: class names -> WordNet -> label vectors -> a model bundle.

:func:`train` is what ``devise train`` runs: it maps the dataset's class names to
WordNet synsets (:mod:`devise.synsets`), builds or reads the training vocabulary, and
hands plain ``(path, label row)`` items to :func:`models.training.train.train_devise`,
which runs the phases and writes the bundle. Every problem with the data or the labels
is reported before TensorFlow is imported.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from devise._lazy import lazy_exports

# names handed on from the two halves, imported on first use (devise._lazy)
_EXPORTS = {
    "TrainConfig": "models.training.config",
    "cli_fields": "models.training.config",  # TrainConfig's fields as the CLI's options
    "option_name": "models.training.config",  # a field's option spelling, as validate()'s messages write it
    "read_config_file": "models.training.config",  # a --config TOML/INI file
    "Reporter": "models.training.reporter",
    "format_epoch": "models.training.reporter",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

DEFAULT_RUNS_DIR = "runs"  # bundles go to runs/<DATA name> unless an output is given


def default_output(data: str | Path) -> Path:
    """``runs/<DATA name>``: a bundle is never written into the source tree's packages by default."""
    data = Path(data)
    return Path(DEFAULT_RUNS_DIR) / (data.stem if data.is_file() else data.resolve().name)


def train(data: str | Path, output: str | Path | None = None, *, vocab: str | Path | None = None,
          vectors: str | Path | None = None, val: str | Path | None = None, overrides: str | Path | None = None,
          label_text: str = "lemmas", embedding_dim: int | None = None, resume: bool = False,
          overwrite: bool = False, reporter=None, notify: Callable[[str], None] | None = None,
          callbacks: list | None = None, **settings):
    """Train a DeViSE model on ``data`` and write its bundle to ``output`` (default ``runs/<DATA name>``).

    ``data`` (and ``val``) is a folder with one sub-folder of images per class or a CSV
    ``img_name,class``; class names may be wnids, synset names or words. The training
    labels come from the vocabulary ``vocab`` or are built from the word vectors
    ``vectors`` (default: the offline ones) with ``label_text``. ``settings`` are
    :class:`models.training.config.TrainConfig` fields (``backbone="mobilenet_v2"``,
    ``head_epochs=5`` ...). ``reporter`` (a :class:`models.training.reporter.Reporter`)
    shows progress; ``notify(text)`` hears about merged class names. Returns the
    :class:`models.training.train.TrainResult`.
    """
    from devise.synsets import dataset_labels
    from models.bundle import CONFIG_FILE, VOCAB_FILE, check_output
    from models.training.config import TrainConfig
    from wordnet.base.errors import BundleError
    from wordnet.base.files import ensure_unlocked, lock_path_for

    data = Path(data)
    if vocab is not None and vectors is not None:
        raise ValueError("give vocab or vectors, not both")
    output = Path(output) if output is not None else default_output(data)
    cfg = TrainConfig(**settings).validate()
    if cfg.process_id == 0:  # other processes of a several-host run write nothing there
        ensure_unlocked(lock_path_for(output), f"output folder {output}")  # a run is writing there right now
        check_output(output, resume=resume, overwrite=overwrite)
    elif resume and not (output / CONFIG_FILE).is_file():  # the others resume from process 0's folder, read-only
        raise BundleError(f"process {cfg.process_id} sees no run to resume in {output} (no {CONFIG_FILE}): --resume "
                          f"on several processes reads process 0's --output, which must be on a filesystem every "
                          f"process sees")
    items, val_items, vocabulary, provenance = dataset_labels(
        data, Path(val) if val is not None else None, vocab_path=vocab, vectors=vectors, overrides=overrides,
        label_text=label_text, resume_vocab=(output / VOCAB_FILE) if resume else None, notify=notify)
    if embedding_dim is not None:
        vocabulary.check_dim(embedding_dim, "--embedding-dim")

    from models.training.train import train_devise

    return train_devise(items, vocabulary, output, cfg, val_items=val_items, resume=resume, overwrite=overwrite,
                        provenance=provenance, reporter=reporter, callbacks=callbacks)
