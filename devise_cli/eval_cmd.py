"""``devise eval``: Click glue over :func:`devise.evaluate`; rendering is in :mod:`devise_cli.eval_report`.

Exit codes: 0 success; 1 an error stopped the command (``Error: ...``, nothing written);
2 bad usage (Click); 3 (:data:`~devise_cli.common.EXIT_SOME_IMAGES_FAILED`) the command
finished but some images could not be read — they are listed and left out.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from devise.evaluation import BASELINES
from devise_cli.common import (
    EXIT_SOME_IMAGES_FAILED,
    console,
    domain_errors,
    given_labels,
    label_options,
    model_option,
    resolve_model,
)
from devise_cli.progress import progress_bar


def _parse_ks(ctx, param, value: str) -> list[int]:
    try:
        ks = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of positive integers") from None
    if not ks or ks[0] < 1:
        raise click.BadParameter(f"{value!r}: k values must be positive integers")
    return ks


def _parse_baselines(ctx, param, value: str) -> list[str]:
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise click.BadParameter(f"unknown baseline {', '.join(bad)} (choose from {', '.join(BASELINES)}, or none)")
    return list(dict.fromkeys(names))


def _parse_calibration(ctx, param, value: str):
    v = value.strip().lower()
    if v in ("auto", "none", "off"):
        return None if v != "auto" else "auto"
    try:
        gamma = float(v)
    except ValueError:
        gamma = -1.0
    if not gamma >= 0:
        raise click.BadParameter(f"{value!r}: expected a gamma >= 0, 'auto' or 'none'")
    return gamma


def _parse_per_class_images(ctx, param, value):
    if value is None:
        return None
    text = value.strip()
    try:
        n = int(text)
    except ValueError:
        try:
            n = float(text)
        except ValueError:
            n = None
        if n is not None and not 0 < n < 1:
            n = None
    if n is None or (isinstance(n, int) and n < 1):
        raise click.BadParameter(f"{value!r}: expected a whole number of images >= 1 or a share in (0, 1)")
    return n


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@model_option
@click.option("--vocab", "vocab_arg", default="default", show_default=True, envvar="DEVISE_VOCAB",
              help="Candidate labels: 'default' (the model's default labels), 'trained' or a vocabulary .h5 "
                   "(unseen only = zero-shot; seen + unseen = generalised), built with the model's word vectors "
                   "and --label-text (another is refused).")
@click.option("--k", "ks", default="1,2,5,10,20", show_default=True, callback=_parse_ks,
              help="Comma-separated k values.")
@click.option("--hierarchical", is_flag=True,
              help="Also report the paper's hierarchical precision@k (ground truth grown through WordNet).")
@click.option("--baseline", "baselines", default=",".join(BASELINES), show_default=True, callback=_parse_baselines,
              help=f"Baselines from the same run: {', '.join(BASELINES)}, or 'none'.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the results as JSON.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of hit@k / hp@k against k (needs matplotlib).")
@click.option("--calibration", default="auto", show_default=True, callback=_parse_calibration,
              help="Calibrated stacking for seen + unseen candidates: a gamma >= 0, 'auto' or 'none'.")
@click.option("--calibration-data", type=click.Path(path_type=Path),
              help="Validation images (same layout as DATA) to choose gamma on; default: DATA's seen-class images.")
@click.option("--splits", "splits_file", type=click.Path(dir_okay=False, path_type=Path),
              help='Seen/unseen splits to average over: JSON {"splits": [{"name", "unseen": [class, ...]}]}. '
                   "Default: DATA/splits.json when present.")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(0),
              help="Bootstrap replicates (resampling classes) for 95% intervals; 0 to skip.")
@click.option("--overrides", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV label,synset mapping class names WordNet would resolve wrongly.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), envvar="DEVISE_BATCH_SIZE",
              help="Images per forward pass.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap and of --per-class-images.")
@label_options
@click.option("--per-class", "per_class_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write DeViSE's per-class results (class, wnid, images, hit@k, hp@k, most frequent wrong "
                   "labels) to this CSV or JSON file (by suffix).")
@click.option("--per-class-images", callback=_parse_per_class_images, metavar="N|SHARE",
              help="Evaluate on a seeded sample of each class's images: N of them, or a share like 0.5 "
                   "(the GCNZ/DGP convention).")
@click.option("--result", "result_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a flat result file (one record per setting and method; merge many with "
                   "`devise results`).")
@domain_errors
def evaluate(data, model_path, vocab_arg, ks, hierarchical, baselines, json_file, plot_file, calibration,
             calibration_data, splits_file, bootstrap, overrides, batch_size, seed, labels, labels_file,
             label_descriptions, per_class_file, per_class_images, result_file):
    """Score a model on labelled images DATA (class folders or CSV img_name,class).

    Reports flat hit@k (share of images) and its per-class mean (each class weighs the
    same), with --hierarchical the paper's hierarchical precision@k, the softmax and
    ConSE baselines and chance, each with a class-bootstrap 95% interval. When DATA has
    classes the model was not trained on, zero-shot (unseen candidates) and generalised
    zero-shot (unseen + training labels, "+1K": S, U, H, calibrated stacking and AUSUC)
    are reported too. Exits 3 if some images could not be read (they are listed and left out).

    \b
    Examples:
      devise eval photos/ --hierarchical              # the default model, its default labels
      devise eval test/ --model runs/mine --hierarchical
      devise eval zsl/ --model runs/mine --vocab unseen.h5 --json r.json --plot r.png
      devise eval zsl/ --model runs/mine --labels "okapi, tapir" --per-class classes.csv --result r.json
    """
    from devise.evaluation import evaluate as evaluate_model
    from devise_cli import eval_report

    spec = given_labels(labels, labels_file, label_descriptions, vocab_arg)
    if plot_file is not None:
        eval_report.check_matplotlib()
    model_path = resolve_model(model_path)
    with progress_bar("embedding images") as update:
        report = evaluate_model(
            data, model_path, spec or vocab_arg, ks=ks, hierarchical=hierarchical, baselines=baselines,
            calibration=calibration, calibration_data=calibration_data, splits=splits_file, bootstrap=bootstrap,
            overrides=overrides, per_class=per_class_file is not None, per_class_images=per_class_images,
            batch_size=batch_size, seed=seed, progress=update)
    eval_report.print_report(report, console())
    if json_file is not None:
        eval_report.write_json(report, json_file)
    if per_class_file is not None:
        eval_report.write_per_class(report["per_class"], per_class_file)
    if result_file is not None:
        from devise.evaluation import result_records

        eval_report.write_json(result_records(report), result_file)
    if plot_file is not None:
        eval_report.plot(report, plot_file)
    if report["n_failed"]:
        sys.exit(EXIT_SOME_IMAGES_FAILED)

