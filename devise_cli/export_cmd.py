"""``devise export``: Click glue over :func:`devise.export` (a bundle as SavedModel, TFLite or ONNX)."""
from __future__ import annotations

from pathlib import Path

import click

from devise.deployment import EXPORT_FORMATS, INFO_FILE, LABELS_FILE
from devise_cli.common import domain_errors, given_labels, label_options


@click.command("export")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, metavar="|".join(EXPORT_FORMATS),
              help=f"What to write: {', '.join(EXPORT_FORMATS)} (ONNX needs pip install 'devise[export]').")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help=f"Export folder: the model, {LABELS_FILE} (with labels) and {INFO_FILE}; or for tflite/onnx the "
                   f"model file itself (x.tflite, x.onnx), with x.{LABELS_FILE} and x.{INFO_FILE} beside it.")
@click.option("--vocab", "vocab_arg", envvar="DEVISE_VOCAB",
              help="Candidate labels ('trained' or a vocabulary .h5): export the whole image -> top-k "
                   "classifier instead of the image -> embedding model.")
@label_options
@click.option("--top", "-k", default=5, show_default=True, type=click.IntRange(1),
              help="Labels the classifier returns per image.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@domain_errors
def export(bundle, fmt, output, vocab_arg, labels, labels_file, label_descriptions, top, overwrite):
    """Export a model BUNDLE for deployment: the image -> embedding model, or with --vocab or
    --labels the complete image -> top-k classifier.

    The model takes (batch, size, size, 3) float32 RGB in [0, 255]: the centred square
    (its side the bundle's crop share of the short side) resized to the bundle's image
    size, as predict sees images; export.json says both. The backbone's scaling is inside.
    Outputs: embedding, and with labels scores and indices (rows of labels.json).

    \b
    Examples:
      devise export runs/mine --format savedmodel -o export/mine
      devise export runs/mine --format tflite --labels "cat, dog, snow leopard" -o export/pets
      devise export runs/mine --format onnx --vocab nouns.h5 --top 10 -o export/nouns
    """
    from devise.deployment import export as export_bundle

    spec = given_labels(labels, labels_file, label_descriptions, vocab_arg)
    info = export_bundle(bundle, output, format=fmt, vocab=spec or vocab_arg, top=top, overwrite=overwrite)
    what = f"image -> top-{info['top']} of {info['labels']:,} labels" if info["labels"] else "image -> embedding"
    written = output if output.name == info["model"] else output / info["model"]
    click.echo(f"wrote {written} ({fmt}, {what}; input {info['input']['shape'][1]} px RGB 0-255)")
