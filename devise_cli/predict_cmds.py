"""``devise predict`` and ``devise eval``: Click glue over models.bundle and wordnet.evaluation.

Exit codes (both commands): 0 success; 1 an error stopped the command (``Error: ...``,
nothing written); 2 bad usage (Click); 3 (:data:`EXIT_SOME_IMAGES_FAILED`) the command
finished but some images could not be read — they are listed, the others are reported.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import console, domain_errors, echo_json

EXIT_SOME_IMAGES_FAILED = 3
BASELINES = ("softmax", "conse")


def _progress(total: int, enabled: bool):
    """A rich progress bar on stderr (only on a terminal) and its update callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("embedding images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console(stderr=True), transient=True, disable=not (enabled and sys.stderr.isatty()))
    task = bar.add_task("images", total=total)
    return bar, task


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
        raise click.BadParameter(f"unknown baseline {', '.join(bad)} (choose from softmax, conse, or none)")
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


# -- predict -----------------------------------------------------------------------
@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--model", "-m", "model_path", required=True, envvar="DEVISE_MODEL", type=click.Path(path_type=Path),
              help="Model bundle folder written by `devise train`.")
@click.option("--vocab", "vocab_arg", default="trained", show_default=True, envvar="DEVISE_VOCAB",
              help="Candidate labels: 'trained' (the bundle's labels) or a vocabulary .h5 from `devise vocab build`.")
@click.option("--top", "-k", default=5, show_default=True, type=click.IntRange(1), help="Predictions per image.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), envvar="DEVISE_BATCH_SIZE",
              help="Images per forward pass.")
@click.option("--approx", is_flag=True, envvar="DEVISE_APPROX",
              help="Search the vocabulary with an approximate (faiss IVF) index: much faster for 100K+ labels, "
                   "may miss a few of the exact top labels. Built once per vocabulary and cached.")
@domain_errors
def predict(images, model_path, vocab_arg, top, as_json, batch_size, approx):
    """Label IMAGES (files, folders, globs) with the nearest labels of a vocabulary.

    A vocabulary other than the training labels is zero-shot prediction: any
    vocabulary built with the same word vectors works without retraining.
    Exits 3 if some images could not be read (the others are still printed).

    \b
    Examples:
      devise predict photo.jpg --model models/mine
      devise predict shots/ --model models/mine --vocab nouns.h5 --top 10 --json
      devise predict shots/ --model models/mine --vocab million.h5 --approx
    """
    from rich.markup import escape

    from models.data import expand_image_paths

    paths = expand_image_paths(images)
    if not paths:
        raise click.ClickException("no image files found in " + " ".join(images))
    from .eval_run import load_model_and_vocab

    bundle, vocab = load_model_and_vocab(model_path, vocab_arg)
    out, err = console(), console(stderr=True)
    search = None
    if approx:
        from wordnet.ann import label_index

        search = label_index(vocab, on_build=lambda n: err.print(
            f"building the approximate index of {n:,} labels (once per vocabulary) ...", highlight=False)).search
    failed = 0
    bar, task = _progress(len(paths), not as_json)
    with bar:
        for rec in predictions(bundle, vocab, paths, top, batch_size, search=search,
                               progress=lambda done: bar.update(task, completed=done)):
            if "error" in rec:
                failed += 1
                if as_json:
                    echo_json(rec)
                else:
                    err.print(f"[red]failed[/red] {escape(rec['path'])}: {escape(rec['error'])}", highlight=False,
                              soft_wrap=True)  # one line per file, however long the path
            elif as_json:
                echo_json(rec)
            else:
                out.print(_prediction_table(rec["path"], rec["predictions"], vocab))
    if failed:
        err.print(f"{failed} of {len(paths)} images could not be read", highlight=False, soft_wrap=True)
        sys.exit(EXIT_SOME_IMAGES_FAILED)


def predictions(bundle, vocab, paths, top: int, batch_size: int = 32, progress=None, search=None):
    """``devise predict``'s records, in input order, streamed batch by batch from one pipeline.

    Yields ``{"path", "predictions": [{"rank", "wnid", "synset", "label", "score"}]}`` or
    ``{"path", "error"}``. ``search(embeddings, k) -> (idx, scores)`` replaces the exact
    ``vocab.top_k`` (e.g. an approximate index); ``progress(done)`` counts input files.
    """
    import numpy as np

    search = search or vocab.top_k
    paths = list(paths)
    wnids, synsets, labels = vocab.wnids, vocab.synsets, vocab.labels
    done = 0
    for piece in bundle.run_batches(paths, batch_size=batch_size):
        idx, scores = search(piece.embeddings, top) if len(piece.paths) else ([], [])
        kept = list(zip(piece.paths, np.asarray(idx).tolist(), np.asarray(scores).tolist()))
        fails = iter(piece.failures)
        n = len(kept) + len(piece.failures)
        k = 0
        for q in paths[done:done + n]:  # this piece covers the next n inputs: merge back into input order
            if k < len(kept) and str(kept[k][0]) == str(q):
                p, ii, ss = kept[k]
                k += 1
                yield {"path": str(p), "predictions": [
                    {"rank": j + 1, "wnid": wnids[i], "synset": synsets[i], "label": labels[i], "score": round(s, 6)}
                    for j, (i, s) in enumerate(zip(ii, ss))]}
            else:
                p, reason = next(fails)
                yield {"path": str(p), "error": reason}
        done += n
        if progress is not None:
            progress(done)


def _prediction_table(path, preds, vocab):
    """One image's predictions; Text cells so labels and paths are never read as markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(str(path)), title_justify="left", show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("wnid")
    table.add_column("label")
    table.add_column("definition", max_width=60, overflow="ellipsis", no_wrap=True)
    table.add_column("score", justify="right")
    for p in preds:
        definition = vocab.definitions[vocab.index(p["wnid"])]
        table.add_row(str(p["rank"]), p["wnid"], Text(p["label"]), Text(definition), f"{p['score']:.3f}")
    return table


# -- eval ----------------------------------------------------------------------------
@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", "-m", "model_path", required=True, envvar="DEVISE_MODEL", type=click.Path(path_type=Path),
              help="Model bundle folder written by `devise train`.")
@click.option("--vocab", "vocab_arg", default="trained", show_default=True, envvar="DEVISE_VOCAB",
              help="Candidate labels: 'trained' or a vocabulary .h5 "
                   "(unseen only = zero-shot; seen + unseen = generalised).")
@click.option("--k", "ks", default="1,2,5,10,20", show_default=True, callback=_parse_ks,
              help="Comma-separated k values.")
@click.option("--hierarchical", is_flag=True,
              help="Also report the paper's hierarchical precision@k (ground truth grown through WordNet).")
@click.option("--baseline", "baselines", default="softmax,conse", show_default=True, callback=_parse_baselines,
              help="Baselines from the same run: softmax, conse, or 'none'.")
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
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap.")
@domain_errors
def evaluate(data, model_path, vocab_arg, ks, hierarchical, baselines, json_file, plot_file, calibration,
             calibration_data, splits_file, bootstrap, overrides, batch_size, seed):
    """Score a model on labelled images DATA (class folders or CSV img_name,class).

    Reports flat hit@k, with --hierarchical the paper's hierarchical precision@k, the
    softmax and ConSE baselines and chance, each with a class-bootstrap 95% interval.
    When DATA has classes the model was not trained on, zero-shot (unseen candidates)
    and generalised zero-shot (seen + unseen, with calibrated stacking) are reported too.
    Exits 3 if some images could not be read (they are listed and left out).

    \b
    Examples:
      devise eval test/ --model models/mine --hierarchical
      devise eval zsl/ --model models/mine --vocab unseen.h5 --json r.json --plot r.png
    """
    from . import eval_report
    from .eval_run import run_evaluation

    if plot_file is not None:
        eval_report.check_matplotlib()
    report = run_evaluation(
        data, model_path, vocab_arg, ks=ks, hierarchical=hierarchical, baselines=baselines, calibration=calibration,
        calibration_data=calibration_data, splits_file=splits_file, bootstrap=bootstrap, overrides=overrides,
        batch_size=batch_size, seed=seed, progress=lambda total: _progress(total, True),
    )
    eval_report.print_report(report, console())
    if json_file is not None:
        eval_report.write_json(report, json_file)
    if plot_file is not None:
        eval_report.plot(report, plot_file)
    if report["n_failed"]:
        sys.exit(EXIT_SOME_IMAGES_FAILED)

