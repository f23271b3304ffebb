"""``devise model``: the default model (an ImageNet EfficientNet-Lite0 with a DeViSE head, built offline)."""
from __future__ import annotations

from pathlib import Path

import click

from devise_cli.common import domain_errors


@click.group("model")
def model_group():
    """The default model that predict, eval, index and search use without --model.

    \b
    Examples:
      devise model build            # once, offline (also done on first use)
      devise model build --overwrite
    """


@model_group.command("build")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to build into [default: the default model's folder in the data home].")
@click.option("--overwrite", is_flag=True, help="Build again even if a complete model is there.")
@click.option("--vectors", type=click.Path(dir_okay=False, path_type=Path), envvar="DEVISE_VECTORS",
              help="Word vectors [default: the data home's, trained first if missing].")
@domain_errors
def build(output, overwrite, vectors):
    """Build the default model: EfficientNet-Lite0's ImageNet classifier + a DeViSE head, offline.

    Steps: the default word vectors (trained once if missing), the label vectors of the
    1K ImageNet classes, a DeViSE head fitted on the classifier's weight rows, and the
    default labels (the ImageNet-21K synsets). Nothing is downloaded.

    \b
    Examples:
      devise model build
      devise model build --output runs/default --vectors my.kv
    """
    from devise import build_default_model

    info = build_default_model(output, overwrite=overwrite, vectors=vectors, on_step=click.echo)
    if not info["built"]:
        click.echo(f"the default model is already built: {info['path']} (--overwrite builds it again)")
    else:
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in info["seconds"].items() if k != "total")
        click.echo(f"{info['path']}: {info['seconds']['total']:.0f} s ({steps})")
