"""Shared Click glue: domain errors -> ``Error: ...``, the rich console, option helpers.

Nothing here imports TensorFlow, gensim or NLTK, so ``devise --help`` stays instant.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from devise import DeviseError, UsageError
from devise.vocabularies import LABEL_TEXTS  # no numpy or gensim at import

# exit code of predict, eval and index when the command finished but some images could not be read
EXIT_SOME_IMAGES_FAILED = 3


def console(stderr: bool = False):
    """A rich console; wide enough for tables when output is not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 120, soft_wrap=False)


def domain_errors(func):
    """Turn library :class:`DeviseError` (and a few OS errors) into ``click.ClickException``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        except DeviseError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # unwritable output folder, full disk, unreadable input...
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; files already finished were kept") from None

    return wrapper


def echo_json(obj) -> None:
    """Print one JSON document (or JSON line) to stdout."""
    click.echo(json.dumps(obj, ensure_ascii=False))


# --label-text: shared by `vocab build` and `train` (the same recipe must build both sides)
label_text_option = click.option(
    "--label-text", type=click.Choice(LABEL_TEXTS), default="lemmas", show_default=True, envvar="DEVISE_LABEL_TEXT",
    help="What a label vector is made of: its names (the paper), plus its WordNet definition and/or hypernyms. "
         "Use the same for a model's training labels and the labels it is scored against.")


# --labels / --labels-file / --label-descriptions: shared by predict, eval and search
LABELS_HELP = ("Candidate labels given here, comma-separated (\"cat, dog, snow leopard\"): wnids, synsets, noun "
               "words or free phrases, embedded with the model's word vectors and label text (cached).")


def label_options(func):
    """Add ``--labels``, ``--labels-file`` and ``--label-descriptions`` (a vocabulary built on the fly)."""
    options = [
        click.option("--labels", "labels", metavar="TEXT", help=LABELS_HELP),
        click.option("--labels-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Candidate labels, one a line (as --labels)."),
        click.option("--label-descriptions", type=click.Path(dir_okay=False, path_type=Path), metavar="CSV",
                     help="CSV class,text: a label's text is embedded as its vector instead of its name."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def given_labels(labels, labels_file, label_descriptions, vocab_arg=None):
    """The :class:`devise.vocabularies.GivenLabels` of the label options (notices go to stderr), or None.

    ``vocab_arg`` other than ``default`` or ``trained`` beside labels is a usage error.
    """
    from devise.vocabularies import given_labels as make

    spec = make(labels, labels_file, label_descriptions,
                notify=lambda text: click.echo(f"note: {text}", err=True))
    if spec is not None and vocab_arg is not None and str(vocab_arg) not in ("default", "trained"):
        raise click.UsageError("give --vocab or --labels/--labels-file, not both")
    return spec


class ShardType(click.ParamType):
    """``I/N``: shard I (0-based) of N, as :class:`models.data.shards.Shard`."""

    name = "I/N"

    def convert(self, value, param, ctx):
        from devise import DeviseError, Shard

        try:
            return Shard.parse(value)
        except DeviseError as exc:
            self.fail(str(exc), param, ctx)


# --shard: shared by `index` and `predict` (the same files must land in the same shard for both)
shard_option = click.option(
    "--shard", type=ShardType(), envvar="DEVISE_SHARD",
    help="Only the files of shard I of N (0 <= I < N; a stable hash of each file's absolute path), so N "
         "processes (GPUs, hosts, Slurm array tasks) can split the work, e.g. --shard $SLURM_ARRAY_TASK_ID/8.")


# --model: shared by predict, eval, index and search; none given means the default model (built on first use)
model_option = click.option(
    "--model", "-m", "model_path", envvar="DEVISE_MODEL", type=click.Path(path_type=Path),
    help="Model bundle folder written by `devise train`; default: the default model in the data home "
         "(built offline on first use, see `devise model build`).")


def resolve_model(model_path, err=None) -> Path:
    """``--model``, or the default model's folder (built first, with its steps on stderr, if missing)."""
    if model_path is not None:
        return model_path
    from devise import ensure_default_model

    def step(text: str) -> None:
        click.echo(text, err=True)

    return ensure_default_model(on_step=step)


def _method_choices():
    from devise import METHODS

    return METHODS


# --method: how an image is ranked against the labels (predict; eval reports every method)
method_option = click.option(
    "--method", type=click.Choice(_method_choices()), envvar="DEVISE_METHOD",
    help="devise: the DeViSE embedding; conse: ConSE over the softmax classes; combined: both averaged; "
         "softmax: the model's own classes only. Default: the model's own (the default model's is combined).")
