"""``devise train``: Click glue over :func:`devise.train`.

Every hyperparameter option is generated from a :class:`models.training.config.TrainConfig`
field (name, default, choices, range and help live there, once); ``--config FILE`` (TOML
or INI, keys = option names) supplies defaults through Click's ``default_map``, and
explicit options still win. TensorFlow, NLTK and gensim are imported only once the
command runs.
"""
from __future__ import annotations

from pathlib import Path

import click

from devise.training import cli_fields, option_name
from devise_cli.common import console, domain_errors, label_text_option


def _read_config(ctx, param, value):
    """Eager ``--config``: load the file into ``ctx.default_map`` before other options are parsed."""
    if value is None:
        return None
    from devise import DeviseError
    from devise.training import read_config_file

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


_NO_DEFAULT = object()


def option_for(field, flag: str | None = None, default=_NO_DEFAULT) -> click.Option:
    """The Click option of one TrainConfig field: ``--image-size`` for ``image_size``, typed from the field
    (``flag`` and ``default`` replace the field's own, for commands that present a setting differently)."""
    meta = field.metadata
    flag = flag or option_name(field.name)
    default = field.default if default is _NO_DEFAULT else default
    names = [meta["short"], flag] if meta.get("short") else [flag]
    kwargs = dict(default=default, help=meta.get("help") or None, envvar=meta.get("envvar"),
                  metavar=meta.get("metavar"))
    kind = str(field.type).replace(" | None", "")
    if kind == "bool":
        if meta.get("off_flag"):
            names[-1] = f"{flag}/--{meta['off_flag']}"
            kwargs["show_default"] = True
        else:
            kwargs["is_flag"] = True
    elif meta.get("choices"):
        kwargs.update(type=click.Choice(meta["choices"]), show_default=True)
    elif kind in ("int", "float"):
        rng = click.IntRange if kind == "int" else click.FloatRange
        bounded = meta.get("min") is not None or meta.get("max") is not None
        extra = {k: True for k in ("min_open", "max_open") if meta.get(k)}
        kwargs["type"] = (rng(meta.get("min"), meta.get("max"), **extra) if bounded
                          else (int if kind == "int" else float))
        kwargs["show_default"] = default is not None
    elif default is not None:
        kwargs["show_default"] = True
    if kind == "str" and meta.get("metavar") == "DIR":
        kwargs["type"] = click.Path(file_okay=False)
    return click.Option(names, **{k: v for k, v in kwargs.items() if v is not None or k == "default"})


def with_config_options(command):
    """Add one option per CLI field of TrainConfig (in field order) to ``command``."""
    for field in cli_fields():
        command.params.append(option_for(field))
    return command


@with_config_options
@click.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--vocab", "vocab_path", type=click.Path(dir_okay=False, path_type=Path), envvar="DEVISE_VOCAB",
              help="Vocabulary (.h5) holding every training class.")
@click.option("--vectors", type=click.Path(dir_okay=False, path_type=Path), envvar="DEVISE_VECTORS",
              help="Word vectors to build the training vocabulary from [default: `devise vectors train`'s].")
@click.option("--overrides", type=click.Path(dir_okay=False, path_type=Path), metavar="CSV",
              help="CSV label,synset pinning the WordNet sense of class names.")
@label_text_option
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), envvar="DEVISE_OUTPUT",
              help="Bundle folder [default: runs/<DATA name>].")
@click.option("--val", "val_data", type=click.Path(exists=True, path_type=Path),
              help="Validation DATA (same layout) instead of --val-split.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), is_eager=True, expose_value=False,
              callback=_read_config, help="TOML or INI file of option values (keys = option names).")
@click.option("--embedding-dim", type=int, help="Must equal the vocabulary's dimension (checked).")
@click.option("-e", "--epochs", type=click.IntRange(0),
              help="Epochs for the head and fine-tune phases unless --head-epochs/--finetune-epochs are given.")
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
      devise train photos/ --vectors vectors.kv --output runs/pets
      devise train data.csv --vocab in1k.h5 -b 256 -e 20 --strategy mirrored --mixed-precision
      devise train emoji/seen --backbone mobilenet_v2 --alpha 0.5 --weights none \\
          --image-size 64 --pretrain-epochs 30 --output runs/emoji
      devise train photos/ --output runs/pets --resume
    """
    from click.core import ParameterSource

    from devise.training import train as train_model
    from devise_cli.progress import RichReporter

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
    err = console(stderr=True)
    result = train_model(data, output, vocab=vocab_path, vectors=vectors, val=val_data, overrides=overrides,
                         label_text=label_text, embedding_dim=embedding_dim, resume=resume, overwrite=overwrite,
                         reporter=RichReporter(err),
                         notify=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True),
                         **settings)
    out = console()
    skipped = f", {len(result.failures)} unreadable image(s) skipped" if result.failures else ""
    out.print(f"trained {result.path}: {result.train_images} training / {result.val_images} validation images, "
              f"{result.classes} classes{skipped}", highlight=False, soft_wrap=True)
    if result.best:
        out.print(f"best val hit@1 {result.best['value'] * 100:.1f}% ({result.best['phase']} epoch "
                  f"{result.best['epoch']})", highlight=False, soft_wrap=True)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    out.print(f"time: {times}", highlight=False, soft_wrap=True)
