"""``devise wordnet``: look labels up in WordNet and build zero-shot hop splits.

Click glue over :func:`devise.synsets.lookup` and :func:`devise.synsets.hop_split`; NLTK is
imported inside the commands only.
"""
from __future__ import annotations

from pathlib import Path

import click

from devise.synsets import SHIPPED_LISTS
from devise_cli.common import console, domain_errors, echo_json

LIST_HELP = f"one label a line (wnids, synset names or words), or a shipped list: {', '.join(SHIPPED_LISTS)}"


@click.group("wordnet")
def wordnet_group():
    """WordNet, offline: label lookup and the papers' zero-shot hop splits.

    The corpus is NLTK's own WordNet if installed, else built once from Debian's
    wordnet-base files into the data home ($DEVISE_HOME).
    """


def _panel(record: dict):
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    grid.add_row("wnid", record["wnid"])
    grid.add_row("synset", record["synset"])
    grid.add_row("lemmas", ", ".join(record["lemmas"]))
    grid.add_row("definition", record["definition"])
    grid.add_row("hypernyms", " > ".join(name.split(".")[0].replace("_", " ")
                                         for name in record["hypernym_path"]))
    return Panel(grid, title=f"[bold]{record['label']}[/bold]", title_align="left", expand=False)


@wordnet_group.command("lookup")
@click.argument("query")
@click.option("--first", "first_only", is_flag=True,
              help="Show only the sense the words map to as a label (the first noun sense, or the override).")
@click.option("--all", "all_senses", is_flag=True, hidden=True, help="Every noun sense (the default now).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of synsets instead of panels.")
@click.option("--overrides", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV label,synset pinning the sense of ambiguous words.")
@domain_errors
def lookup(query, first_only, all_senses, as_json, overrides):
    """Show the synsets of a label QUERY: wnid, name, lemmas, definition, hypernym path.

    QUERY is a wnid, a synset name or words. Words list every noun sense, the one a
    label of these words maps to first (WordNet's most frequent sense, or the one an
    --overrides CSV pins); --first shows only that one.

    \b
    Examples:
      devise wordnet lookup crane             # the writer, the machine, the bird, ...
      devise wordnet lookup "snow leopard" --first
      devise wordnet lookup n02084071 --json
    """
    from devise.synsets import lookup as senses

    records = senses(query, overrides=overrides, first_only=first_only)  # unknown -> error with suggestions
    if as_json:
        echo_json(records)
        return
    out = console()
    if len(records) > 1:
        out.print(f"{len(records)} noun senses of {query.strip()!r}; as a label it maps to the first "
                  f"(pin another with --overrides CSV: label,synset)", highlight=False, markup=False)
    for record in records:
        out.print(_panel(record))


@wordnet_group.command("hops")
@click.option("--seen", required=True, metavar="FILE", help=f"The seen (training) labels: {LIST_HELP}.")
@click.option("--universe", metavar="FILE", help=f"The candidate labels [default: every noun synset]: {LIST_HELP}.")
@click.option("--hops", "hops", required=True, type=click.IntRange(1),
              help="N: the label itself is hop 1, its parents and children hop 2, …")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the wnids to this file instead of stdout.")
@domain_errors
def hops(seen, universe, hops, output):
    """Print the universe wnids within N tree hops of the seen labels (sorted, seen excluded).

    This is how DeViSE and ConSE define ImageNet zero-shot splits ("2-hop", "3-hop").
    Distance is counted in the hierarchy induced on the universe (WordNet synsets outside
    it are passed through); with the ImageNet lists, 2 hops give 1,572 and 3 hops 7,458
    wnids. The published sets (1,549 and 7,860) are shipped as imagenet-2hop and imagenet-3hop.

    \b
    Examples:
      devise wordnet hops --seen imagenet1k --universe imagenet21k --hops 2
      devise wordnet hops --seen my_classes.txt --hops 3 -o 3hop.txt
    """
    from devise.files import atomic_write
    from devise.synsets import hop_split

    seen_wnids, universe_wnids, wnids = hop_split(seen, universe, hops)
    text = "".join(f"{w}\n" for w in wnids)
    if output is None:
        click.echo(text, nl=False)
    else:
        with atomic_write(output) as fh:
            fh.write(text)
    click.echo(f"{len(wnids)} wnids within {hops} hops of {len(set(seen_wnids))} seen labels "
               f"(universe: {universe or 'all nouns'}, {len(set(universe_wnids))} labels)"
               + (f" -> {output}" if output else ""), err=True)
