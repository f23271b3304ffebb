"""Shared Click glue: domain errors -> ``Error: ...``, the rich console, option helpers.

Nothing here imports TensorFlow, gensim or NLTK, so ``devise --help`` stays instant.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import signal
import sys
import threading
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
        noticed: list[bool] = []
        try:
            with interrupts_noticed(noticed):
                result = func(*args, **kwargs)
        except BaseException as exc:
            error = _click_error(exc, interrupted=bool(noticed))
            if error is None:
                raise
            raise error from None
        if noticed:  # Ctrl-C landed where Python could not raise it (a __del__): it still ends the command
            raise click.ClickException(INTERRUPTED)
        return result

    return wrapper


@contextlib.contextmanager
def interrupts_noticed(noticed: list | None = None):
    """Yield ``noticed`` (a new list by default), made non-empty once Ctrl-C (SIGINT) arrives in the block.

    Python raises ``KeyboardInterrupt`` wherever the main thread is; inside a finaliser
    (a TensorFlow object's ``__del__`` during clean-up) it cannot propagate, is printed as
    "Exception ignored" with a traceback, and the command would go on to exit 0. Here the
    signal is also recorded, and such a swallowed one is not printed, so the caller can
    end the command as interrupted.
    """
    noticed = [] if noticed is None else noticed
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield noticed  # another thread cannot set handlers; a process told to ignore Ctrl-C (nohup, &) keeps to it
        return
    previous_hook = sys.unraisablehook

    def on_sigint(signum, frame):
        noticed.append(True)
        raise KeyboardInterrupt

    def unraisable(info):
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
            noticed.append(True)
            return
        previous_hook(info)

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main interpreter
        yield noticed
        return
    sys.unraisablehook = unraisable
    try:
        yield noticed
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook


# what to do about an OSError, by errno (the message itself names the file)
OS_ERROR_ADVICE = {
    errno.ENOSPC: "free some space there (or write elsewhere) and run the command again; finished files were kept",
    errno.EDQUOT: "free some space within your quota and run the command again; finished files were kept",
    errno.EROFS: "write somewhere else",
    errno.EACCES: "check its permissions (or use another location)",
    errno.EPERM: "check its permissions (or use another location)",
}


def os_error_line(exc: OSError) -> str:
    """The ``Error:`` text of an ``OSError``: the file, what went wrong, and what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    advice = OS_ERROR_ADVICE.get(exc.errno)
    return f"{where}{exc.strerror or exc}" + (f"; {advice}" if advice else "")


INTERRUPTED = "interrupted; files already finished were kept"


def _click_error(exc: BaseException, interrupted: bool):
    """The Click exception ``exc`` becomes, or None to let it through as it is.

    After a Ctrl-C every failure is the interruption: a ``KeyboardInterrupt`` raised inside C
    code (h5py's lock, a Cython callback) comes out as another exception (``SystemError``)."""
    if interrupted or isinstance(exc, KeyboardInterrupt):
        return click.ClickException(INTERRUPTED)
    if isinstance(exc, UsageError):
        return click.UsageError(str(exc))
    if isinstance(exc, DeviseError):
        return click.ClickException(str(exc))
    if isinstance(exc, OSError):  # unwritable output folder, full disk, unreadable input...
        return click.ClickException(os_error_line(exc))
    return None


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
