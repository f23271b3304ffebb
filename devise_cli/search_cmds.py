"""``devise index`` and ``devise search``: Click glue over :mod:`models.image_index`.

A trained model puts photos and words in one space; ``index`` embeds a collection once,
``search`` ranks it by a word, phrase, synset, wnid or another image. Text queries need
only the index and the word vectors (no TensorFlow); image queries load the model.

Exit codes: 0 success; 1 an error stopped the command (``Error: ...``, nothing half-
written); 2 bad usage; 3 ``index`` finished but some images could not be read (they are
listed; the others are indexed), as for ``predict``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from .common import console, domain_errors, echo_json
from .predict_cmds import EXIT_SOME_IMAGES_FAILED

MODEL_HELP = "Model bundle folder written by `devise train`."


def _progress(total: int):
    """A rich progress bar on stderr (shown on a terminal only) and its task."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("embedding images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console(stderr=True), transient=True, disable=not sys.stderr.isatty())
    return bar, bar.add_task("images", total=total)


# -- index ----------------------------------------------------------------------------
@click.command("index")
@click.argument("photos", nargs=-1)
@click.option("--model", "-m", "model_path", required=True, envvar="DEVISE_MODEL",
              type=click.Path(file_okay=False, path_type=Path), help=MODEL_HELP)
@click.option("--output", "-o", "index_path", required=True, envvar="DEVISE_INDEX",
              type=click.Path(path_type=Path), help="Index file (.h5) to create or bring up to date.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), envvar="DEVISE_BATCH_SIZE",
              help="Images per forward pass.")
@click.option("--rebuild", is_flag=True, help="Embed every image again and replace the index (e.g. after retraining).")
@domain_errors
def index(photos, model_path, index_path, batch_size, rebuild):
    """Embed PHOTOS (files, folders, globs) with a model into a searchable index.

    Re-running on the same index embeds only new or changed files (path, size and
    modification time); files no longer among PHOTOS drop out. Without PHOTOS the
    files, folders and globs of the last run are scanned again. Exits 3 if some images
    could not be read (they are listed; the others are indexed).

    \b
    Examples:
      devise index ~/Pictures --model models/mine --output pictures.h5
      devise index --model models/mine --output pictures.h5   # update after adding photos
    """
    from models.data import expand_image_paths
    from models.image_index import check_output, model_checksum
    from models.indexing import update_index

    old = check_output(index_path, rebuild)
    if not photos:
        if old is None or not old.attrs.get("sources"):
            raise click.UsageError("give the PHOTOS to index (files, folders or globs)")
        photos = tuple(old.attrs["sources"])
    paths = expand_image_paths(photos)
    if not paths:
        raise click.ClickException("no image files found in " + " ".join(photos))
    if old is not None:  # a wrong model fails before TensorFlow loads
        old.check_model(model_checksum(model_path), model_path)
    from models.bundle import load_bundle

    bundle = load_bundle(model_path)
    sources = [os.path.abspath(os.path.expanduser(p)) for p in photos]
    bar, task = _progress(len(paths))
    start = time.perf_counter()
    with bar:
        stats = update_index(bundle, paths, index_path, old=old, sources=sources, batch_size=batch_size,
                             progress=lambda done, total: bar.update(task, completed=done, total=total))
    seconds = time.perf_counter() - start
    _report(stats, index_path, seconds)
    if stats.failures:
        sys.exit(EXIT_SOME_IMAGES_FAILED)


def _report(stats, index_path: Path, seconds: float) -> None:
    from rich.markup import escape

    out, err = console(), console(stderr=True)
    for path, reason in stats.failures:
        err.print(f"[red]failed[/red] {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)
    embedded = stats.new + stats.changed - len(stats.failures)
    out.print(f"indexed {stats.indexed} images in {escape(str(index_path))}: {stats.new} new, "
              f"{stats.changed} changed, {stats.unchanged} unchanged, {stats.removed} removed, "
              f"{len(stats.failures)} failed", highlight=False, soft_wrap=True)
    rate = f" ({embedded / seconds:.1f} images/s)" if embedded and seconds > 0 else ""
    out.print(f"embedded {embedded} images in {seconds:.1f} s{rate}", highlight=False, soft_wrap=True)
    if stats.failures:
        err.print(f"{len(stats.failures)} of {stats.total} images could not be read", highlight=False, soft_wrap=True)


# -- search ---------------------------------------------------------------------------
@click.command("search")
@click.argument("index_path", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("query")
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
              help="Approximate search for very large indexes (a faiss inverted-file index, built once per "
                   "index version and cached in the data home); scores stay exact cosines.")
@domain_errors
def search(index_path, query, model_path, vectors, top, as_json, html_file, approx):
    """Rank the images of INDEX by similarity to QUERY.

    QUERY is a word or phrase ("snow leopard"), a synset (snow_leopard.n.01) or wnid
    (n02128757), embedded with the model's word vectors as for vocabularies, or the
    path of an image (image-to-image search, which loads the model). Search is exact
    (one matrix product and a top-k over every indexed image) unless --approx.

    \b
    Examples:
      devise search pictures.h5 "snow leopard" --top 20
      devise search pictures.h5 tiger.n.02 --json
      devise search pictures.h5 holiday/cat.jpg --html similar.html
      devise search million.h5 "fire engine" --approx
    """
    from models.image_index import ImageIndex, model_checksum

    idx = ImageIndex.load(index_path)
    idx.require_images()
    if model_path is not None:
        idx.check_model(model_checksum(model_path), model_path)
    image = _image_query(query)
    if image is not None:
        qvec = _embed_image(idx, image, model_path)
    else:
        qvec = _embed_text(idx, query, vectors)
    rows, scores = idx.search(qvec, top, approx=approx)
    results = [{"rank": r + 1, "path": idx.paths[i], "score": round(float(s), 6)}
               for r, (i, s) in enumerate(zip(rows, scores))]
    kind = "image" if image is not None else "text"
    if html_file is not None:
        from .search_html import write_page

        write_page(html_file, query, kind, results, index_path, len(idx), query_image=image)
    if as_json:
        echo_json({"index": str(index_path), "query": query, "kind": kind, "images": len(idx), "results": results})
        return
    _print_table(query, results, index_path, len(idx))
    if html_file is not None:
        click.echo(f"wrote {html_file}")


def _image_query(query: str) -> Path | None:
    """QUERY as an image file, or None for a text query; a missing image path is an error."""
    from models.data import IMAGE_EXTENSIONS
    from wordnet.errors import ImageError

    path = Path(query).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise ImageError(f"{query}: no such image file")
    return None


def _embed_image(idx, image: Path, model_path: Path | None):
    from models.bundle import load_bundle
    from models.image_index import ImageIndexError, model_checksum
    from wordnet.errors import ImageError

    if model_path is None:
        model_path = Path(idx.attrs.get("model_path", ""))
        if not (model_path / "model.keras").is_file():
            raise ImageIndexError(f"{idx.location} was built with model {model_path}, which cannot be found; "
                                  f"pass --model to embed the query image")
        idx.check_model(model_checksum(model_path), model_path)
    res = load_bundle(model_path).run([image], batch_size=1)
    if res.failures:
        raise ImageError(f"{image}: {res.failures[0][1]}")
    return res.embeddings[0]


def _embed_text(idx, query: str, vectors: Path | None):
    from wordnet.errors import DimensionMismatchError, VectorsError
    from wordnet.query import text_query_vector
    from wordnet.vectors import file_checksum, load_vectors

    if vectors is None:
        recorded = idx.attrs.get("vectors", "")
        if not recorded or not Path(recorded).is_file():
            raise VectorsError(f"{idx.location} does not say where its model's word vectors are "
                               f"({recorded or 'not recorded'}); pass --vectors FILE")
        vectors = Path(recorded)
    elif not vectors.is_file():
        raise VectorsError(f"vectors file {vectors} does not exist")
    kv = load_vectors(vectors)
    if kv.vector_size != idx.dim:
        raise DimensionMismatchError(f"{vectors} has {kv.vector_size}-d vectors but {idx.location} holds "
                                     f"{idx.dim}-d embeddings; pass the vectors the model was trained with")
    built_with = idx.attrs.get("vector_checksum")
    if built_with and file_checksum(vectors) != built_with:
        click.echo(f"warning: {vectors} differs from the vectors the model was trained with", err=True)

    def wordnet():
        from wordnet.corpus import load_wordnet

        return load_wordnet()

    return text_query_vector(kv, query, wordnet, vectors_name=Path(vectors).name,
                             label_text=idx.attrs.get("label_text") or None)


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
