"""``devise data``: build benchmark datasets from art packages installed on this machine."""
from __future__ import annotations

from pathlib import Path

import click

from devise.datasets import STYLES as ALL_STYLES  # light: no PIL or resvg at import
from devise_cli.common import domain_errors
from devise_cli.progress import progress_bar


def _csv_list(ctx, param, value):
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


@click.group("data")
def data_group():
    """Build offline benchmark datasets (real art, no downloads).

    \b
    Example:
      devise data emoji data/emoji            # every installed emoji set, 96 px
      devise train data/emoji/train.csv ...   # seen concepts, all styles but one
    """


def split_options(command):
    """The seen/unseen split and concept-table options shared by every dataset builder."""
    options = [
        click.option("--split-seed", default=0, show_default=True, envvar="DEVISE_SPLIT_SEED",
                     help="Seed of the seen/unseen concept split."),
        click.option("--splits", "n_splits", default=1, show_default=True, type=click.IntRange(1),
                     help="Number of splits (seeds split-seed, split-seed+1, ...) under splits/split-K/."),
        click.option("--unseen-fraction", default=0.2, show_default=True,
                     type=click.FloatRange(0, 1, max_open=True),
                     help="Share of concepts (per lexicographer file) held out as unseen."),
        click.option("--heldout-style", default="twemoji", show_default=True,
                     help="Style (set) kept out of training to test seen concepts in a new style."),
        click.option("--table", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Concept table CSV (default: the hand-checked table shipped with devise)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@data_group.command("emoji")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", default=96, show_default=True, type=click.IntRange(8), envvar="DEVISE_EMOJI_SIZE",
              help="Image side in pixels.")
@click.option("--sources", callback=_csv_list, metavar="STYLE,...",
              help=f"Styles to render (default: all installed of {', '.join(ALL_STYLES)}).")
@click.option("--concepts", callback=_csv_list, metavar="NAME,...",
              help="Only these concepts (concept names, synsets or WordNet ids), e.g. tiger,dog.")
@click.option("--min-styles", default=4, show_default=True, type=click.IntRange(1),
              help="Keep concepts drawn in at least this many styles.")
@split_options
@click.option("--node-modules", type=click.Path(file_okay=False, path_type=Path),
              envvar="DEVISE_NODE_MODULES", help="node_modules folder holding @iconify-json/* sets.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="Rendering threads.")
@domain_errors
def emoji(out, size, sources, concepts, min_styles, split_seed, n_splits, unseen_fraction,
          heldout_style, table, node_modules, workers):
    """Render the same concepts from up to nine emoji sets into a zero-shot benchmark.

    Concepts map to WordNet noun synsets through a hand-checked table; concepts are split
    into seen (train) and unseen (zero-shot test) per lexicographer file, and one style is
    held out to test seen concepts in an unseen drawing style. Writes OUT/images/<wnid>/,
    manifest.csv, ATTRIBUTION.md, splits/seen.txt, splits/unseen.txt, train.csv,
    test_seen_style.csv and test_unseen.csv, and the strict zero-shot view
    test_unseen_strict.csv (splits/unseen_strict.txt): the unseen concepts that
    are neither ImageNet-1K classes nor above or below one, for backbones
    pre-trained on ImageNet.

    \b
    Example:
      devise data emoji data/emoji --size 64 --split-seed 1
      devise data emoji /tmp/few --concepts tiger,dog,guitar,violin --min-styles 1
    """
    from devise.datasets import build_emoji_dataset, load_concepts, open_sources, select_concepts

    unknown = [s for s in (sources or []) if s not in ALL_STYLES]
    if unknown:
        raise click.BadParameter(f"unknown style(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(ALL_STYLES)}", param_hint="--sources")
    table_rows = select_concepts(load_concepts(path=table), concepts)
    wanted_styles = [s for s in ALL_STYLES if sources is None or s in sources]
    opened, skipped = open_sources(wanted_styles, node_modules)
    for message in skipped:
        click.echo(f"skipped {message}")

    with progress_bar("rendering", len(table_rows)) as update:
        result = build_emoji_dataset(
            out, table_rows, opened, size=size, min_styles=min_styles, split_seed=split_seed,
            n_splits=n_splits, unseen_fraction=unseen_fraction, heldout_style=heldout_style,
            workers=workers, on_concept=update)
    _report(result, len(opened))


def _report(result, n_styles):
    counts = result.per_style()
    n_concepts = len(result.concepts)
    styles_per = result.per_concept()
    click.echo(f"rendered {len(result.images)} images of {n_concepts} concepts in "
               f"{len(counts)} styles in {result.seconds:.1f} s")
    licences = {row["style"]: row["licence"] for row in result.images}
    for style, n in counts.items():
        click.echo(f"  {style:<18} {n:>5}  {licences[style]}")
    six = sum(1 for n in styles_per.values() if n >= 6)
    every = sum(1 for n in styles_per.values() if n == n_styles)
    click.echo(f"concepts: {n_concepts} kept ({six} with >= 6 styles, {every} in all {n_styles}); "
               f"{len(result.dropped)} dropped with too few styles")
    for concept, style, reason in result.failures[:5]:
        click.echo(f"  failed {concept} ({style}): {reason}")
    _report_split(result)


def _report_split(result) -> None:
    """The first split of a benchmark just written, and where it went (the last lines of its summary)."""
    seed, seen, unseen = result.splits[0]
    click.echo(f"split (seed {seed}): {len(seen)} seen, {len(unseen)} unseen concepts "
               f"({len(result.strict(unseen))} unrelated to ImageNet-1K); held-out style {result.heldout_style}")
    click.echo(f"wrote {result.out}")


@data_group.command("icons")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", default=64, show_default=True, type=click.IntRange(8), envvar="DEVISE_ICON_SIZE",
              help="Image side in pixels.")
@click.option("--sets", callback=_csv_list, metavar="PREFIX,...",
              help="Only these Iconify sets (default: every installed set with an open licence).")
@click.option("--concepts", callback=_csv_list, metavar="NAME,...",
              help="Only these concepts (concept names, synsets or WordNet ids).")
@click.option("--min-sets", default=4, show_default=True, type=click.IntRange(1),
              help="Keep concepts drawn in at least this many sets.")
@split_options
@click.option("--node-modules", type=click.Path(file_okay=False, path_type=Path),
              envvar="DEVISE_NODE_MODULES", help="node_modules folder holding @iconify/json.")
@domain_errors
def icons(out, size, sets, concepts, min_sets, split_seed, n_splits, unseen_fraction, heldout_style,
          table, node_modules):
    """Render the emoji concepts from every open icon set in @iconify/json (a larger, harder benchmark).

    Sets under NC, ND or GPL licences, logos, flags and programming symbols are left out.
    Icons match concepts by the table's names and the synsets' WordNet lemmas, minus a
    reviewed deny-list of names that icon sets use for other things. Same layout as
    `devise data emoji`; each set is one style.

    \b
    Example:
      npm install @iconify/json
      devise data icons data/icons --size 64
    """
    from devise.datasets import build_icon_dataset, load_wordnet, select_concepts, usable_collections

    wn = load_wordnet()
    table_rows = select_concepts(_load_table(wn, table), concepts)
    installed, kept, left_out = _iconify_sets(node_modules, sets, usable_collections)
    by_licence = [line for line in left_out if ": licence " in line]
    if left_out:
        click.echo(f"left out {len(left_out)} sets: {len(left_out) - len(by_licence)} logos, flags or "
                   f"programming sets; {len(by_licence)} for their licence"
                   + (f" ({'; '.join(by_licence)})" if by_licence else ""))

    with progress_bar("rendering", len(kept)) as update:
        result = build_icon_dataset(
            out, wn, table_rows, kept, size=size, min_sets=min_sets, split_seed=split_seed,
            n_splits=n_splits, unseen_fraction=unseen_fraction, heldout_style=heldout_style,
            on_set=lambda done, total, prefix: update(done, total, prefix))
    counts = result.per_style()
    per_concept = result.per_concept()
    click.echo(f"rendered {len(result.images)} images of {len(result.concepts)} concepts from "
               f"{len(counts)} of {len(kept)} sets in {result.seconds:.1f} s")
    for threshold in (10, 20):
        click.echo(f"  concepts in >= {threshold} sets: "
                   f"{sum(1 for n in per_concept.values() if n >= threshold)}")
    click.echo(f"{len(result.dropped)} concepts dropped with fewer than {min_sets} sets")
    _report_split(result)


@data_group.command("clipart")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", default=64, show_default=True, type=click.IntRange(8), envvar="DEVISE_CLIPART_SIZE",
              help="Image side in pixels.")
@click.option("--emoji", "emoji_data", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="An emoji dataset (`devise data emoji`) whose concepts and splits to use [default: split "
                   "the concept table with --split-seed/--splits, as `devise data emoji` does].")
@split_options
@click.option("--drawings", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Clip-art table CSV file,synset,note (default: the hand-checked table shipped with devise).")
@click.option("--source", type=click.Path(file_okay=False, path_type=Path), envvar="DEVISE_CLIPART_DIR",
              help="Folder of the Open Clip Art PNGs [default: /usr/share/openclipart/png].")
@domain_errors
def clipart(out, size, emoji_data, split_seed, n_splits, unseen_fraction, heldout_style, table, drawings, source):
    """Render the emoji benchmark's concepts drawn as clip art (Open Clip Art, public domain): a new style.

    A hand-checked table maps about 1,700 drawings of Debian's openclipart-png to WordNet
    synsets; a drawing counts for a benchmark concept when its synset is the concept's or
    a hyponym of it (beagle -> dog). Writes OUT/images/<wnid>/, manifest.csv, ATTRIBUTION.md,
    all.csv, benchmark.csv and, per the emoji benchmark's concept split, test_seen.csv and
    test_unseen.csv (splits/split-K/ for --splits N).

    \b
    Example:
      apt-get install openclipart-png
      devise data clipart data/clipart --emoji data/emoji
      devise eval data/clipart/test_seen.csv --model runs/emoji --baseline softmax
    """
    from devise.datasets import build_clipart_dataset, load_wordnet, read_clipart_table, read_emoji_splits

    del heldout_style  # one style only

    wn = load_wordnet()
    concepts = _load_table(wn, table)
    splits = None
    if emoji_data is not None:
        wnids, splits = read_emoji_splits(emoji_data)
        keep = set(wnids)
        concepts = [c for c in concepts if c.wnid in keep]
    table_rows = read_clipart_table(drawings)
    with progress_bar("rendering", len(table_rows)) as update:
        result = build_clipart_dataset(out, wn, table_rows, concepts, source=source, size=size, splits=splits,
                                       split_seed=split_seed, n_splits=n_splits, unseen_fraction=unseen_fraction,
                                       on_image=update)
    counts = result.summary()
    click.echo(f"rendered {len(result.images)} drawings of {counts['synsets']} synsets in "
               f"{result.seconds:.1f} s ({result.duplicates} duplicate files skipped)")
    click.echo(f"benchmark concepts: {counts['benchmark_drawings']} drawings of {counts['benchmark_concepts']} "
               f"concepts; split (seed {counts['seed']}): {counts['seen']} seen, {counts['unseen']} unseen")
    if result.missing:
        click.echo(f"{len(result.missing)} table files not installed, first: {result.missing[0]}")
    for file, reason in result.failures[:5]:
        click.echo(f"  failed {file}: {reason}")
    click.echo(f"wrote {result.out}")


def _iconify_sets(node_modules, sets, choose):
    """``(installed, kept, left-out lines)``: the installed Iconify sets and those ``choose`` keeps; says
    when none is installed or a wanted set is missing."""
    from devise.datasets import HOW_TO_GET, iconify_collections

    installed = iconify_collections(node_modules)
    if not installed:
        click.echo(f"skipped icons: no Iconify set found; {HOW_TO_GET}")
    kept, left_out = choose(installed, sets)
    unknown = [s for s in (sets or []) if s not in installed]
    if unknown:
        click.echo(f"skipped {', '.join(unknown)}: not installed; {HOW_TO_GET}")
    return installed, kept, left_out


def _load_table(wn, table):
    from devise.datasets import load_concepts

    return load_concepts(wn, table)


@data_group.command("pool")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", default=64, show_default=True, type=click.IntRange(8), envvar="DEVISE_POOL_SIZE",
              help="Image side in pixels.")
@click.option("--min-sets", default=8, show_default=True, type=click.IntRange(1),
              help="A class is an icon name drawn by at least this many sets.")
@click.option("--max-per-class", default=40, show_default=True, type=click.IntRange(1),
              help="Icons kept per class, taken round-robin over the sets that draw it.")
@click.option("--seed", default=0, show_default=True, help="Seed of the choice of icons within a class.")
@click.option("--sets", callback=_csv_list, metavar="PREFIX,...",
              help="Only these Iconify sets (default: every installed open, non-emoji, non-logo set).")
@click.option("--table", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Benchmark concept table to stay disjoint from (default: the emoji table shipped with devise).")
@click.option("--node-modules", type=click.Path(file_okay=False, path_type=Path),
              envvar="DEVISE_NODE_MODULES", help="node_modules folder holding @iconify/json.")
@domain_errors
def pool(out, size, min_sets, max_per_class, seed, sets, table, node_modules):
    """Build a pre-training pool from @iconify/json: icon names many sets share, none a benchmark concept.

    A class is an icon name (style and size tokens dropped, badges folded: `folder-plus` is
    `folder`) drawn by at least --min-sets open sets; emoji sets, logos, flags, programming
    symbols and NC/ND/GPL sets are left out. A name is left out when it names a concept of the
    benchmark table, a hyponym or hypernym of one in WordNet, a brand, or a near-leak listed in
    the reviewed table wordnet/data/pool_class_review.csv; excluded.csv says why for each.
    Writes OUT/images/<class>/, manifest.csv, classes.csv, excluded.csv, train.csv, pool.json
    and ATTRIBUTION.md; `devise pretrain OUT` trains a backbone on it.

    \b
    Example:
      npm install @iconify/json
      devise data pool data/pool --size 64 --min-sets 8
    """
    from devise.datasets import brand_names, build_icon_pool, load_wordnet, pool_collections

    wn = load_wordnet()
    installed, kept, left_out = _iconify_sets(node_modules, sets, pool_collections)
    if left_out:
        click.echo(f"left out {len(left_out)} sets: " + "; ".join(left_out))
    with progress_bar("reading and rendering sets", 2 * max(1, len(kept))) as update:
        result = build_icon_pool(out, wn, _load_table(wn, table), kept, size=size, min_sets=min_sets,
                                 max_per_class=max_per_class, seed=seed, brands=brand_names(installed, wn),
                                 on_set=lambda done, total, prefix: update(done, total, prefix))
    images = result.images
    click.echo(f"rendered {len(images)} images of {len(result.classes)} classes from "
               f"{len({r['set'] for r in images})} sets in {result.seconds:.1f} s")
    click.echo(f"left out {len(result.excluded)} classes in >= {min_sets} sets: "
               + ", ".join(f"{n} by {k}" for k, n in result.excluded_by_reason().items()))
    for prefix, icon, reason in result.failures[:5]:
        click.echo(f"  failed {prefix}:{icon}: {reason}")
    click.echo(f"wrote {result.out}")


@data_group.command("photos")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--sources", callback=_csv_list, metavar="SOURCE,...",
              help="Only these sources: gcompris (Debian gcompris-qt-data), skimage (scikit-image) [default: both].")
@click.option("--max-side", default=512, show_default=True, type=click.IntRange(32), envvar="DEVISE_PHOTO_MAX_SIDE",
              help="Longer side in pixels; larger photos are shrunk, smaller ones kept as they are.")
@click.option("--table", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Photo table CSV source,file,synset,wnid,credit_check,note (default: the hand-checked "
                   "table shipped with devise).")
@click.option("--gcompris", "gcompris_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="DEVISE_GCOMPRIS_DIR",
              help="Folder of GCompris' .rcc files [default: /usr/share/gcompris-qt/rcc].")
@domain_errors
def photos(out, sources, max_side, table, gcompris_dir):
    """Extract labelled real photographs (GCompris, scikit-image) into a test set for photographs.

    A hand-checked table maps about 190 photos to WordNet noun synsets: animals, household
    objects, tools, windmills, dams and buildings from the Qt resource files of Debian's
    gcompris-qt-data, and scikit-image's cat, coffee, rocket, astronaut, coins and motorcycle. Each keeps its
    licence and author (from the package's debian/copyright). Writes OUT/images/<wnid>/,
    manifest.csv, ATTRIBUTION.md, test.csv, and in1k.csv / not_in1k.csv (whether the
    synset is an ImageNet-1K class: report zero-shot figures for those apart) and
    not_in1k_strict.csv (also no hypernym or hyponym of a 1K class).

    \b
    Example:
      apt-get install gcompris-qt-data
      devise data photos data/photos
      devise eval data/photos/not_in1k.csv --model runs/mine
    """
    from devise.datasets import PHOTO_SOURCES, build_photo_dataset, load_wordnet, read_photo_table

    unknown = [s for s in (sources or []) if s not in PHOTO_SOURCES]
    if unknown:
        raise click.BadParameter(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(PHOTO_SOURCES)}",
                                 param_hint="--sources")
    wn = load_wordnet()
    rows = read_photo_table(table)
    chosen = tuple(s for s in PHOTO_SOURCES if sources is None or s in sources)
    with progress_bar("extracting", sum(r.source in chosen for r in rows)) as update:
        result = build_photo_dataset(out, wn, rows, sources=chosen, gcompris=gcompris_dir, max_side=max_side,
                                     on_image=update)
    images = result.images
    wnids = {r["wnid"] for r in images}
    in1k = [r for r in images if r["wnid"] in result.in1k]
    click.echo(f"extracted {len(images)} photos of {len(wnids)} synsets in {result.seconds:.1f} s")
    for source in PHOTO_SOURCES:
        mine = [r for r in images if r["source"] == source]
        if mine:
            click.echo(f"  {source:<9} {len(mine):>4} photos, {len({r['wnid'] for r in mine})} synsets")
    strict = [r for r in images if not r["imagenet1k"]]
    click.echo(f"ImageNet-1K classes: {len(in1k)} photos of {len({r['wnid'] for r in in1k})} synsets; "
               f"not in ImageNet-1K: {len(images) - len(in1k)} photos of "
               f"{len(wnids - {r['wnid'] for r in in1k})} synsets, of which {len(strict)} photos of "
               f"{len({r['wnid'] for r in strict})} synsets neither above nor below a 1K class")
    licences: dict[str, int] = {}
    for r in images:
        licences[r["licence"]] = licences.get(r["licence"], 0) + 1
    click.echo("licences: " + ", ".join(f"{name} {n}" for name, n in sorted(licences.items(), key=lambda kv: -kv[1])))
    checks = {k: sum(r["credit_check"] == k for r in images if r["source"] == "gcompris")
              for k in ("matches", "mismatch", "")}
    click.echo(f"GCompris credits: {checks['matches']} name this very photo, {checks['mismatch']} name another "
               f"photo (licence unverified), {checks['']} name no source to compare")
    if result.missing:
        reasons = sorted({why for _f, why in result.missing})
        click.echo(f"skipped {len(result.missing)} photos not installed: {'; '.join(reasons)}")
    for file, reason in result.failures[:5]:
        click.echo(f"  failed {file}: {reason}")
    click.echo(f"wrote {result.out}")
