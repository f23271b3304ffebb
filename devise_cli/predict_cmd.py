"""``devise predict``: Click glue over :func:`devise.predict` (images -> nearest labels of a vocabulary).

Exit codes: 0 success; 1 an error stopped the command (``Error: ...``); 2 bad usage
(Click); 3 (:data:`~devise_cli.common.EXIT_SOME_IMAGES_FAILED`) the command finished
but some images could not be read — they are listed, the others are printed.
"""
from __future__ import annotations

import sys

import click

from devise_cli.common import (
    EXIT_SOME_IMAGES_FAILED,
    console,
    domain_errors,
    echo_json,
    given_labels,
    label_options,
    method_option,
    model_option,
    resolve_model,
    shard_option,
)
from devise_cli.progress import progress_bar

SCORE_KINDS = ("cosine", "softmax")  # --scores


@click.command()
@click.argument("images", nargs=-1, required=True)
@model_option
@click.option("--vocab", "vocab_arg", default="default", show_default=True, envvar="DEVISE_VOCAB",
              help="Candidate labels: 'default' (the model's default labels: the default model's visual nouns, a "
                   "trained bundle's own labels), 'trained' or a vocabulary .h5 from `devise vocab build` built "
                   "with the model's word vectors and --label-text (another is refused).")
@click.option("--top", "-k", default=5, show_default=True, type=click.IntRange(1), help="Predictions per image.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), envvar="DEVISE_BATCH_SIZE",
              help="Images per forward pass.")
@click.option("--approx", is_flag=True, envvar="DEVISE_APPROX",
              help="Search the vocabulary with an approximate (faiss IVF) index: much faster for 100K+ labels, "
                   "may miss a few of the exact top labels. Built once per vocabulary and cached.")
@label_options
@click.option("--scores", "score_kind", type=click.Choice(SCORE_KINDS), default="cosine", show_default=True,
              envvar="DEVISE_SCORES",
              help="cosine: the cosine of image and label vectors; softmax: probabilities over the candidates, "
                   "softmax(cosine / T) with T fitted on the bundle's validation images (once, cached).")
@click.option("--min-score", type=float, metavar="S",
              help="Keep predictions scoring at least S; an image with none is answered 'unknown'.")
@method_option
@shard_option
@domain_errors
def predict(images, model_path, vocab_arg, top, as_json, batch_size, approx, labels, labels_file,
            label_descriptions, score_kind, min_score, method, shard):
    """Label IMAGES (files, folders, globs) with the nearest labels of a vocabulary.

    A vocabulary other than the training labels is zero-shot prediction: any
    vocabulary built with the same word vectors works without retraining.
    Exits 3 if some images could not be read (the others are still printed).

    Without --model, the default model (an ImageNet EfficientNet-Lite0 with a DeViSE head,
    built offline in the data home on first use) ranks the default visual nouns.

    \b
    Examples:
      devise predict photo.jpg --top 5
      devise predict photo.jpg --labels "cat, dog, snow leopard" --method conse
      devise predict photo.jpg --model runs/mine
      devise predict shots/ --model runs/mine --vocab nouns.h5 --top 10 --json
      devise predict shots/ --model runs/mine --vocab million.h5 --approx
      devise predict photo.jpg --model runs/mine --labels "cat, dog, snow leopard, red sports car"
      devise predict photo.jpg --model runs/mine --labels-file mine.txt --scores softmax --min-score 0.5
      devise predict /data/photos -m runs/mine --json --shard 3/8 > part3.jsonl
    """
    from rich.markup import escape

    from devise.prediction import expand_image_paths, load_model_and_vocab
    from devise.prediction import predict as predict_images
    from devise.temperature import score_temperature

    spec = given_labels(labels, labels_file, label_descriptions, vocab_arg)
    paths = expand_image_paths(images)
    if not paths:
        raise click.ClickException("no image files found in " + " ".join(images))
    if shard is not None:
        paths = shard.select(paths)
    out, err = console(), console(stderr=True)
    if method == "softmax" and spec is None and vocab_arg == "default":
        vocab_arg = "trained"  # the softmax ranks the model's own classes
    bundle, vocab = load_model_and_vocab(resolve_model(model_path, err), spec or vocab_arg)
    temperature = None
    if score_kind == "softmax":
        temperature = score_temperature(bundle, on_fit=lambda n: err.print(
            f"fitting the softmax temperature on the bundle's {n} validation images (once per model) ...",
            highlight=False))
    failed = 0
    with progress_bar("embedding images", len(paths), enabled=not as_json) as update:
        for rec in predict_images(paths, bundle, vocab, top=top, batch_size=batch_size, approx=approx,
                                  temperature=temperature, min_score=min_score, method=method,
                                  progress=update, on_index_build=lambda n: err.print(
                                      f"building the approximate index of {n:,} labels (once per vocabulary) ...",
                                      highlight=False)):
            if "error" in rec:
                failed += 1
                if as_json:
                    echo_json(rec)
                else:
                    err.print(f"[red]failed[/red] {escape(rec['path'])}: {escape(rec['error'])}", highlight=False,
                              soft_wrap=True)  # one line per file, however long the path
            elif as_json:
                echo_json(rec)
            elif rec.get("unknown"):
                out.print(f"{escape(rec['path'])}: unknown (no label scores {min_score:g} or more; best "
                          f"{rec['best_score']:.3f})", highlight=False, soft_wrap=True)
            else:
                out.print(_prediction_table(rec["path"], rec["predictions"], vocab, score_kind))
    if failed:
        err.print(f"{failed} of {len(paths)} images could not be read", highlight=False, soft_wrap=True)
        sys.exit(EXIT_SOME_IMAGES_FAILED)


def _prediction_table(path, preds, vocab, score_kind="cosine"):
    """One image's predictions; Text cells so labels and paths are never read as markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(str(path)), title_justify="left", show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("wnid")
    table.add_column("label")
    table.add_column("definition", max_width=60, overflow="ellipsis", no_wrap=True)
    table.add_column("probability" if score_kind == "softmax" else "score", justify="right")
    for p in preds:
        definition = vocab.definitions[vocab.index(p["wnid"])]
        table.add_row(str(p["rank"]), p["wnid"], Text(p["label"]), Text(definition), f"{p['score']:.3f}")
    return table


