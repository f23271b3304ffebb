"""``devise vectors``: train offline skip-gram vectors, inspect any vectors file.

Click glue over :func:`devise.train_vectors` and the vectors helpers of :mod:`devise.vocabularies`; gensim and NLTK
are imported inside the commands only.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

from devise_cli.common import console, domain_errors, echo_json
from devise_cli.progress import stage_progress

SAMPLE_WORDS = ("tiger", "guitar", "shark", "car", "apple", "dog")


def _neighbour_table(title: str, neighbours: dict):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("word")
    table.add_column("nearest words (cosine)")
    for word, near in neighbours.items():
        table.add_row(word, ", ".join(f"{w} {s:.2f}" for w, s in near) if near else "[dim](not in vectors)[/]")
    return table


@click.group("vectors")
def vectors_group():
    """Word vectors: train offline skip-gram vectors, inspect a vectors file."""


@vectors_group.command("train")
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dim", default=300, show_default=True, type=click.IntRange(1), help="Vector dimension.")
@click.option("--window", default=15, show_default=True, type=click.IntRange(1), help="Skip-gram context window.")
@click.option("--min-count", default=3, show_default=True, type=click.IntRange(1),
              help="Ignore words seen fewer times.")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(1))
@click.option("--workers", default=None, type=click.IntRange(1), envvar="DEVISE_WORKERS",
              help="Training threads [default: number of cores].")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--gcide", "gcide_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="GCIDE dictd file [default: /usr/share/dictd/gcide.dict.dz when installed].")
@click.option("--no-gcide", is_flag=True, help="Use WordNet text only.")
@click.option("--text", "texts", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Extra plain-text file for the corpus (repeatable).")
@click.option("--keep-lemmas/--no-keep-lemmas", default=True, show_default=True,
              help="Give every WordNet noun lemma a vector even when rarer than --min-count.")
@click.option("--rebuild-corpus", is_flag=True, help="Rebuild the cached corpus even if it exists.")
@click.option("--corpus-only", is_flag=True, help="Build (or show) the corpus and stop.")
@click.option("--force", is_flag=True, help="Retrain even if OUT exists.")
@domain_errors
def train(out, dim, window, min_count, epochs, workers, seed, gcide_path, no_gcide, texts, keep_lemmas,
          rebuild_corpus, corpus_only, force):
    """Train skip-gram vectors offline on WordNet (+ GCIDE) text; save OUT (.kv).

    Skip-gram with hierarchical softmax as in the DeViSE paper. OUT defaults to the
    data home's default vectors, which every other command uses when --vectors is
    not given. The corpus is cached in the data home. WordNet noun lemmas keep a
    vector even when rare (--no-keep-lemmas applies --min-count to them too).

    \b
    Examples:
      devise vectors train
      devise vectors train small.kv --dim 100 --epochs 3 --no-gcide
    """
    from devise.vocabularies import default_vectors_path, nearest_words, train_vectors

    out = Path(out) if out else default_vectors_path()
    con = console()
    if out.exists() and not force and not corpus_only:
        click.echo(f"{out} already exists; pass --force to retrain")
        return

    def corpus_ready(stats):
        click.echo(f"corpus: {stats.tokens:,} tokens, {stats.sentences:,} sentences, "
                   f"{stats.phrase_tokens:,} phrase tokens from {', '.join(stats.sources)} ({stats.path})")

    with stage_progress() as progress:
        _, trained = train_vectors(out, dim=dim, window=window, min_count=min_count, epochs=epochs, workers=workers,
                                   seed=seed, gcide=gcide_path, use_gcide=not no_gcide, texts=texts,
                                   keep_lemmas=keep_lemmas, rebuild_corpus=rebuild_corpus, corpus_only=corpus_only,
                                   progress=progress, on_corpus=corpus_ready)
    if corpus_only:
        return
    kv, result = trained
    click.echo(f"wrote {out}: {result.vocabulary:,} words x {result.dim} dims, "
               f"trained in {result.seconds:.1f} s on {workers or os.cpu_count()} workers")
    sample = {w: nearest_words(kv, w, 8) for w in SAMPLE_WORDS if w in kv.key_to_index}
    if sample:
        con.print(_neighbour_table("sample neighbours", sample))


@vectors_group.command("info")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--neighbours", "-n", "words", multiple=True, help="Word to show neighbours of (repeatable).")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1), help="Neighbours per word.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@domain_errors
def info(file, words, top, as_json):
    """Show a vectors FILE (any format): size, dimension, checksum, sample neighbours.

    FILE defaults to the trained default vectors.

    \b
    Examples:
      devise vectors info
      devise vectors info GoogleNews-vectors-negative300.bin -n tiger -n guitar --top 5
    """
    from devise.vocabularies import detect_format, file_checksum, load_vectors, nearest_words, resolve_vectors

    path = resolve_vectors(file)
    kind = detect_format(path)
    kv = load_vectors(path)
    if not words:
        words = [w for w in SAMPLE_WORDS if w in kv.key_to_index][:3] or list(kv.index_to_key[:3])
    neighbours = {w: nearest_words(kv, w, top) for w in words}
    summary = {"path": str(path), "format": kind, "words": len(kv), "dim": int(kv.vector_size),
               "checksum": file_checksum(path), "bytes": path.stat().st_size}
    if as_json:
        echo_json({**summary, "neighbours": {w: [[x, round(s, 4)] for x, s in n] or None
                                             for w, n in neighbours.items()}})
        return
    from rich.table import Table

    table = Table(show_header=False, title=path.name)
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    con = console()
    con.print(table)
    con.print(_neighbour_table("neighbours", neighbours))
