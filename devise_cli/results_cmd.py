"""``devise results``: merge result files of many ``devise eval`` runs into one table (Click glue over
:func:`devise.evaluation.merge_results`), as ``clip_benchmark build`` does."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from devise import DeviseError
from devise_cli.common import domain_errors

FORMATS = ("markdown", "csv")


def _names(value: str | None) -> list[str] | None:
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    return names or None


@click.command("results")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mean", "mean", is_flag=True,
              help="One row per setting and method: the mean over the files, with [min–max].")
@click.option("--metrics", help="Comma-separated metric columns, in order [default: every metric].")
@click.option("--setting", "settings", help="Only these settings (comma-separated: given, zsl, gzsl).")
@click.option("--method", "methods", help="Only these methods (comma-separated: devise, devise+cal, conse, ...).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Table format [default: csv when --output ends in .csv, else markdown].")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the table here.")
@domain_errors
def results(files, mean, metrics, settings, methods, fmt, output):
    """Merge result FILES (`devise eval --result`, or whole `eval --json` reports) into one table.

    Rows are one per file, setting and method; with --mean, one per setting and method,
    averaged over the files (e.g. seen/unseen splits). Markdown shows percentages, CSV
    the fractions as stored.

    \b
    Examples:
      devise results runs/*/result.json -o all.csv
      devise results splits/unseen-*.json --mean --metrics hit@1,hit@5,mean_per_class_hit@1
    """
    from devise.evaluation import merge_results, read_results
    from devise.files import atomic_write

    rows = [r for f in files for r in read_results(f)]
    keep_settings, keep_methods = _names(settings), _names(methods)
    rows = [r for r in rows if (keep_settings is None or r.get("setting") in keep_settings)
            and (keep_methods is None or r.get("method") in keep_methods)]
    if not rows:
        raise DeviseError(f"no result in {len(files)} file(s) matches --setting/--method")
    columns, table = merge_results(rows, _names(metrics), mean=mean)
    fmt = fmt or ("csv" if output is not None and output.suffix.lower() == ".csv" else "markdown")
    text = _csv(columns, table, mean) if fmt == "csv" else _markdown(columns, table, mean, len(files))
    if output is None:
        click.echo(text, nl=False)
        return
    with atomic_write(output, encoding="utf-8") as fh:
        fh.write(text)
    click.echo(f"wrote {output}: {len(table)} rows x {len(columns)} metrics from {len(files)} file(s)")


def _fields(table: list[dict], columns: list[str]) -> list[str]:
    return [k for k in table[0] if k not in columns]


def _csv(columns: list[str], table: list[dict], mean: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    fields = _fields(table, columns)
    header = fields + ([x for m in columns for x in (m, f"{m}_min", f"{m}_max")] if mean else columns)
    writer.writerow(header)
    for row in table:
        cells = [row[f] for f in fields]
        for m in columns:
            v = row[m]
            if mean:
                cells += ["", "", ""] if v is None else [_num(v["mean"]), _num(v["min"]), _num(v["max"])]
            else:
                cells.append("" if v is None else _num(v))
        writer.writerow(cells)
    return buf.getvalue()


def _num(v: float) -> str:
    return f"{v:.6g}"


def _markdown(columns: list[str], table: list[dict], mean: bool, n_files: int) -> str:
    fields = _fields(table, columns)
    lines = ["| " + " | ".join(fields + columns) + " |",
             "|" + "|".join(["---"] * len(fields) + ["---:"] * len(columns)) + "|"]
    for row in table:
        cells = [str(row[f]) for f in fields]
        for m in columns:
            v = row[m]
            if v is None:
                cells.append("–")
            elif mean:
                cells.append(f"{100 * v['mean']:.1f} [{100 * v['min']:.1f}–{100 * v['max']:.1f}]")
            else:
                cells.append(f"{100 * v:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    what = "mean [min–max] over the files" if mean else "one row per file, setting and method"
    lines.append("")
    lines.append(f"{n_files} file(s); figures in %, {what}.")
    return "\n".join(lines) + "\n"
