"""The ``devise`` command group.

Sub-command modules only import Click at import time; every heavy import
(TensorFlow, Keras, gensim, NLTK, h5py) happens inside the command that needs it,
so ``devise --help`` and ``devise --version`` answer at once.
"""
from __future__ import annotations

import importlib
import os
import warnings

import click

from devise import __version__

# command name -> "module:attribute"; loaded lazily so one broken optional module
# never breaks the others, and help stays fast.
COMMANDS = {
    "wordnet": "devise_cli.wordnet_cmds:wordnet_group",
    "vectors": "devise_cli.vectors_cmds:vectors_group",
    "vocab": "devise_cli.vocab_cmds:vocab_group",
    "train": "devise_cli.train_cmd:train",
    "pretrain": "devise_cli.pretrain_cmd:pretrain",
    "predict": "devise_cli.predict_cmd:predict",
    "eval": "devise_cli.eval_cmd:evaluate",
    "data": "devise_cli.data_cmds:data_group",
    "index": "devise_cli.search_cmds:index",
    "index merge": "devise_cli.search_cmds:index_merge",  # `devise index merge OUT PART...`
    "search": "devise_cli.search_cmds:search",
    "results": "devise_cli.results_cmd:results",
    "export": "devise_cli.export_cmd:export",
    "model": "devise_cli.model_cmds:model_group",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use (the Click docs' pattern)."""

    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if " " not in name and self._load(name) is not None)

    def get_command(self, ctx, name):
        return self._load(name)

    def resolve_command(self, ctx, args):
        """``COMMANDS`` names with a space are a command's sub-command (``index merge``) that does not
        make the command itself a group, so ``devise index PHOTOS`` keeps taking any PHOTOS."""
        if len(args) >= 2 and f"{args[0]} {args[1]}" in COMMANDS:
            name = f"{args[0]} {args[1]}"
            return name, self._load(name), args[2:]
        return super().resolve_command(ctx, args)

    @staticmethod
    def _load(name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return show_envvars(getattr(importlib.import_module(module), attr))
        except ModuleNotFoundError as exc:
            if exc.name == module:  # that command is not written yet
                return None
            raise


def show_envvars(command):
    """Let ``--help`` name each option's ``DEVISE_…`` environment variable (Click's ``show_envvar``),
    for ``command`` and its sub-commands: set here once rather than on every option."""
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            param.show_envvar = True
    for sub in getattr(command, "commands", {}).values():
        show_envvars(sub)
    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="devise")
def main():
    """Zero-shot image classification with DeViSE (Frome et al., 2013).

    Images are embedded by a Keras backbone + DeViSE head into a skip-gram word
    vector space and matched against any vocabulary of WordNet labels, including
    labels never seen in training.

    \b
    Examples:
      devise vectors train                     # offline skip-gram vectors
      devise vocab build nouns.h5 --all-nouns  # every WordNet noun
      devise train data/ --output runs/mine
      devise predict photo.jpg --top 5        # the default model (built offline on first use)
      devise predict photo.jpg --model runs/mine --top 5
      devise eval test/ --model runs/mine --hierarchical
    """
    quiet_frameworks()


def quiet_frameworks() -> None:
    """Keep TensorFlow's C++ info logs and Keras's data-adapter warnings off the terminal.

    Set before any sub-command imports TensorFlow; ``TF_CPP_MIN_LOG_LEVEL`` set by the
    user wins. The Keras warnings silenced here are about tf.data inputs of unknown
    length (bad images are filtered out of the stream), which is expected.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    for message in (r"Your input ran out of data", r"`shuffle=True` was passed",
                    r"The structure of `inputs` doesn't match"):
        warnings.filterwarnings("ignore", message=message, category=UserWarning)


if __name__ == "__main__":  # pragma: no cover
    main()
