"""``devise vocab``: build, inspect and query label vocabularies (HDF5).

Click glue over :mod:`devise.vocabularies`; NLTK, gensim and h5py are imported
inside the commands only.
"""
from __future__ import annotations

from pathlib import Path

import click

from devise.synsets import SHIPPED_LISTS
from devise_cli.common import console, domain_errors, echo_json, label_text_option

VECTORS_HELP = "Word vectors (any format) [default: the vectors from `devise vectors train`]."



@click.group("vocab")
def vocab_group():
    """Label vocabularies: the labels (and their vectors) a model is scored against."""


@vocab_group.command("build")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vectors", "vectors", envvar="DEVISE_VECTORS", type=click.Path(dir_okay=False, path_type=Path),
              help=VECTORS_HELP)
@click.option("--synsets", "synsets_file", metavar="FILE",
              help=f"Label list: wnids, synset names or words, one a line (or a shipped list: "
                   f"{', '.join(SHIPPED_LISTS)}).")
@click.option("--subtree", metavar="SYNSET", help="A synset and all its hyponyms, e.g. dog.n.01.")
@click.option("--all-nouns", is_flag=True, help="Every WordNet noun synset with a vector (implies --skip-missing).")
@click.option("--hops", type=click.IntRange(1), metavar="N",
              help="Labels within N tree hops of --seen (seen excluded; the label itself is hop 1).")
@click.option("--seen", metavar="FILE", help="With --hops: the seen (training) labels.")
@click.option("--universe", metavar="FILE", help="With --hops: candidate labels [default: all nouns].")
@click.option("--skip-missing", is_flag=True, help="Leave out (and list) labels without a vector.")
@click.option("--overrides", type=click.Path(dir_okay=False, path_type=Path), metavar="CSV",
              help="CSV label,synset pinning the sense of ambiguous words.")
@label_text_option
@domain_errors
def build(out, vectors, synsets_file, subtree, all_nouns, hops, seen, universe, skip_missing, overrides, label_text):
    """Build a vocabulary OUT (.h5) from ONE label source and word vectors.

    Each label's vector is the mean of its lemma names' unit vectors (--label-text
    adds its WordNet definition and/or hypernyms). Labels with no vector are an
    error unless --skip-missing.

    \b
    Examples:
      devise vocab build animals.h5 --subtree animal.n.01
      devise vocab build in1k.h5 --synsets imagenet1k --vectors GoogleNews.bin
      devise vocab build nouns.h5 --all-nouns
      devise vocab build 2hop.h5 --synsets imagenet-2hop --skip-missing   # the published 2-hop set
      devise vocab build my2hop.h5 --hops 2 --seen imagenet1k --universe imagenet21k
      devise vocab build unseen.h5 --synsets unseen.txt --label-text lemmas+gloss+hypernyms
    """
    chosen = [name for name, on in (("--synsets", synsets_file), ("--subtree", subtree),
                                    ("--all-nouns", all_nouns), ("--hops", hops is not None)) if on]
    if len(chosen) != 1:
        got = f" (got {', '.join(chosen)})" if chosen else ""
        raise click.UsageError("give exactly one label source: --synsets FILE, --subtree SYNSET, "
                               "--all-nouns or --hops N --seen FILE" + got)
    if hops is not None and not seen:
        raise click.UsageError("--hops needs --seen FILE")
    if (seen or universe) and hops is None:
        raise click.UsageError("--seen and --universe go with --hops N")

    from devise.vocabularies import build_vocabulary, describe_synsets

    vocab, missing, source, vectors_path = build_vocabulary(
        out, synsets=synsets_file, subtree=subtree, all_nouns=all_nouns, hops=hops, seen=seen, universe=universe,
        vectors=vectors, skip_missing=skip_missing, overrides=overrides, label_text=label_text)
    requested = len(vocab) + len(missing)
    click.echo(f"wrote {out}: {len(vocab):,} labels x {vocab.dim} dims from {source} "
              f"(vectors {vectors_path.name})")
    click.echo(f"coverage: {len(vocab):,} of {requested:,} labels have vectors ({100 * len(vocab) / requested:.1f}%)")
    if missing:
        click.echo(f"skipped {len(missing):,} labels without vectors: {describe_synsets(missing)}")


@vocab_group.command("info")
@click.argument("vocab_path", metavar="VOCAB", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--head", default=5, show_default=True, type=click.IntRange(0), help="Labels to show.")
@domain_errors
def info(vocab_path, as_json, head):
    """Show a vocabulary: size, dimension, vector source, first labels.

    \b
    Example:
      devise vocab info animals.h5 --json
    """
    from devise.vocabularies import load_vocabulary

    vocab = load_vocabulary(vocab_path)
    attrs = {k: v for k, v in vocab.attrs.items() if k not in ("path", "dim")}
    summary = {"path": str(vocab_path), "labels": len(vocab), "dim": vocab.dim, **attrs}
    rows = [{"wnid": w, "synset": s, "label": lab, "definition": d} for w, s, lab, d in
            zip(vocab.wnids[:head], vocab.synsets[:head], vocab.labels[:head], vocab.definitions[:head])]
    if as_json:
        echo_json({**summary, "head": rows})
        return
    from rich.table import Table

    con = console()
    table = Table(show_header=False, title=vocab_path.name)
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    con.print(table)
    if rows:
        labels = Table("wnid", "synset", "label", "definition", title=f"first {len(rows)} labels")
        for r in rows:
            labels.add_row(*r.values())
        con.print(labels)


@vocab_group.command("nearest")
@click.argument("vocab_path", metavar="VOCAB", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("query")
@click.option("--top", "-k", default=10, show_default=True, type=click.IntRange(1), help="Labels to show.")
@click.option("--vectors", type=click.Path(dir_okay=False, path_type=Path), envvar="DEVISE_VECTORS",
              help="Vectors to embed QUERY with [default: the ones VOCAB was built with].")
@click.option("--json", "as_json", is_flag=True, help='Print a JSON list of {"wnid","synset","label","score"}.')
@domain_errors
def nearest(vocab_path, query, top, vectors, as_json):
    """The labels of VOCAB nearest to QUERY (a word, a phrase or a synset).

    QUERY is embedded with the word vectors the vocabulary was built with.

    \b
    Examples:
      devise vocab nearest animals.h5 "snow leopard"
      devise vocab nearest nouns.h5 guitar.n.01 --top 5 --json
    """
    from devise.vocabularies import load_vocabulary, nearest_labels

    vocab = load_vocabulary(vocab_path)
    found = nearest_labels(vocab, query, top=top, vectors=vectors,
                           warn=lambda text: click.echo(f"warning: {text}", err=True))
    results = [{k: r[k] for k in ("wnid", "synset", "label", "score")} for r in found]
    if as_json:
        echo_json(results)
        return
    from rich.table import Table

    table = Table("#", "wnid", "synset", "label", "score", "definition", title=f"nearest to {query!r}")
    for rank, r in enumerate(found, start=1):
        table.add_row(str(rank), r["wnid"], r["synset"], r["label"], f"{r['score']:.3f}", r["definition"])
    console().print(table)
