"""``devise pretrain``: Click glue over :func:`devise.pretrain`.

Options are the :data:`models.training.config.PRETRAIN_FIELDS` of ``TrainConfig`` with the
defaults of :data:`~models.training.config.PRETRAIN_DEFAULTS`; phase 0's epochs, learning rate
and schedule are spelled ``--epochs``, ``--lr`` and ``--schedule`` here, as the only phase.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from devise.pretraining import PRETRAIN_DEFAULTS, PRETRAIN_FIELDS
from devise.training import TrainConfig
from devise_cli.common import console, domain_errors
from devise_cli.train_cmd import option_for

_FLAGS = {"pretrain_epochs": "--epochs", "pretrain_lr": "--lr", "pretrain_schedule": "--schedule"}


def _with_pretrain_options(command):
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in PRETRAIN_FIELDS:
        option = option_for(fields[name], _FLAGS.get(name), PRETRAIN_DEFAULTS.get(name, fields[name].default))
        option.name = name
        command.params.append(option)
    return command


@_with_pretrain_options
@click.command("pretrain")
@click.argument("pool", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              envvar="DEVISE_OUTPUT", help="Folder of the pre-trained backbone.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --output (its stored settings).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier pre-training run in --output.")
@domain_errors
def pretrain(pool, output, resume, overwrite, **settings):
    """Pre-train a backbone on POOL's classes (softmax) for `devise train --weights`.

    POOL is `devise data pool`'s folder (its train.csv), a folder with one sub-folder of
    images per class, or a CSV img_name,class; classes are plain names, not WordNet
    nouns. Writes OUTPUT/backbone.weights.h5 and backbone.json (backbone, image size,
    pool, classes, epochs, SHA-256), history.csv and checkpoints. Resumable like
    `devise train`: a killed run continues with --resume.

    \b
    Examples:
      devise data pool data/pool
      devise pretrain data/pool -o runs/backbone --epochs 30
      devise train emoji/train.csv --weights runs/backbone --backbone mobilenet_v2 --alpha 0.5 \\
          --image-size 64 --output runs/emoji
    """
    from devise.pretraining import pretrain as run_pretrain
    from devise_cli.progress import RichReporter

    err = console(stderr=True)
    result = run_pretrain(pool, output, resume=resume, overwrite=overwrite, reporter=RichReporter(err), **settings)
    training = result.info["training"]
    skipped = f", {len(result.failures)} unreadable image(s) skipped" if result.failures else ""
    accuracy = training["val_accuracy"] if training["val_accuracy"] is not None else training["accuracy"]
    which = "val" if training["val_accuracy"] is not None else "train"
    out = console()
    out.print(f"pre-trained {result.path}: {result.train_images} training / {result.val_images} validation "
              f"images, {result.classes} classes{skipped}", highlight=False, soft_wrap=True)
    if accuracy is not None:
        out.print(f"{which} accuracy {accuracy * 100:.1f}% after {training['epochs_done']} epoch(s)",
                  highlight=False, soft_wrap=True)
    out.print(f"backbone {result.info['backbone']} {result.info['options'] or ''} at {result.info['image_size']} px, "
              f"sha256 {result.info['sha256'][:16]}; use it with --weights {result.path}",
              highlight=False, soft_wrap=True)
