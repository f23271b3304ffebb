"""``devise train``: Click glue over :mod:`models.train` (labels via :mod:`wordnet`).

Every hyperparameter of :class:`models.config.TrainConfig` is an option of the same
name; ``--config FILE`` (TOML or INI, keys = option names) supplies defaults through
Click's ``default_map``, and explicit options still win. TensorFlow, NLTK and gensim
are imported only once the command runs.
"""
from __future__ import annotations

from pathlib import Path

import click

from .common import console, domain_errors, label_text_option

# option name -> TrainConfig field (all identical except the flags below)
CONFIG_FIELDS = (
    "backbone", "weights", "image_size", "alpha", "hidden_units", "dropout", "margin", "loss", "batch_size",
    "val_split", "augment", "seed", "pretrain_epochs", "pretrain_lr", "bn_images", "head_epochs", "head_lr",
    "momentum", "finetune_epochs", "finetune_lr", "train_batchnorm", "strategy", "mixed_precision", "tensorboard",
    "run_eagerly",
)


def _read_config(ctx, param, value):
    """Eager ``--config``: load the file into ``ctx.default_map`` before other options are parsed."""
    if value is None:
        return None
    from wordnet.errors import DeviseError
    from models.config import read_config_file

    try:
        data = read_config_file(value)
    except DeviseError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    known = {p.name for p in ctx.command.params}
    unknown = sorted(set(data) - known - {"config"})
    if unknown:
        raise click.BadParameter(f"{value}: unknown setting(s) {', '.join(unknown)}", ctx=ctx, param=param)
    ctx.default_map = {**(ctx.default_map or {}), **data}
    return value


BACKBONE_NAMES = ["resnet50", "resnet101", "resnet50_v2", "mobilenet_v2", "mobilenet_v3_small",
                  "efficientnet_b0", "efficientnet_v2_b0", "densenet121", "convnext_tiny", "inception_v3"]


@click.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--vocab", "vocab_path", type=click.Path(dir_okay=False, path_type=Path), envvar="DEVISE_VOCAB",
              help="Vocabulary (.h5) holding every training class.")
@click.option("--vectors", type=click.Path(dir_okay=False, path_type=Path), envvar="DEVISE_VECTORS",
              help="Word vectors to build the training vocabulary from [default: `devise vectors train`'s].")
@click.option("--overrides", type=click.Path(dir_okay=False, path_type=Path), metavar="CSV",
              help="CSV label,synset pinning the WordNet sense of class names.")
@label_text_option
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle folder [default: models/<DATA name>].")
@click.option("--val", "val_data", type=click.Path(exists=True, path_type=Path),
              help="Validation DATA (same layout) instead of --val-split.")
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of each class held out for validation (stratified, seeded).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), is_eager=True, expose_value=False,
              callback=_read_config, help="TOML or INI file of option values (keys = option names).")
@click.option("--backbone", type=click.Choice(BACKBONE_NAMES), default="resnet50", show_default=True)
@click.option("--weights", default="imagenet", show_default=True, metavar="imagenet|none|PATH",
              help="Backbone initialisation: Keras ImageNet weights, random, a weights file, or a bundle "
                   "folder (its trained backbone).")
@click.option("--image-size", type=click.IntRange(32), default=224, show_default=True)
@click.option("--alpha", type=float, help="Width multiplier (MobileNet backbones).")
@click.option("--embedding-dim", type=int, help="Must equal the vocabulary's dimension (checked).")
@click.option("--hidden-units", type=click.IntRange(1), default=1024, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.3, show_default=True)
@click.option("--margin", type=float, default=0.1, show_default=True, help="Hinge rank loss margin.")
@click.option("--loss", type=click.Choice(["sum", "sampled"]), default="sum", show_default=True,
              help="Sum over all negatives, or the paper's first-violation sampling.")
@click.option("-b", "--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("-e", "--epochs", type=click.IntRange(0),
              help="Epochs for the head and fine-tune phases unless --head-epochs/--finetune-epochs are given.")
@click.option("--pretrain-epochs", type=click.IntRange(0), default=0, show_default=True,
              help="Phase 0: softmax pre-training of the backbone.")
@click.option("--pretrain-lr", type=float, default=1e-3, show_default=True, help="Phase 0 Adam learning rate.")
@click.option("--bn-images", type=click.IntRange(0), default=1000, show_default=True,
              help="Training images used to recompute BatchNorm statistics before phase 1.")
@click.option("--head-epochs", type=click.IntRange(0), default=10, show_default=True,
              help="Phase 1: head on cached frozen features.")
@click.option("--head-lr", type=float, default=0.01, show_default=True, help="Phase 1 SGD learning rate.")
@click.option("--momentum", type=float, default=0.9, show_default=True, help="Phase 1 SGD momentum.")
@click.option("--finetune-epochs", type=click.IntRange(0), default=10, show_default=True,
              help="Phase 2: fine-tune everything.")
@click.option("--finetune-lr", type=float, default=1e-3, show_default=True, help="Phase 2 Adagrad learning rate.")
@click.option("--train-batchnorm/--freeze-batchnorm", default=False, show_default=True,
              help="Phase 2: update BatchNorm layers (then recompute their statistics) or keep them frozen.")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random flips and crops in phases 0 and 2.")
@click.option("--seed", type=int, default=0, show_default=True, envvar="DEVISE_SEED")
@click.option("--strategy", type=click.Choice(["auto", "mirrored", "multi-worker", "one"]), default="auto",
              show_default=True, help="tf.distribute strategy (auto: mirrored over all GPUs if several).")
@click.option("--mixed-precision", is_flag=True, help="mixed_float16 compute (GPUs); loss and output in float32.")
@click.option("--tensorboard", type=click.Path(file_okay=False), metavar="DIR", help="Write TensorBoard logs.")
@click.option("--run-eagerly", is_flag=True,
              help="Run Keras eagerly: no graph tracing (debugging, or a handful of images on a slow CPU).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --output (its stored settings).")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle in --output.")
@click.pass_context
@domain_errors
def train(ctx, data, vocab_path, vectors, overrides, label_text, output, val_data, epochs, embedding_dim, resume,
          overwrite, **settings):
    """Train a DeViSE model on DATA and write a bundle to --output.

    DATA is a folder with one sub-folder of images per class (named by wnid, synset
    name or words) or a CSV img_name,class[,text]. Phases: optional softmax
    pre-training (--pretrain-epochs), BatchNorm statistics recomputation, the head on
    cached frozen features (--head-epochs, SGD), fine-tuning (--finetune-epochs,
    Adagrad). -e N sets both --head-epochs and --finetune-epochs.

    Unreadable images are skipped, one "skipped PATH: reason" line each, and counted
    in the summary and config.json. Exit codes: 0 the bundle was written (even with
    skipped images); 1 an error stopped training (nothing finished is lost: rerun
    with --resume); 2 bad usage. A run that is killed, even by SIGKILL, continues
    from its last finished epoch with --resume; a second run into the same --output
    while one is running is refused.

    \b
    Examples:
      devise train photos/ --vectors vectors.kv --output models/pets
      devise train data.csv --vocab in1k.h5 -b 256 -e 20 --strategy mirrored --mixed-precision
      devise train emoji/seen --backbone mobilenet_v2 --alpha 0.5 --weights none \\
          --image-size 64 --pretrain-epochs 30 --output models/emoji
      devise train photos/ --output models/pets --resume
    """
    from click.core import ParameterSource

    from models.bundle import check_output
    from models.config import TrainConfig

    # -e N fills in the head and fine-tune epochs that were not set more specifically: an option on
    # the command line always wins; from the config file, a phase's own key beats its `epochs` key
    rank = {ParameterSource.COMMANDLINE: 3, ParameterSource.ENVIRONMENT: 2, ParameterSource.DEFAULT_MAP: 1}
    for name in ("head_epochs", "finetune_epochs"):
        if epochs is not None and rank.get(ctx.get_parameter_source("epochs"), 0) > \
                rank.get(ctx.get_parameter_source(name), 0):
            settings[name] = epochs
    if vocab_path and vectors:
        raise click.UsageError("give --vocab or --vectors, not both")
    if vocab_path and ctx.get_parameter_source("label_text") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--label-text builds the training vocabulary from --vectors; --vocab has its own")
    output = output or Path("models") / (data.stem if data.is_file() else data.resolve().name)
    from wordnet.home import ensure_unlocked, lock_path_for

    ensure_unlocked(lock_path_for(output), f"output folder {output}")  # a run is writing there right now
    check_output(output, resume=resume, overwrite=overwrite)
    cfg = TrainConfig(**{k: settings[k] for k in CONFIG_FIELDS}).validate()

    from .train_labels import dataset_labels

    items, val_items, vocab, provenance = dataset_labels(
        data, val_data, vocab_path=vocab_path, vectors=vectors, overrides=overrides, label_text=label_text,
        resume_vocab=(output / "vocab.h5") if resume else None, out=console(stderr=True))
    if embedding_dim is not None:
        vocab.check_dim(embedding_dim, "--embedding-dim")

    from models.progress import RichReporter
    from models.train import train_devise

    err = console(stderr=True)
    result = train_devise(items, vocab, output, cfg, val_items=val_items, resume=resume, overwrite=overwrite,
                          provenance=provenance, reporter=RichReporter(err))
    out = console()
    skipped = f", {len(result.failures)} unreadable image(s) skipped" if result.failures else ""
    out.print(f"trained {result.path}: {result.train_images} training / {result.val_images} validation images, "
              f"{result.classes} classes{skipped}", highlight=False, soft_wrap=True)
    if result.best:
        out.print(f"best val hit@1 {result.best['value'] * 100:.1f}% ({result.best['phase']} epoch "
                  f"{result.best['epoch']})", highlight=False, soft_wrap=True)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    out.print(f"time: {times}", highlight=False, soft_wrap=True)
