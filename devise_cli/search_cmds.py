"""``devise index`` and ``devise search``: Click glue over :mod:`devise.search`.

A trained model puts photos and words in one space; ``index`` embeds a collection once,
``search`` ranks it by a word, phrase, synset, wnid or another image; ``index merge``
joins the parts of a sharded ``index --shard I/N`` run. Text queries need only the
index and the word vectors (no TensorFlow); image queries load the model.

Exit codes: 0 success; 1 an error stopped the command (``Error: ...``, nothing half-
written); 2 bad usage; 3 ``index`` finished but some images could not be read (they are
listed; the others are indexed), as for ``predict``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from devise.search import COMMIT_EVERY
from devise_cli.common import (
    EXIT_SOME_IMAGES_FAILED,
    console,
    domain_errors,
    echo_json,
    given_labels,
    label_options,
    model_option,
    resolve_model,
    shard_option,
)
from devise_cli.progress import progress_bar


# -- index ----------------------------------------------------------------------------
@click.command("index")
@click.argument("photos", nargs=-1)
@model_option
@click.option("--output", "-o", "index_path", required=True, envvar="DEVISE_INDEX",
              type=click.Path(path_type=Path), help="Index file (.h5) to create or bring up to date.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), envvar="DEVISE_BATCH_SIZE",
              help="Images per forward pass.")
@click.option("--rebuild", is_flag=True, help="Embed every image again and replace the index (e.g. after retraining).")
@shard_option
@click.option("--commit-every", default=COMMIT_EVERY, show_default=True, type=click.IntRange(1),
              envvar="DEVISE_COMMIT_EVERY",
              help="Commit progress every N images (and every 2 minutes): a killed run loses at most that many.")
@domain_errors
def index(photos, model_path, index_path, batch_size, rebuild, shard, commit_every):
    """Embed PHOTOS (files, folders, globs) with a model into a searchable index.

    Re-running on the same index embeds only new or changed files (path, size and
    modification time); files no longer among PHOTOS drop out. Without PHOTOS the
    files, folders and globs of the last run are scanned again. Progress is committed
    every --commit-every images: a run killed at any moment keeps what it committed,
    and the same command continues from there. Exits 3 if some images could not be
    read (they are listed; the others are indexed).

    With --shard I/N only shard I of the files is indexed: run N of these (one per GPU,
    host or Slurm array task), each into its own part, then join the parts with
    `devise index merge OUT PART...` (a folder named "merge" is ./merge).

    Without --model the default model embeds the photos (built offline on first use), with
    its own ranking method (combined: the same space `devise predict` ranks labels in).

    \b
    Examples:
      devise index ~/Pictures --output pictures.h5   # the default model
      devise index ~/Pictures --model runs/mine --output mine.h5
      devise index --model runs/mine --output pictures.h5   # update after adding photos
      devise index /data/photos -m runs/mine --shard 0/2 -o part0.h5   # and --shard 1/2 -o part1.h5
      devise index merge photos.h5 part0.h5 part1.h5
    """
    from devise.search import index_images

    model_path = resolve_model(model_path)  # the default model is built here, before the progress bar
    clock = {"start": time.perf_counter()}
    with progress_bar("embedding images") as update:
        stats = index_images(photos, model_path, index_path, batch_size=batch_size, rebuild=rebuild, shard=shard,
                             commit_every=commit_every, progress=lambda done, total: update(done, total),
                             on_model=lambda _bundle: clock.update(start=time.perf_counter()))  # time embedding only
    seconds = time.perf_counter() - clock["start"]
    _report(stats, index_path, seconds)
    if stats.failures:
        sys.exit(EXIT_SOME_IMAGES_FAILED)


def _report(stats, index_path: Path, seconds: float) -> None:
    from rich.markup import escape

    out, err = console(), console(stderr=True)
    for path, reason in stats.failures:
        err.print(f"[red]failed[/red] {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)
    of_shard = f" of shard {stats.shard}" if stats.shard is not None else ""
    out.print(f"indexed {stats.indexed} images{of_shard} in {escape(str(index_path))}: {stats.new} new, "
              f"{stats.changed} changed, {stats.unchanged} unchanged, {stats.removed} removed, "
              f"{len(stats.failures)} failed", highlight=False, soft_wrap=True)
    embedded = stats.embedded
    rate = f" ({embedded / seconds:.1f} images/s)" if embedded and seconds > 0 else ""
    out.print(f"embedded {embedded} images in {seconds:.1f} s{rate}", highlight=False, soft_wrap=True)
    if stats.resumed:
        out.print(f"continued an interrupted run: kept the {stats.resumed} images it had committed",
                  highlight=False, soft_wrap=True)
    if stats.failures:
        err.print(f"{len(stats.failures)} of {stats.total} images could not be read", highlight=False, soft_wrap=True)


@click.command("index merge")
@click.argument("out", type=click.Path(path_type=Path))
@click.argument("parts", nargs=-1, required=True, type=click.Path(path_type=Path))
@domain_errors
def index_merge(out, parts):
    """Join the part indexes PARTS (of `devise index --shard I/N` runs) into one index OUT.

    OUT then holds exactly the rows one process indexing every file would have written.
    Parts made with another model or label text, parts still being written and parts
    whose run did not finish are refused. A path held by several parts keeps its newest
    row. OUT may be one of the PARTS; any other existing OUT is refused. Needs no TensorFlow.

    \b
    Examples:
      devise index merge photos.h5 part0.h5 part1.h5 part2.h5 part3.h5
      devise index merge photos.h5 parts/*.h5
    """
    from devise.search import merge_indexes

    stats = merge_indexes(out, parts)
    extra = f" ({stats.duplicates} paths found in several parts kept their newest row)" if stats.duplicates else ""
    click.echo(f"merged {stats.parts} parts into {out}: {stats.rows} images{extra}")


# -- search ---------------------------------------------------------------------------
@click.command("search")
@click.argument("index_path", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@click.option("--model", "-m", "model_path", envvar="DEVISE_MODEL", type=click.Path(file_okay=False, path_type=Path),
              help="The bundle that built INDEX (checked); needed to embed an image query "
                   "[default: the one recorded in INDEX].")
@click.option("--vectors", envvar="DEVISE_VECTORS", type=click.Path(dir_okay=False, path_type=Path),
              help="Word vectors for text queries [default: the ones the model was trained with].")
@click.option("--top", "-k", default=10, show_default=True, type=click.IntRange(1), help="Images to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (query, kind, images, results).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page of thumbnails and scores.")
@click.option("--approx", is_flag=True, envvar="DEVISE_APPROX",
              help="Approximate search for very large indexes (a faiss inverted-file index kept beside INDEX as "
                   "INDEX.faiss: built on first use, then updated by `devise index`); scores stay exact cosines.")
@label_options
@domain_errors
def search(index_path, query, model_path, vectors, top, as_json, html_file, approx, labels, labels_file,
           label_descriptions):
    """Rank the images of INDEX by similarity to QUERY.

    QUERY is a word or phrase ("snow leopard"), a synset (snow_leopard.n.01) or wnid
    (n02128757), embedded with the model's word vectors as for vocabularies, or the
    path of an image (image-to-image search, which loads the model). Search is exact
    (every indexed image scored, reading the index through a memory map a block at a
    time, so millions of photos need little memory) unless --approx.

    \b
    Examples:
      devise search pictures.h5 "snow leopard" --top 20
      devise search pictures.h5 tiger.n.02 --json
      devise search pictures.h5 holiday/cat.jpg --html similar.html
      devise search million.h5 "fire engine" --approx
      devise search pictures.h5 --labels "cat, dog, snow leopard" --top 5
    """
    from devise.search import search as search_index

    spec = given_labels(labels, labels_file, label_descriptions)
    if spec is not None:
        if query is not None or html_file is not None:
            raise click.UsageError("--labels/--labels-file search for each label; give no QUERY and no --html")
        _search_labels(index_path, spec, top, approx, as_json)
        return
    if query is None:
        raise click.UsageError("give a QUERY (or --labels / --labels-file)")

    found = search_index(index_path, query, top=top, model=model_path, vectors=vectors, approx=approx,
                         warn=lambda text: click.echo(f"warning: {text}", err=True), on_build=_building)
    results = found["results"]
    if html_file is not None:
        from .search_html import write_page

        image = Path(found["query_image"]) if found["query_image"] else None
        write_page(html_file, query, found["kind"], results, index_path, found["images"], query_image=image)
    if as_json:
        echo_json({"index": str(index_path), "query": query, "kind": found["kind"], "images": found["images"],
                   "results": results})
        return
    _print_table(query, results, index_path, found["images"])
    if html_file is not None:
        click.echo(f"wrote {html_file}")


def _building(n: int) -> None:
    click.echo(f"building the approximate index of {n:,} images (once; kept beside the index and updated by "
               f"`devise index`) ...", err=True)


def _search_labels(index_path: Path, spec, top: int, approx: bool, as_json: bool) -> None:
    from devise.search import search_labels

    found = search_labels(index_path, spec, top=top, approx=approx, on_build=_building)
    if as_json:
        echo_json({"index": str(index_path), "images": found["images"], "queries": found["queries"]})
        return
    for q in found["queries"]:
        _print_table(q["query"], q["results"], index_path, found["images"])


def _print_table(query: str, results: list[dict], index_path: Path, n: int) -> None:
    from rich.table import Table
    from rich.text import Text

    con = console()
    con.print(Text(f"{query!r}: top {len(results)} of {n} images in {index_path}", style="bold"), soft_wrap=True)
    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("path", overflow="fold")
    table.add_column("score", justify="right")
    for r in results:
        table.add_row(str(r["rank"]), Text(r["path"]), f"{r['score']:.3f}")
    con.print(table)
